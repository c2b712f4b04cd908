//! TSQL `SELECT` → DataFusion [`LogicalPlan`].
//!
//! 1. Every select item is expanded against the `FROM` prefixes: each path
//!    it mentions becomes the series it matches, and an item with several
//!    paths becomes one column per combination (IoTDB's cartesian rule).
//!    `SLIMIT/SOFFSET` slice the expanded columns here, at plan time.
//! 2. The series the query reads (select + `WHERE`) are grouped by device:
//!    one [`DeviceTableProvider`] scan per device (rows where any of its
//!    series has a point), with the `WHERE` clause's time ranges and the
//!    time order pushed into the scan.
//! 3. Several devices are merged on time by [`AlignByTime`].
//! 4. `WHERE` becomes a filter; rows where no *selected* series has a value
//!    are dropped (IoTDB's rule), then the projection names each column
//!    with IoTDB's header; then sort, offset and limit.
//! 5. Aggregates without `GROUP BY` become one aggregate node; expressions
//!    over aggregates (`count(s1) + 1`) a projection above it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use catalog::PathPattern;
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::{Alias, InList, Like};
use datafusion::logical_expr::utils::find_aggregate_exprs;
use datafusion::logical_expr::{
    cast, lit, Between, BinaryExpr, EmptyRelation, Expr as DfExpr, Extension, LogicalPlan, LogicalPlanBuilder, Operator, SortExpr,
};
use storage::{ScanOrder, TimeRange};

use crate::convert::{arrow_type, time_type, Literal, UTC};
use crate::error::{Error, Result};
use crate::exec::{AlignByTime, Fill, FillMethod, SegmentKind, Segments, TimeWindows, WindowFill, CONTROL, WINDOW};
use crate::functions::{self, AggArg};
use crate::instance::Instance;
use crate::provider::{time_ranges, DeviceTableProvider};
use crate::series::{resolve, SeriesRef};
use crate::time::Windows;
use crate::tsql::ast::{self, BinaryOp, Expr, GroupByTime, Segment, Select};

/// The internal name of the time column of every scan.
const TIME: &str = "time";
/// The header of the time column in results.
const TIME_HEADER: &str = "Time";
/// Separates a repeated column's header from the suffix that keeps its
/// name distinct inside the plan.
const DUPLICATE_MARK: char = '\u{1}';

/// The column headers a client sees for a planned TSQL query.
pub(crate) fn headers(schema: &datafusion::arrow::datatypes::Schema) -> Vec<Option<String>> {
    schema.fields().iter().map(|f| f.name().split_once(DUPLICATE_MARK).map(|(h, _)| h.to_string())).collect()
}

/// One output column after expansion: the expression with its paths made
/// full, the series each full path names, and the header.
struct OutputColumn {
    expr: Expr,
    header: String,
    /// `GROUP BY LEVEL`: the function and the series it merges.
    level: Option<(String, Vec<String>)>,
}

/// A series path as `GROUP BY LEVEL` shows it: the levels kept (and `root`,
/// and the measurement unless the item was a wildcard), `*` elsewhere.
fn level_path(path: &str, levels: &[usize], star_leaf: bool) -> String {
    let nodes: Vec<&str> = path.split('.').collect();
    let last = nodes.len() - 1;
    let kept: Vec<&str> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let kept = if i == last { !star_leaf || levels.contains(&i) } else { i == 0 || levels.contains(&i) };
            if kept { n } else { "*" }
        })
        .collect();
    kept.join(".")
}

