//! The PostgreSQL wire protocol front end (pgwire): start-up and
//! authentication, simple and extended query, result encoding (arrow-pg).
//!
//! Each connection gets its own [`Connection`] with its own `sql::Session`.
//! Statements run on the query runtime, not on the network runtime, so a
//! long query never stalls other connections' I/O.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow_pg::datatypes::{arrow_schema_to_pg_fields, into_pg_type};
use datafusion::arrow::datatypes::DataType as ArrowType;
use async_trait::async_trait;
use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::record_batch::RecordBatch;
use futures::{stream, Sink, SinkExt, StreamExt};
use pgwire::messages::data::DataRow;
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramAuth};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, AuthSource, LoginInfo, Password,
    ServerParameterProvider, StartupHandler,
};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::copy::CopyHandler;
use pgwire::api::{ConnectionGuard, ConnectionHandle, ConnectionManager};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::data::{NoData, ParameterDescription};
use pgwire::messages::extendedquery::{Describe, TARGET_TYPE_BYTE_STATEMENT};
use pgwire::api::stmt::QueryParser;
use pgwire::api::{ClientInfo, PgWireServerHandlers, PidSecretKeyGenerator, RandomPidSecretKeyGenerator, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use sql::{Description, QueryOutput, Session};
use tokio::sync::{Mutex, Notify};

use crate::config::{AuthMethod, Config};
use crate::copy::{parse_copy, CopyRequest};
use crate::text::write_pg_text;
use crate::errors::{to_pgwire, user_error};

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) instance: Arc<sql::Instance>,
    pub(crate) config: Config,
    pub(crate) in_flight: InFlight,
    /// Runtime that executes statements.
    pub(crate) query_runtime: tokio::runtime::Handle,
    pub(crate) pid_generator: RandomPidSecretKeyGenerator,
    /// Every authenticated connection by (pid, secret key), for cancel requests.
    pub(crate) connections: Arc<ConnectionManager>,
}

/// Counts statements being executed, so shutdown can wait for them.
#[derive(Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    fn enter(&self) -> InFlightGuard<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self)
    }

    /// Wait until no statement is running.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

struct InFlightGuard<'a>(&'a InFlight);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The parameters reported at start-up (DESIGN §8).
pub(crate) struct ArborParameters;

impl ServerParameterProvider for ArborParameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let user = client.metadata().get("user").cloned().unwrap_or_else(|| "root".into());
        let application_name = client.metadata().get("application_name").cloned().unwrap_or_default();
        let params = [
            ("server_version", "15.0"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("IntervalStyle", "postgres"),
            ("TimeZone", "UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("is_superuser", "on"),
            ("in_hot_standby", "off"),
            ("default_transaction_read_only", "off"),
            ("search_path", "public"),
        ];
        let mut map: HashMap<String, String> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.insert("session_authorization".into(), user);
        map.insert("application_name".into(), application_name);
        // The session's values of what the client set at start-up
        // (`TimeZone`, `DateStyle`), as the session will have them.
        for (name, value) in client.metadata() {
            if let Some((name, value)) = Session::startup_setting(name, value) {
                if let Some(reported) = map.get_mut(&name) {
                    *reported = value;
                }
            }
        }
        Some(map)
    }
}

/// The configured user and password, for SCRAM.
#[derive(Debug)]
struct ConfiguredUser {
    user: String,
    password: String,
}

#[async_trait]
impl AuthSource for ConfiguredUser {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        if login.user() != Some(self.user.as_str()) {
            return Err(user_error("28P01", format!("password authentication failed for user \"{}\"", login.user().unwrap_or(""))));
        }
        let salt: Vec<u8> = (0..16).map(|_| rand_byte()).collect();
        Ok(Password::new(Some(salt.clone()), gen_salted_password(&self.password, &salt, 4096)))
    }
}

/// A salt byte; quality randomness is not needed for a salt, uniqueness is.
fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0));
    h.finish() as u8
}

/// Trust authentication with Arbor's start-up parameters.
struct TrustStartup {
    shared: Arc<Shared>,
}

#[async_trait]
impl StartupHandler for TrustStartup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            let (pid, key) = self.shared.pid_generator.generate(client);
            client.set_pid_and_secret_key(pid, key.clone());
            let (handle, guard) = self.shared.connections.register(pid, key);
            client.session_extensions().insert::<Arc<ConnectionHandle>>(handle);
            client.session_extensions().insert::<ConnectionGuard>(guard);
            finish_authentication(client, &ArborParameters).await?;
        }
        Ok(())
    }
}

/// Either authentication method behind one type.
enum Startup {
    Trust(TrustStartup),
    Scram(SASLAuthStartupHandler<ArborParameters>),
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Trust(h) => h.on_startup(client, message).await,
            Startup::Scram(h) => h.on_startup(client, message).await,
        }
    }
}

