//! The session statements of [`crate::pg::command`] carried out on a
//! session: transactions as drivers see them (Arbor writes are durable at
//! once; a transaction block scopes cursors, transaction characteristics
//! and transaction-level advisory locks), parameters, notifications and
//! cursors.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{Declare, Statement as SqlStatement};

use super::{Description, Session};
use crate::error::{Error, Result};
use crate::output::QueryOutput;
use crate::pg::advisory::Locks;
use crate::pg::command::{Command, TransactionMode};
use crate::pg::cursor::{Cursor, Cursors, Fetched};
use crate::pg::settings::Settings;

/// What a session keeps for PostgreSQL clients besides its catalog.
pub(super) struct PgState {
    pub(super) settings: Settings,
    pub(super) locks: Arc<Locks>,
    cursors: Cursors,
    /// Inside `BEGIN … COMMIT`.
    in_transaction: bool,
    /// Running a multi-statement simple query (an implicit transaction block).
    pub(super) implicit: bool,
    listening: BTreeSet<String>,
}

impl PgState {
    pub(super) fn new() -> Self {
        PgState {
            settings: Settings::default(),
            locks: Locks::new(),
            cursors: Cursors::default(),
            in_transaction: false,
            implicit: false,
            listening: BTreeSet::new(),
        }
    }

    /// Close what lives only as long as the transaction.
    fn end_transaction(&mut self) -> Result<()> {
        self.in_transaction = false;
        self.cursors.end_transaction();
        self.settings.end_transaction();
        self.locks.end_transaction()
    }

    fn apply_modes(&self, prefix: &str, modes: &[TransactionMode]) -> Result<()> {
        for m in modes {
            let (name, value) = match m {
                TransactionMode::Isolation(level) => ("transaction_isolation", *level),
                TransactionMode::ReadOnly(on) => ("transaction_read_only", if *on { "on" } else { "off" }),
                TransactionMode::Deferrable(on) => ("transaction_deferrable", if *on { "on" } else { "off" }),
            };
            self.settings.set(&format!("{prefix}{name}"), Some(value))?;
        }
        Ok(())
    }
}

fn text_rows(columns: &[&str], rows: Vec<Vec<String>>) -> Result<QueryOutput> {
    let schema = Arc::new(Schema::new(columns.iter().map(|c| Field::new(*c, ArrowType::Utf8, true)).collect::<Vec<_>>()));
    let arrays = (0..columns.len())
        .map(|i| Arc::new(StringArray::from(rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>())) as _)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| Error::DataFusion(e.into()))?;
    QueryOutput::rows(schema, vec![batch])
}

fn text_schema(columns: &[&str]) -> Description {
    let schema = Arc::new(Schema::new(columns.iter().map(|c| Field::new(*c, ArrowType::Utf8, true)).collect::<Vec<_>>()));
    Description { parameters: Vec::new(), schema: Some(schema) }
}

impl Session {
    /// Carry out one session statement.
    pub(super) async fn command(&mut self, command: Command) -> Result<QueryOutput> {
        let pg = &mut self.pg;
        Ok(match command {
            Command::Begin(modes) => {
                pg.in_transaction = true;
                pg.apply_modes("", &modes)?;
                QueryOutput::command("BEGIN")
            }
            Command::Commit => {
                pg.end_transaction()?;
                QueryOutput::command("COMMIT")
            }
            Command::Rollback => {
                pg.end_transaction()?;
                QueryOutput::command("ROLLBACK")
            }
            Command::Savepoint(tag) => QueryOutput::command(tag),
            Command::SetTransaction { session: true, modes } => {
                pg.apply_modes("default_", &modes)?;
                QueryOutput::command("SET")
            }
            Command::SetTransaction { session: false, modes } => {
                // Outside a transaction block PostgreSQL warns and changes nothing.
                if pg.in_transaction {
                    pg.apply_modes("", &modes)?;
                }
                QueryOutput::command("SET")
            }
            Command::Set { name, value } => {
                pg.settings.set(&name, value.as_deref())?;
                if !pg.in_transaction {
                    pg.settings.end_transaction();
                }
                QueryOutput::command("SET")
            }
            Command::Reset(Some(name)) => {
                pg.settings.set(&name, None)?;
                QueryOutput::command("RESET")
            }
            Command::Reset(None) => {
                pg.settings.reset_all();
                QueryOutput::command("RESET")
            }
            Command::Show(Some(name)) => {
                let value = pg.settings.get(&name, false)?.unwrap_or_default();
                text_rows(&[&Settings::canonical(&name)], vec![vec![value]])?
            }
            Command::Show(None) => {
                let rows = pg.settings.all().into_iter().map(|(n, v, d)| vec![n, v, d]).collect();
                text_rows(&["name", "setting", "description"], rows)?
            }
            Command::Discard(what) => {
                if what == "ALL" {
                    if pg.in_transaction {
                        return Err(Error::Unsupported("DISCARD ALL cannot run inside a transaction block".into()));
                    }
                    pg.cursors.close_all();
                    pg.settings.reset_all();
                    pg.locks.unlock_all()?;
                    pg.listening.clear();
                }
                QueryOutput::command(format!("DISCARD {what}"))
            }
            Command::DeallocateAll => QueryOutput::command("DEALLOCATE ALL"),
            Command::Listen(channel) => {
                pg.listening.insert(channel);
                QueryOutput::command("LISTEN")
            }
            Command::Unlisten(Some(channel)) => {
                pg.listening.remove(&channel);
                QueryOutput::command("UNLISTEN")
            }
            Command::Unlisten(None) => {
                pg.listening.clear();
                QueryOutput::command("UNLISTEN")
            }
            Command::Notify { .. } => QueryOutput::command("NOTIFY"),
            Command::Fetch { direction, cursor, move_only } => {
                let c = pg.cursors.get(&cursor)?;
                let schema = c.schema().clone();
                match c.fetch(direction, !move_only).await? {
                    Fetched::Rows(_, n) if move_only => QueryOutput::command_with_rows("MOVE", n as usize),
                    Fetched::Rows(batches, _) => QueryOutput::rows(schema, batches)?,
                    Fetched::Rest(stream) => QueryOutput::Rows { schema, stream },
                }
            }
            Command::Close(Some(name)) => {
                pg.cursors.close(&name)?;
                QueryOutput::command("CLOSE CURSOR")
            }
            Command::Close(None) => {
                pg.cursors.close_all();
                QueryOutput::command("CLOSE CURSOR ALL")
            }
        })
    }

