//! `LOAD 'file.tsfile'` (IoTDB's statement): an Apache-written TsFile of the
//! tree model is read whole and checked (every chunk decoded, so a damaged
//! or truncated file is refused before anything is written), its series are
//! created or type-checked against the catalog, and its points are written
//! through the engine as one WAL group per database — all of the file or
//! none of it. Late points go where late points go (unsequence data).
//!
//! The file is rewritten through the write path, not adopted as is; its
//! decoded points are held until the commit, at most [`LOAD_BYTES_MAX`].

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

pub(crate) fn load(instance: &Instance, path: &str) -> Result<QueryOutput> {
    let bad = |e: tsfile::Error| Error::InvalidValue(format!("{path} is not a readable TsFile: {e}"));
    let reader = TsFileReader::open(path).map_err(bad)?;
    let catalog = instance.catalog();
    // Per database, the batches to write.
    let mut groups: Vec<(String, Vec<WriteBatch>)> = Vec::new();
    let mut bytes = 0usize;
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
        let handles = catalog.ensure_series(&device_path.to_string(), &series, meta.aligned)?;
        for (h, (_, t)) in handles.iter().zip(&series) {
            catalog.check_type(h, *t)?;
        }
        let database = catalog
            .database_by_id(handles[0].database)
            .ok_or_else(|| Error::Unsupported(format!("no database for {device}")))?
            .path
            .to_string();
        let mut batches = Vec::new();
        if meta.aligned {
            let names: Vec<&str> = series.iter().map(|(m, _)| m.as_str()).collect();
            for b in reader.read_aligned_of(&meta, &names, TimeRange::ALL).map_err(bad)? {
                let mut wb = WriteBatch::new(device_path.to_string(), true, b.times);
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
            for (m, t) in &series {
                for b in reader.read_series_of(&meta, m, TimeRange::ALL).map_err(bad)? {
                    if !b.times.is_empty() {
                        batches.push(WriteBatch::new(device_path.to_string(), false, b.times).with_column(Column::full(m.clone(), *t, b.values)));
                    }
                }
            }
        }
        for b in &batches {
            bytes += b.times.len() * 8 + b.columns.iter().map(|c| values_bytes(&c.values)).sum::<usize>();
            points += b.columns.iter().map(|c| c.values.len()).sum::<usize>();
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
