//! Path patterns (`root.ln.*.wt01.s*`, `root.**.temperature`): parsing,
//! printing, and a direct matcher against one path.
//!
//! `*` matches exactly one node, `**` one or more nodes, and an unquoted node
//! with `*` inside (`d*`, `*temp*`) matches one node by glob. A back-quoted
//! node is always literal. Matching a pattern against the whole tree is
//! done by walking the tree (see `tree.rs`); [`PathPattern::matches`] is the
//! plain definition used for single paths and to check the walker.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::path::{check_node, split_nodes, write_node, Path};

/// One node of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PatternNode {
    /// Matches the node with exactly this name (or, for a measurement, its alias).
    Literal(String),
    /// `*`: any single node.
    Star,
    /// `**`: one or more nodes.
    DoubleStar,
    /// A single node matched by glob, `*` standing for any run of characters.
    Glob(String),
}

impl PatternNode {
    /// Does this node (not `**`) match the node name `name`?
    pub fn matches_name(&self, name: &str) -> bool {
        match self {
            PatternNode::Literal(l) => l == name,
            PatternNode::Star | PatternNode::DoubleStar => true,
            PatternNode::Glob(g) => glob_match(g.as_bytes(), name.as_bytes()),
        }
    }
}

/// Glob match where `*` is the only wildcard (iterative, linear backtracking).
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((sp, sn)) = star {
            // Let the last star swallow one more byte and retry.
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A path pattern: `root` followed by literal and wildcard nodes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathPattern {
    nodes: Vec<PatternNode>,
}

impl PathPattern {
    /// Parse `root.ln.**`, `root.*.d*.s1`, `` root.sg.`a*` `` (literal).
    pub fn parse(text: &str) -> Result<PathPattern> {
        let raw = split_nodes(text, true)?;
        let mut nodes = Vec::with_capacity(raw.len());
        for node in raw {
            let parsed = if node.quoted || !node.name.contains('*') {
                PatternNode::Literal(node.name)
            } else if node.name == "*" {
                PatternNode::Star
            } else if node.name == "**" {
                PatternNode::DoubleStar
            } else if node.name.contains("**") {
                return Err(Error::invalid_path(
                    text,
                    format!("node {:?}: '**' must stand alone", node.name),
                ));
            } else {
                PatternNode::Glob(node.name)
            };
            nodes.push(parsed);
        }
        Ok(PathPattern { nodes })
    }

    /// `root.**`: everything.
    pub fn all() -> PathPattern {
        PathPattern {
            nodes: vec![PatternNode::Literal("root".into()), PatternNode::DoubleStar],
        }
    }

    /// Build from nodes; the first must be the literal `root`.
    pub fn from_nodes(nodes: Vec<PatternNode>) -> Result<PathPattern> {
        let pattern = PathPattern { nodes };
        if pattern.nodes.first() != Some(&PatternNode::Literal("root".into())) {
            return Err(Error::invalid_path(
                pattern.to_string(),
                "a pattern must start with root",
            ));
        }
        if pattern.nodes.len() > crate::path::MAX_PATH_LEVELS {
            return Err(Error::invalid_path(
                pattern.to_string(),
                format!("more than {} levels", crate::path::MAX_PATH_LEVELS),
            ));
        }
        Ok(pattern)
    }

    pub fn nodes(&self) -> &[PatternNode] {
        &self.nodes
    }

    /// Number of pattern nodes including `root`.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: every pattern has at least `root`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// True if the pattern has no wildcard, i.e. it names one path.
    pub fn is_concrete(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| matches!(n, PatternNode::Literal(_)))
    }

    /// The one path a concrete pattern names.
    pub fn to_path(&self) -> Result<Path> {
        let mut names = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            match node {
                PatternNode::Literal(l) => names.push(l.clone()),
                _ => {
                    return Err(Error::invalid_path(
                        self.to_string(),
                        "a concrete path is needed here, not a pattern",
                    ))
                }
            }
        }
        let path = Path::from_trusted(names);
        for node in &path.nodes()[1..] {
            check_node(&path, node)?;
        }
        Ok(path)
    }

    /// This pattern with `**` appended (`root.ln` → `root.ln.**`).
    pub fn with_double_star(&self) -> Result<PathPattern> {
        let mut nodes = self.nodes.clone();
        nodes.push(PatternNode::DoubleStar);
        PathPattern::from_nodes(nodes)
    }

    /// Does the pattern match `path` exactly (all of its nodes)?
    pub fn matches(&self, path: &Path) -> bool {
        self.matches_nodes(path.nodes())
    }

    /// [`PathPattern::matches`] over bare node names.
    pub fn matches_nodes<S: AsRef<str>>(&self, names: &[S]) -> bool {
        // reach[j]: the pattern prefix seen so far matches names[..j].
        let mut reach = vec![false; names.len() + 1];
        reach[0] = true;
        for node in &self.nodes {
            let mut next = vec![false; names.len() + 1];
            match node {
                PatternNode::DoubleStar => {
                    let mut any = false;
                    for j in 1..=names.len() {
                        any |= reach[j - 1];
                        next[j] = any;
                    }
                }
                _ => {
                    for j in 1..=names.len() {
                        next[j] = reach[j - 1] && node.matches_name(names[j - 1].as_ref());
                    }
                }
            }
            reach = next;
        }
        reach[names.len()]
    }
}