/// The expansions of one path as the select list or `WHERE` writes it.
pub(super) fn matches(instance: &Instance, path: &str, from: &[String]) -> Result<Vec<SeriesRef>> {
    let texts: Vec<String> = if path.starts_with("root") { vec![path.to_string()] } else { from.iter().map(|p| format!("{p}.{path}")).collect() };
    let mut out: Vec<SeriesRef> = Vec::new();
    for t in texts {
        let pattern = PathPattern::parse(&t)?;
        for s in resolve(instance, std::slice::from_ref(&pattern)) {
            if !out.iter().any(|x| x.path() == s.path()) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// `expr` with each path replaced by its full path in `binding`.
pub(super) fn bind(expr: &Expr, binding: &HashMap<&str, String>) -> Expr {
    match expr {
        Expr::Path(p) => Expr::Path(binding.get(p.as_str()).cloned().unwrap_or_else(|| p.clone())),
        Expr::Negate(e) => Expr::Negate(Box::new(bind(e, binding))),
        Expr::Not(e) => Expr::Not(Box::new(bind(e, binding))),
        Expr::Cast { expr, to } => Expr::Cast { expr: Box::new(bind(expr, binding)), to: *to },
        Expr::Binary { op, left, right } => Expr::Binary { op: *op, left: Box::new(bind(left, binding)), right: Box::new(bind(right, binding)) },
        Expr::Between { expr, low, high, negated } => Expr::Between {
            expr: Box::new(bind(expr, binding)),
            low: Box::new(bind(low, binding)),
            high: Box::new(bind(high, binding)),
            negated: *negated,
        },
        Expr::InList { expr, list, negated } => {
            Expr::InList { expr: Box::new(bind(expr, binding)), list: list.iter().map(|e| bind(e, binding)).collect(), negated: *negated }
        }
        Expr::Like { expr, pattern, negated } => Expr::Like { expr: Box::new(bind(expr, binding)), pattern: pattern.clone(), negated: *negated },
        Expr::Regexp { expr, pattern, negated } => {
            Expr::Regexp { expr: Box::new(bind(expr, binding)), pattern: pattern.clone(), negated: *negated }
        }
        Expr::IsNull { expr, negated } => Expr::IsNull { expr: Box::new(bind(expr, binding)), negated: *negated },
        Expr::Function { name, args, options } => {
            Expr::Function { name: name.clone(), args: args.iter().map(|e| bind(e, binding)).collect(), options: options.clone() }
        }
        Expr::Substring { name, expr, from, length } => Expr::Substring {
            name: name.clone(),
            expr: Box::new(bind(expr, binding)),
            from: Box::new(bind(from, binding)),
            length: length.as_ref().map(|e| Box::new(bind(e, binding))),
        },
        Expr::Case { operand, whens, otherwise } => Expr::Case {
            operand: operand.as_ref().map(|e| Box::new(bind(e, binding))),
            whens: whens.iter().map(|(w, t)| (bind(w, binding), bind(t, binding))).collect(),
            otherwise: otherwise.as_ref().map(|e| Box::new(bind(e, binding))),
        },
        other => other.clone(),
    }
}

fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Binary { op: BinaryOp::Or, .. } => 1,
        Expr::Binary { op: BinaryOp::And, .. } => 2,
        Expr::Not(_) => 3,
        Expr::Binary { op, .. } if op.is_comparison() => 4,
        Expr::Between { .. } | Expr::InList { .. } | Expr::Like { .. } | Expr::Regexp { .. } | Expr::IsNull { .. } => 4,
        Expr::Binary { op: BinaryOp::Plus | BinaryOp::Minus, .. } => 5,
        Expr::Binary { .. } => 6,
        _ => 7,
    }
}

/// IoTDB's column header of an expression with full paths.
pub(crate) fn header(e: &Expr) -> String {
    let wrap = |child: &Expr, min: u8| {
        let h = header(child);
        if precedence(child) < min { format!("({h})") } else { h }
    };
    match e {
        Expr::Path(p) => p.clone(),
        Expr::Time => TIME_HEADER.into(),
        Expr::Literal(Literal::Integer(s) | Literal::Float(s)) => s.clone(),
        Expr::Literal(Literal::Text(s)) => format!("'{s}'"),
        Expr::Literal(Literal::Boolean(b)) => b.to_string(),
        Expr::Literal(Literal::Null) => "null".into(),
        Expr::Literal(Literal::Blob(b)) => format!("X'{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        Expr::TimeLiteral(t) => t.to_string(),
        Expr::Negate(x) => format!("-{}", wrap(x, 7)),
        Expr::Not(x) => format!("!{}", wrap(x, 7)),
        Expr::Binary { op, left, right } => {
            let p = precedence(e);
            format!("{} {} {}", wrap(left, p), op.symbol(), wrap(right, p + 1))
        }
        Expr::Between { expr, low, high, negated } => {
            format!("{} {}BETWEEN {} AND {}", wrap(expr, 5), if *negated { "NOT " } else { "" }, header(low), header(high))
        }
        Expr::InList { expr, list, negated } => {
            let items: Vec<String> = list.iter().map(header).collect();
            format!("{} {}IN ({})", wrap(expr, 5), if *negated { "NOT " } else { "" }, items.join(", "))
        }
        Expr::Like { expr, pattern, negated } => format!("{} {}LIKE '{pattern}'", wrap(expr, 5), if *negated { "NOT " } else { "" }),
        Expr::Regexp { expr, pattern, negated } => format!("{} {}REGEXP '{pattern}'", wrap(expr, 5), if *negated { "NOT " } else { "" }),
        Expr::IsNull { expr, negated } => format!("{} IS {}NULL", wrap(expr, 5), if *negated { "NOT " } else { "" }),
        Expr::Function { name, args, options } => {
            let mut parts: Vec<String> = args.iter().map(header).collect();
            parts.extend(options.iter().map(|(k, v)| format!("\"{k}\"=\"{v}\"")));
            format!("{name}({})", parts.join(", "))
        }
        Expr::Cast { expr, to } => format!("CAST({} AS {to})", header(expr)),
        Expr::Substring { name, expr, from, length } => match length {
            Some(l) => format!("{name}({} FROM {} FOR {})", header(expr), header(from), header(l)),
            None => format!("{name}({} FROM {})", header(expr), header(from)),
        },
        Expr::Case { operand, whens, otherwise } => {
            let mut s = "CASE".to_string();
            if let Some(o) = operand {
                s.push_str(&format!(" {}", header(o)));
            }
            for (w, t) in whens {
                s.push_str(&format!(" WHEN {} THEN {}", header(w), header(t)));
            }
            if let Some(o) = otherwise {
                s.push_str(&format!(" ELSE {}", header(o)));
            }
            s.push_str(" END");
            s
        }
    }
}

/// Every combination of the paths' expansions (IoTDB's cartesian product),
/// as the full path of each path text.
pub(super) fn combinations<'a>(paths: &[&'a str], expansions: &[Vec<SeriesRef>]) -> Vec<HashMap<&'a str, String>> {
    let mut out = vec![HashMap::new()];
    for (p, series) in paths.iter().zip(expansions) {
        let mut next = Vec::with_capacity(out.len() * series.len());
        for partial in &out {
            for s in series {
                let mut m = partial.clone();
                m.insert(*p, s.path());
                next.push(m);
            }
        }
        out = next;
    }
    out
}

/// The planner's view of one query: the series it reads by full path.
struct Reads {
    series: BTreeMap<String, SeriesRef>,
    /// Series in the order they were first needed.
    order: Vec<String>,
}

impl Reads {
    fn add(&mut self, s: &SeriesRef) {
        if self.series.insert(s.path(), s.clone()).is_none() {
            self.order.push(s.path());
        }
    }

    fn get(&self, path: &str) -> Option<&SeriesRef> {
        self.series.get(path)
    }
}

/// Translates TSQL expressions (full paths) to DataFusion expressions over
/// the merged rows (columns named by full path, `time`).
struct Translator<'a> {
    reads: &'a Reads,
    registry: &'a dyn FunctionRegistry,
    /// Where a time literal without an offset is local time.
    zone: crate::time::Zone,
}

fn column(name: &str) -> DfExpr {
    DfExpr::Column(Column::from_name(name))
}

fn time_literal(ms: i64) -> DfExpr {
    lit(ScalarValue::TimestampMillisecond(Some(ms), Some(UTC.into())))
}

