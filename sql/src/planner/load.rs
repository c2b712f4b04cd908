//! `LOAD 'file.tsfile'` (IoTDB's statement): an Apache-written TsFile of the
//! tree model is read whole and checked (every chunk decoded, so a damaged
//! or truncated file is refused before anything is written), its series are
//! created or type-checked against the catalog, and its points are written
//! — all of the file or none of it.
//!
//! A file that does not overlap what its database holds (every device's
//! points later than the stored ones, one time partition) is adopted as a
//! sequence file: copied in and indexed, not rewritten. Otherwise its points
//! are rewritten through the write path, held until the commit, at most
//! [`LOAD_BYTES_MAX`].

use storage::{Column, TimeRange, WriteBatch};
use tsfile::{TsFileReader, Values};

use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::output::QueryOutput;
use crate::provider::COPY_TYPED_BYTES_MAX;

/// Decoded points one LOAD may hold before it commits.
pub(crate) const LOAD_BYTES_MAX: usize = COPY_TYPED_BYTES_MAX;

fn values_bytes(v: &Values) -> usize {
    match v {
        Values::Boolean(v) => v.len(),
        Values::Int32(v) => v.len() * 4,
        Values::Float(v) => v.len() * 4,
        Values::Int64(v) => v.len() * 8,
        Values::Double(v) => v.len() * 8,
        Values::Binary(v) => v.iter().map(|b| b.len() + 24).sum(),
    }
}

/// The points of one device of the file as write batches (decoding every
/// chunk, so damage shows here).
fn decode_device(
    reader: &TsFileReader,
    meta: &tsfile::DeviceMetadata,
    device: &str,
    series: &[(String, tsfile::DataType)],
) -> tsfile::Result<Vec<WriteBatch>> {
    let mut batches = Vec::new();
    if meta.aligned {
        let names: Vec<&str> = series.iter().map(|(m, _)| m.as_str()).collect();
        for b in reader.read_aligned_of(meta, &names, TimeRange::ALL)? {
            let mut wb = WriteBatch::new(device.to_string(), true, b.times);
            for ((m, t), c) in series.iter().zip(b.columns) {
                if c.values.is_empty() {
                    continue;
                }
                let validity = (!c.validity.iter().all(|v| *v)).then_some(c.validity);
                wb.columns.push(Column { measurement: m.clone(), data_type: *t, values: c.values, validity });
            }
            if !wb.columns.is_empty() {
                batches.push(wb);
            }
        }
    } else {
        for (m, t) in series {
            for b in reader.read_series_of(meta, m, TimeRange::ALL)? {
                if !b.times.is_empty() {
                    batches.push(WriteBatch::new(device.to_string(), false, b.times).with_column(Column::full(m.clone(), *t, b.values)));
                }
            }
        }
    }
    Ok(batches)
}

fn batch_points(b: &WriteBatch) -> usize {
    b.columns.iter().map(|c| c.values.len()).sum()
}

pub(crate) fn load(instance: &Instance, path: &str) -> Result<QueryOutput> {
    let bad = |e: tsfile::Error| Error::InvalidValue(format!("{path} is not a readable TsFile: {e}"));
    let reader = TsFileReader::open(path).map_err(bad)?;
    let catalog = instance.catalog();
    // 1. Check the whole file before touching anything: tree-model paths,
    //    every chunk decoded.
    let mut devices = Vec::new();
    let mut points = 0usize;
    for meta in reader.all_device_metadata().map_err(bad)? {
        let device = meta.device.to_string();
        let device_path = catalog::Path::parse(&device)
            .ok()
            .filter(|p| p.nodes().first().is_some_and(|n| n == "root"))
            .ok_or_else(|| Error::Unsupported(format!("{path}: device {device} is not a tree-model path (table-model TsFiles cannot be loaded)")))?;
        let series: Vec<(String, tsfile::DataType)> = meta.value_series().map(|s| (s.measurement.clone(), s.data_type)).collect();
        if series.is_empty() {
            continue;
        }
        let device_text = device_path.to_string();
        points += decode_device(&reader, &meta, &device_text, &series).map_err(bad)?.iter().map(batch_points).sum::<usize>();
        devices.push((meta, device_text, series));
    }
    // 2. Series created or type-checked; the database of each device.
    let mut databases: Vec<String> = Vec::with_capacity(devices.len());
    for (meta, device, series) in &devices {
        let handles = catalog.ensure_series(device, series, meta.aligned)?;
        for (h, (_, t)) in handles.iter().zip(series) {
            catalog.check_type(h, *t)?;
        }
        let database = catalog
            .database_by_id(handles[0].database)
            .ok_or_else(|| Error::Unsupported(format!("no database for {device}")))?
            .path
            .to_string();
        databases.push(database);
    }
    // 3. A file of one database later than what it holds is adopted as is.
    if let Some(first) = databases.first() {
        if databases.iter().all(|d| d == first) && instance.store(first)?.adopt_file(std::path::Path::new(path))? {
            return Ok(QueryOutput::command_with_rows("LOAD", points));
        }
    }
    // 4. Otherwise its points are rewritten, one WAL group per database.
    let mut groups: Vec<(String, Vec<WriteBatch>)> = Vec::new();
    let mut bytes = 0usize;
    for ((meta, device, series), database) in devices.iter().zip(databases) {
        let batches = decode_device(&reader, meta, device, series).map_err(bad)?;
        for b in &batches {
            bytes += b.times.len() * 8 + b.columns.iter().map(|c| values_bytes(&c.values)).sum::<usize>();
        }
        if bytes > LOAD_BYTES_MAX {
            return Err(Error::Storage(storage::Error::MemoryBudgetExceeded { used: bytes, requested: 0, limit: LOAD_BYTES_MAX }));
        }
        match groups.iter_mut().find(|(d, _)| *d == database) {
            Some((_, g)) => g.extend(batches),
            None => groups.push((database, batches)),
        }
    }
    for (database, batches) in groups {
        instance.store(&database)?.write_group(&batches)?;
    }
    Ok(QueryOutput::command_with_rows("LOAD", points))
}
