//! The CSV interchange format of `arbor-tsfile dump` and `write`: header
//! `device,measurement,data_type,time,value`, one point per row, rows
//! ordered by device, measurement, time; null values are omitted.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use crate::device::DeviceId;
use crate::error::{Error, Result};
use crate::reader::{ReadAt, TimeRange, TsFileReader};
use crate::text::{format_value, parse_value};
use crate::types::{Compression, DataType, Encoding, Value, Values};
use crate::writer::{AlignedColumn, SeriesChunk, SeriesSchema, TsFileWriter, WriterOptions};

pub const HEADER: [&str; 5] = ["device", "measurement", "data_type", "time", "value"];

/// All points of one series, merged into time order (a later chunk wins on
/// equal time).
pub fn read_series_points<R: ReadAt>(
    reader: &TsFileReader<R>,
    meta: &crate::reader::DeviceMetadata,
    measurement: &str,
) -> Result<(Vec<i64>, Values)> {
    let data_type = meta
        .series(measurement)
        .map(|s| s.data_type)
        .ok_or_else(|| Error::SeriesNotFound(format!("{}.{measurement}", meta.device)))?;
    let batches = reader.read_series_of(meta, measurement, TimeRange::ALL)?;
    let mut times = Vec::new();
    let mut values = Values::empty(data_type);
    for b in &batches {
        times.extend_from_slice(&b.times);
        values.extend_from(&b.values)?;
    }
    if times.windows(2).all(|w| w[0] < w[1]) {
        return Ok((times, values));
    }
    let mut merged: BTreeMap<i64, usize> = BTreeMap::new();
    for (i, t) in times.iter().enumerate() {
        merged.insert(*t, i);
    }
    let mut out = Values::with_capacity(data_type, merged.len());
    for &i in merged.values() {
        out.push(values.get(i))?;
    }
    Ok((merged.into_keys().collect(), out))
}

/// Write every point of the file as CSV.
pub fn dump<R: ReadAt, W: Write>(reader: &TsFileReader<R>, out: W) -> Result<()> {
    let io_err = |e: csv::Error| Error::io("<stdout>", std::io::Error::other(e));
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(out);
    w.write_record(HEADER).map_err(io_err)?;
    let mut devices = reader.all_device_metadata()?;
    devices.sort_by_key(|d| d.device.to_string());
    for meta in &devices {
        let device = meta.device.to_string();
        let mut names: Vec<(String, DataType)> = meta.value_series().map(|s| (s.measurement.clone(), s.data_type)).collect();
        names.sort();
        for (name, data_type) in names {
            let (times, values) = read_series_points(reader, meta, &name)?;
            let type_name = data_type.name();
            for (i, t) in times.iter().enumerate() {
                let value = format_value(data_type, &values.get(i));
                w.write_record([device.as_str(), name.as_str(), type_name, &t.to_string(), &value]).map_err(io_err)?;
            }
        }
    }
    w.flush().map_err(|e| Error::io("<stdout>", e))?;
    Ok(())
}

/// A CSV input problem, with the 1-based line it was found on.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CsvError {
    pub line: u64,
    pub message: String,
}

/// Options of `arbor-tsfile write`.
#[derive(Debug, Clone)]
pub struct CsvWriteOptions {
    pub compression: Compression,
    /// Encoding per data type; types not listed get the automatic choice.
    pub encodings: BTreeMap<DataType, Encoding>,
    pub aligned: bool,
    pub writer: WriterOptions,
}

impl Default for CsvWriteOptions {
    fn default() -> Self {
        CsvWriteOptions {
            compression: Compression::Lz4,
            encodings: BTreeMap::new(),
            aligned: false,
            writer: WriterOptions::default(),
        }
    }
}

struct SeriesInput {
    data_type: DataType,
    points: BTreeMap<i64, (Value, u64)>,
}

