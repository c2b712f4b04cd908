//! Running TSQL statements that are not queries: schema changes, inserts,
//! deletes, loads and flushes, over the catalog and the storage trait.
//! (`SELECT` and the listings are planned: `select.rs`, `show.rs`.)

use std::collections::BTreeMap;
use std::sync::Arc;

use catalog::{Path, PathPattern, SeriesSpec};
use storage::{Column, SeriesKey, TimeRange, WriteBatch};
use tsfile::{DataType, Values};

use crate::convert::{parse_decimal, Literal, LiteralRef};
use crate::series::{resolve, SeriesRef};
use crate::tsql::ast::{Insert, Statement};
use crate::tsql::RawInsert;

use crate::error::{Error, Result};
use crate::instance::{Instance, PendingCommits};
use crate::output::QueryOutput;

fn pattern(text: &str) -> Result<PathPattern> {
    Ok(PathPattern::parse(text)?)
}

pub(crate) fn create_database(instance: &Instance, path: &str) -> Result<QueryOutput> {
    let path = Path::parse(path)?;
    instance.catalog().create_database(&path)?;
    instance.store(&path.to_string())?;
    Ok(QueryOutput::command("CREATE DATABASE"))
}

pub(crate) fn drop_databases(instance: &Instance, paths: &[String]) -> Result<QueryOutput> {
    for p in paths {
        for dropped in instance.catalog().drop_databases(&pattern(p)?)? {
            instance.drop_engine(&dropped.path.to_string())?;
        }
    }
    Ok(QueryOutput::command("DROP DATABASE"))
}

pub(crate) fn create_timeseries(instance: &Instance, path: &str, spec: SeriesSpec) -> Result<QueryOutput> {
    instance.catalog().create_series(&Path::parse(path)?, spec)?;
    Ok(QueryOutput::command("CREATE TIMESERIES"))
}

pub(crate) fn create_aligned_timeseries(instance: &Instance, device: &str, series: Vec<(String, SeriesSpec)>) -> Result<QueryOutput> {
    instance.catalog().create_aligned_series(&Path::parse(device)?, series)?;
    Ok(QueryOutput::command("CREATE TIMESERIES"))
}

/// DELETE TIMESERIES: drops schema and data.
pub(crate) fn delete_timeseries(instance: &Instance, patterns: &[String]) -> Result<QueryOutput> {
    let patterns: Vec<PathPattern> = patterns.iter().map(|p| pattern(p)).collect::<Result<_>>()?;
    let series = resolve(instance, &patterns);
    delete_series_data(instance, &series, TimeRange::ALL)?;
    for p in &patterns {
        instance.catalog().delete_series(p)?;
    }
    // libpq reads a number after a "DELETE " tag: use a tag it does not parse.
    Ok(QueryOutput::command("DROP TIMESERIES"))
}

fn delete_series_data(instance: &Instance, series: &[SeriesRef], range: TimeRange) -> Result<()> {
    let mut by_db: BTreeMap<&str, Vec<SeriesKey>> = BTreeMap::new();
    for s in series {
        by_db.entry(&s.database).or_default().push(s.key());
    }
    for (db, keys) in by_db {
        instance.store(db)?.delete(&keys, range)?;
    }
    Ok(())
}

/// DELETE FROM paths [WHERE time ...].
pub(crate) fn delete_data(instance: &Instance, patterns: &[String], range: TimeRange) -> Result<QueryOutput> {
    let patterns: Vec<PathPattern> = patterns.iter().map(|p| pattern(p)).collect::<Result<_>>()?;
    let series = resolve(instance, &patterns);
    delete_series_data(instance, &series, range)?;
    Ok(QueryOutput::command("DELETE"))
}

/// The rows of an `INSERT`, however they were read: parsed literals, or
/// values borrowed from the statement text by the fast scanner.
pub(crate) trait InsertRows {
    fn rows(&self) -> usize;
    /// Values in row `row` (the parser keeps rows of any width; the check
    /// against the measurements is the planner's).
    fn width(&self, row: usize) -> usize;
    fn time(&self, row: usize) -> i64;
    fn cell(&self, row: usize, column: usize) -> LiteralRef<'_>;
}

