//! COPY over the wire: `COPY table [(columns)] FROM STDIN` (text or CSV) as
//! the bulk ingest path, and `COPY table|(query) TO STDOUT`.
//!
//! The statement is recognised here; rows are parsed and written by the
//! session, which validates every row before writing any.

use sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// A COPY statement, as far as the wire layer needs it.
#[derive(Debug, Clone)]
pub(crate) enum CopyRequest {
    FromStdin { table: String, columns: Vec<String>, options: sql::CopyOptions },
    /// `SELECT …` text whose rows go to the client.
    ToStdout { query: String, options: sql::CopyOptions },
}

/// `Some` when `sql` is a COPY statement (or an error in one).
pub(crate) fn parse_copy(sql: &str) -> Option<Result<CopyRequest, String>> {
    let head = sql.trim_start();
    if !head.get(..4).is_some_and(|w| w.eq_ignore_ascii_case("copy")) {
        return None;
    }
    let statements = match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(s) => s,
        Err(e) => return Some(Err(e.to_string())),
    };
    let [Statement::Copy { source, to, target, options, legacy_options, .. }] = statements.as_slice() else {
        return Some(Err("COPY must be the only statement of its query".into()));
    };
    let mut opts = sql::CopyOptions { csv: false, binary: false, delimiter: b'\t', null: "\\N".into(), header: false };
    let mut delimiter = None;
    let mut null = None;
    for o in options {
        match o {
            CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                "csv" => opts.csv = true,
                "text" => opts.csv = false,
                "binary" => opts.binary = true,
                other => return Some(Err(format!("COPY format {other} is not supported (text, csv or binary)"))),
            },
            CopyOption::Delimiter(c) => delimiter = Some(*c),
            CopyOption::Null(n) => null = Some(n.clone()),
            CopyOption::Header(h) => opts.header = *h,
            other => return Some(Err(format!("COPY option {other} is not supported"))),
        }
    }
    for o in legacy_options {
        match o {
            CopyLegacyOption::Csv(csv_opts) => {
                opts.csv = true;
                if csv_opts.iter().any(|c| matches!(c, CopyLegacyCsvOption::Header)) {
                    opts.header = true;
                }
            }
            CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
            CopyLegacyOption::Null(n) => null = Some(n.clone()),
            CopyLegacyOption::Header => opts.header = true,
            CopyLegacyOption::Binary => opts.binary = true,
            other => return Some(Err(format!("COPY option {other} is not supported"))),
        }
    }
    if opts.csv {
        opts.delimiter = b',';
        opts.null = String::new();
    }
    if let Some(c) = delimiter {
        if !c.is_ascii() {
            return Some(Err(format!("COPY delimiter {c:?} must be one ASCII character")));
        }
        opts.delimiter = c as u8;
    }
    if let Some(n) = null {
        opts.null = n;
    }
    let request = match (source, to, target) {
        (CopySource::Table { table_name, columns }, false, CopyTarget::Stdin) => CopyRequest::FromStdin {
            table: table_name.0.iter().map(|p| p.to_string().trim_matches('"').to_string()).collect::<Vec<_>>().join("."),
            columns: columns.iter().map(|c| c.value.clone()).collect(),
            options: opts,
        },
        (CopySource::Table { table_name, columns }, true, CopyTarget::Stdout) => {
            let cols = if columns.is_empty() {
                "*".to_string()
            } else {
                columns.iter().map(|c| format!("\"{}\"", c.value.replace('"', "\"\""))).collect::<Vec<_>>().join(", ")
            };
            CopyRequest::ToStdout { query: format!("SELECT {cols} FROM {table_name}"), options: opts }
        }
        (CopySource::Query(q), true, CopyTarget::Stdout) => CopyRequest::ToStdout { query: q.to_string(), options: opts },
        _ => return Some(Err("only COPY … FROM STDIN and COPY … TO STDOUT are supported".into())),
    };
    Some(Ok(request))
}

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType as ArrowType, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use crate::text::pg_text;

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;
const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// `COPY … TO STDOUT` rows, encoded batch by batch as the query streams
/// them: one CopyData per row (what PostgreSQL sends, and what the row
/// count in the `COPY n` tag counts), the CSV header or binary signature
/// in front of the first.
pub(crate) struct CopyOutEncoder {
    options: sql::CopyOptions,
    header: Option<Vec<u8>>,
}

impl CopyOutEncoder {
    pub(crate) fn new(schema: &Schema, options: sql::CopyOptions) -> Result<Self, String> {
        let header = if options.binary {
            for f in schema.fields() {
                binary_type(f.data_type())?;
            }
            Some(BINARY_HEADER.to_vec())
        } else if options.header && options.csv {
            let delimiter = options.delimiter as char;
            let names: Vec<String> = schema.fields().iter().map(|f| csv_field(f.name(), delimiter)).collect();
            Some(format!("{}\n", names.join(&delimiter.to_string())).into_bytes())
        } else {
            None
        };
        Ok(CopyOutEncoder { options, header })
    }

    /// The header if no row carried it (an empty result).
    pub(crate) fn unsent_header(&mut self) -> Option<Vec<u8>> {
        self.header.take()
    }

