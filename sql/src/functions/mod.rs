//! IoTDB's built-in functions as DataFusion expressions: aggregates
//! (`count`, `max_value`, `first_value`, `extreme`, `time_duration`, …) and
//! scalar functions (math, strings), mapped onto DataFusion's own functions
//! where the semantics match.

pub(crate) mod first_last;
pub(crate) mod gapfill;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType as ArrowType;
use datafusion::execution::FunctionRegistry;
use datafusion::functions_aggregate::expr_fn as agg;
use datafusion::functions_aggregate::first_last::{first_value_udaf, last_value_udaf};
use datafusion::logical_expr::expr::NullTreatment;
use datafusion::logical_expr::{cast, lit, Expr, ExprFunctionExt, SortExpr};

use crate::error::{Error, Result};

/// IoTDB's aggregate functions (lower-case names).
const AGGREGATES: &[&str] = &[
    "count", "sum", "avg", "max_value", "min_value", "first_value", "last_value", "max_time", "min_time", "extreme", "stddev",
    "stddev_samp", "stddev_pop", "variance", "var_samp", "var_pop", "count_time", "time_duration", "max_by", "min_by", "mode",
    "count_if",
];

/// Whether `name` is an aggregate function.
pub(crate) fn is_aggregate(name: &str) -> bool {
    AGGREGATES.contains(&name.to_ascii_lowercase().as_str())
}

/// One argument of an aggregate: its expression and type.
pub(crate) struct AggArg {
    pub(crate) expr: Expr,
    pub(crate) data_type: ArrowType,
}

fn numeric(t: &ArrowType) -> bool {
    t.is_numeric()
}

fn not_numeric(name: &str, a: &AggArg) -> Error {
    Error::TypeMismatch(format!("{name} does not take a {} argument", a.data_type))
}

fn one<'a>(name: &str, args: &'a [AggArg]) -> Result<&'a AggArg> {
    match args {
        [a] => Ok(a),
        _ => Err(Error::Syntax(format!("{name} takes one argument, not {}", args.len()))),
    }
}

fn built(e: datafusion::error::Result<Expr>) -> Result<Expr> {
    e.map_err(Error::DataFusion)
}

/// The time of the first (or last) row at which `arg` is not NULL, as
/// epoch milliseconds (`BIGINT`, as IoTDB reports times).
fn time_of(arg: &AggArg, time: &Expr, last: bool) -> Expr {
    let e = if last { agg::max(time.clone()) } else { agg::min(time.clone()) };
    let filtered = match e {
        Expr::AggregateFunction(mut f) => {
            f.params.filter = Some(Box::new(arg.expr.clone().is_not_null()));
            Expr::AggregateFunction(f)
        }
        other => other,
    };
    cast(filtered, ArrowType::Int64)
}

/// The aggregate `name(args)` as an expression over DataFusion aggregate
/// calls. `time` is the row time column.
pub(crate) fn aggregate(name: &str, args: &[AggArg], time: &Expr) -> Result<Expr> {
    let lower = name.to_ascii_lowercase();
    let f64 = |a: &AggArg| cast(a.expr.clone(), ArrowType::Float64);
    Ok(match lower.as_str() {
        "count" => agg::count(one(name, args)?.expr.clone()),
        "count_time" => agg::count(time.clone()),
        "sum" | "avg" | "stddev" | "stddev_samp" | "stddev_pop" | "variance" | "var_samp" | "var_pop" => {
            let a = one(name, args)?;
            if !numeric(&a.data_type) {
                return Err(not_numeric(name, a));
            }
            match lower.as_str() {
                "sum" => agg::sum(f64(a)),
                "avg" => agg::avg(f64(a)),
                "stddev" | "stddev_samp" => agg::stddev(f64(a)),
                "stddev_pop" => agg::stddev_pop(f64(a)),
                "variance" | "var_samp" => agg::var_sample(f64(a)),
                _ => agg::var_pop(f64(a)),
            }
        }
        "max_value" | "min_value" | "extreme" => {
            let a = one(name, args)?;
            if !numeric(&a.data_type) && lower == "extreme" {
                return Err(not_numeric(name, a));
            }
            if matches!(a.data_type, ArrowType::Boolean | ArrowType::Binary | ArrowType::Utf8) {
                return Err(not_numeric(name, a));
            }
            let (hi, lo) = (agg::max(a.expr.clone()), agg::min(a.expr.clone()));
            match lower.as_str() {
                "max_value" => hi,
                "min_value" => lo,
                // The value of largest magnitude; the positive one on a tie.
                _ => datafusion::logical_expr::when(
                    datafusion::functions::math::expr_fn::abs(hi.clone()).gt_eq(datafusion::functions::math::expr_fn::abs(lo.clone())),
                    hi,
                )
                .otherwise(lo)
                .map_err(Error::DataFusion)?,
            }
        }
        "first_value" | "last_value" => {
            let a = one(name, args)?;
            let order = vec![SortExpr::new(time.clone(), true, false)];
            let udaf = if lower == "first_value" { first_value_udaf() } else { last_value_udaf() };
            built(udaf.call(vec![a.expr.clone()]).order_by(order).null_treatment(NullTreatment::IgnoreNulls).build())?
        }
        "max_time" => time_of(one(name, args)?, time, true),
        "min_time" => time_of(one(name, args)?, time, false),
        "time_duration" => {
            let a = one(name, args)?;
            time_of(a, time, true) - time_of(a, time, false)
        }
        "max_by" | "min_by" => {
            let [x, y] = args else {
                return Err(Error::Syntax(format!("{name} takes two arguments, not {}", args.len())));
            };
            // x at the row where y is largest (smallest); the earliest such row.
            let order = vec![SortExpr::new(y.expr.clone(), lower == "min_by", false), SortExpr::new(time.clone(), true, false)];
            let call = first_value_udaf().call(vec![x.expr.clone()]).order_by(order).filter(y.expr.clone().is_not_null());
            built(call.build())?
        }
        _ => return Err(Error::Unsupported(format!("the aggregate function {name} is not supported yet"))),
    })
}