impl InsertRows for [(i64, Vec<Literal>)] {
    fn rows(&self) -> usize {
        self.len()
    }
    fn width(&self, row: usize) -> usize {
        self[row].1.len()
    }
    fn time(&self, row: usize) -> i64 {
        self[row].0
    }
    fn cell(&self, row: usize, column: usize) -> LiteralRef<'_> {
        self[row].1[column].as_ref()
    }
}

impl InsertRows for RawInsert<'_> {
    fn rows(&self) -> usize {
        self.times.len()
    }
    fn width(&self, _row: usize) -> usize {
        self.measurements.len()
    }
    fn time(&self, row: usize) -> i64 {
        self.times[row]
    }
    fn cell(&self, row: usize, column: usize) -> LiteralRef<'_> {
        self.cells[row * self.measurements.len() + column]
    }
}

/// Consecutive INSERTs of one message gathered into one WAL record (one
/// append, one engine lock) instead of one each. Written when a statement
/// of another kind or another database comes, past
/// [`INSERT_GROUP_BYTES_MAX`], and at the end of the run.
#[derive(Default)]
pub(crate) struct InsertGroup {
    store: Option<(catalog::DatabaseId, Arc<dyn storage::SeriesStore>)>,
    batches: Vec<WriteBatch>,
    /// For each batch, the index of its statement in the run.
    statements: Vec<usize>,
    bytes: usize,
}

/// Bytes of batches an [`InsertGroup`] gathers before writing them.
pub(crate) const INSERT_GROUP_BYTES_MAX: usize = 8 << 20;

/// A write of a group that failed: the statement whose batch failed (the
/// statements before it are written), and why.
#[derive(Debug)]
pub(crate) struct GroupError {
    pub(crate) statement: usize,
    pub(crate) error: Error,
}

impl InsertGroup {
    /// Gather the batch of statement `statement`, writing what is gathered
    /// first if it belongs to another database or the group is full.
    fn add(&mut self, instance: &Instance, database: catalog::DatabaseId, statement: usize, batch: WriteBatch, pending: &mut PendingCommits) -> std::result::Result<(), GroupError> {
        let same = self.store.as_ref().is_some_and(|(d, _)| *d == database);
        if !same {
            self.write(pending)?;
            let store = database_path(instance, database).and_then(|path| instance.store(&path)).map_err(|error| GroupError { statement, error })?;
            self.store = Some((database, store));
        }
        self.bytes += batch.times.len() * 8 + batch.columns.iter().map(|c| c.values.len() * 8).sum::<usize>();
        self.batches.push(batch);
        self.statements.push(statement);
        if self.bytes > INSERT_GROUP_BYTES_MAX {
            self.write(pending)?;
        }
        Ok(())
    }

    /// Write what is gathered as one record. If the engine refuses the
    /// group (memory, TTL), the batches are written one by one so exactly
    /// the statements before the failing one are written, as if each had
    /// been written alone.
    pub(crate) fn write(&mut self, pending: &mut PendingCommits) -> std::result::Result<(), GroupError> {
        let batches = std::mem::take(&mut self.batches);
        let statements = std::mem::take(&mut self.statements);
        self.bytes = 0;
        let Some((_, store)) = self.store.as_ref() else { return Ok(()) };
        if batches.is_empty() {
            return Ok(());
        }
        match store.write_group_deferred(&batches) {
            Ok(ticket) => {
                pending.add(Arc::clone(store), ticket);
                Ok(())
            }
            Err(_) => {
                for (statement, b) in statements.iter().zip(&batches) {
                    match store.write_deferred(b) {
                        Ok(ticket) => pending.add(Arc::clone(store), ticket),
                        Err(e) => return Err(GroupError { statement: *statement, error: e.into() }),
                    }
                }
                Ok(())
            }
        }
    }
}

