//! The typed syntax tree of TSQL statements. The parser produces it whole
//! before anything runs; the planner and the statement runner consume it.

use std::collections::BTreeMap;

use catalog::SeriesSpec;
use tsfile::DataType;

pub use crate::convert::Literal;
pub use crate::time::CalendarDuration;

/// One TSQL statement.
#[derive(Debug, Clone)]
pub enum Statement {
    CreateDatabase { path: String },
    DropDatabases { paths: Vec<String> },
    CreateTimeseries { path: String, spec: SeriesSpec },
    CreateAlignedTimeseries { device: String, series: Vec<(String, SeriesSpec)> },
    DeleteTimeseries { paths: Vec<String> },
    /// `DELETE FROM paths [WHERE time …]`; the range is inclusive.
    DeleteData { paths: Vec<String>, range: storage::TimeRange },
    Insert(Insert),
    Select(Box<Select>),
    Show(Show),
    Flush { databases: Vec<String> },
    /// `SET TTL TO database ms` (`Some`), `UNSET TTL TO database` (`None`).
    SetTtl { path: String, ttl_ms: Option<i64> },
    /// `LOAD 'file.tsfile'`: the series and points of a TsFile, loaded.
    Load { path: String },
}

/// `INSERT INTO device(timestamp, m…) [ALIGNED] VALUES (…), …`
#[derive(Debug, Clone)]
pub struct Insert {
    pub device: String,
    pub aligned: bool,
    pub measurements: Vec<String>,
    pub rows: Vec<(i64, Vec<Literal>)>,
}

/// Listing statements over the series tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Show {
    Databases { pattern: Option<String> },
    Devices { pattern: Option<String>, with_database: bool, limit: Option<usize>, offset: usize },
    Timeseries { pattern: Option<String>, filter: Option<SeriesFilter>, limit: Option<usize>, offset: usize },
    ChildPaths { pattern: Option<String> },
    ChildNodes { pattern: Option<String> },
    CountTimeseries { pattern: Option<String>, level: Option<usize> },
    CountDevices { pattern: Option<String> },
    CountDatabases { pattern: Option<String> },
    /// `COUNT NODES pattern LEVEL = n`.
    CountNodes { pattern: String, level: usize },
    /// `SHOW ALL TTL`, `SHOW TTL ON pattern`.
    Ttl { pattern: Option<String> },
}

/// `SHOW TIMESERIES … WHERE`: one condition on the listed series.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesFilter {
    /// `TIMESERIES CONTAINS 'text'`
    PathContains(String),
    /// `DATATYPE = FLOAT`
    DataType(DataType),
    /// `TAGS(key) = value`
    Tag(String, String),
}

/// A `SELECT` over paths.
#[derive(Debug, Clone)]
pub struct Select {
    pub items: Vec<SelectItem>,
    /// Path prefixes of `FROM`.
    pub from: Vec<String>,
    pub filter: Option<Expr>,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<usize>,
    pub offset: usize,
    pub slimit: Option<usize>,
    pub soffset: usize,
    /// `GROUP BY ([start, end), interval[, step])`.
    pub group_by_time: Option<GroupByTime>,
    /// `HAVING`: a condition on the aggregates of each window.
    pub having: Option<Expr>,
    pub fill: Option<Fill>,
    /// `SELECT LAST`: the latest point of each series.
    pub last: bool,
    /// `ALIGN BY DEVICE`: one result per device, bare measurement columns.
    pub align_by_device: bool,
    /// `GROUP BY LEVEL = n[, m]`: series merged by the path levels kept.
    pub group_by_level: Option<Vec<usize>>,
    /// `GROUP BY VARIATION/CONDITION/SESSION/COUNT`.
    pub group_by_segment: Option<Segment>,
    /// `GROUP BY TAGS(k, …)`: one row per combination of the tags' values.
    pub group_by_tags: Option<Vec<String>>,
    /// Set by the planner for one group of `GROUP BY TAGS`: only these
    /// series (full paths) count, and each item's series merge into one
    /// column headed as written.
    pub restrict: Option<Vec<String>>,
    /// The session's time zone: month windows follow its calendar.
    pub zone: crate::time::Zone,
}

impl Statement {
    /// Whether it returns rows, planned rather than run: a `SELECT` or a
    /// listing of the series tree.
    pub fn is_query(&self) -> bool {
        matches!(self, Statement::Select(_) | Statement::Show(_))
    }

    /// Whether planning it reads data, not only the catalog.
    pub fn plan_reads_data(&self) -> bool {
        match self {
            Statement::Select(select) => select.plan_reads_data(),
            _ => false,
        }
    }
}

impl Select {
    /// Whether planning it reads data, not only the catalog: `GROUP BY`
    /// windows without a range span the selected data.
    pub fn plan_reads_data(&self) -> bool {
        self.group_by_time.as_ref().is_some_and(|g| g.range.is_none())
    }
}

/// IoTDB's time windows of `GROUP BY`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupByTime {
    /// `[start, end)`, or `(start, end]` when `left_open`; `None`: from the
    /// data and the `WHERE` clause.
    pub range: Option<(i64, i64)>,
    pub left_open: bool,
    pub interval: CalendarDuration,
    /// The sliding step (the interval when absent).
    pub step: Option<CalendarDuration>,
}

