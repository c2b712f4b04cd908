//! A client session: routes each statement to the TSQL surface or the
//! PostgreSQL surface, over the shared [`Instance`].

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType as ArrowType, SchemaRef};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::output::QueryOutput;

/// What the extended protocol needs to know before executing a statement.
#[derive(Debug, Clone, Default)]
pub struct Description {
    /// One entry per `$n`; `None` when the type could not be inferred.
    pub parameters: Vec<Option<ArrowType>>,
    /// `None` for statements that return no rows.
    pub schema: Option<SchemaRef>,
}

/// How COPY data is laid out.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub csv: bool,
    pub delimiter: u8,
    pub null: String,
    pub header: bool,
}

/// One client's session.
pub struct Session {
    instance: Arc<Instance>,
    ctx: SessionContext,
}

/// Whether `sql` holds nothing but whitespace, `;` and comments.
pub fn is_empty_query(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return rest.is_empty();
        }
    }
}

impl Session {
    pub fn new(instance: Arc<Instance>) -> Result<Self> {
        let ctx = SessionContext::new();
        Ok(Session { instance, ctx })
    }

    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// Execute every statement of a simple query.
    pub async fn execute(&mut self, sql: &str) -> Result<Vec<QueryOutput>> {
        if is_empty_query(sql) {
            return Ok(vec![QueryOutput::Empty]);
        }
        let _ = &self.ctx;
        Err(Error::Unsupported(format!("statement {:?}", sql.trim())))
    }

    /// Parameter and result types of one statement (extended protocol).
    pub async fn describe(&mut self, sql: &str) -> Result<Description> {
        if is_empty_query(sql) {
            return Ok(Description::default());
        }
        Err(Error::Unsupported(format!("statement {:?}", sql.trim())))
    }

    /// Execute one statement with bound parameters (extended protocol).
    pub async fn execute_with_params(&mut self, sql: &str, params: Vec<ScalarValue>) -> Result<QueryOutput> {
        if is_empty_query(sql) {
            return Ok(QueryOutput::Empty);
        }
        let _ = params;
        Err(Error::Unsupported(format!("statement {:?}", sql.trim())))
    }

    /// `COPY table [(columns)] FROM STDIN`: returns the rows written.
    pub async fn copy_in(&mut self, table: &str, columns: &[String], options: &CopyOptions, data: &[u8]) -> Result<usize> {
        let _ = (table, columns, options, data);
        Err(Error::Unsupported("COPY FROM STDIN".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::is_empty_query;

    #[test]
    fn empty_queries_are_recognised() {
        for q in ["", ";", "  ; ;", "-- ping", "/* x */ ;", "-- a\n-- b\n"] {
            assert!(is_empty_query(q), "{q:?}");
        }
        for q in ["SELECT 1", "-- x\nSELECT 1", "/* a */ SHOW x"] {
            assert!(!is_empty_query(q), "{q:?}");
        }
    }
}
