//! `COPY "root…" [(columns)] FROM STDIN`: PostgreSQL's text and CSV formats
//! parsed into rows of one device and written through its engine. A first
//! pass checks every row (an error names the line and nothing is written);
//! a second writes in chunks of [`CHUNK_ROWS`], so memory stays bounded
//! however large the COPY.

use std::sync::Arc;

use tsfile::{DataType, Value};

use super::device_table::DeviceTableProvider;
use crate::series::SeriesRef;
use super::values::{device_batch, DeviceRows};
use crate::error::{Error, Result};
use crate::instance::Instance;

/// How COPY data is laid out.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub csv: bool,
    pub delimiter: u8,
    pub null: String,
    pub header: bool,
}

/// One field of a COPY row: `None` is NULL.
type Field = Option<String>;

/// Rows per engine write.
const CHUNK_ROWS: usize = 65_536;

/// What receives each parsed row.
type OnRow<'a> = &'a mut dyn FnMut(Vec<Field>) -> Result<()>;

/// Each row of COPY text format data (backslash escapes, `null` marks
/// NULL, `\.` ends the data).
fn each_text_row(data: &str, delimiter: char, null: &str, on_row: OnRow<'_>) -> Result<()> {
    let data = data.strip_suffix('\n').unwrap_or(data);
    if data.is_empty() {
        return Ok(());
    }
    for (n, line) in data.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == "\\." {
            break;
        }
        let mut fields = Vec::new();
        for raw in split_unescaped(line, delimiter) {
            if raw == null {
                fields.push(None);
            } else {
                fields.push(Some(unescape(raw).map_err(|e| Error::InvalidValue(format!("line {}: {e}", n + 1)))?));
            }
        }
        on_row(fields)?;
    }
    Ok(())
}

/// Split a text-format line at delimiters not escaped by a backslash.
fn split_unescaped(line: &str, delimiter: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == delimiter {
            out.push(&line[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&line[start..]);
    out
}

fn unescape(raw: &str) -> std::result::Result<String, String> {
    if !raw.contains('\\') {
        return Ok(raw.to_string());
    }
    let mut out = Vec::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let Some(&c) = bytes.get(i + 1) else { return Err("trailing backslash".into()) };
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
                while k < 2 && i < bytes.len() && (b'0'..=b'7').contains(&bytes[i]) {
                    v = v * 8 + u32::from(bytes[i] - b'0');
                    i += 1;
                    k += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if bytes.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u8;
                let mut k = 0;
                while k < 2 && i < bytes.len() && bytes[i].is_ascii_hexdigit() {
                    v = v * 16 + (bytes[i] as char).to_digit(16).unwrap_or(0) as u8;
                    i += 1;
                    k += 1;
                }
                out.push(v);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).map_err(|_| "invalid UTF-8 after unescaping".to_string())
}

/// Each row of CSV data: `"` quotes (`""` inside), an unquoted field
/// equal to `null` is NULL, quoted fields never are.
fn each_csv_row(data: &str, delimiter: char, null: &str, on_row: OnRow<'_>) -> Result<()> {
    let mut fields: Vec<Field> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut line = 1;
    let mut chars = data.chars().peekable();
    let mut row_started = false;
    let finish_field = |fields: &mut Vec<Field>, field: &mut String, quoted: &mut bool| {
        let f = std::mem::take(field);
        fields.push(if !*quoted && f == null { None } else { Some(f) });
        *quoted = false;
    };
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_quotes = true;
                quoted = true;
                row_started = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if row_started || !field.is_empty() || !fields.is_empty() {
                    finish_field(&mut fields, &mut field, &mut quoted);
                    on_row(std::mem::take(&mut fields))?;
                }
                row_started = false;
                line += 1;
            }
            c if c == delimiter => {
                finish_field(&mut fields, &mut field, &mut quoted);
                row_started = true;
            }
            c => {
                if !row_started && field.is_empty() && c == '\\' && chars.peek() == Some(&'.') {
                    // `\.` alone on its line ends the data; anywhere else it is data.
                    let mut ahead = chars.clone();
                    ahead.next();
                    let rest: String = ahead.by_ref().take(2).collect();
                    if rest.is_empty() || rest.starts_with('\n') || rest == "\r\n" {
                        break;
                    }
                }
                field.push(c);
                row_started = true;
            }
        }
    }
    if in_quotes {
        return Err(Error::InvalidValue(format!("line {line}: unterminated CSV quoted field")));
    }
    if row_started || !field.is_empty() || !fields.is_empty() {
        finish_field(&mut fields, &mut field, &mut quoted);
        on_row(fields)?;
    }
    Ok(())
}

