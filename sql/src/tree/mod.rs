//! The TSQL executor's operations over the catalog and the storage engines:
//! schema statements, inserts, raw selects aligned by time, aggregates
//! (answered from statistics by the engine where exact), listings and
//! deletes. The statement front end maps each parsed statement onto one
//! of these; results come back as [`QueryOutput`] with IoTDB's headers.

mod front;
mod params;
pub use front::{execute, is_tsql};
pub use params::{bind, parameter_count};

use std::collections::BTreeMap;
use std::sync::Arc;

use catalog::{Page, Path, PathPattern, SeriesSpec};
use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use storage::{Column, SeriesKey, TimeRange, WriteBatch};
use tsfile::{DataType, Value, Values};

pub use crate::convert::Literal;
pub(crate) use crate::convert::{arrow_type, as_f64};
pub use crate::series::{resolve, SeriesRef};

use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::output::QueryOutput;

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

pub fn create_database(instance: &Instance, path: &str) -> Result<QueryOutput> {
    let path = Path::parse(path)?;
    instance.catalog().create_database(&path)?;
    instance.store(&path.to_string())?;
    Ok(QueryOutput::command("CREATE DATABASE"))
}

pub fn drop_databases(instance: &Instance, paths: &[String]) -> Result<QueryOutput> {
    for p in paths {
        for dropped in instance.catalog().drop_databases(&pattern(p)?)? {
            instance.drop_engine(&dropped.path.to_string())?;
        }
    }
    Ok(QueryOutput::command("DROP DATABASE"))
}

pub fn create_timeseries(instance: &Instance, path: &str, spec: SeriesSpec) -> Result<QueryOutput> {
    instance.catalog().create_series(&Path::parse(path)?, spec)?;
    Ok(QueryOutput::command("CREATE TIMESERIES"))
}

pub fn create_aligned_timeseries(instance: &Instance, device: &str, series: Vec<(String, SeriesSpec)>) -> Result<QueryOutput> {
    instance.catalog().create_aligned_series(&Path::parse(device)?, series)?;
    Ok(QueryOutput::command("CREATE TIMESERIES"))
}

/// DELETE TIMESERIES: drops schema and data.
pub fn delete_timeseries(instance: &Instance, patterns: &[String]) -> Result<QueryOutput> {
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
pub fn delete_data(instance: &Instance, patterns: &[String], range: TimeRange) -> Result<QueryOutput> {
    let patterns: Vec<PathPattern> = patterns.iter().map(|p| pattern(p)).collect::<Result<_>>()?;
    let series = resolve(instance, &patterns);
    delete_series_data(instance, &series, range)?;
    Ok(QueryOutput::command("DELETE"))
}

/// INSERT INTO device(timestamp, m1, m2 …) VALUES (…): every row is checked
/// before anything is written; an error names the row (1-based).
pub fn insert(instance: &Instance, device: &str, aligned: bool, measurements: &[String], rows: &[(i64, Vec<Literal>)]) -> Result<QueryOutput> {
    let device_path = Path::parse(device)?;
    let device_text = device_path.to_string();
    for (i, (_, values)) in rows.iter().enumerate() {
        if values.len() != measurements.len() {
            return Err(Error::Syntax(format!("row {}: {} values for {} measurements", i + 1, values.len(), measurements.len())));
        }
    }
    let catalog = instance.catalog();
    // The type of each measurement: the existing series', else inferred from its first non-null value.
    let mut types = Vec::with_capacity(measurements.len());
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
        types.push((c, m.as_str(), t));
    }
    let mut columns: Vec<Vec<Option<Value>>> = vec![Vec::with_capacity(rows.len()); types.len()];
    for (r, (_, values)) in rows.iter().enumerate() {
        for (k, (c, m, t)) in types.iter().enumerate() {
            let v = values[*c]
                .to_value(*t, &format!("{device_text}.{m}"))
                .map_err(|e| prefix_row(e, r + 1))?;
            columns[k].push(v);
        }
    }
    if types.is_empty() {
        return Ok(QueryOutput::command_with_rows("INSERT", 0));
    }
    let wanted: Vec<(&str, DataType)> = types.iter().map(|(_, m, t)| (*m, *t)).collect();
    let handles = catalog.ensure_series(&device_text, &wanted, aligned)?;
    for (h, (_, _, t)) in handles.iter().zip(&types) {
        catalog.check_type(h, *t)?;
    }
    let database = catalog
        .database_by_id(handles[0].database)
        .ok_or_else(|| Error::Unsupported(format!("no database for {device_text}")))?
        .path
        .to_string();
    let times: Vec<i64> = rows.iter().map(|(t, _)| *t).collect();
    let mut wb = WriteBatch::new(device_text.clone(), handles[0].aligned, times);
    for ((h, (_, m, t)), values) in handles.iter().zip(&types).zip(&columns) {
        // An alias writes to the series' real measurement name.
        let name = catalog.series_by_id(h.id).map_or_else(|| m.to_string(), |s| s.path.last().to_string());
        wb = wb.with_column(Column::from_options(name, *t, values)?);
    }
    instance.store(&database)?.write(&wb)?;
    Ok(QueryOutput::command_with_rows("INSERT", rows.len()))
}

