//! What a statement produces, for the wire layer to encode.

use std::fmt;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::memory::MemoryStream;

use crate::error::Result;

/// Schema metadata of rows a simple-query client gets in binary (a FETCH
/// from a `BINARY` cursor); otherwise the simple protocol sends text.
pub const BINARY_RESULTS_KEY: &str = "arbor.binary_results";

/// The result of one statement.
pub enum QueryOutput {
    /// Rows with their schema, produced as the client reads them.
    Rows { schema: SchemaRef, stream: SendableRecordBatchStream },
    /// A statement without rows: its command tag (`INSERT 0 3`, `CREATE DATABASE`, ...).
    Command { tag: String, rows: Option<usize> },
    /// An empty statement (`;`, `-- ping`).
    Empty,
}

impl fmt::Debug for QueryOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryOutput::Rows { schema, .. } => f.debug_struct("Rows").field("schema", schema).finish_non_exhaustive(),
            QueryOutput::Command { tag, rows } => f.debug_struct("Command").field("tag", tag).field("rows", rows).finish(),
            QueryOutput::Empty => f.write_str("Empty"),
        }
    }
}

impl QueryOutput {
    pub fn command(tag: impl Into<String>) -> Self {
        QueryOutput::Command { tag: tag.into(), rows: None }
    }

    pub fn command_with_rows(tag: impl Into<String>, rows: usize) -> Self {
        QueryOutput::Command { tag: tag.into(), rows: Some(rows) }
    }

    /// Rows already in memory (small results: listings, settings).
    pub fn rows(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self> {
        let stream = MemoryStream::try_new(batches, schema.clone(), None)?;
        Ok(QueryOutput::Rows { schema, stream: Box::pin(stream) })
    }
}
