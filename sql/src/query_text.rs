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