fn df_op(op: BinaryOp) -> Operator {
    match op {
        BinaryOp::Or => Operator::Or,
        BinaryOp::And => Operator::And,
        BinaryOp::Eq => Operator::Eq,
        BinaryOp::NotEq => Operator::NotEq,
        BinaryOp::Lt => Operator::Lt,
        BinaryOp::LtEq => Operator::LtEq,
        BinaryOp::Gt => Operator::Gt,
        BinaryOp::GtEq => Operator::GtEq,
        BinaryOp::Plus => Operator::Plus,
        BinaryOp::Minus => Operator::Minus,
        BinaryOp::Multiply => Operator::Multiply,
        BinaryOp::Divide => Operator::Divide,
        BinaryOp::Modulo => Operator::Modulo,
    }
}

/// What a value of an expression is, as far as type checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Text,
    Boolean,
    Time,
    Other,
}

impl From<Kind> for functions::ArgKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Number => functions::ArgKind::Number,
            Kind::Text => functions::ArgKind::Text,
            Kind::Boolean => functions::ArgKind::Boolean,
            Kind::Time | Kind::Other => functions::ArgKind::Other,
        }
    }
}

impl<'a> Translator<'a> {
    fn kind(&self, e: &Expr) -> Kind {
        match e {
            Expr::Path(p) => match self.reads.get(p).map(|s| arrow_type(s.data_type())) {
                Some(t) if t.is_numeric() => Kind::Number,
                Some(ArrowType::Utf8) => Kind::Text,
                Some(ArrowType::Boolean) => Kind::Boolean,
                _ => Kind::Other,
            },
            Expr::Time | Expr::TimeLiteral(_) => Kind::Time,
            Expr::Literal(Literal::Integer(_) | Literal::Float(_)) | Expr::Negate(_) => Kind::Number,
            Expr::Literal(Literal::Text(_)) => Kind::Text,
            Expr::Literal(Literal::Boolean(_)) => Kind::Boolean,
            Expr::Binary { op: BinaryOp::Plus | BinaryOp::Minus | BinaryOp::Multiply | BinaryOp::Divide | BinaryOp::Modulo, .. } => Kind::Number,
            Expr::Substring { .. } => Kind::Text,
            _ => Kind::Other,
        }
    }

    fn literal(&self, l: &Literal) -> Result<DfExpr> {
        Ok(match l {
            Literal::Integer(s) => match s.parse::<i64>() {
                Ok(v) => lit(v),
                Err(_) => return Err(Error::NumericOverflow(format!("integer {s} is out of range for type bigint"))),
            },
            Literal::Float(s) => lit(s.parse::<f64>().map_err(|_| Error::InvalidValue(format!("{s} is not a number")))?),
            Literal::Text(s) => lit(s.clone()),
            Literal::Boolean(b) => lit(*b),
            Literal::Null => lit(ScalarValue::Null),
            Literal::Blob(b) => lit(ScalarValue::Binary(Some(b.clone()))),
        })
    }

    /// An operand compared with time: integers and time literals are times.
    fn time_operand(&self, e: &Expr) -> Result<DfExpr> {
        match e {
            Expr::Literal(Literal::Integer(s)) => {
                Ok(time_literal(s.parse().map_err(|_| Error::NumericOverflow(format!("time {s} is out of range")))?))
            }
            Expr::TimeLiteral(t) => Ok(time_literal(*t)),
            Expr::Literal(Literal::Text(s)) => Ok(time_literal(crate::time::parse_iso_in(s, self.zone)?)),
            other => self.expr(other),
        }
    }

