//! `COPY … FROM STDIN` in one pass: PostgreSQL's text, CSV and binary
//! formats parsed straight into typed column builders as the CopyData
//! messages arrive ([`CopyIn::feed`]), then written atomically
//! ([`CopyIn::finish`]): one WAL group per database, so the COPY is all or
//! nothing across errors and `kill -9`.
//!
//! Memory: the input is never held whole — only the unparsed tail of the
//! last message (at most one row, [`COPY_ROW_BYTES_MAX`]) and the typed
//! values parsed since the last part (about 8 bytes a value, at most the
//! instance's `copy_part_bytes_max`, [`COPY_PART_BYTES_MAX`] by default).
//! A COPY that stays under that is written at the end as one WAL record.
//! A larger one streams: each time the typed values reach the limit they
//! are logged as a *part* of an open WAL group (`storage::OpenGroup`, not
//! applied, not visible). A part is logged on a thread of its own while the
//! next is parsed, so parsing and logging use two cores; one part is in
//! flight at a time. The group keeps its logged parts in memory for the
//! commit up to the engine's `group_resident_bytes_max` (beyond that they
//! are read back from the log), and the memtables take their vectors as
//! they are where they can. `finish` logs the last part and commits the
//! group, which applies every part. An error, a
//! CopyFail or a dropped connection drops the open group: its parts are
//! never replayed. (Series a streaming COPY in IoTDB's layouts creates are
//! created when its first part is logged and stay if it then fails, as
//! IoTDB keeps series an insert created.) Parsing happens as the wire layer
//! hands over each message, so a client that sends faster than Arbor
//! parses is held back by TCP.
//!
//! Layouts:
//! - a device table, `COPY "root.ln.d1" [(time, s1, …)] FROM STDIN`;
//! - IoTDB's align-by-device CSV, `COPY root.ln FROM STDIN (FORMAT csv,
//!   HEADER true)` with a `Time,Device,s1,s2,…` header;
//! - IoTDB's align-by-time CSV, same statement with a
//!   `Time,root.ln.d1.s1,root.ln.d2.s1,…` header.
//!
//! In the IoTDB layouts series missing from the catalog are created when
//! the COPY commits (types from a `s1(INT32)` header suffix, else inferred
//! from the first value as an INSERT would), and a row's NULLs write nothing.
//!
//! A bad row fails the COPY with its line number and column; nothing is written.

use std::collections::HashMap;
use std::sync::Arc;

use catalog::{Path, ValueKind};
use storage::{Column, WriteBatch};
use tsfile::{DataType, Values};

use super::device_table::DeviceTableProvider;
use super::values::days_to_date;
use crate::error::{Error, Result};
use crate::instance::Instance;

/// How COPY data is laid out.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub csv: bool,
    /// PostgreSQL's binary COPY format (`csv`, `delimiter`, `null` unused).
    pub binary: bool,
    pub delimiter: u8,
    pub null: String,
    pub header: bool,
}

/// Rows per write batch (a COPY is still committed as one group).
const CHUNK_ROWS: usize = 65_536;
/// The longest row (text/CSV line or binary tuple) accepted.
pub const COPY_ROW_BYTES_MAX: usize = 64 << 20;
/// Typed data a LOAD may hold before it writes (53200 past it).
pub const COPY_TYPED_BYTES_MAX: usize = 256 << 20;
pub use crate::instance::COPY_PART_BYTES_MAX;
/// Devices one multi-device COPY may write.
const COPY_DEVICES_MAX: usize = 100_000;

const BINARY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MS: i64 = 946_684_800_000;
const PG_EPOCH_DAYS: i32 = 10_957;

// ---------------------------------------------------------------- values

/// One column being built: present values in row order and a validity per row.
struct ColumnBuilder {
    /// The name the COPY uses (an alias or the measurement).
    name: String,
    /// `None` until the first value when the series does not exist yet.
    data_type: Option<DataType>,
    values: Values,
    /// Rows so far (values and NULLs).
    rows: usize,
    /// A validity per row, kept only once a NULL has come (until then
    /// every row so far has a value).
    validity: Option<Vec<bool>>,
}

impl ColumnBuilder {
    fn new(name: String, data_type: Option<DataType>) -> Self {
        let values = Values::empty(data_type.unwrap_or(DataType::Int32));
        ColumnBuilder { name, data_type, values, rows: 0, validity: None }
    }

    fn push_null(&mut self) {
        let rows = self.rows;
        self.validity.get_or_insert_with(|| vec![true; rows]).push(false);
        self.rows += 1;
    }

    /// Count a value just pushed.
    fn pushed(&mut self) {
        if let Some(v) = self.validity.as_mut() {
            v.push(true);
        }
        self.rows += 1;
    }

    /// Parse a text value (PostgreSQL's text forms) and push it.
    fn push_text(&mut self, text: &[u8], infer: &dyn Fn(&str) -> DataType) -> std::result::Result<(), String> {
        // The commonest value of an ingest stream, a plain decimal into a
        // DOUBLE column, without the UTF-8 check and the general parser.
        if let (Values::Double(v), Some(DataType::Double)) = (&mut self.values, self.data_type) {
            if let Some(x) = crate::convert::parse_decimal(text) {
                v.push(x);
                self.pushed();
                return Ok(());
            }
        }
        let s = std::str::from_utf8(text).map_err(|_| "invalid UTF-8".to_string())?;
        let t = match self.data_type {
            Some(t) => t,
            None => {
                let t = infer(s);
                self.data_type = Some(t);
                self.values = Values::empty(t);
                t
            }
        };
        let bad = || format!("invalid input syntax for type {t}: {s:?}");
        match (&mut self.values, t) {
            (Values::Boolean(v), _) => v.push(parse_bool(s).ok_or_else(bad)?),
            (Values::Int32(v), DataType::Date) => v.push(tsfile::text::parse_value(DataType::Date, s.trim()).ok().and_then(|x| match x {
                tsfile::Value::Int32(d) => Some(d),
                _ => None,
            }).ok_or_else(bad)?),
            (Values::Int32(v), _) => v.push(parse_int(s).and_then(|x| i32::try_from(x).ok()).ok_or_else(bad)?),
            (Values::Int64(v), DataType::Timestamp) => v.push(parse_time(s).map_err(|_| bad())?),
            (Values::Int64(v), _) => v.push(parse_int(s).ok_or_else(bad)?),
            (Values::Float(v), _) => v.push(parse_f32(s).ok_or_else(bad)?),
            (Values::Double(v), _) => v.push(parse_f64(s).ok_or_else(bad)?),
            (Values::Binary(v), DataType::Blob) => v.push(parse_bytea(s).ok_or_else(bad)?),
            (Values::Binary(v), _) => v.push(text.to_vec()),
        }
        self.pushed();
        Ok(())
    }