/// IoTDB's segment windows.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// `VARIATION(expr[, delta][, ignoreNull=…])`
    Variation { expr: Expr, delta: f64, ignore_null: bool },
    /// `CONDITION(predicate[, KEEP op n][, ignoreNull=…])`
    Condition { expr: Expr, keep: Option<(BinaryOp, u64)>, ignore_null: bool },
    /// `SESSION(gap)`
    Session { gap: i64 },
    /// `COUNT(expr, n[, ignoreNull=…])`
    Count { expr: Expr, n: u64, ignore_null: bool },
}

/// `FILL(…)`: how NULLs of the result are filled.
#[derive(Debug, Clone, PartialEq)]
pub enum Fill {
    /// The previous non-NULL value in output order, at most `bound` ms back.
    Previous { bound: Option<i64> },
    /// Linear interpolation between the non-NULL neighbours.
    Linear,
    Constant(Literal),
}

/// One item of the select list.
#[derive(Debug, Clone)]
pub struct SelectItem {
    pub expr: Expr,
    pub alias: Option<String>,
}

/// `ORDER BY` key.
#[derive(Debug, Clone)]
pub struct OrderItem {
    pub expr: Expr,
    pub descending: bool,
    /// `NULLS FIRST` (`Some(true)`), `NULLS LAST`, or the default.
    pub nulls_first: Option<bool>,
}

/// Binary operators, by precedence group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Plus,
    Minus,
    Multiply,
    Divide,
    Modulo,
}

impl BinaryOp {
    /// The operator as IoTDB writes it in headers.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "|",
            BinaryOp::And => "&",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::Plus => "+",
            BinaryOp::Minus => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Modulo => "%",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq)
    }
}

/// An expression of the select list, `WHERE` or `ORDER BY`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A path or pattern (`s1`, `d1.s1`, `root.sg.d1.s1`, `*`, `**`, `s*`).
    Path(String),
    /// The `time` / `timestamp` column.
    Time,
    Literal(Literal),
    /// A time literal (ISO-8601, `now()`, with ± durations) as epoch ms.
    TimeLiteral(i64),
    Negate(Box<Expr>),
    Not(Box<Expr>),
    Binary { op: BinaryOp, left: Box<Expr>, right: Box<Expr> },
    Between { expr: Box<Expr>, low: Box<Expr>, high: Box<Expr>, negated: bool },
    InList { expr: Box<Expr>, list: Vec<Expr>, negated: bool },
    Like { expr: Box<Expr>, pattern: String, negated: bool },
    Regexp { expr: Box<Expr>, pattern: String, negated: bool },
    IsNull { expr: Box<Expr>, negated: bool },
    /// A function call, its name as typed; `count(*)` has `args == [Path("*")]`. Options are
    /// IoTDB's `'k'='v'` attributes (`top_k(s1, 'k'='2')`).
    Function { name: String, args: Vec<Expr>, options: BTreeMap<String, String> },
    Case { operand: Option<Box<Expr>>, whens: Vec<(Expr, Expr)>, otherwise: Option<Box<Expr>> },
    Cast { expr: Box<Expr>, to: DataType },
    /// `SUBSTRING(expr FROM start [FOR length])`, its name as typed.
    Substring { name: String, expr: Box<Expr>, from: Box<Expr>, length: Option<Box<Expr>> },
}

impl Expr {
    /// Every path the expression mentions, in order of appearance.
    pub fn paths(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.visit(&mut |e| {
            if let Expr::Path(p) = e {
                out.push(p.as_str());
            }
        });
        out
    }

    /// Whether the expression calls an aggregate function.
    pub fn has_aggregate(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| {
            if let Expr::Function { name, .. } = e {
                found |= crate::functions::is_aggregate(name);
            }
        });
        found
    }

    /// Pre-order walk.
    pub fn visit<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Path(_) | Expr::Time | Expr::Literal(_) | Expr::TimeLiteral(_) => {}
            Expr::Negate(e) | Expr::Not(e) | Expr::Cast { expr: e, .. } => e.visit(f),
            Expr::Like { expr, .. } | Expr::Regexp { expr, .. } | Expr::IsNull { expr, .. } => expr.visit(f),
            Expr::Binary { left, right, .. } => {
                left.visit(f);
                right.visit(f);
            }
            Expr::Between { expr, low, high, .. } => {
                expr.visit(f);
                low.visit(f);
                high.visit(f);
            }
            Expr::InList { expr, list, .. } => {
                expr.visit(f);
                list.iter().for_each(|e| e.visit(f));
            }
            Expr::Function { args, .. } => args.iter().for_each(|e| e.visit(f)),
            Expr::Substring { expr, from, length, .. } => {
                expr.visit(f);
                from.visit(f);
                if let Some(l) = length {
                    l.visit(f);
                }
            }
            Expr::Case { operand, whens, otherwise } => {
                if let Some(o) = operand {
                    o.visit(f);
                }
                for (w, t) in whens {
                    w.visit(f);
                    t.visit(f);
                }
                if let Some(o) = otherwise {
                    o.visit(f);
                }
            }
        }
    }
}