/// A `time` field: integer milliseconds or a timestamp text.
fn parse_time(text: &str) -> Result<i64> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(ms);
    }
    crate::time::parse_iso(t)
}

/// A value field of type `t`, in PostgreSQL's text forms.
fn parse_field(t: DataType, text: &str) -> std::result::Result<Value, String> {
    let bad = || format!("invalid input syntax for type {t}: {text:?}");
    Ok(match t {
        DataType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "1" | "yes" | "y" | "on" => Value::Boolean(true),
            "f" | "false" | "0" | "no" | "n" | "off" => Value::Boolean(false),
            _ => return Err(bad()),
        },
        DataType::Float | DataType::Double => {
            let v = match text.trim().to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "infinity" | "inf" | "+infinity" => f64::INFINITY,
                "-infinity" | "-inf" => f64::NEG_INFINITY,
                s => s.parse::<f64>().map_err(|_| bad())?,
            };
            if t == DataType::Float {
                Value::Float(text.trim().parse::<f32>().unwrap_or(v as f32))
            } else {
                Value::Double(v)
            }
        }
        DataType::Timestamp => Value::Int64(parse_time(text).map_err(|_| bad())?),
        DataType::Blob if !text.starts_with("\\x") => Value::Binary(text.as_bytes().to_vec()),
        other => tsfile::text::parse_value(other, text).map_err(|_| bad())?,
    })
}

/// Parse `data` and write it into the device table `table`; returns the rows written.
pub(crate) fn copy_in(instance: &Arc<Instance>, table: &str, columns: &[String], options: &CopyOptions, data: &[u8]) -> Result<usize> {
    let device = DeviceTableProvider::open(instance.clone(), table).ok_or_else(|| Error::UnknownTable(format!("\"{table}\"")))?;
    let schema = datafusion::catalog::TableProvider::schema(&device);
    let names: Vec<String> = if columns.is_empty() {
        schema.fields().iter().map(|f| f.name().clone()).collect()
    } else {
        columns.to_vec()
    };
    // Where each COPY field goes: None = time, Some(i) = series i.
    let mut targets = Vec::with_capacity(names.len());
    for name in &names {
        if name == "time" {
            if targets.contains(&None) {
                return Err(Error::Syntax("column \"time\" specified more than once".into()));
            }
            targets.push(None);
        } else {
            let i = device.series_index(name).ok_or_else(|| Error::UnknownColumn(format!("\"{name}\" of relation \"{table}\"")))?;
            if targets.contains(&Some(i)) {
                return Err(Error::Syntax(format!("column \"{name}\" specified more than once")));
            }
            targets.push(Some(i));
        }
    }
    if !targets.contains(&None) {
        return Err(Error::NotNull(format!("COPY into \"{table}\" needs the \"time\" column")));
    }
    let text = std::str::from_utf8(data).map_err(|e| Error::InvalidValue(format!("COPY data is not UTF-8: {e}")))?;
    let delimiter = char::from(options.delimiter);
    let series = device.series();
    let each_row = |on_row: OnRow<'_>| {
        if options.csv {
            each_csv_row(text, delimiter, &options.null, on_row)
        } else {
            each_text_row(text, delimiter, &options.null, on_row)
        }
    };
    // Pass 1 checks every row; pass 2 converts again into batches, written
    // as one group: all or nothing, across errors and crashes.
    for write in [false, true] {
        let mut chunk = Chunk::new(device.device(), series);
        let mut line = 0;
        let mut batches = Vec::new();
        let mut database = String::new();
        let mut rows = 0;
        each_row(&mut |row| {
            line += 1;
            if options.header && line == 1 {
                return Ok(());
            }
            chunk.push(&row, &targets, line)?;
            if chunk.rows.times.len() >= CHUNK_ROWS {
                let full = chunk.take();
                rows += full.times.len();
                if write {
                    if let Some((db, batch)) = device_batch(instance, full)? {
                        database = db;
                        batches.push(batch);
                    }
                }
            }
            Ok(())
        })?;
        if write {
            let last = chunk.take();
            rows += last.times.len();
            if let Some((db, batch)) = device_batch(instance, last)? {
                database = db;
                batches.push(batch);
            }
            if !batches.is_empty() {
                instance.store(&database)?.write_group(&batches)?;
            }
            return Ok(rows);
        }
    }
    Ok(0)
}

/// Rows being gathered for one engine write.
struct Chunk<'a> {
    series: &'a [SeriesRef],
    rows: DeviceRows,
}

impl<'a> Chunk<'a> {
    fn new(device: &str, series: &'a [SeriesRef]) -> Self {
        let columns = series.iter().map(|s| (s.info.measurement().to_string(), s.data_type(), Vec::new())).collect();
        Chunk { series, rows: DeviceRows { device: device.to_string(), times: Vec::new(), columns } }
    }