    /// Each row of `batch`, encoded.
    pub(crate) fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>, String> {
        let mut rows: Vec<Vec<u8>> = (0..batch.num_rows()).map(|_| Vec::new()).collect();
        if let (Some(first), Some(header)) = (rows.first_mut(), self.header.take()) {
            *first = header;
        }
        if self.options.binary {
            for row in &mut rows {
                row.extend_from_slice(&(batch.num_columns() as i16).to_be_bytes());
            }
            for col in batch.columns() {
                encode_binary_column(col, &mut rows)?;
            }
            return Ok(rows);
        }
        use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
        let fmt = FormatOptions::default();
        let formatters = batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &fmt)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
        let delimiter = self.options.delimiter as char;
        for (r, row) in rows.iter_mut().enumerate() {
            let mut line = String::new();
            for (i, (col, f)) in batch.columns().iter().zip(&formatters).enumerate() {
                if i > 0 {
                    line.push(delimiter);
                }
                if col.is_null(r) {
                    line.push_str(&self.options.null);
                } else {
                    let v = pg_text(col.as_ref(), r).unwrap_or_else(|| f.value(r).to_string());
                    line.push_str(&if self.options.csv { csv_field(&v, delimiter) } else { text_field(&v, delimiter) });
                }
            }
            line.push('\n');
            row.extend_from_slice(line.as_bytes());
        }
        Ok(rows)
    }
}

/// The type a column is cast to for binary output (`None`: as it is).
fn binary_type(t: &ArrowType) -> Result<Option<ArrowType>, String> {
    Ok(match t {
        ArrowType::Boolean | ArrowType::Int16 | ArrowType::Int32 | ArrowType::Int64 | ArrowType::Float32 | ArrowType::Float64 | ArrowType::Date32 => None,
        ArrowType::Int8 => Some(ArrowType::Int16),
        ArrowType::UInt8 | ArrowType::UInt16 => Some(ArrowType::Int32),
        ArrowType::UInt32 | ArrowType::UInt64 => Some(ArrowType::Int64),
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => Some(ArrowType::Utf8),
        ArrowType::Binary | ArrowType::LargeBinary | ArrowType::BinaryView => Some(ArrowType::Binary),
        ArrowType::Timestamp(_, tz) => Some(ArrowType::Timestamp(TimeUnit::Microsecond, tz.clone())),
        other => return Err(format!("COPY TO in binary format does not support columns of type {other}")),
    })
}

fn encode_binary_column(col: &ArrayRef, rows: &mut [Vec<u8>]) -> Result<(), String> {
    let col = match binary_type(col.data_type())? {
        Some(t) => cast(col, &t).map_err(|e| e.to_string())?,
        None => col.clone(),
    };
    let put = |row: &mut Vec<u8>, bytes: &[u8]| {
        row.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        row.extend_from_slice(bytes);
    };
    for (r, row) in rows.iter_mut().enumerate() {
        if col.is_null(r) {
            row.extend_from_slice(&(-1i32).to_be_bytes());
            continue;
        }
        use datafusion::arrow::datatypes as t;
        match col.data_type() {
            ArrowType::Boolean => put(row, &[u8::from(col.as_boolean().value(r))]),
            ArrowType::Int16 => put(row, &col.as_primitive::<t::Int16Type>().value(r).to_be_bytes()),
            ArrowType::Int32 => put(row, &col.as_primitive::<t::Int32Type>().value(r).to_be_bytes()),
            ArrowType::Int64 => put(row, &col.as_primitive::<t::Int64Type>().value(r).to_be_bytes()),
            ArrowType::Float32 => put(row, &col.as_primitive::<t::Float32Type>().value(r).to_be_bytes()),
            ArrowType::Float64 => put(row, &col.as_primitive::<t::Float64Type>().value(r).to_be_bytes()),
            ArrowType::Date32 => put(row, &(col.as_primitive::<t::Date32Type>().value(r) - PG_EPOCH_DAYS).to_be_bytes()),
            ArrowType::Utf8 => put(row, col.as_string::<i32>().value(r).as_bytes()),
            ArrowType::Binary => put(row, col.as_binary::<i32>().value(r)),
            ArrowType::Timestamp(TimeUnit::Microsecond, _) => {
                put(row, &(col.as_primitive::<t::TimestampMicrosecondType>().value(r) - PG_EPOCH_US).to_be_bytes())
            }
            other => return Err(format!("internal error: no binary form for {other}")),
        }
    }
    Ok(())
}

fn csv_field(v: &str, delimiter: char) -> String {
    if v.contains(delimiter) || v.contains('"') || v.contains('\n') || v.contains('\r') || v.is_empty() {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn text_field(v: &str, delimiter: char) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' if delimiter == '\t' => s.push_str("\\t"),
            c if c == delimiter => {
                s.push('\\');
                s.push(c);
            }
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_statements_are_recognised() {
        assert!(parse_copy("SELECT 1").is_none());
        match parse_copy("COPY \"root.ln.wf01.wt01\" (time, temperature) FROM STDIN WITH (FORMAT csv, HEADER true)") {
            Some(Ok(CopyRequest::FromStdin { table, columns, options })) => {
                assert_eq!(table, "root.ln.wf01.wt01");
                assert_eq!(columns, ["time", "temperature"]);
                assert!(options.csv && options.header && options.delimiter == b',');
            }
            other => panic!("{other:?}"),
        }
        match parse_copy("copy \"root.a.b\" from stdin") {
            Some(Ok(CopyRequest::FromStdin { options, .. })) => assert!(!options.csv && options.delimiter == b'\t' && options.null == "\\N"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_copy("COPY \"root.a.b\" TO STDOUT CSV"), Some(Ok(CopyRequest::ToStdout { .. }))));
        assert!(matches!(parse_copy("COPY x FROM '/etc/passwd'"), Some(Err(_))));
    }
}
