//! Concrete paths of the series tree (`root.ln.wf01.wt01.temperature`):
//! parsing, validation and printing, including back-quoted nodes.
//!
//! A node is an identifier (letters, digits, `_`, CJK characters; it may be
//! all digits) or a back-quoted string in which a back-quote is written
//! twice. Printing quotes exactly the nodes that need it, so
//! `root.sg.`a.b`` round-trips and `root.`sg`` prints as `root.sg`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The most nodes (including `root`) a path or pattern may have. Pattern
/// matching tracks its position set in a `u128`, which bounds this.
pub const MAX_PATH_LEVELS: usize = 64;

/// One node as written in the text: its name and whether it was back-quoted.
/// Patterns need the flag: `*` is a wildcard, `` `*` `` is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawNode {
    pub(crate) name: String,
    pub(crate) quoted: bool,
}

/// True for characters that may appear in an unquoted node.
pub(crate) fn is_plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || ('\u{2E80}'..='\u{9FFF}').contains(&c)
}

/// True when `node` must be back-quoted to print as a single node.
pub fn needs_quoting(node: &str) -> bool {
    node.is_empty() || !node.chars().all(is_plain_char)
}

/// Write one node, back-quoted if needed.
pub(crate) fn write_node(f: &mut impl fmt::Write, node: &str) -> fmt::Result {
    if needs_quoting(node) {
        f.write_char('`')?;
        for c in node.chars() {
            if c == '`' {
                f.write_str("``")?;
            } else {
                f.write_char(c)?;
            }
        }
        f.write_char('`')
    } else {
        f.write_str(node)
    }
}

/// Split path text into nodes. With `wildcards`, `*` may appear in unquoted
/// nodes; the caller decides what it means.
pub(crate) fn split_nodes(text: &str, wildcards: bool) -> Result<Vec<RawNode>> {
    let bad = |reason: &str| Error::invalid_path(text, reason);
    let s = text.trim();
    if s.is_empty() {
        return Err(bad("empty path"));
    }
    let mut nodes = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut name = String::new();
        let quoted = chars.peek() == Some(&'`');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('`') if chars.peek() == Some(&'`') => {
                        chars.next();
                        name.push('`');
                    }
                    Some('`') => break,
                    Some(c) => name.push(c),
                    None => return Err(bad("unterminated back-quoted node")),
                }
            }
            if name.is_empty() {
                return Err(bad("empty back-quoted node"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if is_plain_char(c) || (wildcards && c == '*') {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            if name.is_empty() {
                return Err(match chars.peek() {
                    Some('.') | None => bad("empty node"),
                    Some(c) => bad(&format!(
                        "unexpected character {c:?}; quote the node with back-quotes"
                    )),
                });
            }
        }
        nodes.push(RawNode { name, quoted });
        if nodes.len() > MAX_PATH_LEVELS {
            return Err(bad(&format!("more than {MAX_PATH_LEVELS} levels")));
        }
        match chars.next() {
            None => break,
            Some('.') => {}
            Some(c) => {
                return Err(bad(&format!(
                    "unexpected character {c:?}; quote the node with back-quotes"
                )))
            }
        }
    }
    if nodes[0].name != "root" || nodes[0].quoted {
        return Err(bad("a path must start with root"));
    }
    Ok(nodes)
}

/// Checks shared by every concrete node.
pub(crate) fn check_node(path: &dyn fmt::Display, node: &str) -> Result<()> {
    if node.is_empty() {
        return Err(Error::invalid_path(path.to_string(), "empty node"));
    }
    // IoTDB rejects `*` inside node names even when quoted: a stored `a*`
    // could never be told apart from the pattern `a*` in later statements.
    if node.contains('*') {
        return Err(Error::invalid_path(
            path.to_string(),
            format!("node {node:?} contains '*', which is reserved for patterns"),
        ));
    }
    Ok(())
}

/// A concrete path: `root` followed by zero or more nodes, no wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    nodes: Vec<String>,
}

impl Path {
    /// The path `root`.
    pub fn root() -> Path {
        Path {
            nodes: vec!["root".to_string()],
        }
    }

    /// Parse `root.a.`b.c`.d`.
    pub fn parse(text: &str) -> Result<Path> {
        let raw = split_nodes(text, false)?;
        Path::from_nodes(raw.into_iter().map(|n| n.name))
    }

