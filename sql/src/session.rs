//! A client session: routes each statement to the TSQL surface (parsed by
//! `tsql`, planned by `planner`) or the PostgreSQL surface (sqlparser),
//! both executed by DataFusion over the shared [`Instance`].

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use datafusion::common::ParamValues;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility};
use datafusion::arrow::array::UInt64Array;
use datafusion::logical_expr::{LogicalPlan, WriteOp};
use datafusion::execution::{SessionState, TaskContext};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ObjectType, Statement as SqlStatement};
use datafusion::scalar::ScalarValue;

use crate::error::{Error, Result};
pub use crate::provider::CopyOptions;
pub use crate::query_text::is_empty_query;
use crate::instance::{Instance, PendingCommits};
use crate::output::QueryOutput;
use crate::tsql::ast::Statement;
use crate::planner::GroupError;
use crate::time::Zone;

mod commands;
mod ddl;
mod plans;

use plans::{CachedPlan, PlanCache, Surface};

/// What the extended protocol needs to know before executing a statement.
#[derive(Debug, Clone, Default)]
pub struct Description {
    /// One entry per `$n`; `None` when the type could not be inferred.
    pub parameters: Vec<Option<ArrowType>>,
    /// `None` for statements that return no rows.
    pub schema: Option<SchemaRef>,
}

/// One client's session.
pub struct Session {
    instance: Arc<Instance>,
    ctx: SessionContext,
    gate: crate::provider::WriteGate,
    /// Parameters, cursors, transaction block and locks, as clients see them.
    pg: commands::PgState,
    /// The session state and task context queries plan and run with,
    /// taken once rather than cloned per statement (cloning copies every
    /// function registry); dropped when a statement may change them.
    snapshot: std::sync::Mutex<Option<Snapshot>>,
    /// Plans of query texts run before (see `session/plans.rs`).
    plans: std::sync::Mutex<PlanCache>,
    /// The column names of the statements `PREPARE` made, for `EXECUTE`.
    prepared_names: std::sync::Mutex<HashMap<String, Option<Vec<Option<String>>>>>,
}

#[derive(Clone)]
struct Snapshot {
    state: Arc<SessionState>,
    task: Arc<TaskContext>,
}

/// Whether running `plan` only reads (a query or EXPLAIN), so it may run
/// on a [`Snapshot`] without going through the context.
fn is_query(plan: &LogicalPlan) -> bool {
    !matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Statement(_) | LogicalPlan::Copy(_))
}