/// Run an `INSERT` the fast scanner read, statement `statement` of a run:
/// its batch joins `group`. A partial insertion's error comes back after
/// its batch is written.
pub(crate) fn insert_scanned(
    instance: &Instance,
    raw: &RawInsert<'_>,
    statement: usize,
    group: &mut InsertGroup,
    pending: &mut PendingCommits,
) -> std::result::Result<QueryOutput, GroupError> {
    let prepared = prepare_insert(instance, raw.device, raw.aligned, &raw.measurements, raw).map_err(|error| GroupError { statement, error })?;
    if let Some((database, batch)) = prepared.write {
        group.add(instance, database, statement, batch, pending)?;
    }
    match prepared.failed {
        None => Ok(QueryOutput::command_with_rows("INSERT", prepared.rows)),
        Some(error) => {
            group.write(pending)?;
            Err(GroupError { statement, error })
        }
    }
}

/// Column `c` of `rows` as values of type `t`, straight into a typed
/// column (no per-cell `Option<Value>` list); an error names the row.
fn typed_column<R: InsertRows + ?Sized>(rows: &R, c: usize, t: DataType, device: &str, measurement: &str) -> Result<(Values, Option<Vec<bool>>)> {
    let n = rows.rows();
    if t == DataType::Double {
        // An ingest stream's commonest column: plain decimals, parsed as
        // `to_value` parses them first, straight into the column; anything
        // else (a NULL, an exponent, text) takes the general loop below.
        let mut doubles = Vec::with_capacity(n);
        let plain = (0..n).all(|r| match rows.cell(r, c) {
            LiteralRef::Integer(s) | LiteralRef::Float(s) => parse_decimal(s.as_bytes()).map(|x| doubles.push(x)).is_some(),
            _ => false,
        });
        if plain {
            return Ok((Values::Double(doubles), None));
        }
    }
    let mut values = Values::with_capacity(t, n);
    let mut validity: Option<Vec<bool>> = None;
    // The series' path, printed only into an error.
    let path = format_args!("{device}.{measurement}");
    for r in 0..n {
        match rows.cell(r, c).to_value(t, path).map_err(|e| prefix_row(e, r + 1))? {
            Some(v) => {
                values.push(v).map_err(|e| Error::Unsupported(format!("internal error: {device}.{measurement}: {e}")))?;
                if let Some(valid) = validity.as_mut() {
                    valid.push(true);
                }
            }
            None => validity.get_or_insert_with(|| vec![true; r]).push(false),
        }
    }
    Ok((values, validity))
}

/// INSERT INTO device(timestamp, m1, m2 …) VALUES (…): every row is checked
/// before anything is written; an error names the row (1-based).
pub(crate) fn insert<M: AsRef<str>, R: InsertRows + ?Sized>(
    instance: &Instance,
    device: &str,
    aligned: bool,
    measurements: &[M],
    rows: &R,
    pending: &mut PendingCommits,
) -> Result<QueryOutput> {
    let prepared = prepare_insert(instance, device, aligned, measurements, rows)?;
    if let Some((database, batch)) = prepared.write {
        let store = instance.store(&database_path(instance, database)?)?;
        let ticket = store.write_deferred(&batch)?;
        pending.add(store, ticket);
    }
    match prepared.failed {
        None => Ok(QueryOutput::command_with_rows("INSERT", prepared.rows)),
        Some(e) => Err(e),
    }
}

/// An INSERT checked and converted: the batch to write (with its
/// database), and the error of IoTDB's partial insertion, reported once
/// the rest is written.
struct PreparedInsert {
    write: Option<(catalog::DatabaseId, WriteBatch)>,
    failed: Option<Error>,
    rows: usize,
}