    fn expr(&self, e: &Expr) -> Result<DfExpr> {
        Ok(match e {
            Expr::Path(p) if p.is_empty() => lit(ScalarValue::Null),
            Expr::Path(p) => match self.reads.get(p) {
                Some(_) => column(p),
                None => return Err(Error::UnknownColumn(format!("{p} (no such series)"))),
            },
            Expr::Time => column(TIME),
            Expr::Literal(l) => self.literal(l)?,
            Expr::TimeLiteral(t) => lit(*t),
            Expr::Negate(x) => {
                if matches!(self.kind(x), Kind::Text | Kind::Boolean) {
                    return Err(Error::TypeMismatch(format!("operator does not exist: -{}", header(x))));
                }
                DfExpr::Negative(Box::new(self.expr(x)?))
            }
            Expr::Not(x) => DfExpr::Not(Box::new(self.expr(x)?)),
            Expr::Binary { op, left, right } => {
                let (lk, rk) = (self.kind(left), self.kind(right));
                if op.is_comparison() {
                    let known = |k: Kind| !matches!(k, Kind::Other | Kind::Time);
                    if known(lk) && known(rk) && lk != rk {
                        return Err(Error::TypeMismatch(format!("operator does not exist: {} {} {}", header(left), op.symbol(), header(right))));
                    }
                    if lk == Kind::Time || rk == Kind::Time {
                        let (l, r) = (self.time_operand(left)?, self.time_operand(right)?);
                        return Ok(DfExpr::BinaryExpr(BinaryExpr::new(Box::new(l), df_op(*op), Box::new(r))));
                    }
                }
                let arithmetic = !op.is_comparison() && !matches!(op, BinaryOp::And | BinaryOp::Or);
                if arithmetic && [lk, rk].iter().any(|k| matches!(k, Kind::Text | Kind::Boolean)) {
                    return Err(Error::TypeMismatch(format!("operator does not exist: {} {} {}", header(left), op.symbol(), header(right))));
                }
                DfExpr::BinaryExpr(BinaryExpr::new(Box::new(self.expr(left)?), df_op(*op), Box::new(self.expr(right)?)))
            }
            Expr::Between { expr, low, high, negated } => {
                let time = self.kind(expr) == Kind::Time;
                let operand = |x: &Expr| if time { self.time_operand(x) } else { self.expr(x) };
                DfExpr::Between(Between::new(Box::new(self.expr(expr)?), *negated, Box::new(operand(low)?), Box::new(operand(high)?)))
            }
            Expr::InList { expr, list, negated } => {
                let time = self.kind(expr) == Kind::Time;
                let list = list.iter().map(|x| if time { self.time_operand(x) } else { self.expr(x) }).collect::<Result<Vec<_>>>()?;
                DfExpr::InList(InList::new(Box::new(self.expr(expr)?), list, *negated))
            }
            Expr::Like { expr, pattern, negated } => {
                DfExpr::Like(Like::new(*negated, Box::new(self.expr(expr)?), Box::new(lit(pattern.clone())), None, false))
            }
            Expr::Regexp { expr, pattern, negated } => {
                let op = if *negated { Operator::RegexNotMatch } else { Operator::RegexMatch };
                DfExpr::BinaryExpr(BinaryExpr::new(Box::new(self.expr(expr)?), op, Box::new(lit(pattern.clone()))))
            }
            Expr::IsNull { expr, negated } => {
                let x = self.expr(expr)?;
                if *negated { x.is_not_null() } else { x.is_null() }
            }
            Expr::Cast { expr, to } => {
                let x = self.expr(expr)?;
                let float = match expr.as_ref() {
                    Expr::Path(p) => self.reads.get(p).is_some_and(|s| matches!(s.data_type(), tsfile::DataType::Float | tsfile::DataType::Double)),
                    Expr::Literal(Literal::Float(_)) => true,
                    _ => false,
                };
                if float && matches!(to, tsfile::DataType::Int32 | tsfile::DataType::Int64) {
                    // IoTDB casts FLOAT/DOUBLE to integers with Math.round: floor(x + 0.5).
                    let floor = self.registry.udf("floor").map_err(Error::DataFusion)?;
                    cast(floor.call(vec![cast(x, ArrowType::Float64) + lit(0.5)]), arrow_type(*to))
                } else {
                    cast(x, arrow_type(*to))
                }
            }
            Expr::Case { operand, whens, otherwise } => {
                // IoTDB: TEXT and other types cannot be results of one CASE.
                let results: Vec<Kind> = whens.iter().map(|(_, t)| t).chain(otherwise.as_deref()).map(|e| self.kind(e)).collect();
                let text = results.iter().filter(|k| **k == Kind::Text).count();
                if text > 0 && results.iter().any(|k| !matches!(k, Kind::Text | Kind::Other)) {
                    return Err(Error::TypeMismatch(format!("{}: TEXT and other types cannot be its results at the same time", header(e))));
                }
                let mut builder = match operand {
                    Some(o) => datafusion::logical_expr::case(self.expr(o)?),
                    None => {
                        let (w, t) = &whens[0];
                        let mut b = datafusion::logical_expr::when(self.expr(w)?, self.expr(t)?);
                        for (w, t) in &whens[1..] {
                            b = b.when(self.expr(w)?, self.expr(t)?);
                        }
                        return match otherwise {
                            Some(o) => b.otherwise(self.expr(o)?).map_err(Error::DataFusion),
                            None => b.end().map_err(Error::DataFusion),
                        };
                    }
                };
                for (w, t) in whens {
                    builder = builder.when(self.expr(w)?, self.expr(t)?);
                }
                match otherwise {
                    Some(o) => builder.otherwise(self.expr(o)?).map_err(Error::DataFusion)?,
                    None => builder.end().map_err(Error::DataFusion)?,
                }
            }
            Expr::Function { name, args, .. } if functions::is_aggregate(name) => {
                let args = args
                    .iter()
                    .map(|a| {
                        let data_type = match a {
                            Expr::Path(p) => self.reads.get(p).map(|s| arrow_type(s.data_type())).unwrap_or(ArrowType::Null),
                            _ => ArrowType::Float64,
                        };
                        Ok(AggArg { expr: self.expr(a)?, data_type })
                    })
                    .collect::<Result<Vec<_>>>()?;
                functions::aggregate(name, &args, &column(TIME))?
            }
            Expr::Function { name, args, options } => {
                let kinds: Vec<functions::ArgKind> = args.iter().map(|a| self.kind(a).into()).collect();
                let args = args.iter().map(|a| self.expr(a)).collect::<Result<Vec<_>>>()?;
                functions::scalar(self.registry, name, args, &kinds, options)?
            }
            Expr::Substring { name, expr, from, length } => {
                let mut args = vec![self.expr(expr)?, self.expr(from)?];
                let mut kinds = vec![self.kind(expr).into(), self.kind(from).into()];
                if let Some(l) = length {
                    args.push(self.expr(l)?);
                    kinds.push(self.kind(l).into());
                }
                functions::scalar(self.registry, name, args, &kinds, &BTreeMap::new())?
            }
        })
    }
}

/// A TSQL predicate's time part as a DataFusion predicate on `time` (for
/// pushing ranges into scans): value conditions are dropped from `AND`s
/// (a wider range), and an `OR`/`NOT` over values gives up.
fn time_predicate(t: &Translator<'_>, e: &Expr) -> Option<DfExpr> {
    match e {
        Expr::Binary { op: BinaryOp::And, left, right } => match (time_predicate(t, left), time_predicate(t, right)) {
            (Some(a), Some(b)) => Some(a.and(b)),
            (a, b) => a.or(b),
        },
        Expr::Binary { op: BinaryOp::Or, left, right } => Some(time_predicate(t, left)?.or(time_predicate(t, right)?)),
        Expr::Not(x) => Some(DfExpr::Not(Box::new(time_predicate(t, x)?))),
        Expr::Binary { left, right, .. } | Expr::Between { expr: left, low: right, .. } if [left, right].iter().any(|x| ***x == Expr::Time) => {
            t.expr(e).ok()
        }
        Expr::InList { expr, .. } if **expr == Expr::Time => t.expr(e).ok(),
        _ => None,
    }
}