/// IoTDB scalar function names that DataFusion spells differently.
fn datafusion_name(name: &str) -> &str {
    match name {
        "locate" => "strpos",
        "startswith" => "starts_with",
        "endswith" => "ends_with",
        "substring" => "substr",
        "ceiling" => "ceil",
        "log" => "ln",
        other => other,
    }
}

/// Functions DataFusion has whose semantics are IoTDB's.
const SCALARS: &[&str] = &[
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "degrees", "radians", "abs", "sign", "signum", "ceil", "floor",
    "exp", "ln", "log10", "log2", "sqrt", "pi", "length", "strpos", "starts_with", "ends_with", "concat", "substr", "upper", "lower",
    "trim", "ltrim", "rtrim", "replace", "round",
];

/// IoTDB functions Arbor does not have yet (0A000, not "does not exist").
const NOT_YET: &[&str] = &["diff", "top_k", "bottom_k", "mode", "count_if", "equal_size_bucket_random_sample", "m4", "on_off", "zero_count"];

/// Math functions: IoTDB computes them in DOUBLE (`java.lang.Math`).
const MATH: &[&str] =
    &["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "degrees", "radians", "exp", "ln", "log10", "log2", "sqrt"];

/// What an argument of a scalar function is, as far as its type check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgKind {
    Number,
    Text,
    Boolean,
    /// Not known before planning (an expression DataFusion types).
    Other,
}

/// Functions of numbers (IoTDB refuses TEXT and BOOLEAN input).
const NUMERIC: &[&str] = &["abs", "sign", "signum", "ceil", "floor", "round"];

/// Functions of TEXT (IoTDB refuses numbers and BOOLEAN as their input).
const STRINGS: &[&str] = &["length", "strpos", "starts_with", "ends_with", "concat", "substr", "upper", "lower", "trim", "ltrim", "rtrim", "replace"];

/// The `"k"="v"` attributes each function takes.
fn attributes(df: &str) -> &'static [&'static str] {
    match df {
        "strpos" => &["target", "reverse"],
        "starts_with" | "ends_with" => &["target"],
        _ => &[],
    }
}