/// Parse CSV points from `input`, validating every row.
fn parse_points(input: impl Read) -> Result<BTreeMap<String, BTreeMap<String, SeriesInput>>, CsvError> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
    let header_ok = rdr
        .headers()
        .map(|h| h.iter().map(str::trim).eq(HEADER.iter().copied()))
        .map_err(|e| CsvError { line: 1, message: e.to_string() })?;
    if !header_ok {
        return Err(CsvError { line: 1, message: format!("header must be {}", HEADER.join(",")) });
    }
    let mut devices: BTreeMap<String, BTreeMap<String, SeriesInput>> = BTreeMap::new();
    for record in rdr.records() {
        let record = record.map_err(|e| CsvError { line: e.position().map_or(0, |p| p.line()), message: e.to_string() })?;
        let line = record.position().map_or(0, |p| p.line());
        let err = |message: String| CsvError { line, message };
        if record.len() != 5 {
            return Err(err(format!("expected 5 fields, found {}", record.len())));
        }
        let (device, measurement, type_name, time, value) = (&record[0], &record[1], &record[2], &record[3], &record[4]);
        if device.is_empty() || measurement.is_empty() {
            return Err(err("device and measurement must not be empty".into()));
        }
        let data_type: DataType = type_name.parse().map_err(|_| err(format!("unknown data type {type_name:?}")))?;
        let time: i64 = time.trim().parse().map_err(|_| err(format!("time {time:?} is not an integer")))?;
        let value = parse_value(data_type, value).map_err(|e| err(e.to_string()))?;
        let series = devices
            .entry(device.to_string())
            .or_default()
            .entry(measurement.to_string())
            .or_insert_with(|| SeriesInput { data_type, points: BTreeMap::new() });
        if series.data_type != data_type {
            return Err(err(format!("{device}.{measurement} is {} on an earlier line, {data_type} here", series.data_type)));
        }
        if let Some((_, first)) = series.points.insert(time, (value, line)) {
            return Err(err(format!("{device}.{measurement} has time {time} twice (also line {first})")));
        }
    }
    Ok(devices)
}

/// Either a CSV problem (exit code 2) or a failure writing the file.
#[derive(Debug, thiserror::Error)]
pub enum WriteCsvError {
    #[error(transparent)]
    Input(#[from] CsvError),
    #[error(transparent)]
    Output(#[from] Error),
}

/// Read CSV from `input` and write a TsFile to `out_path`. The file appears
/// only if everything succeeded: it is written beside the target and renamed.
pub fn write_csv(input: impl Read, out_path: &std::path::Path, options: &CsvWriteOptions) -> Result<(), WriteCsvError> {
    let devices = parse_points(input)?;
    let file_name = out_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = out_path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut writer = TsFileWriter::new(std::io::BufWriter::new(file), options.writer.clone())?;
        for (device, series) in &devices {
            let id = DeviceId::from_tree_path(device);
            let schemas: Vec<SeriesSchema> = series
                .iter()
                .map(|(name, s)| SeriesSchema {
                    measurement: name.clone(),
                    data_type: s.data_type,
                    encoding: options.encodings.get(&s.data_type).copied(),
                    compression: Some(options.compression),
                    encode_options: Default::default(),
                })
                .collect();
            if options.aligned {
                let times: Vec<i64> = series.values().flat_map(|s| s.points.keys().copied()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
                let mut cols = Vec::new();
                for s in series.values() {
                    let mut values = Values::with_capacity(s.data_type, s.points.len());
                    let validity: Vec<bool> = times.iter().map(|t| s.points.contains_key(t)).collect();
                    for (v, _) in s.points.values() {
                        values.push(v.clone())?;
                    }
                    cols.push((values, validity));
                }
                let columns: Vec<AlignedColumn<'_>> = schemas
                    .iter()
                    .zip(&cols)
                    .map(|(schema, (values, validity))| AlignedColumn { schema, values, validity: Some(validity) })
                    .collect();
                writer.write_aligned_chunk_group(&id, &times, &columns)?;
            } else {
                let data: Vec<(Vec<i64>, Values)> = series
                    .values()
                    .map(|s| {
                        let mut values = Values::with_capacity(s.data_type, s.points.len());
                        for (v, _) in s.points.values() {
                            values.push(v.clone())?;
                        }
                        Ok((s.points.keys().copied().collect(), values))
                    })
                    .collect::<Result<_>>()?;
                let chunks: Vec<SeriesChunk<'_>> = schemas
                    .iter()
                    .zip(&data)
                    .map(|(schema, (times, values))| SeriesChunk { schema, times, values })
                    .collect();
                writer.write_chunk_group(&id, &chunks)?;
            }
        }
        let file = writer.finish()?.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, out_path).map_err(|e| Error::io(out_path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(result?)
}