/// Plan a TSQL `SELECT`. `registry` resolves scalar functions.
pub fn plan_select(instance: &Arc<Instance>, select: &Select, registry: &dyn FunctionRegistry) -> Result<LogicalPlan> {
    if select.last {
        return super::last::plan_last(instance, select);
    }
    if select.align_by_device {
        return super::align_by_device::plan_align_by_device(instance, select, registry);
    }
    if select.group_by_tags.is_some() {
        return super::tags::plan_tags(instance, select, registry);
    }
    let aggregate = select.items.iter().any(|i| i.expr.has_aggregate());
    if select.group_by_segment.is_some() && !aggregate {
        return Err(Error::Syntax("GROUP BY VARIATION/CONDITION/SESSION/COUNT needs aggregate functions in the select list".into()));
    }
    if select.group_by_time.is_some() && !aggregate {
        return Err(Error::Syntax("GROUP BY time needs aggregate functions in the select list".into()));
    }
    if select.having.is_some() && !aggregate {
        return Err(Error::Syntax("HAVING needs aggregate functions in the select list".into()));
    }
    if aggregate {
        if let Some(raw) = select.items.iter().find(|i| !i.expr.has_aggregate() && !i.expr.paths().is_empty() && !is_end_time(select, &i.expr)) {
            return Err(Error::Syntax(format!("{} mixes raw data with aggregates; add GROUP BY or aggregate it", header(&raw.expr))));
        }
    }
    // 1. Expand the select list.
    let mut reads = Reads { series: BTreeMap::new(), order: Vec::new() };
    let mut columns: Vec<OutputColumn> = Vec::new();
    // Every series an expansion named, by full path.
    let mut expanded: HashMap<String, SeriesRef> = HashMap::new();
    for item in &select.items {
        if is_end_time(select, &item.expr) {
            columns.push(OutputColumn { expr: item.expr.clone(), header: item.alias.clone().unwrap_or_else(|| END_TIME.into()), level: None });
            continue;
        }
        let paths: Vec<&str> = {
            let mut v: Vec<&str> = Vec::new();
            for p in item.expr.paths() {
                if !v.contains(&p) {
                    v.push(p);
                }
            }
            v
        };
        let expansions = paths.iter().map(|p| matches(instance, p, &select.from)).collect::<Result<Vec<_>>>()?;
        if select.group_by_level.is_some() || select.restrict.is_some() {
            let (Expr::Function { name, args, .. }, [path]) = (&item.expr, paths.as_slice()) else {
                return Err(Error::Unsupported("GROUP BY LEVEL takes aggregates of one path each, such as count(s1)".into()));
            };
            if !functions::is_aggregate(name) || args.len() != 1 {
                return Err(Error::Unsupported("GROUP BY LEVEL takes aggregates of one path each, such as count(s1)".into()));
            }
            let star_leaf = path.rsplit('.').next().is_some_and(|leaf| leaf.contains('*'));
            let mut groups: Vec<(String, Vec<String>)> = Vec::new();
            for s in &expansions[0] {
                let h = match (&select.group_by_level, &select.restrict) {
                    (_, Some(members)) if !members.contains(&s.path()) => continue,
                    (Some(levels), _) => format!("{name}({})", level_path(&s.path(), levels, star_leaf)),
                    (None, _) => header(&item.expr),
                };
                match groups.iter_mut().find(|(g, _)| *g == h) {
                    Some((_, members)) => members.push(s.path()),
                    None => groups.push((h, vec![s.path()])),
                }
            }
            if item.alias.is_some() && groups.len() > 1 {
                return Err(Error::Syntax(format!("alias {} names {} columns; an alias needs exactly one", item.alias.as_deref().unwrap_or(""), groups.len())));
            }
            for (h, members) in groups {
                let expr = Expr::Function { name: name.clone(), args: members.iter().map(|m| Expr::Path(m.clone())).collect(), options: BTreeMap::new() };
                columns.push(OutputColumn { expr, header: item.alias.clone().unwrap_or(h), level: Some((name.clone(), members)) });
            }
            for series in expansions.into_iter().flatten() {
                expanded.entry(series.path()).or_insert(series);
            }
            continue;
        }
        // count_time(*): one column, the rows of every matched series together.
        if let (Expr::Function { name, options, .. }, [_]) = (&item.expr, paths.as_slice()) {
            if name.eq_ignore_ascii_case("count_time") {
                let args = expansions[0].iter().map(|s| Expr::Path(s.path())).collect();
                let expr = Expr::Function { name: name.clone(), args, options: options.clone() };
                columns.push(OutputColumn { expr, header: item.alias.clone().unwrap_or_else(|| header(&item.expr)), level: None });
                for series in expansions.into_iter().flatten() {
                    expanded.entry(series.path()).or_insert(series);
                }
                continue;
            }
        }
        let bindings = combinations(&paths, &expansions);
        if item.alias.is_some() && bindings.len() > 1 {
            return Err(Error::Syntax(format!("alias {} names {} columns; an alias needs exactly one", item.alias.as_deref().unwrap_or(""), bindings.len())));
        }
        for binding in bindings {
            let expr = bind(&item.expr, &binding);
            let header_text = item.alias.clone().unwrap_or_else(|| header(&expr));
            columns.push(OutputColumn { expr, header: header_text, level: None });
        }
        for series in expansions.into_iter().flatten() {
            expanded.entry(series.path()).or_insert(series);
        }
    }
    let columns: Vec<OutputColumn> = columns.into_iter().skip(select.soffset).take(select.slimit.unwrap_or(usize::MAX)).collect();
    for c in &columns {
        for p in c.expr.paths() {
            if let Some(s) = expanded.get(p) {
                reads.add(s);
            }
        }
    }
    let selected: Vec<String> = reads.order.clone();
    if columns.is_empty() || selected.is_empty() && columns.iter().all(|c| !c.expr.paths().is_empty()) {
        // Nothing matched: only `Time`, no rows (IoTDB), aggregates too.
        let schema = Schema::new(vec![Field::new(TIME_HEADER, time_type(), false)]);
        return Ok(LogicalPlan::EmptyRelation(EmptyRelation { produce_one_row: false, schema: Arc::new(DFSchema::try_from(schema)?) }));
    }
    // The WHERE clause's series (suffixes resolve against FROM; the first match).
    let filter = match &select.filter {
        Some(f) => {
            let mut binding: HashMap<&str, String> = HashMap::new();
            for p in f.paths() {
                let m = matches(instance, p, &select.from)?;
                match m.first() {
                    Some(s) => {
                        reads.add(s);
                        binding.insert(p, s.path());
                    }
                    // A series that does not exist has no values: NULL.
                    None => {
                        binding.insert(p, String::new());
                    }
                }
            }
            Some(bind(f, &binding))
        }
        None => None,
    };
    // Series only ORDER BY or HAVING mention are read too.
    for e in select.order_by.iter().map(|o| &o.expr).chain(&select.having) {
        for p in e.paths() {
            if let Some(s) = matches(instance, p, &select.from)?.first() {
                reads.add(s);
            }
        }
    }
    let having = select.having.as_ref().map(|h| bind_suffixes(instance, h, &select.from)).transpose()?;
    let control = match &select.group_by_segment {
        Some(Segment::Variation { expr, .. } | Segment::Condition { expr, .. } | Segment::Count { expr, .. }) => {
            for p in expr.paths() {
                if let Some(s) = matches(instance, p, &select.from)?.first() {
                    reads.add(s);
                }
            }
            Some(bind_suffixes(instance, expr, &select.from)?)
        }
        _ => None,
    };
    let where_only: Vec<String> = reads.order.iter().filter(|p| !selected.contains(p)).cloned().collect();
    let translator = Translator { reads: &reads, registry, zone: select.zone };

    // 2. Scans per device, with pushed-down time ranges and order.
    let time_desc = select.order_by.first().is_some_and(|o| o.expr == Expr::Time && o.descending);
    // Segments are found in time order.
    let scan_desc = time_desc && select.group_by_segment.is_none();
    let order = if scan_desc { ScanOrder::Descending } else { ScanOrder::Ascending };
    let pushed = filter.as_ref().and_then(|f| time_predicate(&translator, f));
    let ranges = match pushed.as_ref().map(time_ranges) {
        Some(Some(r)) => r,
        _ => vec![TimeRange::ALL],
    };
    let mut devices: Vec<(String, Vec<SeriesRef>)> = Vec::new();
    for path in &reads.order {
        let s = reads.series[path].clone();
        let device = s.info.device_path().to_string();
        match devices.iter_mut().find(|(d, _)| *d == device) {
            Some((_, list)) => list.push(s),
            None => devices.push((device, vec![s])),
        }
    }
    let mut scans = Vec::with_capacity(devices.len());
    for (device, series) in devices {
        let table = DeviceTableProvider::for_series(instance.clone(), &device, series, ranges.clone(), order)?;
        let name = format!("\"{device}\"");
        scans.push(LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?.build()?);
    }
    let mut plan = if scans.len() == 1 {
        scans.remove(0)
    } else {
        LogicalPlan::Extension(Extension { node: Arc::new(AlignByTime::try_new(scans, scan_desc)?) })
    };

    // 3. Filter; rows where no selected series has a value go.
    let mut keep: Vec<DfExpr> = Vec::new();
    if let Some(f) = &filter {
        keep.push(translator.expr(f)?);
    }
    if !where_only.is_empty() && !aggregate {
        let any_selected = selected.iter().map(|p| column(p).is_not_null()).reduce(|a, b| a.or(b));
        keep.extend(any_selected);
    }
    if let Some(predicate) = keep.into_iter().reduce(|a, b| a.and(b)) {
        plan = LogicalPlanBuilder::from(plan).filter(predicate)?.build()?;
    }

    // 4. Aggregates, then the projection with IoTDB's headers.
    let mut exprs: Vec<DfExpr> = columns
        .iter()
        .map(|c| match &c.level {
            Some((function, members)) => level_expr(&translator, function, members),
            None if is_end_time(select, &c.expr) => Ok(datafusion::functions_aggregate::expr_fn::max(column(TIME))),
            None => translator.expr(&c.expr),
        })
        .collect::<Result<_>>()?;
    let mut window_filter: Option<DfExpr> = None;
    if let Some(group) = &select.group_by_time {
        let windows = windows(instance, group, select.zone, &reads, &ranges)?;
        let having = having.as_ref().map(|h| translator.expr(h)).transpose()?;
        let aggs = find_aggregate_exprs(exprs.iter().chain(&having));
        plan = LogicalPlan::Extension(Extension { node: Arc::new(TimeWindows::try_new(plan, windows)?) });
        plan = LogicalPlanBuilder::from(plan).aggregate(vec![column(WINDOW)], aggs.clone())?.build()?;
        // Counts are 0 in an empty window, everything else NULL.
        let zero: Vec<usize> = aggs.iter().enumerate().filter(|(_, a)| counts(a)).map(|(i, _)| i + 1).collect();
        plan = LogicalPlan::Extension(Extension { node: Arc::new(WindowFill { input: plan, windows, descending: time_desc, zero }) });
        let outputs: Vec<DfExpr> = (0..aggs.len())
            .map(|i| {
                let (qualifier, field) = plan.schema().qualified_field(i + 1);
                DfExpr::Column(Column::new(qualifier.cloned(), field.name()))
            })
            .collect();
        exprs = exprs.into_iter().map(|e| rebase(e, &aggs, &outputs)).collect::<Result<_>>()?;
        window_filter = having.map(|h| rebase(h, &aggs, &outputs)).transpose()?;
    } else if let Some(segment) = &select.group_by_segment {
        let (kind, keep) = segment_kind(segment);
        if let Some(control) = &control {
            // The control value as a column next to the rows' own.
            let mut projection: Vec<DfExpr> = plan.schema().columns().into_iter().map(DfExpr::Column).collect();
            projection.push(translator.expr(control)?.alias(CONTROL));
            plan = LogicalPlanBuilder::from(plan).project(projection)?.build()?;
        }
        let having = having.as_ref().map(|h| translator.expr(h)).transpose()?;
        let size = datafusion::functions_aggregate::expr_fn::count(column(TIME));
        let mut aggs = find_aggregate_exprs(exprs.iter().chain(&having));
        if keep.is_some() && !aggs.contains(&size) {
            aggs.push(size.clone());
        }
        plan = LogicalPlan::Extension(Extension { node: Arc::new(Segments::try_new(plan, kind)?) });
        plan = LogicalPlanBuilder::from(plan).aggregate(vec![column(WINDOW)], aggs.clone())?.build()?;
        let outputs: Vec<DfExpr> = (0..aggs.len())
            .map(|i| {
                let (qualifier, field) = plan.schema().qualified_field(i + 1);
                DfExpr::Column(Column::new(qualifier.cloned(), field.name()))
            })
            .collect();
        let mut conditions: Vec<DfExpr> = having.map(|h| rebase(h, &aggs, &outputs)).transpose()?.into_iter().collect();
        if let Some((op, n)) = keep {
            let size = rebase(size, &aggs, &outputs)?;
            conditions.push(DfExpr::BinaryExpr(BinaryExpr::new(Box::new(size), df_op(op), Box::new(lit(n as i64)))));
        }
        window_filter = conditions.into_iter().reduce(|a, b| a.and(b));
        exprs = exprs.into_iter().map(|e| rebase(e, &aggs, &outputs)).collect::<Result<_>>()?;
        plan = LogicalPlanBuilder::from(plan).sort(vec![SortExpr::new(column(WINDOW), !time_desc, false)])?.build()?;
    } else if aggregate {
        let aggs = find_aggregate_exprs(exprs.iter());
        plan = LogicalPlanBuilder::from(plan).aggregate(Vec::<DfExpr>::new(), aggs.clone())?.build()?;
        // The aggregate node's output columns, in the order of `aggs`.
        let outputs: Vec<DfExpr> = (0..aggs.len())
            .map(|i| {
                let (qualifier, field) = plan.schema().qualified_field(i);
                DfExpr::Column(Column::new(qualifier.cloned(), field.name()))
            })
            .collect();
        exprs = exprs.into_iter().map(|e| rebase(e, &aggs, &outputs)).collect::<Result<_>>()?;
        if let Some(h) = &having {
            let h = translator.expr(h)?;
            if !find_aggregate_exprs(std::iter::once(&h)).iter().all(|a| aggs.contains(a)) {
                return Err(Error::Syntax("HAVING may only use aggregates that the select list computes".into()));
            }
            window_filter = Some(rebase(h, &aggs, &outputs)?);
        }
    }
    if let Some(f) = window_filter {
        plan = LogicalPlanBuilder::from(plan).filter(f)?.build()?;
    }
    let mut projection: Vec<DfExpr> = Vec::with_capacity(columns.len() + 1);
    if select.group_by_time.is_some() || select.group_by_segment.is_some() {
        projection.push(column(WINDOW).alias(TIME_HEADER));
    } else if !aggregate {
        projection.push(column(TIME).alias(TIME_HEADER));
    }
    // IoTDB keeps every select item, repeated ones too; DataFusion needs
    // distinct names, so a repeat gets a private suffix that the session
    // strips (see `headers`).
    let mut used: HashMap<String, usize> = HashMap::new();
    for (e, c) in exprs.into_iter().zip(&columns) {
        let n = used.entry(c.header.clone()).or_insert(0);
        *n += 1;
        let name = if *n == 1 { c.header.clone() } else { format!("{}{DUPLICATE_MARK}{n}", c.header) };
        projection.push(DfExpr::Alias(Alias::new(e, None::<&str>, name)));
    }
    let mut builder = LogicalPlanBuilder::from(plan);
    // Sort keys refer to the input of the projection (value expressions).
    let sorts: Vec<SortExpr> = select
        .order_by
        .iter()
        .map(|o| {
            let e = match &o.expr {
                Expr::Time => column(TIME),
                other => {
                    let bound = bind_suffixes(instance, other, &select.from)?;
                    translator.expr(&bound)?
                }
            };
            // IoTDB puts NULLs last unless told otherwise, in either direction.
            // (`time` is never NULL: its key matches the scans' declared order.)
            let nulls_first = if o.expr == Expr::Time { false } else { o.nulls_first.unwrap_or(false) };
            Ok(SortExpr::new(e, !o.descending, nulls_first))
        })
        .collect::<Result<_>>()?;
    if !aggregate {
        // Rows come in time order unless ORDER BY says otherwise: the scans
        // already deliver it, so this sort only keeps DataFusion from
        // losing it (and costs nothing when the order is known).
        let mut keys = sorts;
        if !keys.iter().any(|k| k.expr == column(TIME)) {
            keys.push(SortExpr::new(column(TIME), !time_desc, false));
        }
        builder = builder.sort(keys)?;
    }
    builder = builder.project(projection)?;
    if let Some(fill) = &select.fill {
        let timed = select.group_by_time.is_some() || !aggregate;
        let node = Fill { input: builder.build()?, method: fill_method(fill)?, keep: if timed { vec![0] } else { Vec::new() } };
        builder = LogicalPlanBuilder::from(LogicalPlan::Extension(Extension { node: Arc::new(node) }));
    }
    if select.limit.is_some() || select.offset > 0 {
        builder = builder.limit(select.offset, select.limit)?;
    }
    Ok(builder.build()?)
}

