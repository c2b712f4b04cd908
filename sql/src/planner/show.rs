//! TSQL's listings of the series tree (`SHOW DATABASES/DEVICES/TIMESERIES/
//! CHILD PATHS/CHILD NODES`, `COUNT …`) planned over the system tables
//! (`provider/system.rs`) with IoTDB's headers: the path pattern becomes a
//! `path_matches` filter the table answers from the catalog's walk, `WHERE`
//! a filter, `LIMIT/OFFSET` a limit, a count an aggregate. The same tables
//! answer SQL (`SELECT … FROM arbor.timeseries`).

use std::sync::Arc;

use catalog::PathPattern;
use datafusion::arrow::datatypes::DataType as ArrowType;
use datafusion::common::{ScalarValue, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::functions::string::expr_fn::{concat, contains};
use datafusion::functions_aggregate::expr_fn::{count, count_distinct};
use datafusion::logical_expr::{cast, col, ident, lit, Expr, LogicalPlan, LogicalPlanBuilder};

use crate::error::Result;
use crate::instance::Instance;
use crate::provider::{system_table, Listing, PathLevel, PathMatches, TagValue, SYSTEM_SCHEMA};
use crate::tsql::ast::{SeriesFilter, Show};

/// The columns of SHOW TIMESERIES (IoTDB 2.x).
const TIMESERIES_HEADERS: [&str; 11] =
    ["Timeseries", "Alias", "Database", "DataType", "Encoding", "Compression", "Tags", "Attributes", "Deadband", "DeadbandParameters", "ViewType"];

/// The plan of one listing.
pub(crate) fn plan_show(instance: &Arc<Instance>, show: &Show) -> Result<LogicalPlan> {
    let named = |e: Expr, header: &str| e.alias(header);
    let plan = match show {
        Show::Databases { pattern } => scan(instance, Listing::Databases, pattern.as_deref())?
            .project([named(col("database"), "Database"), named(col("time_partition_interval"), "TimePartitionInterval")])?,
        Show::Devices { pattern, with_database, limit, offset } => {
            let mut columns = vec![named(col("device"), "Device")];
            if *with_database {
                columns.push(named(col("database"), "Database"));
            }
            columns.push(named(cast(col("is_aligned"), ArrowType::Utf8), "IsAligned"));
            scan(instance, Listing::Devices, pattern.as_deref())?.limit(*offset, *limit)?.project(columns)?
        }
        Show::Timeseries { pattern, filter, limit, offset } => {
            let mut plan = scan(instance, Listing::Timeseries, pattern.as_deref())?;
            if let Some(filter) = filter {
                plan = plan.filter(series_filter(filter))?;
            }
            let null = || lit(ScalarValue::Utf8(None));
            let values = [
                col("timeseries"),
                col("alias"),
                col("database"),
                col("data_type"),
                col("encoding"),
                col("compression"),
                col("tags"),
                col("attributes"),
                null(),
                null(),
                lit("BASE"),
            ];
            plan.limit(*offset, *limit)?.project(values.into_iter().zip(TIMESERIES_HEADERS).map(|(v, h)| named(v, h)))?
        }
        // The children of the nodes a pattern matches are the nodes `pattern.*` matches.
        Show::ChildPaths { pattern } => scan(instance, Listing::Nodes, Some(&children(pattern.as_deref())))?
            .project([named(col("path"), "ChildPaths"), named(col("node_type"), "NodeTypes")])?,
        Show::ChildNodes { pattern } => scan(instance, Listing::Nodes, Some(&children(pattern.as_deref())))?
            .project([named(col("name"), "ChildNodes")])?
            .distinct()?
            .sort([ident("ChildNodes").sort(true, false)])?,
        Show::CountTimeseries { pattern, level: None } => counted(scan(instance, Listing::Timeseries, pattern.as_deref())?, "count(timeseries)")?,
        Show::CountTimeseries { pattern, level: Some(level) } => scan(instance, Listing::Timeseries, pattern.as_deref())?
            .project([named(PathLevel::call(col("timeseries"), *level), "Column")])?
            .filter(ident("Column").is_not_null())?
            .aggregate([ident("Column")], [named(count(lit(1)), "count(timeseries)")])?
            .sort([ident("Column").sort(true, false)])?,
        Show::CountDevices { pattern } => counted(scan(instance, Listing::Devices, pattern.as_deref())?, "count(devices)")?,
        Show::CountDatabases { pattern } => counted(scan(instance, Listing::Databases, pattern.as_deref())?, "count(database)")?,
        // Distinct nodes at `level` on the paths of the matching series.
        Show::CountNodes { pattern, level } => scan(instance, Listing::Timeseries, Some(pattern))?
            .aggregate(Vec::<Expr>::new(), [named(count_distinct(PathLevel::call(col("timeseries"), *level)), "count(nodes)")])?,
        // IoTDB 2.x's columns: the path the TTL covers, and INF for none.
        Show::Ttl { pattern } => scan(instance, Listing::Databases, pattern.as_deref().map(|p| p.strip_suffix(".**").unwrap_or(p)))?.project([
            named(concat(vec![col("database"), lit(".**")]), "Device"),
            named(coalesce(vec![cast(col("ttl_ms"), ArrowType::Utf8), lit("INF")]), "TTL(ms)"),
        ])?,
    };
    Ok(plan.build()?)
}

/// A scan of a system table, of the rows whose path matches `pattern`
/// (checked here, so a bad pattern is a syntax error before anything runs).
fn scan(instance: &Arc<Instance>, listing: Listing, pattern: Option<&str>) -> Result<LogicalPlanBuilder> {
    let name = TableReference::partial(SYSTEM_SCHEMA, listing.name());
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(system_table(instance.clone(), listing)), None)?;
    Ok(match pattern {
        Some(pattern) => {
            PathPattern::parse(pattern)?;
            plan.filter(PathMatches::call(col(listing.key()), pattern))?
        }
        None => plan,
    })
}

/// The pattern of the children of the nodes `parent` matches (default root).
fn children(parent: Option<&str>) -> String {
    format!("{}.*", parent.unwrap_or("root"))
}

/// The number of rows, under IoTDB's header.
fn counted(plan: LogicalPlanBuilder, header: &str) -> Result<LogicalPlanBuilder> {
    Ok(plan.aggregate(Vec::<Expr>::new(), [count(lit(1)).alias(header)])?)
}

/// `SHOW TIMESERIES … WHERE`.
fn series_filter(filter: &SeriesFilter) -> Expr {
    match filter {
        SeriesFilter::PathContains(text) => contains(col("timeseries"), lit(text.as_str())),
        SeriesFilter::DataType(t) => col("data_type").eq(lit(t.to_string())),
        SeriesFilter::Tag(key, value) => TagValue::call(col("tags"), key).eq(lit(value.as_str())),
    }
}
