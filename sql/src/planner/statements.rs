//! Running TSQL statements other than `SELECT`: schema changes, inserts,
//! deletes, listings of the series tree and flushes, over the catalog and
//! the storage trait. Results carry IoTDB's headers.

use std::collections::BTreeMap;
use std::sync::Arc;

use catalog::{Page, Path, PathPattern, SeriesSpec};
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use storage::{Column, SeriesKey, TimeRange, WriteBatch};
use tsfile::{DataType, Value};

use crate::convert::Literal;
use crate::series::{resolve, SeriesRef};
use crate::tsql::ast::{Insert, SeriesFilter, Show, Statement};

use crate::error::{Error, Result};
use crate::instance::{Instance, PendingCommits};
use crate::output::QueryOutput;
use crate::provider::json_map;

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<QueryOutput> {
    let rows = RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::DataFusion(e.into()))?;
    QueryOutput::rows(schema, vec![rows])
}

fn text_result(headers: &[&str], rows: Vec<Vec<Option<String>>>) -> Result<QueryOutput> {
    let schema = Arc::new(Schema::new(headers.iter().map(|h| Field::new(*h, ArrowType::Utf8, true)).collect::<Vec<_>>()));
    let columns = (0..headers.len())
        .map(|c| Arc::new(rows.iter().map(|r| r[c].clone()).collect::<StringArray>()) as ArrayRef)
        .collect();
    batch(schema, columns)
}

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

/// INSERT INTO device(timestamp, m1, m2 …) VALUES (…): every row is checked
/// before anything is written; an error names the row (1-based).
pub(crate) fn insert(
    instance: &Instance,
    device: &str,
    aligned: bool,
    measurements: &[String],
    rows: &[(i64, Vec<Literal>)],
    pending: &mut PendingCommits,
) -> Result<QueryOutput> {
    let device_path = Path::parse(device)?;
    let device_text = device_path.to_string();
    for (i, (_, values)) in rows.iter().enumerate() {
        if values.len() != measurements.len() {
            return Err(Error::Syntax(format!("row {}: {} values for {} measurements", i + 1, values.len(), measurements.len())));
        }
    }
    let catalog = instance.catalog();
    // IoTDB's partial insertion: a measurement whose values do not fit its
    // series fails alone; the others are written and the error names it.
    let mut failed: Vec<(String, Error)> = Vec::new();
    // The type of each measurement: the existing series', else inferred from its first non-null value.
    let mut types = Vec::with_capacity(measurements.len());
    let mut columns: Vec<Vec<Option<Value>>> = Vec::with_capacity(measurements.len());
    for (c, m) in measurements.iter().enumerate() {
        let existing = catalog.lookup_series(&device_text, m).map(|h| h.data_type);
        let t = match existing {
            Some(t) => t,
            None => match rows.iter().find_map(|(_, v)| v[c].kind()) {
                Some(kind) => catalog.infer_type(kind),
                None => match rows.iter().find(|(_, v)| matches!(v[c], Literal::Blob(_))) {
                    Some(_) => DataType::Blob,
                    // Only NULLs for an unknown series: nothing to create or write.
                    None => continue,
                },
            },
        };
        let values: Result<Vec<Option<Value>>> = rows
            .iter()
            .enumerate()
            .map(|(r, (_, values))| values[c].to_value(t, &format!("{device_text}.{m}")).map_err(|e| prefix_row(e, r + 1)))
            .collect();
        match values {
            Ok(values) => {
                types.push((c, m.as_str(), t));
                columns.push(values);
            }
            Err(e @ (Error::TypeMismatch(_) | Error::InvalidValue(_))) => failed.push((m.clone(), e)),
            Err(e) => return Err(e),
        }
    }
    if !types.is_empty() {
        let wanted: Vec<(&str, DataType)> = types.iter().map(|(_, m, t)| (*m, *t)).collect();
        let handles = catalog.ensure_series(&device_text, &wanted, aligned)?;
        let database = catalog
            .database_by_id(handles[0].database)
            .ok_or_else(|| Error::Unsupported(format!("no database for {device_text}")))?
            .path
            .to_string();
        let times: Vec<i64> = rows.iter().map(|(t, _)| *t).collect();
        let mut wb = WriteBatch::new(device_text.clone(), handles[0].aligned, times);
        for ((h, (_, m, t)), values) in handles.iter().zip(&types).zip(&columns) {
            if let Err(e) = catalog.check_type(h, *t) {
                failed.push((m.to_string(), e.into()));
                continue;
            }
            // An alias writes to the series' real measurement name.
            let name = catalog.series_by_id(h.id).map_or_else(|| m.to_string(), |s| s.path.last().to_string());
            let mut column = Column::from_options(name, *t, values)?;
            crate::convert::round_for_series(h, &mut column.values);
            wb = wb.with_column(column);
        }
        if !wb.columns.is_empty() {
            let store = instance.store(&database)?;
            let ticket = store.write_deferred(&wb)?;
            pending.add(store, ticket);
        }
    }
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
        return Err(match first {
            Error::InvalidValue(_) => Error::InvalidValue(what),
            _ => Error::TypeMismatch(what),
        });
    }
    Ok(QueryOutput::command_with_rows("INSERT", rows.len()))
}