/// A parsed statement of the extended protocol: its text and description,
/// the parameter types the client gave at Parse, and for a TSQL INSERT its
/// scanned shape, which each Execute binds without parsing the text again.
#[derive(Debug, Clone)]
pub(crate) struct ArborStatement {
    sql: String,
    description: Arc<Description>,
    client_types: Vec<Option<Type>>,
    insert: Option<Arc<sql::tsql::PreparedInsert>>,
}

/// Parses (describes) statements with the connection's session.
pub(crate) struct ArborQueryParser {
    connection: Arc<ConnectionState>,
}

#[async_trait]
impl QueryParser for ArborQueryParser {
    type Statement = ArborStatement;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<ArborStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        self.connection.apply_startup(_client).await;
        let text = sql.to_string();
        let description = self.connection.run(move |s| Box::pin(async move { s.describe(&text).await })).await?;
        let insert = sql::prepared_insert(sql);
        Ok(Some(ArborStatement { sql: sql.to_string(), description: Arc::new(description), client_types: types.to_vec(), insert }))
    }

    /// The types the client gave at Parse win (as in PostgreSQL); the others
    /// are the description's.
    fn get_parameter_types(&self, stmt: &ArborStatement) -> PgWireResult<Vec<Type>> {
        stmt.description
            .parameters
            .iter()
            .enumerate()
            .map(|(i, t)| match (stmt.client_types.get(i).cloned().flatten(), t) {
                (Some(given), _) if given != Type::UNKNOWN => Ok(given),
                (_, Some(t)) => alias_array_type(t).map_or_else(|| into_pg_type(t), Ok),
                (_, None) => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(&self, stmt: &ArborStatement, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.description.schema {
            Some(schema) => pg_fields(schema, format.unwrap_or(&Format::UnifiedText)),
            None => Ok(Vec::new()),
        }
    }
}

type SessionFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = sql::Result<T>> + Send + 'a>>;

/// Per-connection state: the session, run on the query runtime.
pub(crate) struct ConnectionState {
    shared: Arc<Shared>,
    session: Arc<Mutex<Session>>,
    /// A `COPY … FROM STDIN` waiting for its data.
    pending_copy: std::sync::Mutex<Option<PendingCopy>>,
    /// Whether the client's start-up parameters reached the session.
    startup_applied: std::sync::atomic::AtomicBool,
    /// The values of the [`REPORTED`] parameters the client was last told.
    reported: std::sync::Mutex<HashMap<String, String>>,
    /// The session's settings version they were compared at.
    reported_version: std::sync::atomic::AtomicU64,
}

/// The parameters PostgreSQL reports with a ParameterStatus message
/// whenever a statement changes them (`SET TIME ZONE …`): drivers such as
/// psycopg and asyncpg read the session's `TimeZone` from it.
const REPORTED: &[&str] = &["TimeZone", "DateStyle", "IntervalStyle", "application_name", "standard_conforming_strings", "client_encoding"];

/// A `COPY … FROM STDIN` receiving data: each CopyData message is parsed
/// as it arrives (the connection reads the next one only after), so
/// memory stays bounded (see `sql::CopyIn`) and the socket pushes back.
struct PendingCopy {
    copy: Option<sql::CopyIn>,
    /// The first error; later CopyData is ignored until CopyDone.
    failed: Option<sql::Error>,
}

impl ConnectionState {
    /// Hand the client's start-up parameters (`application_name`, `TimeZone`,
    /// …) to the session once, before its first statement.
    async fn apply_startup<C: ClientInfo>(&self, client: &C) {
        if self.startup_applied.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut session = self.session.lock().await;
        for (name, value) in client.metadata() {
            session.set_startup_parameter(name, value);
        }
        // What the start-up ParameterStatus messages said.
        if let (Some(told), Ok(mut reported)) = (ArborParameters.server_parameters(client), self.reported.lock()) {
            reported.extend(told.into_iter().filter(|(k, _)| REPORTED.contains(&k.as_str())));
        }
    }

    /// Tell the client the reported parameters a statement changed.
    async fn report_changes<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin,
        PgWireError: From<C::Error>,
    {
        let changed: Vec<(String, String)> = {
            let session = self.session.lock().await;
            let version = session.settings_version();
            if self.reported_version.swap(version, Ordering::SeqCst) == version {
                return Ok(());
            }
            let Ok(mut reported) = self.reported.lock() else { return Ok(()) };
            REPORTED
                .iter()
                .filter_map(|name| {
                    let value = session.setting(name)?;
                    (reported.get(*name) != Some(&value)).then(|| {
                        reported.insert(name.to_string(), value.clone());
                        (name.to_string(), value)
                    })
                })
                .collect()
        };
        for (name, value) in changed {
            client.feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(name, value))).await?;
        }
        Ok(())
    }

    /// Run `f` with the session on the query runtime; errors become ErrorResponses.
    async fn run<T, F>(&self, f: F) -> PgWireResult<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Session) -> SessionFuture<'a, T> + Send + 'static,
    {
        let session = self.session.clone();
        let shared = self.shared.clone();
        let task = self.shared.query_runtime.spawn(async move {
            let _guard = shared.in_flight.enter();
            let mut session = session.lock().await;
            f(&mut session).await
        });
        // A cancel request drops this future: the statement's task goes with it.
        let mut task = AbortOnDrop(task);
        match (&mut task.0).await {
            Ok(result) => result.map_err(to_pgwire),
            Err(e) => Err(user_error("XX000", format!("statement failed: {e}"))),
        }
    }
}