pub(super) fn fill_method(fill: &ast::Fill) -> Result<FillMethod> {
    Ok(match fill {
        ast::Fill::Previous { bound } => FillMethod::Previous { bound: *bound },
        ast::Fill::Linear => FillMethod::Linear,
        ast::Fill::Constant(l) => FillMethod::Constant(match l {
            Literal::Integer(s) => ScalarValue::Int64(Some(s.parse().map_err(|_| Error::NumericOverflow(format!("integer {s} is out of range for type bigint")))?)),
            Literal::Float(s) => ScalarValue::Float64(Some(s.parse().map_err(|_| Error::InvalidValue(format!("{s} is not a number")))?)),
            Literal::Text(s) => ScalarValue::Utf8(Some(s.clone())),
            Literal::Boolean(b) => ScalarValue::Boolean(Some(*b)),
            Literal::Null | Literal::Blob(_) => return Err(Error::Syntax("FILL takes PREVIOUS, LINEAR or a number, text or boolean constant".into())),
        }),
    })
}

/// `GROUP BY LEVEL`: `function` over the series `members` merged into one
/// column, from each member's own aggregates.
fn level_expr(t: &Translator<'_>, function: &str, members: &[String]) -> Result<DfExpr> {
    let agg = |name: &str, p: &String| t.expr(&Expr::Function { name: name.into(), args: vec![Expr::Path(p.clone())], options: BTreeMap::new() });
    if let [only] = members {
        return agg(function, only);
    }
    let each = |name: &str| members.iter().map(|p| agg(name, p)).collect::<Result<Vec<_>>>();
    let udf = |name: &str| t.registry.udf(name).map_err(Error::DataFusion);
    let total = |parts: Vec<DfExpr>, zero: DfExpr| parts.into_iter().map(|e| datafusion::functions::expr_fn::coalesce(vec![e, zero.clone()])).reduce(|a, b| a + b);
    let lower = function.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "count" => total(each("count")?, lit(0i64)).unwrap_or(lit(0i64)),
        "sum" | "avg" => {
            let sums: Vec<DfExpr> = each("sum")?.into_iter().map(|e| cast(e, ArrowType::Float64)).collect();
            let counts = total(each("count")?, lit(0i64)).unwrap_or(lit(0i64));
            let sum = total(sums, lit(0f64)).unwrap_or(lit(0f64));
            let none = counts.clone().eq(lit(0i64));
            if lower == "sum" {
                datafusion::logical_expr::when(none, lit(ScalarValue::Float64(None))).otherwise(sum)?
            } else {
                datafusion::logical_expr::when(none, lit(ScalarValue::Float64(None))).otherwise(sum / cast(counts, ArrowType::Float64))?
            }
        }
        "max_value" | "max_time" => udf("greatest")?.call(each(&lower)?),
        "min_value" | "min_time" => udf("least")?.call(each(&lower)?),
        "first_value" | "last_value" => {
            let (time_of, pick) = if lower == "first_value" { ("min_time", "least") } else { ("max_time", "greatest") };
            let times = each(time_of)?;
            let values = each(&lower)?;
            let chosen = udf(pick)?.call(times.clone());
            let mut cases = datafusion::logical_expr::when(times[0].clone().eq(chosen.clone()), values[0].clone());
            for (t, v) in times.iter().zip(&values).skip(1) {
                cases = cases.when(t.clone().eq(chosen.clone()), v.clone());
            }
            cases.end()?
        }
        other => return Err(Error::Unsupported(format!("{other} with GROUP BY LEVEL is not supported yet"))),
    })
}

