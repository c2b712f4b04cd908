//! PostgreSQL's text output for the types whose Arrow display differs from
//! it: `t`/`f`, floats in shortest round-trip form with `Infinity`/`NaN`
//! and exponents where PostgreSQL uses them, `timestamptz` as
//! `2024-05-01 10:00:00+00`, `bytea` as `\\x…`. Used for text-format
//! result columns and COPY TO.

use datafusion::arrow::array::{Array, AsArray, TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use std::fmt::{self, Write};

/// A float as PostgreSQL prints it (`extra_float_digits` = 1): shortest
/// round-trip digits, exponent form below 1e-4 or from 10^`digits`.
fn float_text(v: f64, shortest: String, digits: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // The decimal exponent of the shortest digits (`log10` of the binary
    // value can be one lower: 0.0001f32 is just below 1e-4).
    let exp: i32 = shortest.split_once('e').and_then(|(_, e)| e.parse().ok()).unwrap_or(0);
    if exp < -4 || exp >= digits {
        // Rust's `{:e}` gives `1.5e-7`; PostgreSQL writes `1.5e-07`.
        if let Some((mantissa, e)) = shortest.split_once('e') {
            let e: i32 = e.parse().unwrap_or(0);
            let sign = if e < 0 { '-' } else { '+' };
            return format!("{mantissa}e{sign}{:02}", e.abs());
        }
    }
    let plain = if let Some((mantissa, e)) = shortest.split_once('e') {
        // Back from exponent form to positional digits.
        let e: i32 = e.parse().unwrap_or(0);
        let negative = mantissa.starts_with('-');
        let digits_only: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let int_len = mantissa.trim_start_matches('-').split('.').next().map_or(1, str::len) as i32 + e;
        let body = if int_len <= 0 {
            format!("0.{}{}", "0".repeat((-int_len) as usize), digits_only)
        } else if int_len as usize >= digits_only.len() {
            format!("{}{}", digits_only, "0".repeat(int_len as usize - digits_only.len()))
        } else {
            format!("{}.{}", &digits_only[..int_len as usize], &digits_only[int_len as usize..])
        };
        if negative { format!("-{body}") } else { body }
    } else {
        shortest
    };
    plain
}

fn f64_text(v: f64) -> String {
    if positional(v) {
        let mut out = String::new();
        write_positional(&mut out, v).expect("writing to a String");
        return out;
    }
    float_text(v, format!("{v:e}"), 15)
}

/// Decimals [`few_decimals`] tries.
const FEW_DECIMALS_MAX: usize = 4;
const POWERS_OF_TEN: [f64; FEW_DECIMALS_MAX + 1] = [1.0, 10.0, 100.0, 1000.0, 10000.0];

/// The text of `v` when it is `k / 10^d` for an integer `k` and `d` ≤
/// [`FEW_DECIMALS_MAX`] — what sensors send (`23.45`) — written without
/// Ryū. With the fewest such decimals `d`, the text of `k` with `d`
/// decimals is the shortest that reads back as `v`: `k` and `10^d` are
/// exact doubles, so their correctly rounded quotient is the double nearest
/// to that decimal, which is what parsing it gives; a text with fewer
/// significant digits would have fewer decimals, and the smaller `d` would
/// have matched. (Ties between two shortest texts need 17 digits, beyond
/// the `k < 2^53` here.) Returns the bytes and their length.
fn few_decimals(v: f64) -> Option<([u8; 24], usize)> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    let magnitude = v.abs();
    let d = (0..=FEW_DECIMALS_MAX).find(|&d| {
        let scaled = magnitude * POWERS_OF_TEN[d];
        scaled < EXACT && scaled.round() / POWERS_OF_TEN[d] == magnitude
    })?;
    let mut k = (magnitude * POWERS_OF_TEN[d]).round() as u64;
    // Digits from the right: the decimals, the point, the integer part.
    let mut buf = [0u8; 24];
    let mut at = buf.len();
    let mut push = |buf: &mut [u8; 24], byte: u8| {
        at -= 1;
        buf[at] = byte;
    };
    for _ in 0..d {
        push(&mut buf, b'0' + (k % 10) as u8);
        k /= 10;
    }
    if d > 0 {
        push(&mut buf, b'.');
    }
    loop {
        push(&mut buf, b'0' + (k % 10) as u8);
        k /= 10;
        if k == 0 {
            break;
        }
    }
    if v.is_sign_negative() {
        push(&mut buf, b'-');
    }
    let len = buf.len() - at;
    buf.copy_within(at.., 0);
    Some((buf, len))
}