/// Aborts a spawned statement when its caller stops waiting (cancel, disconnect).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The handlers of one connection.
pub(crate) struct Connection {
    state: Arc<ConnectionState>,
    parser: Arc<ArborQueryParser>,
    startup: Arc<Startup>,
    handler: Arc<QueryHandler>,
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>) -> sql::Result<Connection> {
        let session = Session::new(shared.instance.clone())?;
        let state = Arc::new(ConnectionState {
            shared: shared.clone(),
            session: Arc::new(Mutex::new(session)),
            pending_copy: std::sync::Mutex::new(None),
            startup_applied: std::sync::atomic::AtomicBool::new(false),
            reported: std::sync::Mutex::new(HashMap::new()),
            reported_version: std::sync::atomic::AtomicU64::new(u64::MAX),
        });
        let startup = match shared.config.auth.method {
            AuthMethod::Trust => Startup::Trust(TrustStartup { shared: shared.clone() }),
            AuthMethod::ScramSha256 => {
                let mut scram = ScramAuth::new(Arc::new(ConfiguredUser {
                    user: shared.config.auth.user.clone(),
                    password: shared.config.auth.password.clone(),
                }));
                scram.set_iterations(4096);
                Startup::Scram(
                    SASLAuthStartupHandler::new(Arc::new(ArborParameters))
                        .with_scram(scram)
                        .with_connection_manager(shared.connections.clone()),
                )
            }
        };
        let parser = Arc::new(ArborQueryParser { connection: state.clone() });
        let handler = Arc::new(QueryHandler { state: state.clone(), parser: parser.clone() });
        Ok(Connection { state, parser, startup: Arc::new(startup), handler })
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.handler.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.handler.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        let _ = (&self.state, &self.parser);
        self.startup.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.handler.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::new(DefaultCancelHandler::new(self.state.shared.connections.clone()))
    }
}

/// Executes statements for one connection.
pub(crate) struct QueryHandler {
    state: Arc<ConnectionState>,
    parser: Arc<ArborQueryParser>,
}

/// The RowDescription fields of `schema`: a column read straight from a
/// device table names the table's OID and its column number, as
/// PostgreSQL's do (pgJDBC's `getBaseTableName`, psqlODBC).
fn pg_fields(schema: &datafusion::arrow::datatypes::Schema, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    let fields = arrow_schema_to_pg_fields(schema, format, None)?;
    Ok(fields
        .into_iter()
        .zip(schema.fields())
        .map(|(info, field)| {
            let table = field.metadata().get(sql::provider::TABLE_OID_KEY).and_then(|v| v.parse::<i32>().ok());
            let column = field.metadata().get(sql::provider::ATTNUM_KEY).and_then(|v| v.parse::<i16>().ok());
            let datatype = vector_type(field).or_else(|| alias_array_type(field.data_type())).unwrap_or_else(|| info.datatype().clone());
            FieldInfo::new(info.name().to_string(), table.zip(column).map(|t| t.0), table.zip(column).map(|t| t.1), datatype, info.format())
        })
        .collect())
}

/// The PostgreSQL vector type a list column is marked as
/// (`pg_index.indkey` is an `int2vector`, `indclass` an `oidvector`).
fn vector_type(field: &datafusion::arrow::datatypes::Field) -> Option<Type> {
    match field.metadata().get(sql::provider::VECTOR_TYPE_KEY)?.as_str() {
        "int2vector" => Some(Type::INT2_VECTOR),
        "oidvector" => Some(Type::OID_VECTOR),
        _ => None,
    }
}

/// Whether `field` is an `int2vector` or `oidvector` over a list `column`,
/// whose cells [`put_vector_cell`] writes.
fn vector_cells(column: &ArrayRef, field: &FieldInfo) -> bool {
    matches!(*field.datatype(), Type::INT2_VECTOR | Type::OID_VECTOR) && matches!(column.data_type(), ArrowType::List(_))
}