fn prepare_insert<M: AsRef<str>, R: InsertRows + ?Sized>(
    instance: &Instance,
    device: &str,
    aligned: bool,
    measurements: &[M],
    rows: &R,
) -> Result<PreparedInsert> {
    let catalog = instance.catalog();
    // The device's series, under one catalog read: text that is a known
    // device's canonical path needs no parsing (the usual case of a stream
    // of INSERTs); anything else is parsed and printed canonically first.
    let (device_text, found) = match catalog.lookup_device_series(device, measurements) {
        Some(found) => (device.to_string(), found),
        None => {
            let device_text = Path::parse(device)?.to_string();
            let found = catalog.lookup_device_series(&device_text, measurements).unwrap_or_else(|| vec![None; measurements.len()]);
            (device_text, found)
        }
    };
    for i in 0..rows.rows() {
        if rows.width(i) != measurements.len() {
            return Err(Error::Syntax(format!("row {}: {} values for {} measurements", i + 1, rows.width(i), measurements.len())));
        }
    }
    // IoTDB's partial insertion: a measurement whose values do not fit its
    // series fails alone; the others are written and the error names it.
    let mut failed: Vec<(String, Error)> = Vec::new();
    // The type of each measurement: the existing series', else inferred from its first non-null value.
    let mut types = Vec::with_capacity(measurements.len());
    let mut columns: Vec<(Values, Option<Vec<bool>>)> = Vec::with_capacity(measurements.len());
    for (c, m) in measurements.iter().enumerate() {
        let m = m.as_ref();
        let t = match &found[c] {
            Some((h, _)) => h.data_type,
            None => match (0..rows.rows()).find_map(|r| rows.cell(r, c).kind()) {
                Some(kind) => catalog.infer_type(kind),
                None => match (0..rows.rows()).find(|r| matches!(rows.cell(*r, c), LiteralRef::Blob(_))) {
                    Some(_) => DataType::Blob,
                    // Only NULLs for an unknown series: nothing to create or write.
                    None => continue,
                },
            },
        };
        match typed_column(rows, c, t, &device_text, m) {
            Ok(column) => {
                types.push((c, m, t));
                columns.push(column);
            }
            Err(e @ (Error::TypeMismatch(_) | Error::InvalidValue(_))) => failed.push((m.to_string(), e)),
            Err(e) => return Err(e),
        }
    }
    let mut write = None;
    if !types.is_empty() {
        // Every series known already (the common case): the handles and
        // names looked up above serve, unless the device's alignment
        // differs (then `ensure_series` words the error).
        let known: Vec<catalog::FoundSeries> = types.iter().filter_map(|(c, _, _)| found[*c].clone()).collect();
        let series: Vec<catalog::FoundSeries> = if known.len() == types.len() && known.iter().all(|(h, _)| h.aligned == aligned) {
            known
        } else {
            let wanted: Vec<(&str, DataType)> = types.iter().map(|(_, m, t)| (*m, *t)).collect();
            let handles = catalog.ensure_series(&device_text, &wanted, aligned)?;
            // An alias writes to the series' real measurement name.
            handles
                .into_iter()
                .zip(&types)
                .map(|(h, (_, m, _))| {
                    let name = catalog.measurement_name(h.id).unwrap_or_else(|| Arc::from(*m));
                    (h, name)
                })
                .collect()
        };
        let times: Vec<i64> = (0..rows.rows()).map(|r| rows.time(r)).collect();
        let mut wb = WriteBatch::new(device_text.clone(), series[0].0.aligned, times);
        for (((h, name), (_, m, t)), (values, validity)) in series.iter().zip(&types).zip(columns) {
            if let Err(e) = catalog.check_type(h, *t) {
                failed.push((m.to_string(), e.into()));
                continue;
            }
            let mut column = Column { measurement: name.to_string(), data_type: *t, values, validity };
            crate::convert::round_for_series(h, &mut column.values);
            wb = wb.with_column(column);
        }
        if !wb.columns.is_empty() {
            write = Some((series[0].0.database, wb));
        }
    }
    let mut prepared = PreparedInsert { write, failed: None, rows: rows.rows() };
    if let Some((_, first)) = failed.first() {
        let names: Vec<&str> = failed.iter().map(|(m, _)| m.as_str()).collect();
        let written = measurements.len() - failed.len();
        let cause = match first {
            Error::TypeMismatch(m) | Error::InvalidValue(m) => m.clone(),
            other => other.to_string(),
        };
        let what = format!(
            "failed to insert measurements [{}] of {device_text} ({written} of {} written): {cause}",
            names.join(", "),
            measurements.len()
        );
        prepared.failed = Some(match first {
            Error::InvalidValue(_) => Error::InvalidValue(what),
            _ => Error::TypeMismatch(what),
        });
    }
    Ok(prepared)
}

