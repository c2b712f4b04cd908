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

/// Encode rows as COPY text or CSV.
use crate::text::pg_text;

pub(crate) fn encode_rows(
    schema: &datafusion::arrow::datatypes::Schema,
    batches: &[datafusion::arrow::record_batch::RecordBatch],
    options: &sql::CopyOptions,
) -> Result<(Vec<u8>, usize, usize), String> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let mut out = Vec::new();
    let mut rows = 0;
    let delimiter = options.delimiter as char;
    if options.header && options.csv {
        let names: Vec<String> = schema.fields().iter().map(|f| csv_field(f.name(), delimiter)).collect();
        out.extend_from_slice(names.join(&delimiter.to_string()).as_bytes());
        out.push(b'\n');
    }
    let fmt = FormatOptions::default();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &fmt))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        for r in 0..batch.num_rows() {
            let fields: Vec<String> = batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(col, f)| {
                    if col.is_null(r) {
                        options.null.clone()
                    } else {
                        let v = pg_text(col.as_ref(), r).unwrap_or_else(|| f.value(r).to_string());
                        if options.csv { csv_field(&v, delimiter) } else { text_field(&v, delimiter) }
                    }
                })
                .collect();
            out.extend_from_slice(fields.join(&delimiter.to_string()).as_bytes());
            out.push(b'\n');
            rows += 1;
        }
    }
    Ok((out, rows, schema.fields().len()))
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