/// Append the vector cell at row `r` of the list `column`: its length, then
/// PostgreSQL's form of an `int2vector`/`oidvector`: in text the elements
/// separated by spaces (`1 2`), in binary a one-dimensional array of `int2`
/// or `oid` counted from 0 (`int2vectorsend`); -1 for NULL.
fn put_vector_cell(buf: &mut BytesMut, column: &dyn Array, r: usize, field: &FieldInfo) -> PgWireResult<()> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Int16Type, Int32Type};
    use std::fmt::Write;
    if column.is_null(r) {
        buf.put_i32(-1);
        return Ok(());
    }
    let failed = || PgWireError::ApiError(format!("cannot write a {} value as {}", column.data_type(), field.datatype()).into());
    let list = column.as_list_opt::<i32>().ok_or_else(failed)?;
    let elements = list.value(r);
    if elements.null_count() > 0 {
        return Err(failed());
    }
    // int2 elements as themselves; oids (stored as int4) unsigned.
    let values: Vec<i64> = match elements.data_type() {
        ArrowType::Int16 => elements.as_primitive::<Int16Type>().values().iter().map(|v| i64::from(*v)).collect(),
        ArrowType::Int32 => elements.as_primitive::<Int32Type>().values().iter().map(|v| i64::from(u32::from_ne_bytes(v.to_ne_bytes()))).collect(),
        _ => return Err(failed()),
    };
    let at = buf.len();
    buf.put_i32(0);
    if field.format() == FieldFormat::Binary {
        let int2 = *field.datatype() == Type::INT2_VECTOR;
        let count = i32::try_from(values.len()).map_err(|_| failed())?;
        buf.put_i32(1); // dimensions
        buf.put_i32(0); // no NULLs
        buf.put_u32(if int2 { Type::INT2.oid() } else { Type::OID.oid() });
        buf.put_i32(count);
        buf.put_i32(0); // lower bound
        for v in values {
            if int2 {
                buf.put_i32(2);
                buf.put_i16(i16::try_from(v).map_err(|_| failed())?);
            } else {
                buf.put_i32(4);
                buf.put_u32(u32::try_from(v).map_err(|_| failed())?);
            }
        }
    } else {
        for (k, v) in values.iter().enumerate() {
            if k > 0 {
                buf.put_u8(b' ');
            }
            write!(buf, "{v}").map_err(|_| failed())?;
        }
    }
    let len = i32::try_from(buf.len() - at - 4).map_err(|_| failed())?;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The PostgreSQL array type of a list whose elements are oids or an oid
/// alias (`array_agg(atttypid)` is `oid[]`, not `int4[]`, and so is a
/// `$1::oid[]` parameter): arrow-pg reads the `pg.oid_alias` mark of a
/// column, not of a list's elements. Binary
/// arrays name their element type, so the element OID follows too (the
/// values are the same 4 bytes as `int4`'s).
fn alias_array_type(datatype: &ArrowType) -> Option<Type> {
    let element = match datatype {
        ArrowType::List(e) | ArrowType::LargeList(e) | ArrowType::FixedSizeList(e, _) => e,
        _ => return None,
    };
    let kind = element.metadata().get(arrow_pg::datatypes::PG_OID_ALIAS_KEY)?;
    let element = arrow_pg::datatypes::pg_type_for_alias_kind(kind)?;
    [
        (Type::OID, Type::OID_ARRAY),
        (Type::REGPROC, Type::REGPROC_ARRAY),
        (Type::REGPROCEDURE, Type::REGPROCEDURE_ARRAY),
        (Type::REGOPER, Type::REGOPER_ARRAY),
        (Type::REGOPERATOR, Type::REGOPERATOR_ARRAY),
        (Type::REGCLASS, Type::REGCLASS_ARRAY),
        (Type::REGTYPE, Type::REGTYPE_ARRAY),
        (Type::REGNAMESPACE, Type::REGNAMESPACE_ARRAY),
        (Type::REGROLE, Type::REGROLE_ARRAY),
        (Type::REGCONFIG, Type::REGCONFIG_ARRAY),
        (Type::REGDICTIONARY, Type::REGDICTIONARY_ARRAY),
        (Type::REGCOLLATION, Type::REGCOLLATION_ARRAY),
    ]
    .into_iter()
    .find_map(|(e, array)| (e == element).then_some(array))
}