/// The path of the database with id `id`, as the engines are named.
fn database_path(instance: &Instance, id: catalog::DatabaseId) -> Result<String> {
    match instance.catalog().database_by_id(id) {
        Some(info) => Ok(info.path.to_string()),
        None => Err(Error::Unsupported(format!("internal error: no database with id {id:?}"))),
    }
}

fn prefix_row(e: Error, row: usize) -> Error {
    match e {
        Error::TypeMismatch(m) => Error::TypeMismatch(format!("row {row}: {m}")),
        Error::InvalidValue(m) => Error::InvalidValue(format!("row {row}: {m}")),
        other => other,
    }
}

/// SET TTL / UNSET TTL on the databases a path names (`root.ln`, or
/// `root.ln.**` for everything in it): kept in the catalog, applied to the
/// open engines at once (reads and writes past it see nothing).
fn set_ttl(instance: &Instance, path: &str, ttl_ms: Option<i64>) -> Result<QueryOutput> {
    let databases = path.strip_suffix(".**").unwrap_or(path);
    instance.set_ttl(&pattern(databases)?, ttl_ms)?;
    Ok(QueryOutput::command(if ttl_ms.is_some() { "SET TTL" } else { "UNSET TTL" }))
}

/// FLUSH [databases]: every database's memtables, or those named.
pub(crate) fn flush(instance: &Instance, databases: &[String]) -> Result<QueryOutput> {
    if databases.is_empty() {
        instance.flush_all()?;
    } else {
        for d in databases {
            let path = Path::parse(d)?;
            let info = instance.catalog().database(&path).ok_or_else(|| catalog::Error::DatabaseNotFound { path: path.to_string() })?;
            instance.store(&info.path.to_string())?.flush()?;
        }
    }
    Ok(QueryOutput::command("FLUSH"))
}