fn prefix_row(e: Error, row: usize) -> Error {
    match e {
        Error::TypeMismatch(m) => Error::TypeMismatch(format!("row {row}: {m}")),
        Error::InvalidValue(m) => Error::InvalidValue(format!("row {row}: {m}")),
        other => other,
    }
}

/// Points of one series in time order.
fn scan_points(instance: &Instance, s: &SeriesRef, range: TimeRange) -> Result<(Vec<i64>, Values)> {
    let request = storage::ScanRequest::new(s.info.device_path().to_string(), vec![s.info.path.last().to_string()], range);
    let mut times = Vec::new();
    let mut values = Values::empty(s.data_type());
    for b in instance.store(&s.database)?.scan(request)? {
        let b = b?;
        times.extend_from_slice(&b.times);
        if let Some(c) = b.columns.first() {
            values.extend_from(&c.values).map_err(|e| Error::Storage(e.into()))?;
        }
    }
    Ok((times, values))
}

/// Rows of several series aligned by time: one time column and one
/// optional value per series.
pub struct AlignedRows {
    pub times: Vec<i64>,
    pub columns: Vec<Vec<Option<Value>>>,
}

pub fn align(instance: &Instance, series: &[SeriesRef], range: TimeRange) -> Result<AlignedRows> {
    let data: Vec<(Vec<i64>, Values)> = series.iter().map(|s| scan_points(instance, s, range)).collect::<Result<_>>()?;
    let mut times: Vec<i64> = data.iter().flat_map(|(t, _)| t.iter().copied()).collect();
    times.sort_unstable();
    times.dedup();
    let mut columns = Vec::with_capacity(series.len());
    for (t, v) in &data {
        let mut col = Vec::with_capacity(times.len());
        let mut j = 0;
        for time in &times {
            if j < t.len() && t[j] == *time {
                col.push(Some(v.get(j)));
                j += 1;
            } else {
                col.push(None);
            }
        }
        columns.push(col);
    }
    Ok(AlignedRows { times, columns })
}

/// Decides whether a row (time, values in column order) is kept.
pub type RowFilter<'a> = &'a dyn Fn(i64, &[Option<Value>]) -> Result<bool>;