/// The wire response of one statement's output.
fn to_response(output: QueryOutput, format: &Format, cancel: Option<Arc<ConnectionHandle>>) -> PgWireResult<Response> {
    match output {
        QueryOutput::Empty => Ok(Response::EmptyQuery),
        QueryOutput::Command { tag, rows } => {
            let upper = tag.to_ascii_uppercase();
            let verb = upper.split_whitespace().next().unwrap_or("").to_string();
            let mut t = match verb.as_str() {
                "INSERT" => Tag::new("INSERT").with_oid(0),
                _ => Tag::new(&tag),
            };
            if let Some(n) = rows {
                t = t.with_rows(n);
            }
            Ok(match upper.as_str() {
                "BEGIN" | "START TRANSACTION" => Response::TransactionStart(t),
                "COMMIT" | "ROLLBACK" | "END" | "ABORT" => Response::TransactionEnd(t),
                _ => Response::Execution(t),
            })
        }
        QueryOutput::Rows { schema, stream } => {
            let fields = Arc::new(pg_fields(&schema, format)?);
            let row_fields = fields.clone();
            // Rows are encoded and sent batch by batch as the plan produces them.
            let rows = stream.flat_map(move |batch| {
                let encoded = match batch {
                    Ok(batch) => encode_batch(&batch, &row_fields),
                    Err(e) => vec![Err(to_pgwire(sql::Error::DataFusion(e)))],
                };
                stream::iter(encoded)
            });
            let rows = Cancellable { rows: Box::pin(rows), handle: cancel, cancel: CancelState::Idle };
            Ok(Response::Query(QueryResponse::new(fields, rows)))
        }
    }
}

/// Rows that stop with 57014 when a cancel request arrives while they are
/// being produced and sent (pgwire watches for cancels only until the
/// handler returns; rows stream after that).
struct Cancellable {
    rows: std::pin::Pin<Box<dyn futures::Stream<Item = PgWireResult<DataRow>> + Send>>,
    handle: Option<Arc<ConnectionHandle>>,
    cancel: CancelState,
}

enum CancelState {
    /// Not yet listening (the receiver is made on the first poll).
    Idle,
    Starting(futures::future::BoxFuture<'static, futures::channel::oneshot::Receiver<()>>),
    Listening(futures::channel::oneshot::Receiver<()>),
    /// No cancel can arrive any more, or one did and was reported.
    Off,
}

impl futures::Stream for Cancellable {
    type Item = PgWireResult<DataRow>;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        loop {
            match &mut this.cancel {
                CancelState::Idle => match this.handle.take() {
                    Some(h) => {
                        // The future yields the receiver to listen on, itself a future.
                        #[allow(clippy::async_yields_async)]
                        let start = Box::pin(async move { h.start_query().await });
                        this.cancel = CancelState::Starting(start);
                    }
                    None => this.cancel = CancelState::Off,
                },
                CancelState::Starting(f) => match f.as_mut().poll(cx) {
                    Poll::Ready(rx) => this.cancel = CancelState::Listening(rx),
                    Poll::Pending => break,
                },
                CancelState::Listening(rx) => match std::pin::Pin::new(rx).poll(cx) {
                    Poll::Ready(Ok(())) => {
                        this.cancel = CancelState::Off;
                        // Dropping the rows stops the plan (and its storage reads).
                        this.rows = Box::pin(stream::empty());
                        return Poll::Ready(Some(Err(user_error("57014", "canceling statement due to user request"))));
                    }
                    Poll::Ready(Err(_)) => this.cancel = CancelState::Off,
                    Poll::Pending => break,
                },
                CancelState::Off => break,
            }
        }
        this.rows.as_mut().poll_next(cx)
    }
}

/// Whether text cells of `column` are written straight into the row
/// buffer (the common types), rather than through arrow-pg's encoder.
fn direct_text(column: &ArrayRef, field: &FieldInfo) -> bool {
    field.format() == FieldFormat::Text
        && matches!(
            column.data_type(),
            ArrowType::Boolean
                | ArrowType::Int8
                | ArrowType::Int16
                | ArrowType::Int32
                | ArrowType::Int64
                | ArrowType::Float32
                | ArrowType::Float64
                | ArrowType::Timestamp(..)
                | ArrowType::Utf8
                | ArrowType::LargeUtf8
                | ArrowType::Utf8View
        )
}

