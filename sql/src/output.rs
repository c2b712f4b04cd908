//! What a statement produces, for the wire layer to encode.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

/// The result of one statement.
#[derive(Debug, Clone)]
pub enum QueryOutput {
    /// Rows with their schema (possibly zero batches).
    Rows {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    /// A statement without rows: its command tag (`INSERT 0 3`, `CREATE DATABASE`, ...).
    Command { tag: String, rows: Option<usize> },
    /// An empty statement (`;`, `-- ping`).
    Empty,
}

impl QueryOutput {
    pub fn command(tag: impl Into<String>) -> Self {
        QueryOutput::Command {
            tag: tag.into(),
            rows: None,
        }
    }

    pub fn command_with_rows(tag: impl Into<String>, rows: usize) -> Self {
        QueryOutput::Command {
            tag: tag.into(),
            rows: Some(rows),
        }
    }
}