/// The `__endTime` column of segment windows: the last time in a segment.
const END_TIME: &str = "__endTime";

fn is_end_time(select: &Select, e: &Expr) -> bool {
    select.group_by_segment.is_some() && matches!(e, Expr::Path(p) if p.eq_ignore_ascii_case(END_TIME))
}

/// The exec's kind of a segment clause, and its `KEEP` condition.
fn segment_kind(segment: &Segment) -> (SegmentKind, Option<(BinaryOp, u64)>) {
    match segment {
        Segment::Variation { delta, ignore_null, .. } => (SegmentKind::Variation { delta: *delta, ignore_null: *ignore_null }, None),
        Segment::Condition { keep, ignore_null, .. } => (SegmentKind::Condition { ignore_null: *ignore_null }, *keep),
        Segment::Session { gap } => (SegmentKind::Session { gap: *gap }, None),
        Segment::Count { n, ignore_null, .. } => (SegmentKind::Count { n: *n, ignore_null: *ignore_null }, None),
    }
}

/// Whether an aggregate counts (0 over no input rather than NULL).
fn counts(e: &DfExpr) -> bool {
    match e {
        DfExpr::AggregateFunction(f) => f.func.name().to_ascii_lowercase().starts_with("count"),
        DfExpr::Alias(a) => counts(&a.expr),
        _ => false,
    }
}