fn prefix_row(e: Error, row: usize) -> Error {
    match e {
        Error::TypeMismatch(m) => Error::TypeMismatch(format!("row {row}: {m}")),
        Error::InvalidValue(m) => Error::InvalidValue(format!("row {row}: {m}")),
        other => other,
    }
}

pub(crate) fn show_databases(instance: &Instance, pattern_text: Option<&str>) -> Result<QueryOutput> {
    let p = pattern_text.map(pattern).transpose()?.unwrap_or_else(PathPattern::all);
    let interval = instance.config().engine.time_partition_ms;
    let dbs = instance.catalog().list_databases(&p);
    let schema = Arc::new(Schema::new(vec![
        Field::new("Database", ArrowType::Utf8, false),
        Field::new("TimePartitionInterval", ArrowType::Int64, false),
    ]));
    let names: StringArray = dbs.iter().map(|d| Some(d.path.to_string())).collect();
    let intervals = Int64Array::from(vec![interval; dbs.len()]);
    batch(schema, vec![Arc::new(names), Arc::new(intervals)])
}

pub(crate) fn show_timeseries(
    instance: &Instance,
    pattern_text: Option<&str>,
    filter: Option<&SeriesFilter>,
    limit: Option<usize>,
    offset: usize,
) -> Result<QueryOutput> {
    let p = pattern_text.map(pattern).transpose()?.unwrap_or_else(PathPattern::all);
    let keep = |s: &catalog::SeriesInfo| match filter {
        None => true,
        Some(SeriesFilter::PathContains(t)) => s.path.to_string().contains(t.as_str()),
        Some(SeriesFilter::DataType(t)) => s.handle.data_type == *t,
        Some(SeriesFilter::Tag(k, v)) => s.tags.get(k) == Some(v),
    };
    let rows = instance
        .catalog()
        .list_series_where(&p, Page::new(limit, offset), &keep)
        .into_iter()
        .map(|s| {
            vec![
                Some(s.path.to_string()),
                s.alias.clone(),
                Some(s.database.to_string()),
                Some(s.handle.data_type.to_string()),
                Some(s.handle.encoding.to_string()),
                Some(s.handle.compression.to_string()),
                json_map(&s.tags),
                json_map(&s.attributes),
                None,
                None,
                Some("BASE".to_string()),
            ]
        })
        .collect();
    text_result(&TIMESERIES_HEADERS, rows)
}

/// The columns of SHOW TIMESERIES (IoTDB 2.x).
const TIMESERIES_HEADERS: [&str; 11] =
    ["Timeseries", "Alias", "Database", "DataType", "Encoding", "Compression", "Tags", "Attributes", "Deadband", "DeadbandParameters", "ViewType"];

pub(crate) fn show_devices(instance: &Instance, pattern_text: Option<&str>, with_database: bool, limit: Option<usize>, offset: usize) -> Result<QueryOutput> {
    let p = pattern_text.map(pattern).transpose()?.unwrap_or_else(PathPattern::all);
    let rows = instance
        .catalog()
        .list_devices(&p, Page::new(limit, offset))
        .into_iter()
        .map(|d| {
            let mut row = vec![Some(d.path.to_string())];
            if with_database {
                row.push(Some(d.database.to_string()));
            }
            row.push(Some(d.aligned.to_string()));
            row
        })
        .collect();
    text_result(if with_database { &["Device", "Database", "IsAligned"] } else { &["Device", "IsAligned"] }, rows)
}

/// COUNT NODES pattern LEVEL = n: distinct nodes at level `n` (root is 0)
/// on the paths of the series the pattern matches.
pub(crate) fn count_nodes(instance: &Instance, pattern_text: &str, level: usize) -> Result<QueryOutput> {
    let p = pattern(pattern_text)?;
    let mut nodes = std::collections::BTreeSet::new();
    for s in instance.catalog().list_series(&p, Page::all()) {
        let text = s.path.to_string();
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() > level {
            nodes.insert(parts[..=level].join("."));
        }
    }
    count_result("count(nodes)", nodes.len() as u64)
}

fn count_result(header: &str, n: u64) -> Result<QueryOutput> {
    let schema = Arc::new(Schema::new(vec![Field::new(header, ArrowType::Int64, false)]));
    batch(schema, vec![Arc::new(Int64Array::from(vec![n as i64]))])
}