    /// `DECLARE name CURSOR FOR query`: plan and start the query, keep its stream.
    pub(super) async fn declare(&mut self, declare: &Declare, params: Option<Vec<ScalarValue>>) -> Result<QueryOutput> {
        let [name] = declare.names.as_slice() else {
            return Err(Error::Syntax("DECLARE CURSOR names one cursor".into()));
        };
        let name = if name.quote_style.is_some() { name.value.clone() } else { name.value.to_ascii_lowercase() };
        let Some(query) = declare.for_query.clone() else {
            return Err(Error::Syntax("DECLARE CURSOR needs FOR query".into()));
        };
        if declare.scroll == Some(true) {
            return Err(Error::Unsupported("SCROLL cursors: Arbor's cursors read forward only".into()));
        }
        let hold = declare.hold == Some(true);
        if !hold && !self.pg.in_transaction && !self.pg.implicit {
            return Err(Error::NoTransaction("DECLARE CURSOR can only be used in transaction blocks".into()));
        }
        if self.pg.cursors.get(&name).is_ok() {
            return Err(Error::DuplicateCursor(format!("cursor \"{name}\" already exists")));
        }
        let QueryOutput::Rows { stream, .. } = self.statement(SqlStatement::Query(query), params, None).await? else {
            return Err(Error::Syntax("DECLARE CURSOR needs a query that returns rows".into()));
        };
        self.pg.cursors.declare(&name, Cursor::new(stream, hold, declare.binary == Some(true)))?;
        Ok(QueryOutput::command("DECLARE CURSOR"))
    }

    pub(super) fn cursor_columns(&mut self, name: &str) -> Result<datafusion::arrow::datatypes::SchemaRef> {
        Ok(self.pg.cursors.get(name)?.schema().clone())
    }

    /// What a session statement returns, for Describe.
    pub(super) fn describe_command(&mut self, command: &Command) -> Result<Description> {
        Ok(match command {
            Command::Show(Some(name)) => text_schema(&[&Settings::canonical(name)]),
            Command::Show(None) => text_schema(&["name", "setting", "description"]),
            Command::Fetch { cursor, move_only: false, .. } => {
                let schema = self.pg.cursors.get(cursor)?.schema().clone();
                Description { parameters: Vec::new(), schema: Some(schema) }
            }
            _ => Description::default(),
        })
    }

    /// After a statement outside a transaction block (or a multi-statement
    /// simple query, its implicit block): transaction-scoped state goes.
    pub(super) fn end_implicit_transaction(&mut self) -> Result<()> {
        self.pg.implicit = false;
        if self.pg.in_transaction {
            return Ok(());
        }
        self.pg.end_transaction()
    }
}

/// Whether `zone` is UTC under one of its names.
fn is_utc(zone: &str) -> bool {
    matches!(zone.to_ascii_lowercase().as_str(), "utc" | "etc/utc" | "z" | "+00:00" | "+00" | "gmt" | "etc/gmt" | "zulu" | "universal" | "etc/universal")
}

impl Session {
    /// `output` with its `timestamptz` columns in the session's `TimeZone`,
    /// so their text is local time with its offset, as PostgreSQL prints
    /// them (the instants are unchanged: binary results are the same).
    pub(super) fn in_session_zone(&self, output: QueryOutput) -> QueryOutput {
        let QueryOutput::Rows { schema, stream } = output else { return output };
        let zone = match self.pg.settings.get("TimeZone", false) {
            Ok(Some(z)) if !is_utc(&z) => z,
            _ => return QueryOutput::Rows { schema, stream },
        };
        if !schema.fields().iter().any(|f| matches!(f.data_type(), ArrowType::Timestamp(_, Some(_)))) {
            return QueryOutput::Rows { schema, stream };
        }
        let zone: Arc<str> = zone.into();
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                ArrowType::Timestamp(unit, Some(_)) => f.as_ref().clone().with_data_type(ArrowType::Timestamp(*unit, Some(zone.clone()))),
                _ => f.as_ref().clone(),
            })
            .collect();
        let target = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        let mapped_schema = target.clone();
        use futures::StreamExt;
        let mapped = stream.map(move |batch| {
            let batch = batch?;
            let columns = batch
                .columns()
                .iter()
                .zip(mapped_schema.fields())
                .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { datafusion::arrow::compute::cast(c, f.data_type()) })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let options = datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            Ok(RecordBatch::try_new_with_options(mapped_schema.clone(), columns, &options)?)
        });
        QueryOutput::Rows { schema: target.clone(), stream: Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(target, mapped)) }
    }
}
