//! Statement text facts both surfaces need before parsing.

/// Whether `sql` holds nothing but whitespace, `;` and comments.
pub fn is_empty_query(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return rest.is_empty();
        }
    }
}

/// IoTDB's table-model `date_bin(1m, time)`: a duration literal as the
/// first argument of `date_bin`/`date_bin_gapfill` becomes the interval it
/// means (`interval '1 minutes'`); text in quotes is left alone.
pub(crate) fn duration_literals(sql: &str) -> std::borrow::Cow<'_, str> {
    let lower = sql.to_ascii_lowercase();
    if !lower.contains("date_bin") {
        return std::borrow::Cow::Borrowed(sql);
    }
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            out.push(c as char);
            i += 1;
            continue;
        }
        if c == b'\'' || c == b'"' {
            quote = Some(c);
            out.push(c as char);
            i += 1;
            continue;
        }
        let rest = &lower[i..];
        let call = ["date_bin_gapfill(", "date_bin("].into_iter().find(|f| rest.starts_with(f));
        let preceded = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if let (Some(call), true) = (call, preceded) {
            out.push_str(&sql[i..i + call.len()]);
            i += call.len();
            let start = i + sql[i..].len() - sql[i..].trim_start().len();
            let digits = sql[start..].bytes().take_while(u8::is_ascii_digit).count();
            let unit_len = sql[start + digits..].bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &lower[start + digits..start + digits + unit_len];
            let name = match unit {
                "ns" => Some("nanoseconds"),
                "us" => Some("microseconds"),
                "ms" => Some("milliseconds"),
                "s" => Some("seconds"),
                "m" => Some("minutes"),
                "h" => Some("hours"),
                "d" => Some("days"),
                "w" => Some("weeks"),
                "mo" => Some("months"),
                "y" => Some("years"),
                _ => None,
            };
            if let (true, Some(name)) = (digits > 0, name) {
                out.push_str(&sql[i..start]);
                out.push_str(&format!("interval '{} {name}'", &sql[start..start + digits]));
                i = start + digits + unit_len;
            }
            continue;
        }
        out.push(c as char);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod duration_tests {
    use super::duration_literals;

    #[test]
    fn duration_literals_in_date_bin_become_intervals() {
        assert_eq!(duration_literals("SELECT date_bin(1m, time) FROM t"), "SELECT date_bin(interval '1 minutes', time) FROM t");
        assert_eq!(duration_literals("SELECT DATE_BIN_GAPFILL( 2mo, time)"), "SELECT DATE_BIN_GAPFILL( interval '2 months', time)");
        assert_eq!(duration_literals("SELECT date_bin(interval '1 hour', time), 'date_bin(1m'"), "SELECT date_bin(interval '1 hour', time), 'date_bin(1m'");
        assert_eq!(duration_literals("SELECT 1m"), "SELECT 1m");
    }
}