/// A raw SELECT: `Time` then one column per series (named by its path).
/// `keep` filters rows (value predicates); `desc` orders by time descending.
pub fn select_raw(
    instance: &Instance,
    series: &[SeriesRef],
    range: TimeRange,
    keep: RowFilter<'_>,
    desc: bool,
    limit: Option<usize>,
    offset: usize,
    hidden: usize,
) -> Result<QueryOutput> {
    let rows = align(instance, series, range)?;
    let mut order: Vec<usize> = (0..rows.times.len()).collect();
    if desc {
        order.reverse();
    }
    let mut picked = Vec::new();
    let mut row = Vec::with_capacity(series.len());
    let mut skipped = 0;
    for i in order {
        if limit.is_some_and(|l| picked.len() >= l) {
            break;
        }
        row.clear();
        row.extend(rows.columns.iter().map(|c| c[i].clone()));
        if !keep(rows.times[i], &row)? {
            continue;
        }
        if skipped < offset {
            skipped += 1;
            continue;
        }
        picked.push(i);
    }
    // The trailing `hidden` series are read for the filter only.
    let shown = &series[..series.len() - hidden];
    let mut fields = vec![Field::new("Time", crate::convert::time_type(), false)];
    fields.extend(shown.iter().map(|s| Field::new(s.path(), arrow_type(s.data_type()), true)));
    let schema = Arc::new(Schema::new(fields));
    let mut arrays = vec![crate::convert::time_array(&picked.iter().map(|&i| rows.times[i]).collect::<Vec<_>>())];
    for (c, s) in rows.columns.iter().zip(shown) {
        let values: Vec<Option<Value>> = picked.iter().map(|&i| c[i].clone()).collect();
        arrays.push(crate::convert::array_of(s.data_type(), &values));
    }
    batch(schema, arrays)
}

/// Aggregate functions of TSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    Count,
    Sum,
    Avg,
    MinValue,
    MaxValue,
    FirstValue,
    LastValue,
    MinTime,
    MaxTime,
    Extreme,
}

