//! The PostgreSQL surface over the series tree (DESIGN §4): every device is
//! a table `"root.ln.wf01.wt01"` in schema `public`, with `time timestamptz`
//! and one column per measurement. DataFusion plans the SQL; this module
//! gives it the tables ([`DeviceSchema`], [`DeviceTable`]), pushes time
//! ranges and projections into storage, writes `INSERT`s and `COPY` rows
//! back through the engine, and installs `pg_catalog` so psql, JDBC and
//! Grafana can introspect.

mod copy;
mod table;
mod values;

use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::prelude::{SessionConfig, SessionContext};

pub(crate) use copy::copy_in;
pub use table::{DeviceSchema, DeviceTable, WriteGate};

use crate::error::{Error, Result};
use crate::instance::Instance;

/// The catalog (database) name clients see: `current_database()`.
pub const CATALOG: &str = "arbor";
/// The schema that holds the device tables.
pub const SCHEMA: &str = "public";

/// A DataFusion context whose `arbor.public` schema is the device tree,
/// with `information_schema` and `pg_catalog` installed.
pub fn context(instance: Arc<Instance>, gate: WriteGate) -> Result<SessionContext> {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, SCHEMA)
        .with_information_schema(true)
        .with_create_default_catalog_and_schema(false);
    let ctx = SessionContext::new_with_config(config);
    let catalog = MemoryCatalogProvider::new();
    catalog.register_schema(SCHEMA, Arc::new(DeviceSchema::new(instance, gate)))?;
    ctx.register_catalog(CATALOG, Arc::new(catalog));
    datafusion_pg_catalog::setup_pg_catalog(&ctx, CATALOG, datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider)
        .map_err(|e| Error::DataFusion(*e))?;
    Ok(ctx)
}