    /// Push a value in PostgreSQL's binary form.
    fn push_binary(&mut self, raw: &[u8]) -> std::result::Result<(), String> {
        let t = self.data_type.ok_or("a column without a type")?;
        let width = |n: usize| -> std::result::Result<(), String> {
            if raw.len() == n {
                Ok(())
            } else {
                Err(format!("binary value of {} bytes for type {t} (expected {n})", raw.len()))
            }
        };
        match (&mut self.values, t) {
            (Values::Boolean(v), _) => {
                width(1)?;
                v.push(raw[0] != 0);
            }
            (Values::Int32(v), DataType::Date) => {
                width(4)?;
                let days = i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
                let date = days.checked_add(PG_EPOCH_DAYS).ok_or("date out of range")?;
                v.push(days_to_date(date).map_err(|e| e.to_string())?);
            }
            (Values::Int32(v), _) => {
                width(4)?;
                v.push(i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]));
            }
            (Values::Int64(v), DataType::Timestamp) => v.push(binary_time(raw)?),
            (Values::Int64(v), _) => {
                width(8)?;
                v.push(i64::from_be_bytes(raw.try_into().map_err(|_| "bad int8")?));
            }
            (Values::Float(v), _) => {
                width(4)?;
                v.push(f32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]));
            }
            (Values::Double(v), _) => {
                width(8)?;
                v.push(f64::from_be_bytes(raw.try_into().map_err(|_| "bad float8")?));
            }
            (Values::Binary(v), DataType::Blob) => v.push(raw.to_vec()),
            (Values::Binary(v), _) => {
                std::str::from_utf8(raw).map_err(|_| "invalid UTF-8".to_string())?;
                v.push(raw.to_vec());
            }
        }
        self.pushed();
        Ok(())
    }

    /// The column so far (None when it holds only NULLs), leaving it empty
    /// (with `spare`'s buffer when it has one of the type: no fresh memory).
    fn take(&mut self, spare: Option<Values>) -> Option<(DataType, Values, Option<Vec<bool>>)> {
        let validity = self.validity.take();
        let rows = std::mem::replace(&mut self.rows, 0);
        let t = self.data_type?;
        let values = std::mem::replace(&mut self.values, Values::empty(t));
        if values.is_empty() {
            return None;
        }
        self.values = match spare {
            Some(mut v) if v.physical() == t.physical() => {
                v.clear();
                v
            }
            // The next chunk is about as long: no regrowing from empty.
            _ => Values::with_capacity(t, rows.min(CHUNK_ROWS)),
        };
        Some((t, values, validity))
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "1" | "yes" | "y" | "on" => Some(true),
        "f" | "false" | "0" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// A decimal integer, without allocating.
fn parse_int(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return s.trim().parse().ok();
    }
    let mut v: i64 = 0;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if neg {
        Some(v)
    } else {
        v.checked_neg()
    }
}

fn special_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "infinity" | "inf" | "+infinity" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

fn parse_f64(s: &str) -> Option<f64> {
    let s = s.trim();
    s.parse::<f64>().ok().or_else(|| special_float(s))
}

fn parse_f32(s: &str) -> Option<f32> {
    let s = s.trim();
    s.parse::<f32>().ok().or_else(|| special_float(s).map(|v| v as f32))
}

/// `\x…` hex (PostgreSQL's bytea output); other text is taken as its bytes.
fn parse_bytea(s: &str) -> Option<Vec<u8>> {
    let Some(hex) = s.strip_prefix("\\x") else { return Some(s.as_bytes().to_vec()) };
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

/// A `time` field: integer milliseconds or a timestamp text.
fn parse_time(text: &str) -> Result<i64> {
    let t = text.trim();
    if let Some(ms) = parse_int(t) {
        return Ok(ms);
    }
    crate::time::parse_iso(t)
}

/// A binary `timestamptz`: microseconds since 2000-01-01, to milliseconds.
fn binary_time(raw: &[u8]) -> std::result::Result<i64, String> {
    let us = i64::from_be_bytes(raw.try_into().map_err(|_| format!("binary timestamp of {} bytes (expected 8)", raw.len()))?);
    us.div_euclid(1000).checked_add(PG_EPOCH_MS).ok_or_else(|| "timestamp out of range".to_string())
}

/// The type an unknown series gets from its first value (as an INSERT literal would).
fn value_kind(s: &str) -> ValueKind {
    let t = s.trim();
    if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
        ValueKind::Boolean
    } else if parse_int(t).is_some() {
        ValueKind::Integer
    } else if parse_f64(t).is_some() {
        ValueKind::Floating
    } else {
        ValueKind::Text
    }
}

// ---------------------------------------------------------------- devices

/// Rows gathered for one device.
struct DeviceSink {
    device: String,
    times: Vec<i64>,
    columns: Vec<ColumnBuilder>,
    /// Full chunks, as written at commit.
    batches: Vec<WriteBatch>,
    /// A logged batch of this device whose buffers the next chunk reuses.
    spare: Option<WriteBatch>,
}

impl DeviceSink {
    fn new(device: String, columns: Vec<ColumnBuilder>) -> Self {
        DeviceSink { device, times: Vec::new(), columns, batches: Vec::new(), spare: None }
    }

    /// Close the rows gathered so far into a batch.
    fn seal(&mut self) {
        if self.times.is_empty() {
            return;
        }
        let mut spare = self.spare.take();
        let next = match spare.as_mut() {
            Some(b) => {
                let mut t = std::mem::take(&mut b.times);
                t.clear();
                t
            }
            None => Vec::with_capacity(self.times.len().min(CHUNK_ROWS)),
        };
        let times = std::mem::replace(&mut self.times, next);
        let mut batch = WriteBatch::new(self.device.clone(), false, times);
        for c in &mut self.columns {
            let buffer = spare.as_mut().and_then(|b| b.columns.iter_mut().find(|s| s.measurement == c.name)).map(|s| std::mem::replace(&mut s.values, Values::Boolean(Vec::new())));
            if let Some((t, values, validity)) = c.take(buffer) {
                batch.columns.push(Column { measurement: c.name.clone(), data_type: t, values, validity });
            }
        }
        if !batch.columns.is_empty() {
            self.batches.push(batch);
        }
    }
}

/// What each field of a row is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Time,
    /// The device of an align-by-device row.
    Device,
    /// Column `col` of sink `sink` (fixed layouts).
    Column { sink: usize, col: usize },
    /// Column `col` of the row's device (align-by-device).
    Measurement { col: usize },
}

enum Layout {
    /// Not known until the header row arrives (IoTDB layouts).
    FromHeader { prefix: Path },
    Fixed { targets: Vec<Target> },
    /// Align by device: the measurement names of the header.
    ByDevice { prefix: Path, targets: Vec<Target>, measurements: Vec<(String, Option<DataType>)> },
}

/// A field of the current row: where its bytes are.
#[derive(Debug, Clone, Copy)]
enum Field {
    Null,
    /// `buf[start..end]`, used as is.
    Raw(usize, usize),
    /// `scratch[start..end]`, unescaped.
    Unescaped(usize, usize),
}

// ---------------------------------------------------------------- the COPY

/// A part being logged: the thread gives the groups back with its result,
/// and the batches whose buffers the parser may reuse.
type PartInFlight = std::thread::JoinHandle<(Vec<(String, storage::OpenGroup)>, storage::Result<()>, Vec<WriteBatch>)>;

/// One `COPY … FROM STDIN` in progress.
pub struct CopyIn {
    instance: Arc<Instance>,
    options: CopyOptions,
    table: String,
    layout: Layout,
    /// Into a device table (not one of IoTDB's layouts).
    device_table: bool,
    sinks: Vec<DeviceSink>,
    sink_of: HashMap<String, usize>,
    /// Bytes received and not parsed yet (at most one partial row).
    buf: Vec<u8>,
    scratch: Vec<u8>,
    fields: Vec<Field>,
    /// The sinks the current row writes (kept to reuse its allocation).
    touched: Vec<usize>,
    /// Line (text/CSV) or tuple (binary) number of the next row.
    line: usize,
    rows: usize,
    /// Typed bytes gathered since the last part.
    typed_bytes: usize,
    part_bytes_max: usize,
    /// Per database, the WAL group the parts went into (empty until the
    /// first part: a small COPY is written as one record at the end).
    groups: Vec<(String, storage::OpenGroup)>,
    /// The part being logged on another thread; it holds `groups` meanwhile.
    in_flight: Option<PartInFlight>,
    header_pending: bool,
    binary_header_pending: bool,
    ended: bool,
    /// The numeric fast path's plan, when it applies ([`FastTarget`]).
    fast: Option<Vec<FastTarget>>,
    /// The fast path's values of the row being parsed (bits), one per target.
    fast_values: Vec<u64>,
}