impl From<&Path> for PathPattern {
    fn from(path: &Path) -> Self {
        PathPattern {
            nodes: path
                .nodes()
                .iter()
                .map(|n| PatternNode::Literal(n.clone()))
                .collect(),
        }
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, node) in self.nodes.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match node {
                PatternNode::Literal(l) if l.contains('*') => {
                    // Always quote, or it would read back as a wildcard.
                    write!(f, "`{}`", l.replace('`', "``"))?
                }
                PatternNode::Literal(l) => write_node(f, l)?,
                PatternNode::Star => f.write_str("*")?,
                PatternNode::DoubleStar => f.write_str("**")?,
                PatternNode::Glob(g) => f.write_str(g)?,
            }
        }
        Ok(())
    }
}

impl FromStr for PathPattern {
    type Err = Error;
    fn from_str(s: &str) -> Result<PathPattern> {
        PathPattern::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        PathPattern::parse(pattern)
            .unwrap()
            .matches(&Path::parse(path).unwrap())
    }

    #[test]
    fn parses_wildcards() {
        let p = PathPattern::parse("root.ln.*.d*.**.`a*`").unwrap();
        assert_eq!(
            p.nodes(),
            [
                PatternNode::Literal("root".into()),
                PatternNode::Literal("ln".into()),
                PatternNode::Star,
                PatternNode::Glob("d*".into()),
                PatternNode::DoubleStar,
                PatternNode::Literal("a*".into()),
            ]
        );
        assert_eq!(p.to_string(), "root.ln.*.d*.**.`a*`");
        assert!(!p.is_concrete());
        assert!(PathPattern::parse("root.ln.d1").unwrap().is_concrete());
        assert!(matches!(
            PathPattern::parse("root.a**"),
            Err(Error::InvalidPath { .. })
        ));
        assert!(matches!(
            PathPattern::parse("**.s1"),
            Err(Error::InvalidPath { .. })
        ));
    }

    #[test]
    fn single_star_matches_one_level() {
        assert!(m("root.ln.*", "root.ln.d1"));
        assert!(!m("root.ln.*", "root.ln.d1.s1"));
        assert!(!m("root.ln.*", "root.ln"));
        assert!(m("root.*.*.s1", "root.ln.d1.s1"));
    }

    #[test]
    fn double_star_matches_one_or_more_levels() {
        assert!(m("root.**", "root.ln"));
        assert!(m("root.**", "root.ln.d1.s1"));
        assert!(!m("root.**", "root"));
        assert!(m("root.ln.**.s1", "root.ln.d1.s1"));
        assert!(m("root.ln.**.s1", "root.ln.a.b.c.s1"));
        assert!(!m("root.ln.**.s1", "root.ln.s1"));
        assert!(m("root.**.**", "root.a.b"));
        assert!(!m("root.**.**", "root.a"));
        assert!(m("root.**.d1.**", "root.x.d1.d1.s"));
    }

    #[test]
    fn partial_wildcards_match_by_glob() {
        assert!(m("root.ln.d*", "root.ln.d1"));
        assert!(m("root.ln.d*", "root.ln.d"));
        assert!(!m("root.ln.d*", "root.ln.x1"));
        assert!(m("root.ln.*temp*", "root.ln.my_temperature"));
        assert!(m("root.ln.a*b*c", "root.ln.aXbYbZc"));
        assert!(!m("root.ln.a*b*c", "root.ln.aXbYcZ"));
        assert!(m("root.ln.*1", "root.ln.d11"));
        // A quoted star is a literal.
        assert!(!m("root.ln.`d*`", "root.ln.d1"));
    }

    #[test]
    fn concrete_pattern_round_trips_to_path() {
        let p = PathPattern::parse("root.sg.`a.b`").unwrap();
        assert_eq!(p.to_path().unwrap().nodes(), ["root", "sg", "a.b"]);
        assert!(PathPattern::parse("root.sg.*").unwrap().to_path().is_err());
        let path = Path::parse("root.sg.`x y`").unwrap();
        assert_eq!(PathPattern::from(&path).to_string(), "root.sg.`x y`");
    }
}