impl AggFn {
    pub fn parse(name: &str) -> Option<AggFn> {
        Some(match name.to_ascii_lowercase().as_str() {
            "count" => AggFn::Count,
            "sum" => AggFn::Sum,
            "avg" => AggFn::Avg,
            "min_value" => AggFn::MinValue,
            "max_value" => AggFn::MaxValue,
            "first_value" => AggFn::FirstValue,
            "last_value" => AggFn::LastValue,
            "min_time" => AggFn::MinTime,
            "max_time" => AggFn::MaxTime,
            "extreme" => AggFn::Extreme,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            AggFn::Count => "count",
            AggFn::Sum => "sum",
            AggFn::Avg => "avg",
            AggFn::MinValue => "min_value",
            AggFn::MaxValue => "max_value",
            AggFn::FirstValue => "first_value",
            AggFn::LastValue => "last_value",
            AggFn::MinTime => "min_time",
            AggFn::MaxTime => "max_time",
            AggFn::Extreme => "extreme",
        }
    }
}

/// Aggregates without GROUP BY: one row, one column per (function, series),
/// named `count(root.ln.wf01.wt01.status)`. Without a value filter the
/// engine answers from statistics where they are exact.
pub fn aggregate(
    instance: &Instance,
    items: &[(AggFn, SeriesRef)],
    range: TimeRange,
    filter: Option<(&[SeriesRef], RowFilter<'_>)>,
) -> Result<QueryOutput> {
    if items.is_empty() {
        // Nothing matched the paths: an empty result, as IoTDB gives.
        let schema = Arc::new(Schema::empty());
        let options = datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(0));
        let rows = RecordBatch::try_new_with_options(schema.clone(), Vec::new(), &options).map_err(|e| Error::DataFusion(e.into()))?;
        return QueryOutput::rows(schema, vec![rows]);
    }
    let mut fields = Vec::with_capacity(items.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(items.len());
    // With a row filter, aggregate the filtered aligned rows instead; `series`
    // are the row's columns as the filter sees them.
    let filtered = match filter {
        Some((series, keep)) => {
            let rows = align(instance, series, range)?;
            let mut kept: BTreeMap<String, Vec<(i64, Value)>> = BTreeMap::new();
            let mut row = Vec::new();
            for i in 0..rows.times.len() {
                row.clear();
                row.extend(rows.columns.iter().map(|c| c[i].clone()));
                if keep(rows.times[i], &row)? {
                    for (s, v) in series.iter().zip(&row) {
                        if let Some(v) = v {
                            kept.entry(s.path()).or_default().push((rows.times[i], v.clone()));
                        }
                    }
                }
            }
            Some(kept)
        }
        None => None,
    };
    for (f, s) in items {
        let numeric = matches!(s.data_type(), DataType::Int32 | DataType::Int64 | DataType::Float | DataType::Double);
        if matches!(f, AggFn::MinValue | AggFn::MaxValue | AggFn::Extreme) && !numeric {
            return Err(Error::Unsupported(format!("{}() of the {} series {}", f.name(), s.data_type(), s.path())));
        }
        let aggs = match &filtered {
            Some(kept) => aggregates_of(kept.get(&s.path()).map(Vec::as_slice).unwrap_or(&[])),
            None => instance.store(&s.database)?.aggregate(&s.key(), range)?,
        };
        let name = format!("{}({})", f.name(), s.path());
        let t = s.data_type();
        let (field_type, array): (ArrowType, ArrayRef) = match f {
            AggFn::Count => (ArrowType::Int64, Arc::new(Int64Array::from(vec![aggs.count as i64]))),
            AggFn::Sum => (ArrowType::Float64, Arc::new(Float64Array::from(vec![sum_of(t, &aggs)?]))),
            AggFn::Avg => {
                let avg = sum_of(t, &aggs)?.map(|s| s / aggs.count as f64);
                (ArrowType::Float64, Arc::new(Float64Array::from(vec![avg])))
            }
            AggFn::MinValue => (arrow_type(t), crate::convert::array_of(t, std::slice::from_ref(&aggs.min))),
            AggFn::MaxValue => (arrow_type(t), crate::convert::array_of(t, std::slice::from_ref(&aggs.max))),
            AggFn::Extreme => {
                let pick = match (&aggs.min, &aggs.max) {
                    (Some(lo), Some(hi)) => {
                        let (a, b) = (as_f64(lo).unwrap_or(0.0), as_f64(hi).unwrap_or(0.0));
                        Some(if b.abs() >= a.abs() { hi.clone() } else { lo.clone() })
                    }
                    _ => None,
                };
                (arrow_type(t), crate::convert::array_of(t, &[pick]))
            }
            AggFn::FirstValue => (arrow_type(t), crate::convert::array_of(t, &[aggs.first.clone().map(|(_, v)| v)])),
            AggFn::LastValue => (arrow_type(t), crate::convert::array_of(t, &[aggs.last.clone().map(|(_, v)| v)])),
            AggFn::MinTime => (ArrowType::Int64, Arc::new(Int64Array::from(vec![aggs.min_time]))),
            AggFn::MaxTime => (ArrowType::Int64, Arc::new(Int64Array::from(vec![aggs.max_time]))),
        };
        fields.push(Field::new(name, field_type, true));
        arrays.push(array);
    }
    batch(Arc::new(Schema::new(fields)), arrays)
}

fn sum_of(t: DataType, aggs: &storage::Aggregates) -> Result<Option<f64>> {
    match t {
        DataType::Int32 | DataType::Int64 | DataType::Float | DataType::Double => Ok(if aggs.count == 0 { None } else { aggs.sum }),
        _ => Err(Error::Unsupported(format!("sum/avg of a {t} series"))),
    }
}

/// Aggregates of points already in memory (filtered rows).
fn aggregates_of(points: &[(i64, Value)]) -> storage::Aggregates {
    let mut a = storage::Aggregates { count: points.len() as u64, ..Default::default() };
    if points.is_empty() {
        return a;
    }
    a.first = points.first().cloned();
    a.last = points.last().cloned();
    a.min_time = points.first().map(|p| p.0);
    a.max_time = points.last().map(|p| p.0);
    let nums: Vec<f64> = points.iter().filter_map(|(_, v)| as_f64(v)).collect();
    if nums.len() == points.len() && !matches!(points[0].1, Value::Boolean(_)) {
        a.sum = Some(nums.iter().sum());
        let (mut lo, mut hi) = (0, 0);
        for i in 1..points.len() {
            if nums[i] < nums[lo] {
                lo = i;
            }
            if nums[i] > nums[hi] {
                hi = i;
            }
        }
        a.min = Some(points[lo].1.clone());
        a.max = Some(points[hi].1.clone());
    }
    a
}

pub fn show_databases(instance: &Instance, pattern_text: Option<&str>) -> Result<QueryOutput> {
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

fn json_map(m: &BTreeMap<String, String>) -> Option<String> {
    if m.is_empty() {
        return None;
    }
    let body: Vec<String> = m.iter().map(|(k, v)| format!("\"{}\":\"{}\"", escape_json(k), escape_json(v))).collect();
    Some(format!("{{{}}}", body.join(",")))
}

fn escape_json(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

pub fn show_timeseries(instance: &Instance, pattern_text: Option<&str>, limit: Option<usize>, offset: usize) -> Result<QueryOutput> {
    let p = pattern_text.map(pattern).transpose()?.unwrap_or_else(PathPattern::all);
    let rows = instance
        .catalog()
        .list_series(&p, Page::new(limit, offset))
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
            ]
        })
        .collect();
    text_result(&["Timeseries", "Alias", "Database", "DataType", "Encoding", "Compression", "Tags", "Attributes"], rows)
}

pub fn show_devices(instance: &Instance, pattern_text: Option<&str>, limit: Option<usize>, offset: usize) -> Result<QueryOutput> {
    let p = pattern_text.map(pattern).transpose()?.unwrap_or_else(PathPattern::all);
    let rows = instance
        .catalog()
        .list_devices(&p, Page::new(limit, offset))
        .into_iter()
        .map(|d| vec![Some(d.path.to_string()), Some(d.aligned.to_string())])
        .collect();
    text_result(&["Device", "IsAligned"], rows)
}

fn count_result(header: &str, n: u64) -> Result<QueryOutput> {
    let schema = Arc::new(Schema::new(vec![Field::new(header, ArrowType::Int64, false)]));
    batch(schema, vec![Arc::new(Int64Array::from(vec![n as i64]))])
}

pub fn count_timeseries(instance: &Instance, pattern_text: Option<&str>, level: Option<usize>) -> Result<QueryOutput> {
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

pub fn count_devices(instance: &Instance, pattern_text: Option<&str>) -> Result<QueryOutput> {
    let p = pattern_text.map(pattern).transpose()?.unwrap_or_else(PathPattern::all);
    count_result("count(devices)", instance.catalog().count_devices(&p))
}

pub fn count_databases(instance: &Instance, pattern_text: Option<&str>) -> Result<QueryOutput> {
    let p = pattern_text.map(pattern).transpose()?.unwrap_or_else(PathPattern::all);
    count_result("count(databases)", instance.catalog().count_databases(&p))
}

/// SHOW CHILD PATHS: the children of `path` (a pattern, default root).
pub fn show_child_paths(instance: &Instance, path: Option<&str>) -> Result<QueryOutput> {
    let p = pattern(path.unwrap_or("root"))?;
    let rows = instance
        .catalog()
        .child_paths(&p)
        .into_iter()
        .map(|c| vec![Some(c.path.to_string()), Some(c.node_type.to_string())])
        .collect();
    text_result(&["ChildPaths", "NodeTypes"], rows)
}

pub fn show_child_nodes(instance: &Instance, path: Option<&str>) -> Result<QueryOutput> {
    let p = pattern(path.unwrap_or("root"))?;
    let rows = instance.catalog().child_nodes(&p).into_iter().map(|n| vec![Some(n)]).collect();
    text_result(&["ChildNodes"], rows)
}

/// FLUSH [databases]: every database's memtables, or those named.
pub fn flush(instance: &Instance, databases: &[String]) -> Result<QueryOutput> {
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