/// A field of a row on the numeric fast path: a device table whose every
/// column is the time or a DOUBLE/INT64/INT32 series. A row of plain
/// numbers is parsed in one pass over its bytes straight into the
/// builders; anything else in it (a quote, an escape, an empty field, an
/// exponent, a timestamp text, a carriage return; in binary a NULL or a
/// field of another width) sends the row down the general path, which
/// parses it from scratch.
#[derive(Debug, Clone, Copy)]
enum FastTarget {
    Time,
    Double(usize),
    Int64(usize),
    Int32(usize),
}

impl std::fmt::Debug for CopyIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyIn").field("table", &self.table).field("rows", &self.rows).finish_non_exhaustive()
    }
}

impl CopyIn {
    /// Start a COPY into `table` (a device, or in CSV with a header a path
    /// prefix for IoTDB's layouts); errors here come before any data.
    pub fn start(instance: Arc<Instance>, table: &str, columns: &[String], options: CopyOptions) -> Result<CopyIn> {
        let mut sinks = Vec::new();
        let layout = match DeviceTableProvider::open(instance.clone(), table) {
            Some(device) => {
                let names: Vec<String> = if columns.is_empty() {
                    std::iter::once("time".to_string()).chain(device.series().iter().map(|s| s.info.measurement().to_string())).collect()
                } else {
                    columns.to_vec()
                };
                let mut builders = Vec::new();
                let mut targets = Vec::with_capacity(names.len());
                for name in &names {
                    if name == "time" {
                        if targets.contains(&Target::Time) {
                            return Err(Error::Syntax("column \"time\" specified more than once".into()));
                        }
                        targets.push(Target::Time);
                        continue;
                    }
                    let i = device.series_index(name).ok_or_else(|| Error::UnknownColumn(format!("\"{name}\" of relation \"{table}\"")))?;
                    let s = &device.series()[i];
                    if builders.iter().any(|b: &ColumnBuilder| b.name == s.info.path.last()) {
                        return Err(Error::Syntax(format!("column \"{name}\" specified more than once")));
                    }
                    targets.push(Target::Column { sink: 0, col: builders.len() });
                    builders.push(ColumnBuilder::new(s.info.path.last().to_string(), Some(s.data_type())));
                }
                if !targets.contains(&Target::Time) {
                    return Err(Error::NotNull(format!("COPY into \"{table}\" needs the \"time\" column")));
                }
                sinks.push(DeviceSink::new(device.device().to_string(), builders));
                Layout::Fixed { targets }
            }
            None => {
                let prefix = Path::parse(table).map_err(|_| Error::UnknownTable(format!("\"{table}\"")))?;
                if !(options.csv && options.header && columns.is_empty()) {
                    return Err(Error::UnknownTable(format!(
                        "\"{table}\" (a path prefix takes IoTDB's CSV layouts: FORMAT csv, HEADER true, no column list)"
                    )));
                }
                Layout::FromHeader { prefix }
            }
        };
        let sink_of = sinks.iter().enumerate().map(|(i, s)| (s.device.clone(), i)).collect();
        let fast = fast_plan(&layout, &sinks, &options);
        let part_bytes_max = instance.config().copy_part_bytes_max.max(1);
        Ok(CopyIn {
            part_bytes_max,
            groups: Vec::new(),
            in_flight: None,
            instance,
            header_pending: options.header && !options.binary,
            binary_header_pending: options.binary,
            options,
            table: table.to_string(),
            device_table: matches!(layout, Layout::Fixed { .. }),
            layout,
            sinks,
            sink_of,
            buf: Vec::new(),
            scratch: Vec::new(),
            fields: Vec::new(),
            touched: Vec::new(),
            line: 1,
            rows: 0,
            typed_bytes: 0,
            ended: false,
            fast_values: vec![0; fast.as_ref().map_or(0, Vec::len)],
            fast,
        })
    }

    /// Number of columns the client is told about (CopyInResponse).
    pub fn column_count(&self) -> usize {
        match &self.layout {
            Layout::Fixed { targets } | Layout::ByDevice { targets, .. } => targets.len(),
            Layout::FromHeader { .. } => 1,
        }
    }

