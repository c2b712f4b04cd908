//! `$n` parameters in TSQL statements (extended protocol): counted for
//! Describe and replaced by literals of the bound values before parsing.
//! Numbers and booleans become bare literals, text becomes a quoted one,
//! so a value meets a series as if it had been written into the statement.

use datafusion::scalar::ScalarValue;

use crate::error::{Error, Result};

/// Each `$n` outside quotes: (byte range, n).
fn placeholders(sql: &str) -> Vec<(std::ops::Range<usize>, usize)> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, b'\'' | b'"' | b'`') => quote = Some(c),
            None if c == b'$' => {
                let end = bytes[i + 1..].iter().position(|b| !b.is_ascii_digit()).map_or(bytes.len(), |p| i + 1 + p);
                if let Ok(n) = sql[i + 1..end].parse::<usize>() {
                    out.push((i..end, n));
                    i = end;
                    continue;
                }
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// How many parameters the statement takes (the largest `$n`).
pub fn parameter_count(sql: &str) -> usize {
    placeholders(sql).iter().map(|(_, n)| *n).max().unwrap_or(0)
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A bound value as TSQL literal text.
fn literal(v: &ScalarValue) -> Result<String> {
    if v.is_null() {
        return Ok("NULL".into());
    }
    Ok(match v {
        ScalarValue::Boolean(Some(b)) => b.to_string(),
        ScalarValue::Int8(Some(x)) => x.to_string(),
        ScalarValue::Int16(Some(x)) => x.to_string(),
        ScalarValue::Int32(Some(x)) => x.to_string(),
        ScalarValue::Int64(Some(x)) => x.to_string(),
        ScalarValue::UInt8(Some(x)) => x.to_string(),
        ScalarValue::UInt16(Some(x)) => x.to_string(),
        ScalarValue::UInt32(Some(x)) => x.to_string(),
        ScalarValue::UInt64(Some(x)) => x.to_string(),
        ScalarValue::Float32(Some(x)) if x.is_finite() => format!("{x:?}"),
        ScalarValue::Float64(Some(x)) if x.is_finite() => format!("{x:?}"),
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => quoted(s),
        ScalarValue::TimestampSecond(Some(x), _) => x.saturating_mul(1000).to_string(),
        ScalarValue::TimestampMillisecond(Some(x), _) => x.to_string(),
        ScalarValue::TimestampMicrosecond(Some(x), _) => x.div_euclid(1000).to_string(),
        ScalarValue::TimestampNanosecond(Some(x), _) => x.div_euclid(1_000_000).to_string(),
        ScalarValue::Date32(Some(_)) => quoted(&v.to_string()),
        ScalarValue::Binary(Some(b)) | ScalarValue::LargeBinary(Some(b)) => {
            format!("X'{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        }
        other => return Err(Error::Unsupported(format!("a {} parameter in a TSQL statement", other.data_type()))),
    })
}

/// `sql` with every `$n` replaced by `0`: parses like the bound statement.
pub(super) fn neutral(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for (range, _) in placeholders(sql) {
        out.push_str(&sql[last..range.start]);
        out.push('0');
        last = range.end;
    }
    out.push_str(&sql[last..]);
    out
}

/// `sql` with every `$n` replaced by the literal of `params[n - 1]`.
pub fn bind(sql: &str, params: &[ScalarValue]) -> Result<String> {
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for (range, n) in placeholders(sql) {
        let value = params
            .get(n.wrapping_sub(1))
            .ok_or_else(|| Error::Syntax(format!("there is no parameter ${n} ({} bound)", params.len())))?;
        out.push_str(&sql[last..range.start]);
        out.push_str(&literal(value)?);
        last = range.end;
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_literals_outside_quotes() {
        assert_eq!(parameter_count("SELECT s FROM root.a.d WHERE time > $1 AND s < $9"), 9);
        assert_eq!(neutral("SELECT s FROM root.a.d WHERE time > $1 AND s < '$2'"), "SELECT s FROM root.a.d WHERE time > 0 AND s < '$2'");
        let sql = "INSERT INTO root.a.d(timestamp, s, t, u) VALUES ($1, $2, $3, '$4')";
        assert_eq!(parameter_count(sql), 3);
        let bound = bind(sql, &[ScalarValue::Int64(Some(5)), ScalarValue::Float64(Some(1.0)), ScalarValue::Utf8(Some("it's".into()))]).unwrap();
        assert_eq!(bound, "INSERT INTO root.a.d(timestamp, s, t, u) VALUES (5, 1.0, 'it''s', '$4')");
        assert!(bind("SELECT s FROM root.a.d WHERE time > $2", &[ScalarValue::Int64(Some(1))]).is_err());
        assert_eq!(bind("SELECT s FROM root.a.d LIMIT $1", &[ScalarValue::Int32(None)]).unwrap(), "SELECT s FROM root.a.d LIMIT NULL");
    }
}