    /// The gathered rows, leaving the chunk empty.
    fn take(&mut self) -> DeviceRows {
        let columns = self.rows.columns.iter().map(|(m, t, _)| (m.clone(), *t, Vec::new())).collect();
        let empty = DeviceRows { device: self.rows.device.clone(), times: Vec::new(), columns };
        std::mem::replace(&mut self.rows, empty)
    }

    /// Convert one row (`targets`: None = time, Some(i) = series i).
    fn push(&mut self, row: &[Field], targets: &[Option<usize>], line: usize) -> Result<()> {
        if row.len() != targets.len() {
            return Err(Error::InvalidValue(format!("line {line}: {} fields for {} columns", row.len(), targets.len())));
        }
        let mut time = None;
        let mut values: Vec<Option<Value>> = vec![None; self.series.len()];
        for (field, target) in row.iter().zip(targets) {
            match (target, field) {
                (None, None) => return Err(Error::NotNull(format!("line {line}: null value in column \"time\" violates not-null constraint"))),
                (None, Some(f)) => time = Some(parse_time(f).map_err(|e| Error::InvalidTime(format!("line {line}: {e}")))?),
                (Some(_), None) => {}
                (Some(i), Some(f)) => {
                    let s = &self.series[*i];
                    let v = parse_field(s.data_type(), f)
                        .map_err(|e| Error::InvalidValue(format!("line {line}, column \"{}\": {e}", s.info.measurement())))?;
                    values[*i] = Some(v);
                }
            }
        }
        let Some(time) = time else { return Err(Error::NotNull(format!("line {line}: no time"))) };
        self.rows.times.push(time);
        for ((_, _, column), v) in self.rows.columns.iter_mut().zip(values) {
            column.push(v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row a parser gives, collected.
    fn collect(parse: impl FnOnce(OnRow<'_>) -> Result<()>) -> Result<Vec<Vec<Field>>> {
        let mut rows = Vec::new();
        parse(&mut |r| {
            rows.push(r);
            Ok(())
        })?;
        Ok(rows)
    }

    fn text_rows(data: &str, delimiter: char, null: &str) -> Result<Vec<Vec<Field>>> {
        collect(|on_row| each_text_row(data, delimiter, null, on_row))
    }

    fn csv_rows(data: &str, delimiter: char, null: &str) -> Result<Vec<Vec<Field>>> {
        collect(|on_row| each_csv_row(data, delimiter, null, on_row))
    }

    #[test]
    fn text_format_rows() {
        let rows = text_rows("1\ta\\tb\t\\N\n2\t\\x41\\101\t3\n\\.\nignored\n", '\t', "\\N").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], vec![Some("1".into()), Some("a\tb".into()), None]);
        assert_eq!(rows[1], vec![Some("2".into()), Some("AA".into()), Some("3".into())]);
        // An escaped delimiter is data (what COPY TO writes for non-tab delimiters).
        let rows = text_rows("1,a\\,b,2\n", ',', "\\N").unwrap();
        assert_eq!(rows[0], vec![Some("1".into()), Some("a,b".into()), Some("2".into())]);
    }

    #[test]
    fn csv_rows_quote_and_null() {
        let rows = csv_rows("1,\"a,\"\"b\"\"\",\n2,\"\",x\r\n", ',', "").unwrap();
        assert_eq!(rows[0], vec![Some("1".into()), Some("a,\"b\"".into()), None]);
        assert_eq!(rows[1], vec![Some("2".into()), Some(String::new()), Some("x".into())]);
        assert!(csv_rows("1,\"open\n", ',', "").is_err());
        // `\.` ends CSV data only alone on its line.
        let rows = csv_rows("\\.profile,1\n2,x\n\\.\n3,y\n", ',', "").unwrap();
        assert_eq!(rows, vec![vec![Some("\\.profile".into()), Some("1".into())], vec![Some("2".into()), Some("x".into())]]);
    }

    #[test]
    fn fields_in_postgres_text_forms() {
        assert_eq!(parse_field(DataType::Boolean, "t").unwrap(), Value::Boolean(true));
        assert_eq!(parse_field(DataType::Double, "-Infinity").unwrap(), Value::Double(f64::NEG_INFINITY));
        assert_eq!(parse_field(DataType::Float, "1.1").unwrap(), Value::Float(1.1));
        assert!(parse_field(DataType::Int32, "1.5").is_err());
        assert_eq!(parse_time("2024-01-01 00:00:01+00").unwrap(), 1_704_067_201_000);
        assert_eq!(parse_time("1000").unwrap(), 1000);
    }
}