/// Append the text cell at row `r` of `column` (a [`direct_text`] type):
/// its length, then its PostgreSQL text; -1 for NULL.
fn put_text_cell(buf: &mut BytesMut, column: &dyn Array, r: usize) -> PgWireResult<()> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Int16Type, Int32Type, Int64Type, Int8Type};
    use std::fmt::Write;
    if column.is_null(r) {
        buf.put_i32(-1);
        return Ok(());
    }
    let at = buf.len();
    buf.put_i32(0);
    let failed = || PgWireError::ApiError(format!("cannot write a {} value as text", column.data_type()).into());
    let written = match column.data_type() {
        ArrowType::Int8 => write!(buf, "{}", column.as_primitive::<Int8Type>().value(r)),
        ArrowType::Int16 => write!(buf, "{}", column.as_primitive::<Int16Type>().value(r)),
        ArrowType::Int32 => write!(buf, "{}", column.as_primitive::<Int32Type>().value(r)),
        ArrowType::Int64 => write!(buf, "{}", column.as_primitive::<Int64Type>().value(r)),
        ArrowType::Utf8 => buf.write_str(column.as_string::<i32>().value(r)),
        ArrowType::LargeUtf8 => buf.write_str(column.as_string::<i64>().value(r)),
        ArrowType::Utf8View => buf.write_str(column.as_string_view().value(r)),
        _ => match write_pg_text(buf, column, r) {
            Ok(true) => Ok(()),
            _ => return Err(failed()),
        },
    };
    written.map_err(|_| failed())?;
    let len = i32::try_from(buf.len() - at - 4).map_err(|_| failed())?;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The DataRows of one batch. Text cells of the common types, and vector
/// cells, are written straight into one buffer the rows are split from;
/// the others go through arrow-pg's encoder.
fn encode_batch(batch: &RecordBatch, fields: &Arc<Vec<FieldInfo>>) -> Vec<PgWireResult<DataRow>> {
    let schema = batch.schema();
    let columns = batch.columns();
    let mut fallback: Vec<Option<DataRowEncoder>> = columns
        .iter()
        .zip(fields.iter())
        .map(|(c, f)| (!direct_text(c, f) && !vector_cells(c, f)).then(|| DataRowEncoder::new(Arc::new(vec![f.clone()]))))
        .collect();
    let vectors: Vec<bool> = columns.iter().zip(fields.iter()).map(|(c, f)| vector_cells(c, f)).collect();
    let mut buf = BytesMut::with_capacity(batch.num_rows() * columns.len() * 16);
    let mut rows = Vec::with_capacity(batch.num_rows());
    for r in 0..batch.num_rows() {
        let row = (|| -> PgWireResult<DataRow> {
            for (c, column) in columns.iter().enumerate() {
                match &mut fallback[c] {
                    None if vectors[c] => put_vector_cell(&mut buf, column.as_ref(), r, &fields[c])?,
                    None => put_text_cell(&mut buf, column.as_ref(), r)?,
                    Some(encoder) => {
                        arrow_pg::encoder::encode_value(encoder, column, r, schema.field(c), &fields[c])?;
                        buf.extend_from_slice(&encoder.take_row().data);
                    }
                }
            }
            let count = i16::try_from(columns.len()).map_err(|_| PgWireError::ApiError("too many columns".into()))?;
            Ok(DataRow::new(buf.split(), count))
        })();
        let failed = row.is_err();
        rows.push(row);
        if failed {
            break;
        }
    }
    rows
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + pgwire::api::ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.state.apply_startup(_client).await;
        if let Some(request) = parse_copy(query) {
            return self.start_copy(request.map_err(|e| user_error("42601", e))?).await;
        }
        let text = query.to_string();
        let outputs = self.state.run(move |s| Box::pin(async move { s.execute(&text).await })).await;
        self.state.report_changes(_client).await?;
        let outputs = outputs?;
        let handle = _client.session_extensions().get::<Arc<ConnectionHandle>>().map(|h| (*h).clone());
        outputs
            .into_iter()
            .map(|o| {
                // A BINARY cursor's rows are binary even in the simple protocol.
                let binary = matches!(&o, QueryOutput::Rows { schema, .. } if schema.metadata().contains_key(sql::BINARY_RESULTS_KEY));
                to_response(o, if binary { &Format::UnifiedBinary } else { &Format::UnifiedText }, handle.clone())
            })
            .collect()
    }
}