/// Run one statement that is not a `SELECT`. Its writes are logged and
/// visible but not yet durable: `pending` collects them, and the caller
/// waits on it before acknowledging (so the statements of one message
/// share WAL syncs).
pub(crate) fn run(instance: &Instance, statement: Statement, pending: &mut PendingCommits) -> Result<QueryOutput> {
    match statement {
        Statement::CreateDatabase { path } => create_database(instance, &path),
        Statement::DropDatabases { paths } => drop_databases(instance, &paths),
        Statement::CreateTimeseries { path, spec } => create_timeseries(instance, &path, spec),
        Statement::CreateAlignedTimeseries { device, series } => create_aligned_timeseries(instance, &device, series),
        Statement::DeleteTimeseries { paths } => delete_timeseries(instance, &paths),
        Statement::DeleteData { paths, range } => delete_data(instance, &paths, range),
        Statement::Insert(Insert { device, aligned, measurements, rows }) => insert(instance, &device, aligned, &measurements, rows.as_slice(), pending),
        Statement::Flush { databases } => flush(instance, &databases),
        Statement::Load { path } => super::load::load(instance, &path),
        Statement::SetTtl { path, ttl_ms } => set_ttl(instance, &path, ttl_ms),
        Statement::Select(_) | Statement::Show(_) => Err(Error::Unsupported("internal error: queries are planned, not run here".into())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::sync::Mutex;
    use storage::{Aggregates, BatchStream, CommitTicket, ScanRequest, SeriesKey as Key, SeriesStore, TimeRange as Range};

    /// A store that refuses every write of device `root.bad` (a group with
    /// one refuses the group whole, as the engine does) and records the
    /// devices it accepted.
    #[derive(Debug, Default)]
    struct RefusingStore {
        written: Mutex<Vec<String>>,
    }

    fn refused() -> storage::Error {
        storage::Error::OutsideTtl { device: "root.bad".into(), time: 0, bound: 1 }
    }

    impl SeriesStore for RefusingStore {
        fn scan(&self, _: ScanRequest) -> storage::Result<BatchStream> {
            Err(storage::Error::Closed)
        }
        fn aggregate(&self, _: &Key, _: Range) -> storage::Result<Aggregates> {
            Err(storage::Error::Closed)
        }
        fn aggregate_windows(&self, _: &Key, _: &[Range]) -> storage::Result<Vec<Aggregates>> {
            Err(storage::Error::Closed)
        }
        fn statistics(&self, _: &str, _: &[String], _: &[Range]) -> storage::Result<storage::DeviceStatistics> {
            Err(storage::Error::Closed)
        }
        fn last(&self, _: &Key) -> storage::Result<Option<(i64, tsfile::Value)>> {
            Err(storage::Error::Closed)
        }
        fn write(&self, batch: &WriteBatch) -> storage::Result<()> {
            self.write_deferred(batch).map(|_| ())
        }
        fn write_deferred(&self, batch: &WriteBatch) -> storage::Result<CommitTicket> {
            self.write_group_deferred(std::slice::from_ref(batch))
        }
        fn wait_durable(&self, _: CommitTicket) -> storage::Result<()> {
            Ok(())
        }
        fn write_group(&self, batches: &[WriteBatch]) -> storage::Result<()> {
            self.write_group_deferred(batches).map(|_| ())
        }
        fn write_group_deferred(&self, batches: &[WriteBatch]) -> storage::Result<CommitTicket> {
            if batches.iter().any(|b| b.device == "root.bad") {
                return Err(refused());
            }
            self.written.lock().unwrap_or_else(|e| e.into_inner()).extend(batches.iter().map(|b| b.device.clone()));
            Ok(CommitTicket::default())
        }
        fn delete(&self, _: &[Key], _: Range) -> storage::Result<()> {
            Err(storage::Error::Closed)
        }
        fn flush(&self) -> storage::Result<()> {
            Ok(())
        }
        fn adopt_file(&self, _: &std::path::Path) -> storage::Result<bool> {
            Ok(false)
        }
    }

    fn batch(device: &str) -> WriteBatch {
        WriteBatch::new(device, false, vec![1]).with_column(Column::full("s", DataType::Int64, Values::Int64(vec![1])))
    }

    #[test]
    fn a_refused_group_writes_exactly_the_statements_before_the_failing_one() {
        let store = Arc::new(RefusingStore::default());
        let mut group = InsertGroup { store: Some((catalog::DatabaseId(1), store.clone())), ..InsertGroup::default() };
        for (i, d) in ["root.a", "root.b", "root.bad", "root.c"].into_iter().enumerate() {
            group.batches.push(batch(d));
            group.statements.push(i);
        }
        let mut pending = PendingCommits::default();
        let err = group.write(&mut pending).unwrap_err();
        assert_eq!(err.statement, 2);
        assert!(matches!(err.error, Error::Storage(storage::Error::OutsideTtl { .. })), "{:?}", err.error);
        assert_eq!(*store.written.lock().unwrap(), ["root.a", "root.b"]);
        assert!(group.batches.is_empty() && group.statements.is_empty());
        // A group the store accepts is one write.
        group.batches.extend([batch("root.c"), batch("root.d")]);
        group.statements.extend([0, 1]);
        group.write(&mut pending).unwrap();
        assert_eq!(*store.written.lock().unwrap(), ["root.a", "root.b", "root.c", "root.d"]);
    }
}
