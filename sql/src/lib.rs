//! Arbor's query surfaces over one engine: TSQL (IoTDB's tree dialect,
//! `tsql`) and PostgreSQL SQL through DataFusion (`relational`), sharing an
//! [`Instance`] (catalog + one storage engine per database).

mod error;
mod instance;
mod output;
pub mod relational;
mod session;
pub mod tree;

pub use error::{Error, Result};
pub use instance::{Instance, InstanceConfig};
pub use output::QueryOutput;
pub use session::{is_empty_query, CopyOptions, Description, Session};
