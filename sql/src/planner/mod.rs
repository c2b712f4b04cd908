//! Planning: the DataFusion session every statement is planned in (device
//! tables, `pg_catalog`, Arbor's analyzer rules and memory pool).

mod align_by_device;
mod distinct_on;
mod epoch_time;
mod gapfill;
mod last;
mod load;
mod select;
mod show;
mod statements;
mod statistics;
mod tags;
mod union_columns;

pub use select::plan_select;
pub(crate) use select::headers;
pub(crate) use show::plan_show;
pub(crate) use statements::{insert_scanned, run, GroupError, InsertGroup};

use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::execution::SessionStateBuilder;
use datafusion::optimizer::{Analyzer, AnalyzerRule};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::provider::{DeviceSchemaProvider, PgCatalogExtensions, PgInformationSchema, SystemSchemaProvider, WriteGate, CATALOG, SCHEMA, SYSTEM_SCHEMA};

/// A DataFusion context whose `arbor.public` schema is the device tree,
/// with `information_schema` and `pg_catalog` installed.
/// The DataFusion context of one session.
pub(crate) fn context(instance: Arc<Instance>, gate: WriteGate, settings: crate::pg::settings::Settings) -> Result<SessionContext> {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, SCHEMA)
        // information_schema is registered below as a schema of the catalog
        // (PostgreSQL's type names and ordinals in `columns`).
        .with_information_schema(false)
        .with_create_default_catalog_and_schema(false)
        // Round-robin repartitioning splits ordered scans for no gain on
        // short series reads and loses their time order.
        .set_bool("datafusion.optimizer.enable_round_robin_repartition", false)
        // `'2024-01-01 00:00:00+02'::timestamptz` is an instant (a UTC
        // timestamp, as device tables' times are), not a wall-clock time.
        .set_str("datafusion.execution.time_zone", crate::convert::UTC)
        // `1.5` is `numeric`, as PostgreSQL types a decimal literal.
        .set_bool("datafusion.sql_parser.parse_float_as_decimal", true);
    // Epoch integers become timestamps before type coercion sees them.
    let mut analyzer_rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> = vec![Arc::new(epoch_time::EpochTimeRule)];
    analyzer_rules.extend(Analyzer::new().rules);
    // After type coercion: the aggregate it adds takes its argument's type.
    analyzer_rules.push(Arc::new(crate::pg::single_row::SingleRowRule));
    // The latest row per device through the last-value cache (after type coercion).
    analyzer_rules.push(Arc::new(distinct_on::LatestPerLabelRule));
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(instance.runtime().clone())
        .with_default_features()
        .with_analyzer_rules(analyzer_rules)
        .with_optimizer_rule(Arc::new(statistics::StatisticsAggregateRule))
        .with_optimizer_rule(Arc::new(gapfill::GapFillRule))
        .with_optimizer_rule(Arc::new(union_columns::UnionColumnsRule))
        // The sort pushdown (`ORDER BY time DESC` into the scan) runs after
        // the limit pushdown: push the limit again so it reaches the scan.
        .with_physical_optimizer_rule(Arc::new(datafusion::physical_optimizer::limit_pushdown::LimitPushdown::new()))
        .with_query_planner(Arc::new(crate::exec::ArborQueryPlanner::new(instance.clone())))
        .build();
    let ctx = SessionContext::new_with_state(state);
    for udf in crate::functions::gapfill::udfs() {
        ctx.register_udf(udf);
    }
    for udf in crate::provider::path_udfs() {
        ctx.register_udf(udf);
    }
    for udaf in crate::functions::first_last::udafs() {
        ctx.register_udaf(udaf);
    }
    ctx.register_udaf(crate::pg::single_row::single_value().as_ref().clone());
    let catalog = MemoryCatalogProvider::new();
    catalog.register_schema(SYSTEM_SCHEMA, Arc::new(SystemSchemaProvider::new(instance.clone())))?;
    catalog.register_schema(SCHEMA, Arc::new(DeviceSchemaProvider::new(instance.clone(), gate)))?;
    ctx.register_catalog(CATALOG, Arc::new(catalog));
    let information_schema = Arc::new(PgInformationSchema::new(ctx.state().catalog_list().clone()));
    if let Some(c) = ctx.catalog(CATALOG) {
        c.register_schema("information_schema", information_schema)?;
    }
    datafusion_pg_catalog::setup_pg_catalog(&ctx, CATALOG, datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider)
        .map_err(|e| Error::DataFusion(*e))?;
    if let Some(c) = ctx.catalog(CATALOG) {
        if let Some(pg_catalog) = c.schema("pg_catalog") {
            let pg_catalog = Arc::new(PgCatalogExtensions::new(pg_catalog, instance.clone(), settings));
            c.register_schema("pg_catalog", Arc::new(crate::pg::catalog::CatalogColumns::new(pg_catalog)))?;
        }
    }
    for udf in crate::pg::catalog::udfs(CATALOG, &instance.config().data_dir) {
        ctx.register_udf(udf);
    }
    for udf in crate::provider::key_definition_udfs(&instance) {
        ctx.register_udf(udf);
    }
    Ok(ctx)
}