    /// Parse one CopyData message's bytes.
    pub fn feed(&mut self, data: &[u8]) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        self.buf.extend_from_slice(data);
        let consumed = self.parse(false)?;
        self.buf.drain(..consumed);
        if self.buf.len() > COPY_ROW_BYTES_MAX {
            return Err(Error::InvalidValue(format!("line {}: a row longer than {COPY_ROW_BYTES_MAX} bytes", self.line)));
        }
        Ok(())
    }

    /// Parse what is left and write everything as one group per database;
    /// returns the rows copied.
    pub fn finish(mut self) -> Result<usize> {
        if !self.ended {
            let consumed = self.parse(true)?;
            if consumed < self.buf.len() && self.options.binary {
                return Err(Error::InvalidValue(format!("tuple {}: binary COPY data ends inside a tuple", self.line)));
            }
        }
        if self.binary_header_pending && !self.buf.is_empty() {
            return Err(Error::InvalidValue("binary COPY data ends inside its header".into()));
        }
        for s in &mut self.sinks {
            s.seal();
        }
        self.settle_part()?;
        if self.groups.is_empty() {
            // Everything fitted in memory: one WAL record per database.
            for (database, batches) in self.prepare()? {
                self.instance.store(&database)?.write_group(&batches)?;
            }
        } else {
            // Each group's final part is logged by its commit and applied
            // from these batches (not read back from the log).
            let mut last = self.prepare()?;
            let mut groups = std::mem::take(&mut self.groups);
            for (database, _) in &last {
                if !groups.iter().any(|(d, _)| d == database) {
                    let group = self.instance.store(database)?.begin_group().ok_or_else(|| Error::Unsupported(format!("a COPY larger than one part into {database}")))?;
                    groups.push((database.clone(), group));
                }
            }
            for (database, group) in groups {
                let batches = last.iter().position(|(d, _)| *d == database).map(|i| last.swap_remove(i).1).unwrap_or_default();
                group.commit(batches)?;
            }
        }
        Ok(self.rows)
    }

    /// Parse the complete rows at the start of `buf`; returns the bytes consumed.
    fn parse(&mut self, last: bool) -> Result<usize> {
        let mut pos = 0;
        if self.binary_header_pending {
            match self.binary_header()? {
                Some(n) => {
                    pos = n;
                    self.binary_header_pending = false;
                }
                None => return Ok(0),
            }
        }
        while pos < self.buf.len() && !self.ended {
            if !self.header_pending {
                if let Some(end) = self.fast_row(pos)? {
                    self.line += 1;
                    pos = end;
                    continue;
                }
            }
            let row = if self.options.binary {
                self.binary_row(pos)?
            } else if self.options.csv {
                self.csv_row(pos, last)?
            } else {
                self.text_row(pos, last)
            };
            let Some((end, lines)) = row else { break };
            if !self.ended {
                if self.header_pending {
                    self.header_pending = false;
                    self.header()?;
                } else {
                    self.row()?;
                }
            }
            self.line += lines;
            pos = end;
        }
        Ok(pos)
    }

    // ------------------------------------------------------------ fast path

    /// The row at `pos` parsed on the numeric fast path and pushed into the
    /// builders; returns its end. `None` (nothing pushed) when the path does
    /// not apply to this COPY or this row, or the row is incomplete.
    fn fast_row(&mut self, pos: usize) -> Result<Option<usize>> {
        let CopyIn { fast: Some(plan), fast_values, buf, sinks, options, .. } = self else { return Ok(None) };
        let last = plan.len() - 1;
        let mut i = pos;
        if options.binary {
            // A tuple of as many fields as targets, none NULL, each of its
            // type's width.
            if buf.get(i..i + 2).is_none_or(|c| i16::from_be_bytes([c[0], c[1]]) as usize != plan.len()) {
                return Ok(None);
            }
            i += 2;
            for (k, target) in plan.iter().enumerate() {
                let width = if matches!(target, FastTarget::Int32(_)) { 4 } else { 8 };
                let Some(field) = buf.get(i..i + 4 + width) else { return Ok(None) };
                if i32::from_be_bytes([field[0], field[1], field[2], field[3]]) != width as i32 {
                    return Ok(None);
                }
                let raw = &field[4..];
                fast_values[k] = match target {
                    FastTarget::Time => match binary_time(raw) {
                        Ok(t) => t as u64,
                        Err(_) => return Ok(None),
                    },
                    FastTarget::Int32(_) => i64::from(i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]])) as u64,
                    // f64 and i64 alike: the bits as sent.
                    FastTarget::Double(_) | FastTarget::Int64(_) => u64::from_be_bytes([raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]]),
                };
                i += 4 + width;
            }
        } else {
            for (k, target) in plan.iter().enumerate() {
                let stop = if k == last { b'\n' } else { options.delimiter };
                let neg = buf.get(i) == Some(&b'-');
                if neg || buf.get(i) == Some(&b'+') {
                    i += 1;
                }
                let start = i;
                let mut mantissa: u64 = 0;
                let mut point: Option<usize> = None;
                loop {
                    let Some(&b) = buf.get(i) else { return Ok(None) };
                    let d = b.wrapping_sub(b'0');
                    if d < 10 {
                        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
                    } else if b == b'.' && point.is_none() {
                        point = Some(i);
                    } else if b == stop {
                        break;
                    } else {
                        return Ok(None);
                    }
                    i += 1;
                }
                // 1 to 19 digits: no overflow of the u64.
                let digits = i - start - usize::from(point.is_some());
                if digits == 0 || digits > 19 {
                    return Ok(None);
                }
                fast_values[k] = match target {
                    FastTarget::Double(_) => match crate::convert::exact_decimal(mantissa, point.map_or(0, |p| i - p - 1), neg) {
                        Some(x) => x.to_bits(),
                        None => return Ok(None),
                    },
                    FastTarget::Time | FastTarget::Int64(_) | FastTarget::Int32(_) => {
                        let limit = if matches!(target, FastTarget::Int32(_)) { 1 << 31 } else { 1 << 63 };
                        if point.is_some() || mantissa > limit || (!neg && mantissa == limit) {
                            return Ok(None);
                        }
                        (if neg { (mantissa as i64).wrapping_neg() } else { mantissa as i64 }) as u64
                    }
                };
                i += 1;
            }
        }
        let sink = &mut sinks[0];
        for (target, bits) in plan.iter().zip(fast_values.iter()) {
            let col = match *target {
                FastTarget::Time => {
                    sink.times.push(*bits as i64);
                    continue;
                }
                FastTarget::Double(col) | FastTarget::Int64(col) | FastTarget::Int32(col) => col,
            };
            let builder = &mut sink.columns[col];
            match (&mut builder.values, *target) {
                (Values::Double(v), FastTarget::Double(_)) => v.push(f64::from_bits(*bits)),
                (Values::Int64(v), FastTarget::Int64(_)) => v.push(*bits as i64),
                (Values::Int32(v), FastTarget::Int32(_)) => v.push(*bits as i64 as i32),
                _ => return Err(Error::Unsupported(format!("internal error: COPY column \"{}\" changed type", builder.name))),
            }
            builder.pushed();
        }
        let full = sink.times.len() >= CHUNK_ROWS;
        if full {
            sink.seal();
        }
        self.typed_bytes += 8 * plan.len();
        self.end_row()?;
        Ok(Some(i))
    }

    // ------------------------------------------------------------ text

    /// Split the text-format row at `pos` into `fields`; `None` if incomplete.
    /// Returns the end of the row and the lines it spans.
    fn text_row(&mut self, pos: usize, last: bool) -> Option<(usize, usize)> {
        let rest = &self.buf[pos..];
        let (len, end) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (i, pos + i + 1),
            None if last => (rest.len(), self.buf.len()),
            None => return None,
        };
        let line = &self.buf[pos..pos + len];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"\\." {
            self.ended = true;
            return Some((end, 1));
        }
        let (start, stop) = (pos, pos + line.len());
        self.fields.clear();
        self.scratch.clear();
        let delimiter = self.options.delimiter;
        let null = self.options.null.as_bytes();
        let mut field_start = start;
        let mut escaped = false;
        let mut i = start;
        while i <= stop {
            let at_end = i == stop;
            let b = if at_end { 0 } else { self.buf[i] };
            if !at_end && b == b'\\' {
                escaped = true;
                i = (i + 2).min(stop);
                continue;
            }
            if at_end || b == delimiter {
                let raw = &self.buf[field_start..i.min(stop)];
                let field = if raw == null {
                    Field::Null
                } else if escaped {
                    let s = self.scratch.len();
                    unescape(raw, &mut self.scratch);
                    Field::Unescaped(s, self.scratch.len())
                } else {
                    Field::Raw(field_start, i.min(stop))
                };
                self.fields.push(field);
                field_start = i + 1;
                escaped = false;
            }
            i += 1;
        }
        Some((end, 1))
    }

    // ------------------------------------------------------------ CSV

    /// Split the CSV row at `pos` into `fields`: `"` quotes (`""` inside),
    /// an unquoted field equal to the NULL string is NULL, a quoted one never.
    fn csv_row(&mut self, pos: usize, last: bool) -> Result<Option<(usize, usize)>> {
        let delimiter = self.options.delimiter;
        let null = self.options.null.as_bytes();
        let buf = &self.buf;
        // `\.` alone on its line ends the data (only a line starting with
        // a backslash can be that: no scan of every line for it).
        let rest = &buf[pos..];
        if rest.first() == Some(&b'\\') {
            let first_line = rest.iter().position(|b| *b == b'\n').map_or(rest, |i| &rest[..i]);
            if first_line.strip_suffix(b"\r").unwrap_or(first_line) == b"\\." && (first_line.len() < rest.len() || last) {
                self.ended = true;
                return Ok(Some((pos + first_line.len() + 1, 1)));
            }
        }
        self.fields.clear();
        self.scratch.clear();
        let mut i = pos;
        let mut lines = 1;
        loop {
            // One field from `i`.
            if i < buf.len() && buf[i] == b'"' {
                let start = i + 1;
                let mut j = start;
                let mut doubled = false;
                loop {
                    match buf[j..].iter().position(|b| *b == b'"') {
                        None => {
                            if last {
                                return Err(Error::InvalidValue(format!("line {}: unterminated CSV quoted field", self.line)));
                            }
                            return Ok(None);
                        }
                        Some(k) => {
                            let q = j + k;
                            if buf.get(q + 1) == Some(&b'"') {
                                doubled = true;
                                j = q + 2;
                                continue;
                            }
                            if q + 1 == buf.len() && !last {
                                return Ok(None);
                            }
                            let inner = &buf[start..q];
                            lines += inner.iter().filter(|b| **b == b'\n').count();
                            let field = if doubled {
                                let s = self.scratch.len();
                                let mut k = 0;
                                while k < inner.len() {
                                    self.scratch.push(inner[k]);
                                    k += if inner[k] == b'"' { 2 } else { 1 };
                                }
                                Field::Unescaped(s, self.scratch.len())
                            } else {
                                Field::Raw(start, q)
                            };
                            self.fields.push(field);
                            i = q + 1;
                            break;
                        }
                    }
                }
                // After a closing quote: a delimiter, the row end, or garbage.
                match buf.get(i) {
                    Some(b) if *b == delimiter => {
                        i += 1;
                        continue;
                    }
                    Some(b'\n') => return Ok(Some((i + 1, lines))),
                    Some(b'\r') if buf.get(i + 1) == Some(&b'\n') => return Ok(Some((i + 2, lines))),
                    Some(b'\r') if i + 1 == buf.len() && !last => return Ok(None),
                    None if last => return Ok(Some((i, lines))),
                    None => return Ok(None),
                    Some(_) => return Err(Error::InvalidValue(format!("line {}: unexpected character after a quoted CSV field", self.line))),
                }
            }
            let start = i;
            let mut j = i;
            while j < buf.len() && buf[j] != delimiter && buf[j] != b'\n' {
                j += 1;
            }
            if j == buf.len() && !last {
                return Ok(None);
            }
            let mut stop = j;
            if j < buf.len() && buf[j] == b'\n' && stop > start && buf[stop - 1] == b'\r' {
                stop -= 1;
            }
            let raw = &buf[start..stop];
            self.fields.push(if raw == null { Field::Null } else { Field::Raw(start, stop) });
            if j == buf.len() {
                return Ok(Some((j, lines)));
            }
            if buf[j] == b'\n' {
                return Ok(Some((j + 1, lines)));
            }
            i = j + 1;
        }
    }

    // ------------------------------------------------------------ binary

    /// The binary header's length once it is all there.
    fn binary_header(&self) -> Result<Option<usize>> {
        let b = &self.buf;
        if b.len() < 19 {
            if !BINARY_SIGNATURE.starts_with(&b[..b.len().min(11)]) {
                return Err(Error::InvalidValue("COPY file signature not recognized".into()));
            }
            return Ok(None);
        }
        if &b[..11] != BINARY_SIGNATURE {
            return Err(Error::InvalidValue("COPY file signature not recognized".into()));
        }
        let flags = u32::from_be_bytes([b[11], b[12], b[13], b[14]]);
        if flags & 0xffff_0000 & !(1 << 16) != 0 || flags & (1 << 16) != 0 {
            return Err(Error::Unsupported("binary COPY with OIDs or unknown critical flags".into()));
        }
        let ext = u32::from_be_bytes([b[15], b[16], b[17], b[18]]) as usize;
        if ext > COPY_ROW_BYTES_MAX {
            return Err(Error::InvalidValue("binary COPY header extension too long".into()));
        }
        Ok((b.len() >= 19 + ext).then_some(19 + ext))
    }

    /// Split the tuple at `pos` into `fields`; `None` if incomplete.
    fn binary_row(&mut self, pos: usize) -> Result<Option<(usize, usize)>> {
        let b = &self.buf;
        if b.len() < pos + 2 {
            return Ok(None);
        }
        let count = i16::from_be_bytes([b[pos], b[pos + 1]]);
        if count == -1 {
            self.ended = true;
            return Ok(Some((pos + 2, 1)));
        }
        if count < 0 {
            return Err(Error::InvalidValue(format!("tuple {}: field count {count}", self.line)));
        }
        self.fields.clear();
        let mut i = pos + 2;
        for _ in 0..count {
            if b.len() < i + 4 {
                return Ok(None);
            }
            let len = i32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            i += 4;
            if len == -1 {
                self.fields.push(Field::Null);
                continue;
            }
            let len = usize::try_from(len).map_err(|_| Error::InvalidValue(format!("tuple {}: field length {len}", self.line)))?;
            if len > COPY_ROW_BYTES_MAX {
                return Err(Error::InvalidValue(format!("tuple {}: a field longer than {COPY_ROW_BYTES_MAX} bytes", self.line)));
            }
            if b.len() < i + len {
                return Ok(None);
            }
            self.fields.push(Field::Raw(i, i + len));
            i += len;
        }
        Ok(Some((i, 1)))
    }

    // ------------------------------------------------------------ rows

    fn bytes_of(&self, f: Field) -> Option<&[u8]> {
        match f {
            Field::Null => None,
            Field::Raw(s, e) => Some(&self.buf[s..e]),
            Field::Unescaped(s, e) => Some(&self.scratch[s..e]),
        }
    }

    fn text_of(&self, f: Field) -> Result<Option<&str>> {
        self.bytes_of(f)
            .map(|b| std::str::from_utf8(b).map_err(|_| Error::InvalidValue(format!("line {}: invalid UTF-8", self.line))))
            .transpose()
    }

    /// The header row: skipped for a device table, the layout for IoTDB's.
    fn header(&mut self) -> Result<()> {
        let Layout::FromHeader { prefix } = &self.layout else { return Ok(()) };
        let prefix = prefix.clone();
        let names: Vec<String> = (0..self.fields.len())
            .map(|i| self.text_of(self.fields[i]).map(|t| t.unwrap_or("").trim().to_string()))
            .collect::<Result<_>>()?;
        let bad = |why: String| Error::InvalidValue(format!("line 1 (header): {why}"));
        if names.len() < 2 || !names[0].eq_ignore_ascii_case("time") {
            return Err(bad("IoTDB's CSV layouts start with a Time column".into()));
        }
        if names[1].eq_ignore_ascii_case("device") {
            let mut targets = vec![Target::Time, Target::Device];
            let mut measurements = Vec::new();
            for name in &names[2..] {
                let (m, t) = typed_name(name).map_err(bad)?;
                if m.contains('.') || m.is_empty() {
                    return Err(bad(format!("{name:?} is not a measurement name")));
                }
                if measurements.iter().any(|(x, _)| *x == m) {
                    return Err(bad(format!("column {m:?} appears twice")));
                }
                targets.push(Target::Measurement { col: measurements.len() });
                measurements.push((m, t));
            }
            self.layout = Layout::ByDevice { prefix, targets, measurements };
            return Ok(());
        }
        // Align by time: every other column is a full series path.
        let mut targets = vec![Target::Time];
        for name in &names[1..] {
            let (path, t) = typed_name(name).map_err(bad)?;
            let series = Path::parse(&path).map_err(|e| bad(format!("{name:?}: {e}")))?;
            let device = series.parent().ok_or_else(|| bad(format!("{name:?} is not a series path")))?;
            if !series.starts_with(&prefix) {
                return Err(bad(format!("{path} is not under {prefix}")));
            }
            let sink = self.sink(&device.to_string())?;
            let m = series.last().to_string();
            let known = self.instance.catalog().lookup_series(&device.to_string(), &m).map(|h| h.data_type);
            let s = &mut self.sinks[sink];
            if s.columns.iter().any(|c| c.name == m) {
                return Err(bad(format!("column {path} appears twice")));
            }
            targets.push(Target::Column { sink, col: s.columns.len() });
            s.columns.push(ColumnBuilder::new(m, known.or(t)));
        }
        self.layout = Layout::Fixed { targets };
        Ok(())
    }

    /// The sink of `device`, made on first use.
    fn sink(&mut self, device: &str) -> Result<usize> {
        if let Some(i) = self.sink_of.get(device) {
            return Ok(*i);
        }
        if self.sinks.len() >= COPY_DEVICES_MAX {
            return Err(Error::Unsupported(format!("a COPY into more than {COPY_DEVICES_MAX} devices")));
        }
        let i = self.sinks.len();
        self.sinks.push(DeviceSink::new(device.to_string(), Vec::new()));
        self.sink_of.insert(device.to_string(), i);
        Ok(i)
    }

    /// Convert the row in `fields` into the builders.
    fn row(&mut self) -> Result<()> {
        // The targets and the touched list are lent to `row_with` (no copy per row).
        let mut targets = match &mut self.layout {
            Layout::Fixed { targets } | Layout::ByDevice { targets, .. } => std::mem::take(targets),
            Layout::FromHeader { .. } => {
                let unit = if self.options.binary { "tuple" } else { "line" };
                return Err(Error::InvalidValue(format!("{unit} {}: no header row", self.line)));
            }
        };
        let mut touched = std::mem::take(&mut self.touched);
        let result = self.row_with(&targets, &mut touched);
        self.touched = touched;
        if let Layout::Fixed { targets: t } | Layout::ByDevice { targets: t, .. } = &mut self.layout {
            std::mem::swap(t, &mut targets);
        }
        result
    }

    fn row_with(&mut self, targets: &[Target], touched: &mut Vec<usize>) -> Result<()> {
        let line = self.line;
        let unit = if self.options.binary { "tuple" } else { "line" };
        if self.fields.len() != targets.len() {
            // An empty line in text/CSV is a row of one empty field.
            return Err(Error::InvalidValue(format!("{unit} {line}: {} fields for {} columns", self.fields.len(), targets.len())));
        }
        // The time, and the row's device in the align-by-device layout.
        let mut time = None;
        let mut device_sink = None;
        for (k, target) in targets.iter().enumerate() {
            let f = self.fields[k];
            match target {
                Target::Time => {
                    let t = match self.bytes_of(f) {
                        None => return Err(Error::NotNull(format!("{unit} {line}: null value in column \"time\" violates not-null constraint"))),
                        Some(b) if self.options.binary => binary_time(b).map_err(|e| Error::InvalidTime(format!("{unit} {line}, column \"time\": {e}")))?,
                        Some(b) => {
                            let s = std::str::from_utf8(b).map_err(|_| Error::InvalidTime(format!("{unit} {line}: invalid UTF-8")))?;
                            parse_time(s).map_err(|e| Error::InvalidTime(format!("{unit} {line}, column \"time\": {e}")))?
                        }
                    };
                    time = Some(t);
                }
                Target::Device => {
                    let name = self.text_of(f)?.ok_or_else(|| Error::NotNull(format!("{unit} {line}: null value in column \"Device\"")))?.trim();
                    // A device seen before: no key allocated.
                    device_sink = Some(match self.sink_of.get(name) {
                        Some(&i) => i,
                        None => {
                            let name = name.to_string();
                            self.device_sink(&name, line)?
                        }
                    });
                }
                _ => {}
            }
        }
        let Some(time) = time else { return Err(Error::NotNull(format!("{unit} {line}: no time"))) };
        // Which sinks this row writes: a device table's row always lands
        // (even all NULL); in IoTDB's layouts, every device with a value.
        touched.clear();
        if self.device_table {
            touched.push(0);
        } else {
            for (k, target) in targets.iter().enumerate() {
                let sink = match target {
                    Target::Column { sink, .. } => Some(*sink),
                    Target::Measurement { .. } => device_sink,
                    _ => None,
                };
                if let Some(sink) = sink.filter(|s| !matches!(self.fields[k], Field::Null) && !touched.contains(s)) {
                    touched.push(sink);
                }
            }
        }
        let infer = |s: &str| -> DataType { self.instance.catalog().infer_type(value_kind(s)) };
        for &sink in touched.iter() {
            self.sinks[sink].times.push(time);
        }
        for (k, target) in targets.iter().enumerate() {
            let (sink, col) = match target {
                Target::Column { sink, col } => (*sink, *col),
                Target::Measurement { col } => match device_sink {
                    Some(s) => (s, *col),
                    None => continue,
                },
                _ => continue,
            };
            if !touched.contains(&sink) {
                continue;
            }
            let field = self.fields[k];
            let bytes: Option<&[u8]> = match field {
                Field::Null => None,
                Field::Raw(s, e) => Some(&self.buf[s..e]),
                Field::Unescaped(s, e) => Some(&self.scratch[s..e]),
            };
            let builder = &mut self.sinks[sink].columns[col];
            let result = match bytes {
                None => {
                    builder.push_null();
                    Ok(())
                }
                Some(b) if self.options.binary => builder.push_binary(b),
                Some(b) => builder.push_text(b, &infer),
            };
            if let Err(e) = result {
                return Err(Error::InvalidValue(format!("{unit} {line}, column \"{}\": {e}", builder.name)));
            }
            // About what the value takes once typed (a slot, and the bytes of text).
            self.typed_bytes += 8 + bytes.map_or(0, |b| if builder.data_type.is_some_and(|t| t.physical() == DataType::Text.physical()) { b.len() + 24 } else { 0 });
        }
        // Columns of touched sinks that this row has no field for get a NULL.
        for &sink in touched.iter() {
            let s = &mut self.sinks[sink];
            let rows = s.times.len();
            for c in &mut s.columns {
                if c.rows < rows {
                    c.push_null();
                }
            }
            if rows >= CHUNK_ROWS {
                s.seal();
            }
        }
        self.typed_bytes += 8 * touched.len();
        self.end_row()
    }

    /// Count a row pushed into the builders; log a part once the typed
    /// values reach the part size.
    fn end_row(&mut self) -> Result<()> {
        self.rows += 1;
        if self.typed_bytes >= self.part_bytes_max {
            for s in &mut self.sinks {
                s.seal();
            }
            self.write_part()?;
        }
        Ok(())
    }

    /// Log the sealed batches as the next part of each database's group, on
    /// another thread: this one goes on parsing meanwhile (the design's
    /// split of parsing and logging over two cores). At most one part is in
    /// flight; the next waits for it.
    fn write_part(&mut self) -> Result<()> {
        self.settle_part()?;
        let parts = self.prepare()?;
        for (database, _) in &parts {
            if !self.groups.iter().any(|(d, _)| d == database) {
                let group = self.instance.store(database)?.begin_group().ok_or_else(|| Error::Unsupported(format!("a COPY larger than one part into {database}")))?;
                self.groups.push((database.clone(), group));
            }
        }
        self.typed_bytes = 0;
        let mut groups = std::mem::take(&mut self.groups);
        let log = move || {
            let mut result = Ok(());
            let mut spent = Vec::new();
            for (database, batches) in parts {
                if let Some((_, group)) = groups.iter_mut().find(|(d, _)| *d == database) {
                    // Synced at once: the disk writes it while the next part
                    // is parsed, and the commit's sync has only the tail left.
                    result = group.write_part(batches).and_then(|s| {
                        spent.extend(s);
                        group.sync_parts()
                    });
                    if result.is_err() {
                        break;
                    }
                }
            }
            (groups, result, spent)
        };
        let handle = std::thread::Builder::new()
            .name("arbor-copy-part".into())
            .spawn(log)
            .map_err(|e| Error::Unsupported(format!("internal error: cannot start a thread to log a COPY part: {e}")))?;
        self.in_flight = Some(handle);
        Ok(())
    }

    /// Wait for the part in flight and take its groups back.
    fn settle_part(&mut self) -> Result<()> {
        let Some(handle) = self.in_flight.take() else { return Ok(()) };
        let (groups, result, spent) = handle.join().map_err(|_| Error::Unsupported("internal error: logging a COPY part panicked".into()))?;
        self.groups = groups;
        for batch in spent {
            if let Some(&i) = self.sink_of.get(&batch.device) {
                self.sinks[i].spare = Some(batch);
            }
        }
        Ok(result?)
    }

    /// The sink of an align-by-device row's device, checked against the prefix.
    fn device_sink(&mut self, name: &str, line: usize) -> Result<usize> {
        if let Some(i) = self.sink_of.get(name) {
            return Ok(*i);
        }
        let Layout::ByDevice { prefix, measurements, .. } = &self.layout else { return Err(Error::InvalidValue("no device column".into())) };
        let path = Path::parse(name).map_err(|e| Error::InvalidValue(format!("line {line}, column \"Device\": {e}")))?;
        if !path.starts_with(prefix) {
            return Err(Error::InvalidValue(format!("line {line}, column \"Device\": {name} is not under {prefix}")));
        }
        let device = path.to_string();
        let columns: Vec<ColumnBuilder> = measurements
            .iter()
            .map(|(m, t)| {
                let known = self.instance.catalog().lookup_series(&device, m).map(|h| h.data_type);
                ColumnBuilder::new(m.clone(), known.or(*t))
            })
            .collect();
        let i = self.sink(name)?;
        self.sinks[i].columns = columns;
        Ok(i)
    }

    /// Create missing series, check types against the catalog, and take
    /// the sealed batches, per database.
    fn prepare(&mut self) -> Result<Vec<(String, Vec<WriteBatch>)>> {
        let catalog = self.instance.catalog().clone();
        let mut groups: Vec<(String, Vec<WriteBatch>)> = Vec::new();
        for sink in &mut self.sinks {
            if sink.batches.is_empty() {
                continue;
            }
            let mut wanted: Vec<(String, DataType)> = Vec::new();
            for b in &sink.batches {
                for c in &b.columns {
                    if !wanted.iter().any(|(m, _)| *m == c.measurement) {
                        wanted.push((c.measurement.clone(), c.data_type));
                    }
                }
            }
            let path = Path::parse(&sink.device)?;
            let aligned = catalog.device(&path).is_some_and(|d| d.aligned);
            let handles = catalog.ensure_series(&sink.device, &wanted, aligned)?;
            for (h, (_, t)) in handles.iter().zip(&wanted) {
                catalog.check_type(h, *t)?;
            }
            let database = catalog
                .database_by_id(handles[0].database)
                .ok_or_else(|| Error::Unsupported(format!("no database for {}", sink.device)))?
                .path
                .to_string();
            let aligned = handles[0].aligned;
            let batches = std::mem::take(&mut sink.batches).into_iter().map(|mut b| {
                b.aligned = aligned;
                for c in &mut b.columns {
                    if let Some((h, _)) = handles.iter().zip(&wanted).find(|(_, (m, _))| *m == c.measurement) {
                        crate::convert::round_for_series(h, &mut c.values);
                    }
                }
                b
            });
            match groups.iter_mut().find(|(d, _)| *d == database) {
                Some((_, g)) => g.extend(batches),
                None => groups.push((database, batches.collect())),
            }
        }
        Ok(groups)
    }
}