    /// Build a path from unquoted node names (the first must be `root`).
    pub fn from_nodes<I, S>(nodes: I) -> Result<Path>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let path = Path {
            nodes: nodes.into_iter().map(Into::into).collect(),
        };
        if path.nodes.first().map(String::as_str) != Some("root") {
            return Err(Error::invalid_path(
                path.to_string(),
                "a path must start with root",
            ));
        }
        if path.nodes.len() > MAX_PATH_LEVELS {
            return Err(Error::invalid_path(
                path.to_string(),
                format!("more than {MAX_PATH_LEVELS} levels"),
            ));
        }
        for node in &path.nodes[1..] {
            check_node(&path, node)?;
        }
        Ok(path)
    }

    /// The node names, `root` first, without quotes.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// Number of nodes including `root` (`root.ln` has 2).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: every path has at least `root`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The last node's name (`temperature` for `root.ln.d1.temperature`).
    pub fn last(&self) -> &str {
        self.nodes.last().map(String::as_str).unwrap_or("root")
    }

    /// The path without its last node; `None` for `root`.
    pub fn parent(&self) -> Option<Path> {
        (self.nodes.len() > 1).then(|| Path {
            nodes: self.nodes[..self.nodes.len() - 1].to_vec(),
        })
    }

    /// This path with one more node.
    pub fn child(&self, name: &str) -> Result<Path> {
        let mut nodes = self.nodes.clone();
        nodes.push(name.to_string());
        Path::from_nodes(nodes)
    }

    /// The first `levels` nodes (all of them if the path is shorter).
    pub fn prefix(&self, levels: usize) -> Path {
        Path {
            nodes: self.nodes[..levels.clamp(1, self.nodes.len())].to_vec(),
        }
    }

    /// True if `prefix`'s nodes are the first nodes of this path.
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.nodes.starts_with(&prefix.nodes)
    }

    /// Trusted constructor for nodes taken from the tree or a checked record.
    pub(crate) fn from_trusted(nodes: Vec<String>) -> Path {
        Path { nodes }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, node) in self.nodes.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write_node(f, node)?;
        }
        Ok(())
    }
}

impl FromStr for Path {
    type Err = Error;
    fn from_str(s: &str) -> Result<Path> {
        Path::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_numeric_nodes() {
        let p = Path::parse("root.ln.wf01.wt01.temperature").unwrap();
        assert_eq!(p.nodes(), ["root", "ln", "wf01", "wt01", "temperature"]);
        assert_eq!(p.len(), 5);
        let p = Path::parse("root.535.120_3455.s1").unwrap();
        assert_eq!(p.nodes(), ["root", "535", "120_3455", "s1"]);
        assert_eq!(p.to_string(), "root.535.120_3455.s1");
        let p = Path::parse("root.工厂.温度").unwrap();
        assert_eq!(p.to_string(), "root.工厂.温度");
    }

    #[test]
    fn parses_and_prints_back_quotes() {
        let p = Path::parse("root.sg.`a.b`.`s(0)`").unwrap();
        assert_eq!(p.nodes(), ["root", "sg", "a.b", "s(0)"]);
        assert_eq!(p.to_string(), "root.sg.`a.b`.`s(0)`");
        // A back-quote inside a quoted node is doubled.
        let p = Path::parse("root.sg.`a``b`").unwrap();
        assert_eq!(p.nodes()[2], "a`b");
        assert_eq!(p.to_string(), "root.sg.`a``b`");
        // Quotes that are not needed are dropped on printing.
        let p = Path::parse("root.`sg`.`d1`").unwrap();
        assert_eq!(p.to_string(), "root.sg.d1");
        // Spaces and dashes need quoting.
        let p = Path::from_nodes(["root", "sg", "my device", "a-b"]).unwrap();
        assert_eq!(p.to_string(), "root.sg.`my device`.`a-b`");
        assert_eq!(Path::parse(&p.to_string()).unwrap(), p);
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in [
            "",
            "ln.d1",
            "`root`.ln",
            "root..d1",
            "root.d1.",
            "root.sg.`unterminated",
            "root.sg.``",
            "root.sg.a-b",
            "root.sg.d*",
            "root.sg.`d*`",
            "root.sg.`a`b",
        ] {
            let err = Path::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidPath { .. }), "{bad:?}: {err}");
        }
        let deep = format!("root{}", ".a".repeat(MAX_PATH_LEVELS));
        assert!(matches!(Path::parse(&deep), Err(Error::InvalidPath { .. })));
    }

    #[test]
    fn parent_prefix_child() {
        let p = Path::parse("root.ln.d1.s1").unwrap();
        assert_eq!(p.parent().unwrap().to_string(), "root.ln.d1");
        assert_eq!(p.prefix(2).to_string(), "root.ln");
        assert!(p.starts_with(&p.prefix(3)));
        assert_eq!(p.last(), "s1");
        assert_eq!(Path::root().parent(), None);
        assert_eq!(
            p.parent().unwrap().child("x y").unwrap().to_string(),
            "root.ln.d1.`x y`"
        );
    }
}
