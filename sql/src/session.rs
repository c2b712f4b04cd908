//! A client session: routes each statement to the TSQL surface (the `tree`
//! executor) or the PostgreSQL surface (DataFusion), over the shared
//! [`Instance`].

use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility};
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

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Values `SHOW name` reports (what psql, JDBC and Grafana ask for).
fn setting(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "server_version" => "15.0",
        "server_version_num" => "150000",
        "server_encoding" | "client_encoding" => "UTF8",
        "datestyle" => "ISO, MDY",
        "intervalstyle" => "postgres",
        "timezone" => "UTC",
        "standard_conforming_strings" => "on",
        "integer_datetimes" => "on",
        "search_path" => "\"$user\", public",
        "transaction_isolation" | "default_transaction_isolation" => "read committed",
        "transaction_read_only" | "default_transaction_read_only" => "off",
        "max_identifier_length" => "63",
        "lc_collate" | "lc_ctype" => "C",
        "is_superuser" => "on",
        _ => return None,
    })
}

/// Session-level statements Arbor accepts as no-ops, with their command tag.
fn no_op_tag(sql: &str) -> Option<String> {
    let words: Vec<String> = sql.split_whitespace().take(2).map(|w| w.trim_end_matches(';').to_ascii_uppercase()).collect();
    let first = words.first()?.as_str();
    let tag = match first {
        "BEGIN" | "START" => "BEGIN",
        "COMMIT" | "END" => "COMMIT",
        "ROLLBACK" | "ABORT" => "ROLLBACK",
        "SAVEPOINT" => "SAVEPOINT",
        "RELEASE" => "RELEASE",
        "SET" => "SET",
        "RESET" => "RESET",
        "DISCARD" => "DISCARD ALL",
        "DEALLOCATE" => "DEALLOCATE",
        "UNLISTEN" => "UNLISTEN",
        "LISTEN" => "LISTEN",
        "CLOSE" => "CLOSE CURSOR",
        _ => return None,
    };
    Some(tag.to_string())
}

fn version_udf() -> ScalarUDF {
    let version = format!("PostgreSQL 15.0 (Arbor {}) on x86_64-pc-linux-gnu", env!("CARGO_PKG_VERSION"));
    datafusion::logical_expr::create_udf(
        "version",
        vec![],
        ArrowType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_args: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(version.clone()))))),
    )
}

fn one_text(header: &str, value: &str) -> Result<QueryOutput> {
    let schema = Arc::new(Schema::new(vec![Field::new(header, ArrowType::Utf8, true)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec![value]))]).map_err(|e| Error::DataFusion(e.into()))?;
    Ok(QueryOutput::Rows { schema, batches: vec![batch] })
}

impl Session {
    pub fn new(instance: Arc<Instance>) -> Result<Self> {
        let ctx = SessionContext::new();
        ctx.register_udf(version_udf());
        Ok(Session { instance, ctx })
    }

    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// TSQL runs blocking storage work: keep it off the async workers.
    async fn tsql(&self, sql: &str) -> Result<Vec<QueryOutput>> {
        let instance = self.instance.clone();
        let text = sql.to_string();
        tokio::task::spawn_blocking(move || crate::tree::execute(&instance, &text, now_ms()))
            .await
            .map_err(|e| Error::Unsupported(format!("statement task failed: {e}")))?
    }

    async fn relational(&self, sql: &str, params: Option<Vec<ScalarValue>>) -> Result<QueryOutput> {
        if let Some(tag) = no_op_tag(sql) {
            return Ok(QueryOutput::command(tag));
        }
        let trimmed = sql.trim().trim_end_matches(';').trim();
        if trimmed.len() > 5 && trimmed[..5].eq_ignore_ascii_case("show ") {
            let name = trimmed[5..].trim();
            return match setting(name) {
                Some(v) => one_text(name, v),
                None => Err(Error::Unsupported(format!("unrecognized configuration parameter \"{name}\""))),
            };
        }
        let mut df = self.ctx.sql(sql).await?;
        if let Some(values) = params {
            df = df.with_param_values(ParamValues::List(values.into_iter().map(Into::into).collect()))?;
        }
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        if schema.fields().is_empty() {
            return Ok(QueryOutput::command("OK"));
        }
        Ok(QueryOutput::Rows { schema, batches })
    }

    /// Execute every statement of a simple query.
    pub async fn execute(&mut self, sql: &str) -> Result<Vec<QueryOutput>> {
        if is_empty_query(sql) {
            return Ok(vec![QueryOutput::Empty]);
        }
        if crate::tree::is_tsql(sql) {
            return self.tsql(sql).await;
        }
        Ok(vec![self.relational(sql, None).await?])
    }

    /// Parameter and result types of one statement (extended protocol).
    /// TSQL statements that return rows are run to learn their columns.
    pub async fn describe(&mut self, sql: &str) -> Result<Description> {
        if is_empty_query(sql) || no_op_tag(sql).is_some() {
            return Ok(Description::default());
        }
        if crate::tree::is_tsql(sql) {
            let head = sql.trim_start().split_whitespace().next().unwrap_or("").to_ascii_lowercase();
            if !matches!(head.as_str(), "select" | "show" | "count") {
                return Ok(Description::default());
            }
            let outputs = self.tsql(sql).await?;
            let schema = outputs.into_iter().find_map(|o| match o {
                QueryOutput::Rows { schema, .. } => Some(schema),
                _ => None,
            });
            return Ok(Description { parameters: Vec::new(), schema });
        }
        let trimmed = sql.trim().trim_end_matches(';').trim();
        if trimmed.len() > 5 && trimmed[..5].eq_ignore_ascii_case("show ") {
            let name = trimmed[5..].trim();
            let schema = Arc::new(Schema::new(vec![Field::new(name, ArrowType::Utf8, true)]));
            return Ok(Description { parameters: Vec::new(), schema: Some(schema) });
        }
        let plan = self.ctx.state().create_logical_plan(sql).await?;
        let types = plan.get_parameter_types()?;
        let mut params: Vec<(String, Option<ArrowType>)> = types.into_iter().collect();
        params.sort_by_key(|(k, _)| k.trim_start_matches('$').parse::<usize>().unwrap_or(usize::MAX));
        let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
        Ok(Description {
            parameters: params.into_iter().map(|(_, t)| t).collect(),
            schema: (!schema.fields().is_empty()).then_some(schema),
        })
    }

    /// Execute one statement with bound parameters (extended protocol).
    pub async fn execute_with_params(&mut self, sql: &str, params: Vec<ScalarValue>) -> Result<QueryOutput> {
        if is_empty_query(sql) {
            return Ok(QueryOutput::Empty);
        }
        if crate::tree::is_tsql(sql) {
            if !params.is_empty() {
                return Err(Error::Unsupported("parameters in TSQL statements".into()));
            }
            let mut outputs = self.tsql(sql).await?;
            return outputs.pop().ok_or_else(|| Error::Syntax("empty statement".into()));
        }
        self.relational(sql, (!params.is_empty()).then_some(params)).await
    }

    /// `COPY table [(columns)] FROM STDIN`: returns the rows written.
    pub async fn copy_in(&mut self, table: &str, columns: &[String], options: &CopyOptions, data: &[u8]) -> Result<usize> {
        let _ = (table, columns, options, data);
        Err(Error::Unsupported("COPY FROM STDIN into device tables is not built yet".into()))
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