/// The numeric fast path's plan for a COPY, when it applies: a device
/// table whose targets are all the time or DOUBLE, INT64 or INT32 columns,
/// in binary, or in text or CSV with a delimiter and NULL string that
/// cannot be part of a number.
fn fast_plan(layout: &Layout, sinks: &[DeviceSink], options: &CopyOptions) -> Option<Vec<FastTarget>> {
    let Layout::Fixed { targets } = layout else { return None };
    let number_byte = |b: u8| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+');
    if !options.binary && (number_byte(options.delimiter) || options.delimiter == b'\n' || options.null.bytes().any(number_byte)) {
        return None;
    }
    targets
        .iter()
        .map(|t| match *t {
            Target::Time => Some(FastTarget::Time),
            Target::Column { sink: 0, col } => match sinks.first()?.columns.get(col)?.data_type? {
                DataType::Double => Some(FastTarget::Double(col)),
                DataType::Int64 => Some(FastTarget::Int64(col)),
                DataType::Int32 => Some(FastTarget::Int32(col)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// `s1(INT32)` → (`s1`, INT32); `s1` → (`s1`, None).
fn typed_name(name: &str) -> std::result::Result<(String, Option<DataType>), String> {
    match name.strip_suffix(')').and_then(|n| n.rsplit_once('(')) {
        Some((n, t)) => {
            let t = t.trim().parse::<DataType>().map_err(|_| format!("unknown data type {t:?} in {name:?}"))?;
            Ok((n.trim().to_string(), Some(t)))
        }
        None => Ok((name.to_string(), None)),
    }
}

/// PostgreSQL text-format escapes of `raw`, appended to `out`.
fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let Some(&c) = raw.get(i + 1) else {
            out.push(b'\\');
            return;
        };
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut k = 0;
                while k < 2 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    v = v * 8 + u32::from(raw[i] - b'0');
                    i += 1;
                    k += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u8;
                let mut k = 0;
                while k < 2 && i < raw.len() && raw[i].is_ascii_hexdigit() {
                    v = v * 16 + (raw[i] as char).to_digit(16).unwrap_or(0) as u8;
                    i += 1;
                    k += 1;
                }
                out.push(v);
            }
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(csv: bool) -> CopyOptions {
        CopyOptions { csv, binary: false, delimiter: if csv { b',' } else { b'\t' }, null: if csv { String::new() } else { "\\N".into() }, header: false }
    }

    /// The rows a parser splits `data` into, fed in pieces of `step` bytes.
    fn split(data: &[u8], options: CopyOptions, step: usize) -> Result<Vec<Vec<Option<String>>>> {
        let dir = tempfile::tempdir().unwrap();
        let instance = crate::instance::Instance::open(crate::instance::InstanceConfig::new(dir.path())).unwrap();
        let mut c = CopyIn::start(instance, "root.none", &[], CopyOptions { header: true, csv: true, ..options.clone() }).unwrap();
        c.options = options;
        c.header_pending = false;
        let mut rows = Vec::new();
        let mut pos = 0;
        let mut fed = 0;
        while !c.ended {
            let last = fed >= data.len();
            if !last {
                let n = step.min(data.len() - fed);
                c.buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
            loop {
                let row = if c.options.csv { c.csv_row(pos, last)? } else { c.text_row(pos, last) };
                let Some((end, _)) = row else { break };
                if !c.ended {
                    rows.push((0..c.fields.len()).map(|i| c.bytes_of(c.fields[i]).map(|b| String::from_utf8_lossy(b).into_owned())).collect());
                }
                pos = end;
                if pos >= c.buf.len() || c.ended {
                    break;
                }
            }
            if last {
                break;
            }
        }
        Ok(rows)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn text_format_rows() {
        for step in [1, 3, 1000] {
            let rows = split(b"1\ta\\tb\t\\N\n2\t\\x41\\101\t3\n\\.\nignored\n", opts(false), step).unwrap();
            assert_eq!(rows, vec![vec![s("1"), s("a\tb"), None], vec![s("2"), s("AA"), s("3")]], "step {step}");
        }
        // An escaped delimiter is data (what COPY TO writes for non-tab delimiters).
        let rows = split(b"1,a\\,b,2\n", CopyOptions { delimiter: b',', ..opts(false) }, 2).unwrap();
        assert_eq!(rows[0], vec![s("1"), s("a,b"), s("2")]);
    }

    #[test]
    fn csv_rows_quote_and_null() {
        for step in [1, 2, 5, 1000] {
            let rows = split(b"1,\"a,\"\"b\"\"\",\n2,\"\",x\r\n3,\"two\nlines\",\n", opts(true), step).unwrap();
            assert_eq!(rows[0], vec![s("1"), s("a,\"b\""), None], "step {step}");
            assert_eq!(rows[1], vec![s("2"), s(""), s("x")], "step {step}");
            assert_eq!(rows[2], vec![s("3"), s("two\nlines"), None], "step {step}");
        }
        assert!(split(b"1,\"open\n", opts(true), 4).is_err());
        // `\.` ends CSV data only alone on its line.
        let rows = split(b"\\.profile,1\n2,x\n\\.\n3,y\n", opts(true), 3).unwrap();
        assert_eq!(rows, vec![vec![s("\\.profile"), s("1")], vec![s("2"), s("x")]]);
    }

    /// A gathered chunk: its times, and each column's values and validity.
    type Gathered = (Vec<i64>, Vec<(Values, Option<Vec<bool>>)>);

    /// The chunks a COPY gathered for its one device, or the error.
    fn gathered(instance: &Arc<Instance>, data: &[u8], options: &CopyOptions, step: usize, fast: bool) -> std::result::Result<Vec<Gathered>, String> {
        let mut c = CopyIn::start(Arc::clone(instance), "root.fp.d", &[], options.clone()).unwrap();
        assert!(c.fast.is_some(), "the table qualifies for the fast path");
        if !fast {
            c.fast = None;
        }
        for chunk in data.chunks(step) {
            c.feed(chunk).map_err(|e| e.to_string())?;
        }
        if !c.ended {
            let consumed = c.parse(true).map_err(|e| e.to_string())?;
            c.buf.drain(..consumed);
        }
        let sink = &mut c.sinks[0];
        sink.seal();
        Ok(sink.batches.iter().map(|b| (b.times.clone(), b.columns.iter().map(|c| (c.values.clone(), c.validity.clone())).collect())).collect())
    }

    /// Random rows of numbers (and the odd thing the fast path leaves to
    /// the general one) give what the general path alone gives, fed in
    /// random message sizes, in CSV, text and binary.
    #[test]
    fn the_numeric_fast_path_agrees_with_the_general_one() {
        let dir = tempfile::tempdir().unwrap();
        let instance = crate::instance::Instance::open(crate::instance::InstanceConfig::new(dir.path())).unwrap();
        let catalog = instance.catalog();
        catalog.create_database(&Path::parse("root.fp").unwrap()).unwrap();
        catalog.ensure_series("root.fp.d", &[("a", DataType::Double), ("b", DataType::Int64), ("c", DataType::Int32)], true).unwrap();
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let odd = ["", "1e3", "\"2.5\"", " 3", "+4", "-0.00", "9007199254740993", "12345678901234567890", ".5", "5.", "-", "1.2.3", "NaN", "2147483648", "-2147483648", "9223372036854775808", "-9223372036854775808", "\\N", "x"];
        let mut accepted = 0;
        for case in 0..200 {
            let csv = case % 2 == 0;
            let delimiter = if csv { ',' } else { '\t' };
            let mut data = String::new();
            for _ in 0..1 + next(30) {
                let field = |next: &mut dyn FnMut(u64) -> u64, kind: u64| -> String {
                    if next(60) == 0 {
                        return odd[next(odd.len() as u64) as usize].to_string();
                    }
                    let sign = if next(3) == 0 { "-" } else { "" };
                    match kind {
                        0 => format!("{sign}{}.{:02}", next(100_000), next(100)),
                        1 => format!("{sign}{}", next(u64::MAX >> 1) >> next(64)),
                        _ => format!("{sign}{}", next(1 << 32) >> next(33)),
                    }
                };
                let time = if next(20) == 0 { "2024-01-01T00:00:00Z".to_string() } else { next(1 << 40).to_string() };
                let fields = [time, field(&mut next, 0), field(&mut next, 1), field(&mut next, 2)];
                data.push_str(&fields.join(&delimiter.to_string()));
                data.push_str(match next(10) {
                    0 => "\r\n",
                    _ => "\n",
                });
            }
            if next(4) == 0 {
                data.push_str("\\.\n");
            }
            let options = CopyOptions { csv, binary: false, delimiter: delimiter as u8, null: if csv { String::new() } else { "\\N".into() }, header: false };
            let step = 1 + next(64) as usize;
            let general = gathered(&instance, data.as_bytes(), &options, step, false);
            let fast = gathered(&instance, data.as_bytes(), &options, step, true);
            assert_eq!(fast, general, "case {case}: {data:?}");
            accepted += usize::from(general.is_ok());
        }
        assert!(accepted > 50, "only {accepted} of 200 inputs were valid");
        // Binary: tuples of the four columns, now and then a NULL, a field
        // of another width, another field count, or a time out of range.
        let mut accepted = 0;
        for case in 0..100 {
            let mut data = BINARY_SIGNATURE.to_vec();
            data.extend_from_slice(&[0; 8]);
            for _ in 0..1 + next(30) {
                let odd = next(15);
                let count: i16 = if odd == 0 { 3 } else { 4 };
                data.extend_from_slice(&count.to_be_bytes());
                let time = if odd == 1 { i64::MAX } else { next(1 << 50) as i64 - (1 << 49) };
                let fields: [Vec<u8>; 4] = [
                    time.to_be_bytes().to_vec(),
                    (next(1 << 40) as f64 / 7.0).to_be_bytes().to_vec(),
                    (next(u64::MAX >> 1) as i64 - (1 << 61)).to_be_bytes().to_vec(),
                    if odd == 2 { vec![1, 2] } else { (next(1 << 32) as u32).to_be_bytes().to_vec() },
                ];
                for (k, f) in fields.iter().enumerate().take(count as usize) {
                    if odd == 3 && k == 1 {
                        data.extend_from_slice(&(-1i32).to_be_bytes());
                        continue;
                    }
                    data.extend_from_slice(&(f.len() as i32).to_be_bytes());
                    data.extend_from_slice(f);
                }
            }
            data.extend_from_slice(&(-1i16).to_be_bytes());
            let options = CopyOptions { csv: false, binary: true, delimiter: b'\t', null: String::new(), header: false };
            let step = 1 + next(64) as usize;
            let general = gathered(&instance, &data, &options, step, false);
            let fast = gathered(&instance, &data, &options, step, true);
            assert_eq!(fast, general, "binary case {case}");
            accepted += usize::from(general.is_ok());
        }
        assert!(accepted > 10, "only {accepted} of 100 binary inputs were valid");
    }

    #[test]
    fn validity_appears_with_the_first_null() {
        let infer = |_: &str| DataType::Double;
        let mut b = ColumnBuilder::new("x".into(), Some(DataType::Double));
        b.push_text(b"1.5", &infer).unwrap();
        b.push_text(b"2", &infer).unwrap();
        assert!(b.validity.is_none());
        b.push_null();
        b.push_text(b"-3.25", &infer).unwrap();
        let (t, values, validity) = b.take(None).unwrap();
        assert_eq!(t, DataType::Double);
        assert_eq!(values, Values::Double(vec![1.5, 2.0, -3.25]));
        assert_eq!(validity, Some(vec![true, true, false, true]));
        // The next chunk starts without NULLs again.
        b.push_text(b"4", &infer).unwrap();
        assert_eq!(b.take(Some(Values::Double(vec![9.0; 8]))).map(|(_, v, n)| (v, n)), Some((Values::Double(vec![4.0]), None)));
        // A chunk of NULLs only is no column.
        b.push_null();
        assert!(b.take(None).is_none());
        assert_eq!(b.rows, 0);
    }

    #[test]
    fn values_in_postgres_text_forms() {
        let infer = |_: &str| DataType::Double;
        let mut b = ColumnBuilder::new("x".into(), Some(DataType::Double));
        for v in ["1.5", "-Infinity", "NaN", " 2 "] {
            b.push_text(v.as_bytes(), &infer).unwrap();
        }
        assert!(b.push_text(b"oops", &infer).is_err());
        let mut i = ColumnBuilder::new("i".into(), Some(DataType::Int32));
        assert!(i.push_text(b"1.5", &infer).is_err());
        assert!(i.push_text(b"3000000000", &infer).is_err());
        i.push_text(b"-7", &infer).unwrap();
        assert_eq!(parse_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int("9223372036854775808"), None);
        assert_eq!(parse_time("2024-01-01 00:00:01+00").unwrap(), 1_704_067_201_000);
        assert_eq!(parse_time("1000").unwrap(), 1000);
        assert_eq!(binary_time(&0i64.to_be_bytes()).unwrap(), PG_EPOCH_MS);
        assert_eq!(typed_name("s1(INT32)").unwrap(), ("s1".to_string(), Some(DataType::Int32)));
    }
}