/// The scalar function `name(args)`; `kinds` are the arguments' kinds,
/// `options` IoTDB's `"k"="v"` attributes.
pub(crate) fn scalar(registry: &dyn FunctionRegistry, name: &str, args: Vec<Expr>, kinds: &[ArgKind], options: &BTreeMap<String, String>) -> Result<Expr> {
    let lower = name.to_ascii_lowercase();
    if lower == "e" && args.is_empty() {
        return Ok(lit(std::f64::consts::E));
    }
    if NOT_YET.contains(&lower.as_str()) {
        return Err(Error::Unsupported(format!("the function {name} is not supported yet")));
    }
    let df = datafusion_name(&lower);
    if !SCALARS.contains(&df) {
        return Err(Error::UndefinedFunction(format!("function {name} does not exist")));
    }
    check_kinds(name, df, kinds)?;
    for key in options.keys() {
        let known = attributes(df).contains(&key.as_str()) || (df == "concat" && (key == "series_behind" || target_index(key).is_some()));
        if !known {
            return Err(Error::Syntax(format!("{name} has no attribute \"{key}\"")));
        }
    }
    let udf = registry.udf(if df == "sign" { "signum" } else { df }).map_err(Error::DataFusion)?;
    let mut args = args;
    if let Some(target) = options.get("target") {
        args.push(lit(target.clone()));
    }
    if MATH.contains(&df) {
        args = args.into_iter().map(|a| cast(a, ArrowType::Float64)).collect();
    }
    Ok(match df {
        // Java's Math.sqrt: NaN below zero, not an error.
        "sqrt" => {
            let x = args.first().cloned().ok_or_else(|| Error::Syntax(format!("{name} takes one argument")))?;
            datafusion::logical_expr::when(x.clone().lt(lit(0.0)), lit(f64::NAN)).otherwise(udf.call(args)).map_err(Error::DataFusion)?
        }
        // IoTDB's locate is 0-based and -1 when absent; "reverse" finds the last.
        "strpos" if options.get("reverse").is_some_and(|r| r.eq_ignore_ascii_case("true")) => {
            let [s, target] = <[Expr; 2]>::try_from(args).map_err(|a| Error::Syntax(format!("{name} takes a series and a target, not {} arguments", a.len())))?;
            let f = |n: &str, args: Vec<Expr>| registry.udf(n).map(|u| u.call(args)).map_err(Error::DataFusion);
            let from_end = udf.call(vec![f("reverse", vec![s.clone()])?, f("reverse", vec![target.clone()])?]);
            let last = f("character_length", vec![s])? - from_end.clone() - f("character_length", vec![target])? + lit(1i64);
            datafusion::logical_expr::when(from_end.eq(lit(0i64)), lit(-1i64)).otherwise(last).map_err(Error::DataFusion)?
        }
        "strpos" => Arc::clone(&udf).call(args) - lit(1i64),
        // The series, then the targets in their order (or the targets first).
        "concat" => {
            let mut targets: Vec<(usize, &String)> = options.iter().filter_map(|(k, v)| Some((target_index(k)?, v))).collect();
            targets.sort();
            let targets = targets.into_iter().map(|(_, v)| lit(v.clone()));
            let behind = options.get("series_behind").is_some_and(|b| b.eq_ignore_ascii_case("true"));
            let all: Vec<Expr> = if behind { targets.chain(args).collect() } else { args.into_iter().chain(targets).collect() };
            udf.call(all)
        }
        // Math.rint: halves go to the even neighbour.
        "round" => round_half_even(registry, args)?,
        _ => Arc::clone(&udf).call(args),
    })
}

/// `N` of a `targetN` attribute of concat.
fn target_index(key: &str) -> Option<usize> {
    key.strip_prefix("target")?.parse().ok()
}

/// IoTDB's type rules: math on numbers only, string functions on TEXT only
/// (42804 otherwise, before anything runs).
fn check_kinds(name: &str, df: &str, kinds: &[ArgKind]) -> Result<()> {
    let refuse = |what: &str, kind: ArgKind| Err(Error::TypeMismatch(format!("{name} takes {what}, not {}", if kind == ArgKind::Text { "TEXT" } else { "BOOLEAN" })));
    if MATH.contains(&df) || NUMERIC.contains(&df) {
        if let Some(k) = kinds.iter().find(|k| matches!(k, ArgKind::Text | ArgKind::Boolean)) {
            return refuse("numbers", *k);
        }
    }
    if STRINGS.contains(&df) {
        // concat's arguments are all series; the others' later arguments are positions or texts.
        let series = if df == "concat" { kinds } else { &kinds[..kinds.len().min(1)] };
        if let Some(k) = series.iter().find(|k| matches!(k, ArgKind::Number | ArgKind::Boolean)) {
            return Err(Error::TypeMismatch(format!("{name} takes TEXT, not {}", if *k == ArgKind::Number { "a number" } else { "BOOLEAN" })));
        }
    }
    Ok(())
}

/// `round(x[, places])` with halves to the even neighbour (`Math.rint`):
/// `x·10^p` rounded away from zero, minus one where that was a tie that
/// landed on an odd number.
fn round_half_even(registry: &dyn FunctionRegistry, args: Vec<Expr>) -> Result<Expr> {
    let udf = |n: &str| registry.udf(n).map_err(Error::DataFusion);
    let mut it = args.into_iter();
    let x = cast(it.next().ok_or_else(|| Error::Syntax("round takes an argument".into()))?, ArrowType::Float64);
    let places = it.next().map(|p| cast(p, ArrowType::Float64)).unwrap_or_else(|| lit(0.0));
    let scale = udf("power")?.call(vec![lit(10.0), places]);
    let scaled = x * scale.clone();
    let floor = udf("floor")?.call(vec![scaled.clone()]);
    let diff = scaled.clone() - floor.clone();
    let odd = |e: Expr| udf("abs").map(|abs| abs.call(vec![e % lit(2.0)]).eq(lit(1.0)));
    let rounded = datafusion::logical_expr::when(diff.clone().lt(lit(0.5)), floor.clone())
        .when(diff.gt(lit(0.5)), floor.clone() + lit(1.0))
        .when(odd(floor.clone())?, floor.clone() + lit(1.0))
        .otherwise(floor)
        .map_err(Error::DataFusion)?;
    // rint keeps the sign of a zero result (-0.4 → -0.0).
    let signed = datafusion::logical_expr::when(rounded.clone().eq(lit(0.0)), scaled * lit(0.0)).otherwise(rounded).map_err(Error::DataFusion)?;
    Ok(signed / scale)
}