pub(crate) fn count_timeseries(instance: &Instance, pattern_text: Option<&str>, level: Option<usize>) -> Result<QueryOutput> {
    let p = pattern_text.map(pattern).transpose()?.unwrap_or_else(PathPattern::all);
    match level {
        None => count_result("count(timeseries)", instance.catalog().count_series(&p)),
        Some(level) => {
            let groups = instance.catalog().count_series_by_level(&p, level);
            let schema = Arc::new(Schema::new(vec![
                Field::new("Column", ArrowType::Utf8, false),
                Field::new("count(timeseries)", ArrowType::Int64, false),
            ]));
            let names: StringArray = groups.iter().map(|(p, _)| Some(p.to_string())).collect();
            let counts = Int64Array::from(groups.iter().map(|(_, n)| *n as i64).collect::<Vec<_>>());
            batch(schema, vec![Arc::new(names), Arc::new(counts)])
        }
    }
}

pub(crate) fn count_devices(instance: &Instance, pattern_text: Option<&str>) -> Result<QueryOutput> {
    let p = pattern_text.map(pattern).transpose()?.unwrap_or_else(PathPattern::all);
    count_result("count(devices)", instance.catalog().count_devices(&p))
}

pub(crate) fn count_databases(instance: &Instance, pattern_text: Option<&str>) -> Result<QueryOutput> {
    let p = pattern_text.map(pattern).transpose()?.unwrap_or_else(PathPattern::all);
    count_result("count(database)", instance.catalog().count_databases(&p))
}

/// SHOW CHILD PATHS: the children of `path` (a pattern, default root).
pub(crate) fn show_child_paths(instance: &Instance, path: Option<&str>) -> Result<QueryOutput> {
    let p = pattern(path.unwrap_or("root"))?;
    let rows = instance
        .catalog()
        .child_paths(&p)
        .into_iter()
        .map(|c| vec![Some(c.path.to_string()), Some(c.node_type.to_string())])
        .collect();
    text_result(&["ChildPaths", "NodeTypes"], rows)
}

pub(crate) fn show_child_nodes(instance: &Instance, path: Option<&str>) -> Result<QueryOutput> {
    let p = pattern(path.unwrap_or("root"))?;
    let rows = instance.catalog().child_nodes(&p).into_iter().map(|n| vec![Some(n)]).collect();
    text_result(&["ChildNodes"], rows)
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
        Statement::Insert(Insert { device, aligned, measurements, rows }) => insert(instance, &device, aligned, &measurements, &rows, pending),
        Statement::Flush { databases } => flush(instance, &databases),
        Statement::Load { path } => super::load::load(instance, &path),
        Statement::Show(show) => match show {
            Show::Databases { pattern } => show_databases(instance, pattern.as_deref()),
            Show::Devices { pattern, with_database, limit, offset } => show_devices(instance, pattern.as_deref(), with_database, limit, offset),
            Show::Timeseries { pattern, filter, limit, offset } => show_timeseries(instance, pattern.as_deref(), filter.as_ref(), limit, offset),
            Show::CountNodes { pattern, level } => count_nodes(instance, &pattern, level),
            Show::ChildPaths { pattern } => show_child_paths(instance, pattern.as_deref()),
            Show::ChildNodes { pattern } => show_child_nodes(instance, pattern.as_deref()),
            Show::CountTimeseries { pattern, level } => count_timeseries(instance, pattern.as_deref(), level),
            Show::CountDevices { pattern } => count_devices(instance, pattern.as_deref()),
            Show::CountDatabases { pattern } => count_databases(instance, pattern.as_deref()),
        },
        Statement::Select(_) => Err(Error::Unsupported("internal error: SELECT is planned, not run here".into())),
    }
}

/// The columns a listing returns, known without running it (Describe).
pub(crate) fn show_schema(show: &Show) -> SchemaRef {
    let text = |names: &[&str]| names.iter().map(|n| Field::new(*n, ArrowType::Utf8, true)).collect::<Vec<_>>();
    let count = |header: &str| vec![Field::new(header, ArrowType::Int64, false)];
    let fields = match show {
        Show::Databases { .. } => {
            vec![Field::new("Database", ArrowType::Utf8, false), Field::new("TimePartitionInterval", ArrowType::Int64, false)]
        }
        Show::Devices { with_database: false, .. } => text(&["Device", "IsAligned"]),
        Show::Devices { with_database: true, .. } => text(&["Device", "Database", "IsAligned"]),
        Show::Timeseries { .. } => text(&TIMESERIES_HEADERS),
        Show::CountNodes { .. } => count("count(nodes)"),
        Show::ChildPaths { .. } => text(&["ChildPaths", "NodeTypes"]),
        Show::ChildNodes { .. } => text(&["ChildNodes"]),
        Show::CountTimeseries { level: None, .. } => count("count(timeseries)"),
        Show::CountTimeseries { level: Some(_), .. } => {
            vec![Field::new("Column", ArrowType::Utf8, false), Field::new("count(timeseries)", ArrowType::Int64, false)]
        }
        Show::CountDevices { .. } => count("count(devices)"),
        Show::CountDatabases { .. } => count("count(database)"),
    };
    Arc::new(Schema::new(fields))
}