/// Whether PostgreSQL prints `v` as positional digits (no exponent).
fn positional(v: f64) -> bool {
    (1e-4..1e15).contains(&v.abs())
}

/// A float [`positional`] prints, in the shortest digits that read back
/// as `v`, found by Ryū as PostgreSQL's `float8out` finds them (and faster
/// than core's Grisu: this runs for every float cell of a text result).
/// Ryū writes integral values with a `.0` PostgreSQL leaves out.
fn write_positional(out: &mut impl Write, v: f64) -> fmt::Result {
    if let Some((digits, len)) = few_decimals(v) {
        // ASCII digits, sign and point only.
        return out.write_str(std::str::from_utf8(&digits[..len]).map_err(|_| fmt::Error)?);
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(v);
    out.write_str(text.strip_suffix(".0").unwrap_or(text))
}

fn f32_text(v: f32) -> String {
    float_text(f64::from(v), format!("{v:e}"), 6)
}

/// `YYYY-MM-DD HH:MM:SS` of a UTC instant in microseconds, for years
/// 1..=9999 (`None` outside: chrono's slower formatting handles those).
/// Written digit by digit: this runs once per timestamp of every result.
fn civil_bytes(micros: i64) -> Option<[u8; 19]> {
    let secs = micros.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(1..=9999).contains(&year) {
        return None;
    }
    let (h, m, sec) = (tod / 3600, tod / 60 % 60, tod % 60);
    let digit = |v: i64| b'0' + (v % 10) as u8;
    Some([
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        b'-',
        digit(month / 10),
        digit(month),
        b'-',
        digit(day / 10),
        digit(day),
        b' ',
        digit(h / 10),
        digit(h),
        b':',
        digit(m / 10),
        digit(m),
        b':',
        digit(sec / 10),
        digit(sec),
    ])
}

#[cfg(test)]
fn civil_text(micros: i64) -> Option<String> {
    civil_bytes(micros).map(|b| b.iter().map(|&c| char::from(c)).collect())
}

/// The UTC offset of zone `zone` (a name or `±hh:mm`) at UTC instant `micros`.
fn zone_offset_seconds(zone: &str, micros: i64) -> Option<i32> {
    use chrono::{Offset, TimeZone};
    let tz: datafusion::arrow::array::timezone::Tz = zone.parse().ok()?;
    let utc = chrono::DateTime::from_timestamp_micros(micros)?.naive_utc();
    Some(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc())
}

/// An offset as PostgreSQL prints it: `+02`, `-03:30`, `+05:45:30`.
fn write_offset(out: &mut impl Write, seconds: i32) -> fmt::Result {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    match (m, sec) {
        (0, 0) => write!(out, "{sign}{h:02}"),
        (_, 0) => write!(out, "{sign}{h:02}:{m:02}"),
        _ => write!(out, "{sign}{h:02}:{m:02}:{sec:02}"),
    }
}

/// The PostgreSQL text of row `r` of `col`, for the types Arrow displays
/// differently; `None` for the others (and for nulls).
pub(crate) fn pg_text(col: &dyn Array, r: usize) -> Option<String> {
    let mut text = String::new();
    matches!(write_pg_text(&mut text, col, r), Ok(true)).then_some(text)
}

/// Write the PostgreSQL text of row `r` of `col` to `out`, for the types
/// Arrow displays differently; `Ok(false)` (nothing written) for the
/// others and for nulls.
pub(crate) fn write_pg_text(out: &mut impl Write, col: &dyn Array, r: usize) -> Result<bool, fmt::Error> {
    if col.is_null(r) {
        return Ok(false);
    }
    match col.data_type() {
        DataType::Boolean => out.write_str(if col.as_boolean().value(r) { "t" } else { "f" })?,
        DataType::Float32 => out.write_str(&f32_text(col.as_primitive::<Float32Type>().value(r)))?,
        DataType::Float64 => {
            let v = col.as_primitive::<Float64Type>().value(r);
            if positional(v) {
                write_positional(out, v)?;
            } else {
                out.write_str(&f64_text(v))?;
            }
        }
        DataType::Binary => {
            out.write_str("\\x")?;
            for byte in col.as_binary::<i32>().value(r) {
                write!(out, "{byte:02x}")?;
            }
        }
        DataType::Timestamp(_, tz) => {
            // In another zone (the session's TimeZone): local time and its
            // UTC offset, as PostgreSQL prints (`2024-05-01 12:00:00+02`).
            let offset_s = match tz.as_deref() {
                Some(z) if !matches!(z, "+00:00" | "UTC" | "Z" | "+00") => Some(z),
                _ => None,
            };
            let any = col.as_any();
            let micros = if let Some(a) = any.downcast_ref::<TimestampMillisecondArray>() {
                a.value(r).checked_mul(1000)
            } else if let Some(a) = any.downcast_ref::<TimestampMicrosecondArray>() {
                Some(a.value(r))
            } else if let Some(a) = any.downcast_ref::<TimestampSecondArray>() {
                a.value(r).checked_mul(1_000_000)
            } else {
                any.downcast_ref::<TimestampNanosecondArray>().map(|a| a.value(r).div_euclid(1000))
            };
            let Some(micros) = micros else { return Ok(false) };
            let offset = match offset_s {
                Some(z) => match zone_offset_seconds(z, micros) {
                    Some(o) => o,
                    None => return Ok(false),
                },
                None => 0,
            };
            let Some(local) = i64::from(offset).checked_mul(1_000_000).and_then(|o| micros.checked_add(o)) else { return Ok(false) };
            match civil_bytes(local) {
                Some(b) => out.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?)?,
                None => match chrono::DateTime::from_timestamp_micros(local) {
                    Some(t) => write!(out, "{}", t.naive_utc().format("%Y-%m-%d %H:%M:%S"))?,
                    None => return Ok(false),
                },
            }
            let mut frac = local.rem_euclid(1_000_000);
            if frac != 0 {
                // Microseconds without trailing zeros: `.5`, `.123`, `.000001`.
                let mut width = 6;
                while frac % 10 == 0 {
                    frac /= 10;
                    width -= 1;
                }
                write!(out, ".{frac:0width$}")?;
            }
            if tz.is_some() {
                write_offset(out, offset)?;
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Ryū's text, as [`write_positional`] writes it without the fast path.
    fn ryu_text(v: f64) -> String {
        let mut buffer = ryu::Buffer::new();
        let text = buffer.format_finite(v);
        text.strip_suffix(".0").unwrap_or(text).to_string()
    }

    #[test]
    fn few_decimal_floats_print_without_ryu_as_ryu_prints_them() {
        let text = |v: f64| few_decimals(v).map(|(b, n)| String::from_utf8(b[..n].to_vec()).unwrap());
        assert_eq!(text(23.45).as_deref(), Some("23.45"));
        assert_eq!(text(-0.05).as_deref(), Some("-0.05"));
        assert_eq!(text(0.0001).as_deref(), Some("0.0001"));
        assert_eq!(text(100.0).as_deref(), Some("100"));
        assert_eq!(text(123456789012345.0).as_deref(), Some("123456789012345"));
        assert_eq!(text(0.1 + 0.2), None);
        assert_eq!(text(1.0 / 3.0), None);
    }

    proptest! {
        /// Values with few decimals (`k / 10^d`) print as Ryū prints them.
        #[test]
        fn few_decimal_floats_match_ryu(k in -(1i64 << 53)..(1i64 << 53), d in 0usize..=6) {
            let v = k as f64 / 10f64.powi(d as i32);
            if positional(v) {
                let mut out = String::new();
                write_positional(&mut out, v).unwrap();
                prop_assert_eq!(out, ryu_text(v));
            }
        }

        /// Ryū's digits read back as the value and are as few as those
        /// of Rust's `Display` (which, in rare ties between two shortest
        /// candidates, picks the other; PostgreSQL's own output is Ryū's).
        #[test]
        fn positional_floats_are_the_shortest_display_digits(bits in any::<u64>(), scale in -4i32..15) {
            // Any mantissa, at every exponent PostgreSQL prints positionally.
            let mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
            for v in [mantissa * 10f64.powi(scale), -mantissa * 10f64.powi(scale), (mantissa * 10f64.powi(scale)).round()] {
                if !positional(v) {
                    continue;
                }
                let mut out = String::new();
                write_positional(&mut out, v).unwrap();
                prop_assert_eq!(out.parse::<f64>().unwrap(), v);
                prop_assert_eq!(out.len(), v.to_string().len(), "{} against {}", out, v);
            }
        }
    }

    #[test]
    fn floats_print_as_postgresql_does() {
        for (v, want) in [
            (26.0, "26"),
            (25.325000000000003, "25.325000000000003"),
            (0.1, "0.1"),
            (-2.25, "-2.25"),
            (1e20, "1e+20"),
            (1.5e-7, "1.5e-07"),
            (123456789012345.0, "123456789012345"),
            (1e15, "1e+15"),
            (0.0001, "0.0001"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(f64_text(v), want, "{v}");
        }
        assert_eq!(f32_text(1.1), "1.1");
        assert_eq!(f32_text(1234567.0), "1.234567e+06");
        assert_eq!(f32_text(0.0001), "0.0001");
        assert_eq!(f64_text(999999999999999.9), "999999999999999.9");
        // The positional fast path agrees with the general one.
        for v in [1e-4, 0.00012345, 1.0, 25.1, -3.75, 123456.789, 99999999999999.98, 1e14, -0.5] {
            assert_eq!(f64_text(v), float_text(v, format!("{v:e}"), 15), "{v}");
        }
    }

    #[test]
    fn timestamps_print_as_postgresql_does() {
        let a = TimestampMillisecondArray::from(vec![1_714_557_600_000, 1_500]).with_timezone("+00:00");
        assert_eq!(pg_text(&a, 0).as_deref(), Some("2024-05-01 10:00:00+00"));
        assert_eq!(pg_text(&a, 1).as_deref(), Some("1970-01-01 00:00:01.5+00"));
        // In the session's zone: local time with the offset in force then (summer and winter).
        let berlin = TimestampMillisecondArray::from(vec![1_714_557_600_000, 1_704_110_400_500]).with_timezone("Europe/Berlin");
        assert_eq!(pg_text(&berlin, 0).as_deref(), Some("2024-05-01 12:00:00+02"));
        assert_eq!(pg_text(&berlin, 1).as_deref(), Some("2024-01-01 13:00:00.5+01"));
        let kathmandu = TimestampMillisecondArray::from(vec![0]).with_timezone("+05:45");
        assert_eq!(pg_text(&kathmandu, 0).as_deref(), Some("1970-01-01 05:45:00+05:45"));
        // Digit by digit agrees with chrono over leap years, centuries and before 1970.
        for ms in [0_i64, 951_782_400_000, 4_107_542_399_999, -1, -62_135_596_800_000, 253_402_300_799_000, 1_709_164_800_000] {
            let micros = ms * 1000;
            let want = chrono::DateTime::from_timestamp_micros(micros).unwrap().naive_utc().format("%Y-%m-%d %H:%M:%S").to_string();
            assert_eq!(civil_text(micros).as_deref(), Some(want.as_str()), "{ms}");
        }
        assert_eq!(civil_text(-62_135_596_800_001 * 1000), None);
    }
}
