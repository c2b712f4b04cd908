//! The TSQL lexer. Hand-written because TSQL's tokens (dotted paths with
//! `*`/`**`, back-quoted nodes, unquoted ISO-8601 times, durations such as
//! `1d2h`) do not fit a SQL tokenizer. Every token carries its position so
//! a syntax error can name where it is.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Word(String),
    Quoted(String),
    Number(String),
    Time(String),
    Str(String),
    Sym(&'static str),
}

/// The tokens of `sql`, each with its character offset.
pub(crate) fn tokenize(sql: &str) -> Result<Vec<(Tok, usize)>> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' || c == '"' {
            let start = i;
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(Error::Syntax(format!("unterminated string starting with {c}{s}"))),
                    Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                        s.push(c);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push((Tok::Str(s), start));
        } else if c == '`' {
            let start = i;
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(Error::Syntax("unterminated back-quoted name".into())),
                    Some('`') if chars.get(i + 1) == Some(&'`') => {
                        s.push('`');
                        i += 2;
                    }
                    Some('`') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push((Tok::Quoted(s), start));
        } else if c.is_ascii_digit() {
            // An ISO-8601 time starts with 4 digits and '-': take it whole.
            let is_time = i + 4 < chars.len() && chars[i..i + 4].iter().all(|d| d.is_ascii_digit()) && chars[i + 4] == '-';
            let start = i;
            if is_time {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || ":.-+".contains(chars[i])) {
                    i += 1;
                }
                // IoTDB also takes a space between date and time: `2024-03-01 05:00:00`.
                let clock_follows = i - start == 10
                    && chars.get(i) == Some(&' ')
                    && chars.get(i + 1..i + 4).is_some_and(|t| t[0].is_ascii_digit() && t[1].is_ascii_digit() && t[2] == ':');
                if clock_follows {
                    i += 1;
                    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || ":.-+".contains(chars[i])) {
                        i += 1;
                    }
                }
                out.push((Tok::Time(chars[start..i].iter().collect()), start));
            } else {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                    // 1e-3 style exponents
                    if (chars[i] == 'e' || chars[i] == 'E') && matches!(chars.get(i + 1), Some('-') | Some('+')) {
                        i += 1;
                    }
                    i += 1;
                }
                out.push((Tok::Number(chars[start..i].iter().collect()), start));
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Word(chars[start..i].iter().collect()), start));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = match two.as_str() {
                ">=" => Some(">="),
                "<=" => Some("<="),
                "!=" => Some("!="),
                "<>" => Some("!="),
                "==" => Some("="),
                "**" => Some("**"),
                "&&" => Some("&&"),
                "||" => Some("||"),
                _ => None,
            };
            if let Some(s) = sym {
                out.push((Tok::Sym(s), i));
                i += 2;
                continue;
            }
            let s = match c {
                '(' => "(",
                ')' => ")",
                ',' => ",",
                '.' => ".",
                '*' => "*",
                '=' => "=",
                '>' => ">",
                '<' => "<",
                '-' => "-",
                '+' => "+",
                ';' => ";",
                '[' => "[",
                ']' => "]",
                '/' => "/",
                '%' => "%",
                '!' => "!",
                _ => return Err(Error::Syntax(format!("unexpected character {c:?} at position {}", i + 1))),
            };
            out.push((Tok::Sym(s), i));
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_paths_and_times() {
        let t: Vec<Tok> = tokenize("SELECT ** FROM root.sg.`a.b` WHERE time >= 2017-11-01T00:00:00 AND s1 <> 'x'").unwrap().into_iter().map(|(t, _)| t).collect();
        assert!(t.contains(&Tok::Time("2017-11-01T00:00:00".into())));
        assert!(t.contains(&Tok::Quoted("a.b".into())));
        assert!(t.contains(&Tok::Sym("!=")));
    }

    #[test]
    fn tokens_know_their_position() {
        let t = tokenize("select s1 + 2").unwrap();
        assert_eq!(t.iter().map(|(_, p)| *p).collect::<Vec<_>>(), vec![0, 7, 10, 12]);
        assert!(tokenize("select #").unwrap_err().to_string().contains("position 8"));
    }
}