impl QueryHandler {
    async fn start_copy(&self, request: CopyRequest) -> PgWireResult<Vec<Response>> {
        match request {
            CopyRequest::FromStdin { table, columns, options } => {
                let format = i8::from(options.binary);
                // Unknown tables and columns are refused before any data is sent.
                let copy = sql::CopyIn::start(self.state.shared.instance.clone(), &table, &columns, options).map_err(to_pgwire)?;
                let n = copy.column_count();
                let mut pending = self.state.pending_copy.lock().map_err(|_| user_error("XX000", "connection state poisoned"))?;
                *pending = Some(PendingCopy { copy: Some(copy), failed: None });
                Ok(vec![Response::CopyIn(CopyResponse::new(format, n, stream::empty()))])
            }
            CopyRequest::ToStdout { query, options } => {
                let format = i8::from(options.binary);
                let outputs = self.state.run(move |s| Box::pin(async move { s.execute(&query).await })).await?;
                let output = outputs.into_iter().next().ok_or_else(|| user_error("42601", "COPY TO needs a query"))?;
                let QueryOutput::Rows { schema, stream } = output else {
                    return Err(user_error("0A000", "COPY TO needs a query that returns rows"));
                };
                let columns = schema.fields().len();
                let encoder = crate::copy::CopyOutEncoder::new(&schema, options).map_err(|e| user_error("0A000", e))?;
                // Rows go out as the query produces them, one CopyData each.
                let rows = stream::unfold((stream, encoder, false), |(mut stream, mut encoder, done)| async move {
                    if done {
                        return None;
                    }
                    match stream.next().await {
                        Some(Ok(batch)) => {
                            let rows = encoder.encode(&batch).map_err(|e| user_error("XX000", e));
                            let chunk: Vec<PgWireResult<CopyData>> = match rows {
                                Ok(rows) => rows.into_iter().map(|r| Ok(CopyData::new(r.into()))).collect(),
                                Err(e) => vec![Err(e)],
                            };
                            Some((stream::iter(chunk), (stream, encoder, false)))
                        }
                        Some(Err(e)) => Some((stream::iter(vec![Err(to_pgwire(sql::Error::DataFusion(e)))]), (stream, encoder, true))),
                        None => {
                            let header: Vec<PgWireResult<CopyData>> = encoder.unsent_header().map(|h| Ok(CopyData::new(h.into()))).into_iter().collect();
                            Some((stream::iter(header), (stream, encoder, true)))
                        }
                    }
                })
                .flatten();
                Ok(vec![Response::CopyOut(CopyResponse::new(format, columns, rows))])
            }
        }
    }
}