/// The windows of `GROUP BY` time: as written, or over the selected data
/// inside the `WHERE` clause's time ranges.
fn windows(instance: &Instance, group: &GroupByTime, zone: crate::time::Zone, reads: &Reads, ranges: &[TimeRange]) -> Result<Windows> {
    let step = group.step.unwrap_or(group.interval);
    let (start, end) = match group.range {
        Some((start, end)) => (start, end),
        None => {
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for s in reads.series.values() {
                let key = storage::SeriesKey::new(s.info.device_path().to_string(), s.info.measurement());
                let store = instance.store(&s.database)?;
                for r in ranges {
                    let a = store.aggregate(&key, *r)?;
                    if let (Some(min), Some(max)) = (a.min_time, a.max_time) {
                        lo = lo.min(min);
                        hi = hi.max(max);
                    }
                }
            }
            if lo > hi { (0, 0) } else { (lo, hi.saturating_add(1)) }
        }
    };
    let windows = Windows { start, end, interval: group.interval, step, left_open: group.left_open, zone };
    let count = windows.count();
    if count > crate::exec::MAX_WINDOWS {
        return Err(Error::InvalidValue(format!("GROUP BY makes {count} windows, more than the limit of {}", crate::exec::MAX_WINDOWS)));
    }
    Ok(windows)
}

/// An `ORDER BY` expression with its paths made full (first match).
fn bind_suffixes(instance: &Instance, e: &Expr, from: &[String]) -> Result<Expr> {
    let mut binding: HashMap<&str, String> = HashMap::new();
    for p in e.paths() {
        let m = matches(instance, p, from)?;
        let s = m.first().ok_or_else(|| Error::UnknownColumn(format!("{p} in ORDER BY matches no series")))?;
        binding.insert(p, s.path());
    }
    Ok(bind(e, &binding))
}

/// `e` with each aggregate call replaced by the aggregate node's column.
fn rebase(e: DfExpr, aggs: &[DfExpr], outputs: &[DfExpr]) -> Result<DfExpr> {
    Ok(e.transform_down(|x| match aggs.iter().position(|a| *a == x) {
        Some(i) => Ok(Transformed::yes(outputs[i].clone())),
        None => Ok(Transformed::no(x)),
    })?
    .data)
}
