//! Arbor's query surfaces over one engine: TSQL (IoTDB's tree dialect,
//! `tree`) and PostgreSQL SQL through DataFusion (`provider` tables,
//! `exec` operators), sharing an
//! [`Instance`] (catalog + one storage engine per database).

mod convert;
mod error;
pub mod exec;
mod instance;
mod output;
pub mod planner;
pub mod provider;
mod series;
mod session;
mod time;
pub mod tree;

pub use error::{Error, Result};
pub use instance::{Instance, InstanceConfig};
pub use output::QueryOutput;
pub use session::{is_empty_query, CopyOptions, Description, Session};
