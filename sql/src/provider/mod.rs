//! The PostgreSQL surface over the series tree (DESIGN §4): every device is
//! a table `"root.ln.wf01.wt01"` in schema `public`, with `time timestamptz`
//! and one column per measurement. DataFusion plans the SQL; this module
//! gives it the tables ([`DeviceSchemaProvider`], [`DeviceTableProvider`]),
//! pushes time ranges and projections into storage, and writes `INSERT`s
//! and `COPY` rows back through the engine.

mod copy;
mod device_table;
mod information_schema;
mod path_functions;
mod pg_catalog;
mod system;
mod values;

pub use copy::{CopyIn, CopyOptions, COPY_PART_BYTES_MAX, COPY_ROW_BYTES_MAX, COPY_TYPED_BYTES_MAX};
pub use path_functions::{udfs as path_udfs, PathLevel, PathMatches, TagValue};
pub(crate) use system::{system_table, Listing};
pub use system::{SystemSchemaProvider, SYSTEM_SCHEMA};
pub use device_table::{DeviceSchemaProvider, DeviceTableProvider, WriteGate};
pub use information_schema::PgInformationSchema;
pub use pg_catalog::{device_table_oid, key_definition_udfs, PgCatalogExtensions, ATTNUM_KEY, TABLE_OID_KEY, VECTOR_TYPE_KEY};
pub(crate) use device_table::{exact_time_ranges, intersect, time_ranges, without_identity};

/// The catalog (database) name clients see: `current_database()`.
pub const CATALOG: &str = "arbor";
/// The schema that holds the device tables.
pub const SCHEMA: &str = "public";

