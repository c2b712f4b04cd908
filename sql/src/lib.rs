//! Arbor's query surfaces over one engine: TSQL (IoTDB's tree dialect,
//! `tsql`) and PostgreSQL SQL (sqlparser), both planned onto DataFusion
//! (`planner`) over device tables (`provider`) and Arbor's operators
//! (`exec`), sharing an
//! [`Instance`] (catalog + one storage engine per database).

mod convert;
mod error;
pub mod exec;
mod functions;
mod instance;
mod output;
mod pg;
pub mod planner;
pub mod provider;
mod query_text;
mod series;
mod session;
pub mod time;
pub mod tsql;

pub use error::{Error, Result};
pub use instance::{Instance, InstanceConfig, PendingCommits};
pub use output::{QueryOutput, BINARY_RESULTS_KEY};
pub use provider::CopyIn;
pub use session::{is_empty_query, prepared_insert, CopyOptions, Description, Session};