/// Wait until the writes in `pending` are durable, on a blocking thread;
/// nothing written (queries) needs no hop.
async fn durable(pending: Option<PendingCommits>) -> Result<()> {
    match pending.filter(|p| !p.is_empty()) {
        Some(p) => tokio::task::spawn_blocking(move || p.wait()).await.map_err(|e| Error::Unsupported(format!("statement task failed: {e}")))?,
        None => Ok(()),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
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

/// PostgreSQL has no unsigned integers: the type an unsigned column is sent as.
fn signed(t: &ArrowType) -> Option<ArrowType> {
    Some(match t {
        ArrowType::UInt8 => ArrowType::Int16,
        ArrowType::UInt16 => ArrowType::Int32,
        ArrowType::UInt32 | ArrowType::UInt64 => ArrowType::Int64,
        _ => return None,
    })
}

/// Whether `f` carries datafusion-pg-catalog's oid mark on values that are
/// no oids: DataFusion's casts keep their input's field metadata, so
/// `typelem::regtype::text` (asyncpg's type lookup) would be described as
/// an oid while its values are text.
fn stray_oid_mark(f: &Field) -> bool {
    f.metadata().contains_key(crate::pg::typing::OID_ALIAS_KEY) && !matches!(f.data_type(), ArrowType::Int32 | ArrowType::Int64 | ArrowType::UInt32)
}

/// `schema` with unsigned integer columns made signed (row_number(),
/// counts), and oid marks only on integers.
fn pg_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| signed(f.data_type()).is_some() || stray_oid_mark(f)) {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match signed(f.data_type()) {
            Some(t) => Field::new(f.name(), t, f.is_nullable()),
            None if stray_oid_mark(f) => {
                let mut metadata = f.metadata().clone();
                metadata.remove(crate::pg::typing::OID_ALIAS_KEY);
                f.as_ref().clone().with_metadata(metadata)
            }
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A result stream with unsigned columns cast to their signed PostgreSQL
/// types and columns renamed as PostgreSQL names them, batch by batch.
fn pg_stream(stream: SendableRecordBatchStream, names: Option<&[Option<String>]>) -> (SchemaRef, SendableRecordBatchStream) {
    let source = stream.schema();
    let target = rename_schema(&pg_schema(&source), names);
    if Arc::ptr_eq(&target, &source) {
        return (source, stream);
    }
    let schema = target.clone();
    let mapped = stream.map(move |batch| {
        let batch = batch?;
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { datafusion::arrow::compute::cast(c, f.data_type()) })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(schema.clone(), columns, &options)?)
    });
    (target.clone(), Box::pin(RecordBatchStreamAdapter::new(target, mapped)))
}

fn rename_schema(schema: &SchemaRef, names: Option<&[Option<String>]>) -> SchemaRef {
    let Some(names) = names.filter(|n| n.len() == schema.fields().len() && n.iter().any(Option::is_some)) else {
        return schema.clone();
    };
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(names)
        .map(|(f, n)| match n {
            Some(n) => f.as_ref().clone().with_name(n),
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A statement of a query text, parsed.
enum Piece {
    /// A query text planned before.
    Cached(CachedPlan),
    Parsed(Box<SqlStatement>),
    Command(crate::pg::command::Command),
}

/// The session statement a parsed statement is (`SET`, `SHOW`, `FETCH`, …).
fn session_command(statement: &SqlStatement) -> Result<Option<crate::pg::command::Command>> {
    if matches!(statement, SqlStatement::Query(_) | SqlStatement::Insert(_)) {
        return Ok(None);
    }
    let text = statement.to_string();
    if !crate::pg::command::Command::starts(&text) {
        return Ok(None);
    }
    crate::pg::command::parse(&text)
}

/// The parser with the rewrites psql, JDBC and Grafana queries need.
/// What a run of TSQL write statements produced.
struct WriteRun {
    outputs: Vec<QueryOutput>,
    error: Option<Error>,
    /// The statement the run stopped at because it is a query.
    query: Option<String>,
}

/// Whether a TSQL statement is a query by its first word (`SELECT`,
/// `EXPLAIN`): those are planned on the session, not run as writes.
fn is_query_text(text: &str) -> bool {
    let word = text.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    word.eq_ignore_ascii_case("select") || word.eq_ignore_ascii_case("explain")
}

/// The prepared form of a TSQL INSERT with `$n` parameters for times and
/// values (scanned once, bound by [`Session::execute_prepared_insert`] at
/// each Execute), or `None` for any other statement.
pub fn prepared_insert(sql: &str) -> Option<Arc<crate::tsql::PreparedInsert>> {
    if !crate::tsql::is_tsql(sql) {
        return None;
    }
    crate::tsql::PreparedInsert::scan(sql).map(Arc::new)
}

/// Run statement `index` of a run of TSQL statements that are not queries
/// (blocking): a plain INSERT through the fast scanner, its batch joining
/// `group`; anything else through the parser, after the group is written
/// (its order in the log is its order in the message). `None`: it is a
/// query after all.
fn write_statement(
    instance: &Instance,
    zone: Zone,
    text: &str,
    index: usize,
    group: &mut crate::planner::InsertGroup,
    pending: &mut PendingCommits,
) -> std::result::Result<Option<QueryOutput>, GroupError> {
    if let Some(raw) = crate::tsql::scan_insert(text) {
        return crate::planner::insert_scanned(instance, &raw, index, group, pending).map(Some);
    }
    let failed = |error| GroupError { statement: index, error };
    let explain = crate::tsql::strip_explain(text);
    let (statement, _) = crate::tsql::parse_reading_clock(explain.unwrap_or(text), now_ms(), zone).map_err(failed)?;
    if statement.is_query() {
        return Ok(None);
    }
    group.write(pending)?;
    crate::planner::run(instance, statement, pending).map(Some).map_err(failed)
}

impl Session {
    pub fn new(instance: Arc<Instance>) -> Result<Self> {
        let gate = crate::provider::WriteGate::default();
        let pg = commands::PgState::new();
        let ctx = crate::planner::context(instance.clone(), gate.clone(), pg.settings.clone())?;
        ctx.register_udf(version_udf());
        for f in crate::pg::functions::session_functions(&pg.settings, &pg.locks) {
            ctx.register_udf(f);
        }
        ctx.register_udf(crate::pg::functions::PgTypeof::udf());
        ctx.register_udf(crate::pg::functions::When::udf());
        ctx.register_udf(crate::pg::functions::ArrayOrEmpty::udf());
        ctx.register_udf(crate::pg::functions::RegtypeText::udf());
        ctx.register_udf(crate::pg::functions::FormatType::udf());
        ctx.register_udf(crate::pg::functions::LikeEscape::udf());
        ctx.register_udf(crate::pg::functions::AtTimeZone::udf());
        ctx.register_udf(crate::pg::functions::to_regtype_udf());
        ctx.register_udf(crate::pg::functions::JsonBuildObject::udf());
        ctx.register_udf(crate::pg::functions::GetExpr::udf());
        // PostgreSQL's quoting rules (keywords, upper case) over datafusion-pg-catalog's.
        ctx.register_udf(crate::pg::functions::quote_ident_udf());
        for f in crate::pg::functions::IsVisible::udfs() {
            ctx.register_udf(f);
        }
        for f in crate::pg::functions::Description::udfs() {
            ctx.register_udf(f);
        }
        Ok(Session { instance, ctx, gate, pg, snapshot: std::sync::Mutex::new(None), plans: Default::default(), prepared_names: Default::default() })
    }

    /// The columns of open cursor `name` (a SQL cursor is also a protocol
    /// portal: psycopg describes it by name).
    pub fn cursor_schema(&mut self, name: &str) -> Result<SchemaRef> {
        self.cursor_columns(name)
    }

    /// A start-up parameter the client sent (`application_name`, `TimeZone`,
    /// `user`, …): this session's default for it.
    pub fn set_startup_parameter(&mut self, name: &str, value: &str) {
        self.pg.settings.startup(name, value);
    }

    /// The setting start-up parameter `name` makes in every session,
    /// `(name as PostgreSQL reports it, value)`, or `None` where the
    /// session ignores it: what the start-up ParameterStatus messages say
    /// before the session exists (pgJDBC sends the JVM's `TimeZone`).
    pub fn startup_setting(name: &str, value: &str) -> Option<(String, String)> {
        crate::pg::settings::Settings::startup_setting(name, value)
    }

    /// A number that changes whenever a parameter's value may have.
    pub fn settings_version(&self) -> u64 {
        self.pg.settings.version()
    }

    /// The value in force of parameter `name` (`None` if Arbor does not know it).
    pub fn setting(&self, name: &str) -> Option<String> {
        self.pg.settings.get(name, true).ok().flatten()
    }

    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// Run TSQL text (one or more statements): a `SELECT` is planned onto
    /// DataFusion and streams; the others run as blocking storage work off
    /// the async workers, a run of them in one task (an ingest message is
    /// many INSERTs: one hop to a blocking thread each would cost more than
    /// the inserts).
    ///
    /// The writes of all statements share WAL syncs: each is logged and
    /// visible at once, and the message is answered once all are durable.
    async fn tsql(&self, sql: &str) -> Result<Vec<QueryOutput>> {
        let statements = crate::tsql::split_statements(sql);
        let count = statements.len();
        let mut outputs = Vec::with_capacity(count);
        let mut pending = Some(PendingCommits::default());
        let mut next = 0;
        while next < count {
            if is_query_text(statements[next]) {
                let last = next + 1 == count;
                match self.tsql_statement(statements[next], &mut pending, last).await {
                    Ok(output) => outputs.push(output),
                    Err(e) => {
                        // What earlier statements wrote is durable before the error is reported.
                        durable(pending.take()).await?;
                        return Err(e);
                    }
                }
                next += 1;
                continue;
            }
            let end = (next..count).find(|&j| is_query_text(statements[j])).unwrap_or(count);
            // The run's statements as one text and each one's place in it:
            // one copy for the blocking task, not one per statement.
            let place = |s: &str| s.as_ptr() as usize - sql.as_ptr() as usize;
            let from = place(statements[next]);
            let to = place(statements[end - 1]) + statements[end - 1].len();
            let spans = statements[next..end].iter().map(|s| place(s) - from..place(s) - from + s.len()).collect();
            let run_text = sql[from..to].to_string();
            let (run, back) = self.tsql_writes(run_text, spans, pending.take().unwrap_or_default(), end == count).await?;
            pending = back;
            let ran = run.outputs.len();
            outputs.extend(run.outputs);
            if let Some(e) = run.error {
                return Err(e);
            }
            next += ran;
            // The run stopped at a SELECT it could not tell by its first word:
            // the loop plans it as a query.
            if let Some(text) = run.query {
                let last = next + 1 == count;
                match self.tsql_statement(&text, &mut pending, last).await {
                    Ok(output) => outputs.push(output),
                    Err(e) => {
                        durable(pending.take()).await?;
                        return Err(e);
                    }
                }
                next += 1;
            }
        }
        durable(pending.take()).await?;
        Ok(outputs)
    }

    /// Run statements that are not queries in one blocking task, in order,
    /// under the write gate (the statements are `text` at `spans`). Plain
    /// multi-row INSERTs take the fast scanner.
    /// Stops at the first error (after waiting for what was written before
    /// it) or at a statement that turns out to be a query. `last`: the run
    /// ends the message, so it also waits for durability (saving a hop);
    /// otherwise the pending writes come back to the caller.
    async fn tsql_writes(
        &self,
        text: String,
        spans: Vec<std::ops::Range<usize>>,
        mut pending: PendingCommits,
        last: bool,
    ) -> Result<(WriteRun, Option<PendingCommits>)> {
        let instance = self.instance.clone();
        let zone = self.zone();
        let gate = self.gate.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || {
            let _gate = gate;
            let mut run = WriteRun { outputs: Vec::with_capacity(spans.len()), error: None, query: None };
            let mut group = crate::planner::InsertGroup::default();
            let mut failed = None;
            let mut query = None;
            for (i, span) in spans.into_iter().enumerate() {
                let statement = &text[span];
                match write_statement(&instance, zone, statement, i, &mut group, &mut pending) {
                    Ok(Some(output)) => run.outputs.push(output),
                    Ok(None) => {
                        query = Some(statement.to_string());
                        break;
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            // What is gathered comes before the failure or the query; if it
            // fails, its failing statement is the earlier one.
            if let Err(e) = group.write(&mut pending) {
                failed = Some(e);
            }
            if let Some(GroupError { statement, error }) = failed {
                // The statements from the failed one on did not happen.
                run.outputs.truncate(statement);
                // What earlier statements wrote is durable before the error is reported.
                run.error = Some(pending.wait().err().unwrap_or(error));
                return (run, None);
            }
            if let Some(text) = query {
                run.query = Some(text);
                return (run, Some(pending));
            }
            if last {
                if let Err(e) = pending.wait() {
                    run.error = Some(e);
                }
                return (run, None);
            }
            (run, Some(pending))
        })
        .await
        .map_err(|e| Error::Unsupported(format!("statement task failed: {e}")))
    }

    /// One TSQL statement of a message; `last`: wait for the writes in `pending` too.
    async fn tsql_statement(&self, text: &str, pending: &mut Option<PendingCommits>, last: bool) -> Result<QueryOutput> {
        let catalog_version = self.instance.catalog().version();
        if let Some(hit) = self.cached_plan(Surface::Tsql, text, catalog_version) {
            return self.run_cached(hit);
        }
        let explain = crate::tsql::strip_explain(text);
        let (statement, read_clock) = crate::tsql::parse_reading_clock(explain.unwrap_or(text), now_ms(), self.zone())?;
        if statement.is_query() {
            let mut plan = self.tsql_query_plan(&statement)?;
            if explain.is_some() {
                plan = datafusion::logical_expr::LogicalPlanBuilder::from(plan).explain(false, false)?.build()?;
            }
            let names = crate::planner::headers(plan.schema().as_arrow());
            let Snapshot { state, task } = self.snapshot();
            let physical = state.create_physical_plan(&plan).await?;
            if !read_clock && !statement.plan_reads_data() {
                let cached = CachedPlan::new(physical.clone(), Some(names.clone()), catalog_version);
                self.keep_plan(Surface::Tsql, text, &physical, cached);
            }
            let stream = crate::exec::execute_stream(physical, task)?;
            let (schema, stream) = pg_stream(stream, Some(&names));
            return Ok(QueryOutput::Rows { schema, stream });
        }
        let instance = self.instance.clone();
        let gate = self.gate.clone().lock_owned().await;
        let mut taken = pending.take().unwrap_or_default();
        let (output, back) = tokio::task::spawn_blocking(move || {
            let _gate = gate;
            let output = crate::planner::run(&instance, statement, &mut taken);
            // The last statement (or a failed one) waits here, saving a hop.
            if last || output.is_err() {
                let waited = taken.wait();
                (output.and_then(|o| waited.map(|()| o)), None)
            } else {
                (output, Some(taken))
            }
        })
        .await
        .map_err(|e| Error::Unsupported(format!("statement task failed: {e}")))?;
        *pending = back;
        output
    }

    /// The session's `TimeZone` (UTC unless set, or set to an offset
    /// PostgreSQL's POSIX forms would read otherwise).
    fn zone(&self) -> Zone {
        match self.pg.settings.get("TimeZone", false) {
            Ok(Some(name)) => Zone::parse(&name).unwrap_or(Zone::UTC),
            _ => Zone::UTC,
        }
    }

    /// The plan of a TSQL query: a `SELECT` or a listing of the series tree.
    fn tsql_query_plan(&self, statement: &Statement) -> Result<LogicalPlan> {
        match statement {
            Statement::Select(select) => crate::planner::plan_select(&self.instance, select, &*self.snapshot().state),
            Statement::Show(show) => crate::planner::plan_show(&self.instance, show),
            _ => Err(Error::Unsupported("internal error: not a query".into())),
        }
    }

    /// The session state and task context to plan and run a query with.
    /// (TSQL resolves `now()` while parsing, so the snapshot's start time
    /// is not read.)
    fn snapshot(&self) -> Snapshot {
        let mut cached = self.snapshot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cached
            .get_or_insert_with(|| {
                let state = self.ctx.state();
                let task = state.task_ctx();
                Snapshot { state: Arc::new(state), task }
            })
            .clone()
    }

    /// Forget the snapshot and the plans made with it: the context may
    /// have changed (`SET`, `PREPARE`, DDL).
    fn forget_snapshot(&self) {
        *self.snapshot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.plans.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// The plan of query `text` if it was planned before, at this catalog version.
    fn cached_plan(&self, surface: Surface, text: &str, catalog_version: u64) -> Option<CachedPlan> {
        self.plans.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(surface, text, catalog_version)
    }

    /// Keep the plan of query `text` if all its operators can run again.
    fn keep_plan(&self, surface: Surface, text: &str, physical: &Arc<dyn datafusion::physical_plan::ExecutionPlan>, cached: CachedPlan) {
        if plans::reusable(physical) {
            self.plans.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(surface, text, cached);
        }
    }

    /// Run a plan kept from an earlier run of the same text.
    fn run_cached(&self, hit: CachedPlan) -> Result<QueryOutput> {
        let stream = crate::exec::execute_stream(hit.fresh()?, self.snapshot().task)?;
        let (schema, stream) = pg_stream(stream, hit.names.as_deref());
        Ok(QueryOutput::Rows { schema, stream })
    }

    /// Run each PostgreSQL statement of `sql` (after the pg-compatibility
    /// rewrites). Every statement is parsed before the first runs.
    async fn relational(&mut self, sql: &str, params: Option<Vec<ScalarValue>>) -> Result<Vec<QueryOutput>> {
        let text = sql;
        let catalog_version = self.instance.catalog().version();
        let cached = if params.is_none() { self.cached_plan(Surface::Sql, text, catalog_version) } else { None };
        let sql = &*crate::query_text::duration_literals(sql);
        let parsed = match cached {
            Some(hit) => Ok(vec![Piece::Cached(hit)]),
            None => crate::pg::parse::parse(sql).map(|statements| statements.into_iter().map(|s| Piece::Parsed(Box::new(s))).collect()),
        };
        let pieces = match parsed {
            Ok(pieces) => pieces,
            // Session statements sqlparser does not know (`MOVE`, `SET SESSION
            // CHARACTERISTICS …`): statement by statement.
            Err(e) => {
                let mut pieces = Vec::new();
                for text in crate::pg::command::split_statements(sql) {
                    if let Some(command) = crate::pg::command::parse(text)? {
                        pieces.push(Piece::Command(command));
                        continue;
                    }
                    let statements = crate::pg::parse::parse(text).map_err(|_| Error::Syntax(e.to_string()))?;
                    pieces.extend(statements.into_iter().map(|s| Piece::Parsed(Box::new(s))));
                }
                pieces
            }
        };
        self.pg.implicit = pieces.len() > 1;
        // A text of one query, without parameters, may keep its plan.
        let key = (pieces.len() == 1 && params.is_none()).then_some((text, catalog_version));
        let mut outputs = Vec::with_capacity(pieces.len());
        let mut result = Ok(());
        for piece in pieces {
            let output = match piece {
                Piece::Command(command) => self.command(command).await,
                Piece::Cached(hit) => {
                    // A write left running by a cancelled statement finishes first.
                    drop(self.gate.lock().await);
                    self.run_cached(hit)
                }
                Piece::Parsed(statement) => match *statement {
                    SqlStatement::Declare { stmts } if stmts.len() == 1 => self.declare(&stmts[0], params.clone()).await,
                    SqlStatement::CreateTable(create) => self.create_table(&create).await,
                    SqlStatement::Drop { object_type: ObjectType::Table, if_exists, names, .. } => self.drop_tables(&names, if_exists).await,
                    SqlStatement::AlterTable(alter) => self.alter_table(&alter).await,
                    SqlStatement::Insert(insert) if insert.on.is_some() => self.insert_on_conflict(&insert, params.clone()).await,
                    statement => match session_command(&statement)? {
                        Some(command) => self.command(command).await,
                        None => self.statement(statement, params.clone(), key).await,
                    },
                },
            };
            match output {
                Ok(o) => outputs.push(o),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // The message's writes (logged, not yet synced) are durable before
        // any of it is answered: its statements share WAL syncs.
        let pending = std::mem::take(&mut *self.gate.lock().await);
        let waited = durable(Some(pending)).await;
        self.end_implicit_transaction()?;
        result?;
        waited?;
        Ok(outputs)
    }

    /// `key`: the text (all of it this statement) and the catalog version
    /// it was planned at, under which its plan may be kept.
    async fn statement(&self, statement: SqlStatement, params: Option<Vec<ScalarValue>>, key: Option<(&str, u64)>) -> Result<QueryOutput> {
        // A write left running by a cancelled statement finishes first.
        drop(self.gate.lock().await);
        let mut statement = statement;
        let names = self.statement_names(&mut statement);
        crate::pg::rewrite::array_subqueries(&mut statement);
        // One state per statement, with its own start time for `now()`.
        let state = self.ctx.state();
        let plan = state.statement_to_plan(DfStatement::Statement(Box::new(statement))).await?;
        let plan = crate::pg::typing::postgres_typing(plan)?;
        let key = key.filter(|_| plans::deterministic(&plan));
        if is_query(&plan) {
            let plan = match params {
                Some(values) => plan.with_param_values(ParamValues::List(values.into_iter().map(Into::into).collect()))?,
                None => plan,
            };
            if plan.schema().fields().is_empty() {
                let physical = state.create_physical_plan(&plan).await?;
                datafusion::physical_plan::collect(physical, self.snapshot().task).await?;
                return Ok(QueryOutput::command("OK"));
            }
            let physical = state.create_physical_plan(&plan).await?;
            if let Some((text, catalog_version)) = key {
                let cached = CachedPlan::new(physical.clone(), names.clone(), catalog_version);
                self.keep_plan(Surface::Sql, text, &physical, cached);
            }
            let stream = crate::exec::execute_stream(physical, self.snapshot().task)?;
            let (schema, stream) = pg_stream(stream, names.as_deref());
            return Ok(QueryOutput::Rows { schema, stream });
        }
        self.forget_snapshot();
        let insert = matches!(&plan, LogicalPlan::Dml(d) if matches!(d.op, WriteOp::Insert(_)));
        let tag = match &plan {
            LogicalPlan::Statement(datafusion::logical_expr::Statement::Prepare(_)) => "PREPARE",
            LogicalPlan::Statement(datafusion::logical_expr::Statement::Deallocate(_)) => "DEALLOCATE",
            _ => "OK",
        };
        let mut df = self.ctx.execute_logical_plan(plan).await?;
        if let Some(values) = params {
            df = df.with_param_values(ParamValues::List(values.into_iter().map(Into::into).collect()))?;
        }
        if insert {
            // The DML plan's one `count` column (UInt64).
            let batches = df.collect().await?;
            let rows: u64 = batches
                .iter()
                .filter_map(|b| b.column(0).as_any().downcast_ref::<UInt64Array>())
                .flat_map(|a| a.iter().flatten())
                .sum();
            return Ok(QueryOutput::command_with_rows("INSERT", rows as usize));
        }
        if df.schema().fields().is_empty() {
            df.collect().await?;
            return Ok(QueryOutput::command(tag));
        }
        let (schema, stream) = pg_stream(df.execute_stream().await?, names.as_deref());
        Ok(QueryOutput::Rows { schema, stream })
    }

    /// PostgreSQL's names for the columns of `statement` (see
    /// `pg/names.rs`), its repeated items aliased; a `PREPARE`d statement's
    /// are kept for its `EXECUTE`.
    fn statement_names(&self, statement: &mut SqlStatement) -> Option<Vec<Option<String>>> {
        let prepared = || self.prepared_names.lock().map_err(|_| ());
        match statement {
            SqlStatement::Prepare { name, statement: inner, .. } => {
                let mut names = crate::pg::names::column_names(inner);
                crate::pg::names::alias_repeats(inner, &mut names);
                if let Ok(mut prepared) = prepared() {
                    prepared.insert(name.value.clone(), names);
                }
                None
            }
            SqlStatement::Execute { name: Some(name), .. } => {
                let key = name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.clone())?;
                prepared().ok()?.get(&key).cloned().flatten()
            }
            _ => {
                let mut names = crate::pg::names::column_names(statement);
                crate::pg::names::alias_repeats(statement, &mut names);
                names
            }
        }
    }

    /// The logical plan of the one statement in `sql`.
    /// `DECLARE … CURSOR FOR query` is planned as its query (for its parameters).
    /// With the names of its columns, and the oid kinds of its parameters
    /// cast to oid arrays.
    async fn plan(&self, sql: &str) -> Result<(LogicalPlan, Option<Vec<Option<String>>>, HashMap<String, String>)> {
        let sql = &*crate::query_text::duration_literals(sql);
        let mut statements = crate::pg::parse::parse(sql).map_err(|e| Error::Syntax(e.to_string()))?;
        if statements.len() != 1 {
            return Err(Error::Syntax(format!("expected one statement, found {}", statements.len())));
        }
        let statement = match statements.remove(0) {
            SqlStatement::Declare { mut stmts } if stmts.len() == 1 && stmts[0].for_query.is_some() => {
                stmts.remove(0).for_query.map(SqlStatement::Query).ok_or_else(|| Error::Syntax("DECLARE without a query".into()))?
            }
            // Arbor's own DDL (session/ddl.rs) has no parameters and no rows.
            SqlStatement::AlterTable(_) | SqlStatement::Drop { object_type: ObjectType::Table, .. } => {
                let empty = datafusion::logical_expr::EmptyRelation { produce_one_row: false, schema: Arc::new(datafusion::common::DFSchema::empty()) };
                return Ok((LogicalPlan::EmptyRelation(empty), None, HashMap::new()));
            }
            // An upsert takes the parameters of its INSERT.
            SqlStatement::Insert(mut insert) if insert.on.is_some() => {
                insert.on = None;
                insert.table_alias = None;
                SqlStatement::Insert(insert)
            }
            other => other,
        };
        let mut names = crate::pg::names::column_names(&statement);
        let oid_parameters = crate::pg::typing::oid_array_parameters(&statement);
        let mut statement = statement;
        crate::pg::names::alias_repeats(&mut statement, &mut names);
        crate::pg::rewrite::array_subqueries(&mut statement);
        let plan = self.ctx.state().statement_to_plan(DfStatement::Statement(Box::new(statement))).await?;
        Ok((crate::pg::typing::postgres_typing(plan)?, names, oid_parameters))
    }

    /// Execute every statement of a simple query.
    pub async fn execute(&mut self, sql: &str) -> Result<Vec<QueryOutput>> {
        if is_empty_query(sql) {
            return Ok(vec![QueryOutput::Empty]);
        }
        let outputs = if crate::tsql::is_tsql(sql) { self.tsql(sql).await? } else { self.relational(sql, None).await? };
        Ok(outputs.into_iter().map(|o| self.in_session_zone(o)).collect())
    }

    /// Parameter and result types of one statement (extended protocol).
    /// TSQL statements that return rows are run to learn their columns.
    pub async fn describe(&mut self, sql: &str) -> Result<Description> {
        // COPY runs through the copy sub-protocol, which the wire layer drives.
        let copy = sql.trim_start().get(..5).is_some_and(|w| w.eq_ignore_ascii_case("copy "));
        if is_empty_query(sql) || copy {
            return Ok(Description::default());
        }
        if let Some(insert) = prepared_insert(sql) {
            return Ok(Description { parameters: self.insert_parameter_types(&insert), schema: None });
        }
        if crate::tsql::is_tsql(sql) {
            let count = crate::tsql::parameter_count(sql);
            let parameters = vec![None; count];
            // The columns depend on the paths, not on the values: plan it with
            // zeros bound (nothing is read).
            let zeros = vec![ScalarValue::Int64(Some(0)); count];
            let bound = crate::tsql::bind(sql, &zeros)?;
            let explain = crate::tsql::strip_explain(&bound);
            let (statement, _) = crate::tsql::parse_reading_clock(explain.unwrap_or(&bound), now_ms(), self.zone())?;
            let schema = match statement {
                query if query.is_query() => {
                    let mut plan = self.tsql_query_plan(&query)?;
                    if explain.is_some() {
                        plan = datafusion::logical_expr::LogicalPlanBuilder::from(plan).explain(false, false)?.build()?;
                    }
                    let names = crate::planner::headers(plan.schema().as_arrow());
                    Some(rename_schema(&pg_schema(&Arc::new(plan.schema().as_arrow().clone())), Some(&names)))
                }
                _ => None,
            };
            return Ok(Description { parameters, schema });
        }
        if let Some(command) = crate::pg::command::parse(sql).ok().flatten() {
            return self.describe_command(&command);
        }
        let (plan, names, oid_parameters) = self.plan(sql).await?;
        let declare = sql.trim_start().get(..8).is_some_and(|w| w.eq_ignore_ascii_case("declare "));
        let mut types = plan.get_parameter_types()?;
        crate::pg::typing::cast_parameter_types(&plan, &mut types)?;
        for (id, kind) in oid_parameters {
            if let Some(slot @ (None | Some(ArrowType::List(_)))) = types.get_mut(&id) {
                *slot = Some(crate::pg::typing::oid_list(&kind));
            }
        }
        let mut params: Vec<(String, Option<ArrowType>)> = types.into_iter().collect();
        params.sort_by_key(|(k, _)| k.trim_start_matches('$').parse::<usize>().unwrap_or(usize::MAX));
        let schema = pg_schema(&Arc::new(plan.schema().as_arrow().clone()));
        let schema = rename_schema(&schema, names.as_deref());
        // INSERT without RETURNING answers NoData, not its internal count column.
        // DECLARE returns no rows either (FETCH does).
        let schema = if matches!(plan, LogicalPlan::Dml(_)) || declare { Arc::new(Schema::empty()) } else { schema };
        Ok(Description {
            parameters: params.into_iter().map(|(_, t)| t).collect(),
            schema: (!schema.fields().is_empty()).then_some(schema),
        })
    }

    /// Parameter types of a prepared INSERT: a time is an `int8` of
    /// milliseconds, a value takes its series' type (unknown for a series
    /// the insert would create).
    fn insert_parameter_types(&self, insert: &crate::tsql::PreparedInsert) -> Vec<Option<ArrowType>> {
        let catalog = self.instance.catalog();
        let device = catalog::Path::parse(insert.device()).map(|p| p.to_string()).unwrap_or_default();
        insert
            .parameter_targets()
            .into_iter()
            .map(|target| match target {
                Some(None) => Some(ArrowType::Int64),
                Some(Some(m)) => catalog.lookup_series(&device, m).map(|h| crate::convert::arrow_type(h.data_type)),
                None => None,
            })
            .collect()
    }

    /// Execute a prepared TSQL INSERT ([`prepared_insert`], scanned once at
    /// Parse) with bound parameters: the values go straight into its rows,
    /// no statement text is built or tokenised. A value it cannot take as
    /// it is (an ISO time as text, a date) is bound as text, as before.
    pub async fn execute_prepared_insert(&mut self, insert: Arc<crate::tsql::PreparedInsert>, sql: &str, params: Vec<ScalarValue>) -> Result<QueryOutput> {
        let instance = self.instance.clone();
        let gate = self.gate.clone().lock_owned().await;
        // `Err(params)`: bind them as text instead.
        let ran = tokio::task::spawn_blocking(move || -> Result<std::result::Result<QueryOutput, Vec<ScalarValue>>> {
            let _gate = gate;
            let texts = insert.param_texts(&params);
            let Some(raw) = insert.bind(&params, &texts)? else {
                drop(texts);
                return Ok(Err(params));
            };
            let mut group = crate::planner::InsertGroup::default();
            let mut pending = PendingCommits::default();
            let inserted = crate::planner::insert_scanned(&instance, &raw, 0, &mut group, &mut pending).and_then(|output| group.write(&mut pending).map(|()| output));
            // What was written is durable before the answer, error or not.
            let durable = pending.wait();
            match inserted {
                Ok(output) => durable.map(|()| Ok(output)),
                Err(GroupError { error, .. }) => Err(durable.err().unwrap_or(error)),
            }
        })
        .await
        .map_err(|e| Error::Unsupported(format!("statement task failed: {e}")))??;
        match ran {
            Ok(output) => Ok(self.in_session_zone(output)),
            Err(params) => self.execute_with_params(sql, params).await,
        }
    }

    /// Execute one statement with bound parameters (extended protocol).
    pub async fn execute_with_params(&mut self, sql: &str, params: Vec<ScalarValue>) -> Result<QueryOutput> {
        if is_empty_query(sql) {
            return Ok(QueryOutput::Empty);
        }
        if crate::tsql::is_tsql(sql) {
            let bound = crate::tsql::bind(sql, &params)?;
            let mut outputs = self.tsql(&bound).await?;
            let output = outputs.pop().ok_or_else(|| Error::Syntax("empty statement".into()))?;
            return Ok(self.in_session_zone(output));
        }
        let mut outputs = self.relational(sql, (!params.is_empty()).then_some(params)).await?;
        if outputs.len() != 1 {
            return Err(Error::Syntax(format!("expected one statement, found {}", outputs.len())));
        }
        Ok(self.in_session_zone(outputs.remove(0)))
    }

    /// Commit a `COPY … FROM STDIN` whose data has all been fed: returns
    /// the rows written (all of them, or an error and none).
    pub async fn copy_finish(&mut self, copy: crate::provider::CopyIn) -> Result<usize> {
        let gate = self.gate.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || {
            let _gate = gate;
            copy.finish()
        })
        .await
        .map_err(|e| Error::Unsupported(format!("COPY task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::{is_empty_query, Session};
    use crate::instance::{Instance, InstanceConfig};
    use crate::output::QueryOutput;
    use datafusion::arrow::array::{Array, Int64Array};
    use futures::TryStreamExt;

    /// The values of the last column of `sql`'s rows, as i64.
    fn last_column(runtime: &tokio::runtime::Runtime, session: &mut Session, sql: &str) -> Vec<Option<i64>> {
        let out = runtime.block_on(session.execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e}")).pop().unwrap();
        let QueryOutput::Rows { stream, .. } = out else { panic!("{sql}: no rows") };
        let batches: Vec<_> = runtime.block_on(stream.try_collect()).unwrap();
        let mut values = Vec::new();
        for b in batches {
            let c = datafusion::arrow::compute::cast(b.column(b.num_columns() - 1), &datafusion::arrow::datatypes::DataType::Int64).unwrap();
            let c = c.as_any().downcast_ref::<Int64Array>().unwrap();
            values.extend((0..c.len()).map(|i| c.is_valid(i).then(|| c.value(i))));
        }
        values
    }

    #[test]
    fn a_repeated_query_text_runs_its_kept_plan_until_the_catalog_changes() {
        let dir = tempfile::tempdir().unwrap();
        let instance = Instance::open(InstanceConfig::new(dir.path())).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let mut session = Session::new(instance).unwrap();
        let kept = |s: &Session| s.plans.lock().unwrap().len();
        for sql in ["CREATE TIMESERIES root.p.d.s WITH DATATYPE=INT64", "INSERT INTO root.p.d(time, s) VALUES (1, 10)"] {
            runtime.block_on(session.execute(sql)).unwrap();
        }
        let tsql = "SELECT s FROM root.p.d";
        let sql = "SELECT time, s FROM \"root.p.d\" ORDER BY time";
        assert_eq!(last_column(&runtime, &mut session, tsql), [Some(10)]);
        assert_eq!(last_column(&runtime, &mut session, sql), [Some(10)]);
        assert_eq!(kept(&session), 2);
        // Data written since shows: plans read storage when they run.
        runtime.block_on(session.execute("INSERT INTO root.p.d(time, s) VALUES (2, 20)")).unwrap();
        assert_eq!(last_column(&runtime, &mut session, tsql), [Some(10), Some(20)]);
        assert_eq!(last_column(&runtime, &mut session, sql), [Some(10), Some(20)]);
        assert_eq!(last_column(&runtime, &mut session, "SELECT count(s) FROM root.p.d"), [Some(2)]);
        assert_eq!(kept(&session), 3);
        // What depends on the time it runs at is planned every time.
        for text in ["SELECT s FROM root.p.d WHERE time < now()", "SELECT CAST(extract(epoch FROM now()) AS BIGINT)", "SELECT count(s) FROM root.p.d GROUP BY (1ms)"] {
            last_column(&runtime, &mut session, text);
        }
        assert_eq!(kept(&session), 3);
        // A new series: the text is planned again and shows it.
        runtime.block_on(session.execute("INSERT INTO root.p.d(time, s, u) VALUES (3, 30, 300)")).unwrap();
        assert_eq!(last_column(&runtime, &mut session, "SELECT * FROM root.p.d"), [None, None, Some(300)]);
        runtime.block_on(session.execute("INSERT INTO root.p.d(time, v) VALUES (4, 4000)")).unwrap();
        assert_eq!(last_column(&runtime, &mut session, "SELECT * FROM root.p.d"), [None, None, None, Some(4000)]);
    }

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