#[async_trait]
impl CopyHandler for QueryHandler {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut pending = self.state.pending_copy.lock().map_err(|_| user_error("XX000", "connection state poisoned"))?;
        if let Some(p) = pending.as_mut() {
            if let Some(copy) = p.copy.as_mut() {
                if let Err(e) = copy.feed(&copy_data.data) {
                    // Drop what was parsed at once; the error is reported at CopyDone.
                    p.copy = None;
                    p.failed = Some(e);
                }
            }
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let pending = self.state.pending_copy.lock().map_err(|_| user_error("XX000", "connection state poisoned"))?.take();
        let Some(p) = pending else {
            return Err(user_error("08P01", "CopyDone without a COPY in progress"));
        };
        if let Some(e) = p.failed {
            return Err(to_pgwire(e));
        }
        let Some(copy) = p.copy else {
            return Err(user_error("XX000", "internal error: COPY without its parser"));
        };
        let rows = self.state.run(move |s| Box::pin(async move { s.copy_finish(copy).await })).await?;
        client.send(PgWireBackendMessage::CommandComplete(Tag::new("COPY").with_rows(rows).into())).await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Ok(mut p) = self.state.pending_copy.lock() {
            *p = None;
        }
        user_error("57014", format!("COPY from stdin failed: {}", fail.message))
    }
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = ArborStatement;
    type QueryParser = ArborQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    /// An Execute that asks for every row streams them as the plan produces
    /// them. (pgwire's default gathers a portal's rows into memory before
    /// sending, which would hold a whole result.) Executes with a row limit,
    /// and portals already started, take pgwire's path with suspension.
    async fn on_execute<C>(&self, client: &mut C, message: pgwire::messages::extendedquery::Execute) -> PgWireResult<()>
    where
        C: ClientInfo + pgwire::api::ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::api::portal::PortalExecutionState;
        use pgwire::api::PgWireConnectionState;
        let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(name) {
            Some(Entry::Value(p)) if message.max_rows == 0 && matches!(*p.state().lock().await, PortalExecutionState::Initial) => p,
            _ => return self._on_execute(client, message).await,
        };
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let mut transaction_status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);
        let handle = client.session_extensions().get::<Arc<ConnectionHandle>>().map(|h| (*h).clone());
        let response = match handle {
            Some(h) => {
                let cancel = h.start_query().await;
                match futures::future::select(ExtendedQueryHandler::do_query(self, client, portal.as_ref(), 0), cancel).await {
                    futures::future::Either::Left((result, _)) => result,
                    futures::future::Either::Right(_) => Err(PgWireError::QueryCanceled),
                }
            }
            None => ExtendedQueryHandler::do_query(self, client, portal.as_ref(), 0).await,
        }?;
        *portal.state().lock().await = PortalExecutionState::Finished;
        match response {
            Response::Query(results) => pgwire::api::query::send_query_response(client, results, false).await?,
            Response::EmptyQuery => {
                client.feed(PgWireBackendMessage::EmptyQueryResponse(pgwire::messages::response::EmptyQueryResponse::new())).await?
            }
            Response::Execution(tag) => pgwire::api::query::send_execution_response(client, tag).await?,
            Response::TransactionStart(tag) => {
                pgwire::api::query::send_execution_response(client, tag).await?;
                transaction_status = transaction_status.to_in_transaction_state();
            }
            Response::TransactionEnd(tag) => {
                pgwire::api::query::send_execution_response(client, tag).await?;
                transaction_status = transaction_status.to_idle_state();
                client.portal_store().rm_portal(pgwire::api::DEFAULT_NAME);
            }
            Response::Error(e) => {
                client.send(PgWireBackendMessage::ErrorResponse((*e).into())).await?;
                transaction_status = transaction_status.to_error_state();
            }
            Response::CopyIn(result) => {
                client.set_state(PgWireConnectionState::CopyInProgress(true));
                pgwire::api::copy::send_copy_in_response(client, result).await?;
            }
            Response::CopyOut(result) => pgwire::api::copy::send_copy_out_response(client, result).await?,
            Response::CopyBoth(result) => {
                client.set_state(PgWireConnectionState::CopyInProgress(true));
                pgwire::api::copy::send_copy_both_response(client, result).await?;
            }
        }
        if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            client.set_state(PgWireConnectionState::ReadyForQuery);
            client.set_transaction_status(transaction_status);
        }
        Ok(())
    }

    /// pgwire answers Describe of a statement that has parameters but no
    /// result columns (an INSERT with `$1`) with an empty RowDescription;
    /// PostgreSQL sends NoData, and JDBC takes a RowDescription to mean a
    /// query (its batch update counts become 0). Send NoData there.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + pgwire::api::ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
            if let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name) {
                let response = self.do_describe_statement(client, &stmt).await?;
                if response.fields.is_empty() && !response.parameters.is_empty() {
                    let oids = response.parameters.iter().map(|t| t.oid()).collect();
                    client.send(PgWireBackendMessage::ParameterDescription(ParameterDescription::new(oids))).await?;
                    client.send(PgWireBackendMessage::NoData(NoData::new())).await?;
                    return Ok(());
                }
            }
        }
        // A cursor DECLAREd in SQL is also a portal to PostgreSQL: psycopg
        // describes it by name before FETCHing from it.
        if message.target_type == pgwire::messages::extendedquery::TARGET_TYPE_BYTE_PORTAL {
            let name = message.name.clone().unwrap_or_default();
            if !name.is_empty() && client.portal_store().get_portal(&name).is_none() {
                let schema = self.state.run(move |s| Box::pin(async move { s.cursor_schema(&name) })).await?;
                let fields = pg_fields(&schema, &Format::UnifiedText)?;
                let response = pgwire::api::results::DescribePortalResponse::new(fields);
                return pgwire::api::query::send_describe_response(client, &response).await;
            }
        }
        self._on_describe(client, message).await
    }

    async fn do_query<C>(&self, _client: &mut C, portal: &Portal<Self::Statement>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + pgwire::api::ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let stmt = &portal.statement.statement;
        if let Some(request) = parse_copy(&stmt.sql) {
            let mut responses = self.start_copy(request.map_err(|e| user_error("42601", e))?).await?;
            return responses.pop().ok_or_else(|| user_error("XX000", "COPY produced no response"));
        }
        // A prepared INSERT takes a value of the type the client gave as it
        // is: the series' type decides (42804 naming the series), not a cast here.
        let given = |i: usize| stmt.insert.is_some() && stmt.client_types.get(i).is_some_and(|t| t.as_ref().is_some_and(|t| *t != Type::UNKNOWN));
        let types: Vec<Option<&datafusion::arrow::datatypes::DataType>> =
            stmt.description.parameters.iter().enumerate().map(|(i, t)| if given(i) { None } else { t.as_ref() }).collect();
        let params = match arrow_pg::datatypes::df::deserialize_parameters(portal, &types)? {
            datafusion::common::ParamValues::List(values) => values.into_iter().map(|v| v.value).collect(),
            datafusion::common::ParamValues::Map(_) => {
                return Err(user_error("0A000", "named parameters are not supported"));
            }
        };
        let text = stmt.sql.clone();
        let output = match stmt.insert.clone() {
            Some(insert) => self.state.run(move |s| Box::pin(async move { s.execute_prepared_insert(insert, &text, params).await })).await,
            None => self.state.run(move |s| Box::pin(async move { s.execute_with_params(&text, params).await })).await,
        };
        self.state.report_changes(_client).await?;
        let output = output?;
        let handle = _client.session_extensions().get::<Arc<ConnectionHandle>>().map(|h| (*h).clone());
        to_response(output, &portal.result_column_format, handle)
    }
}
