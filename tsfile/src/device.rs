//! Device identifiers (spec §3): an ordered list of segments. Tree-model
//! paths are regrouped into segments; the table name is segment 0.

use std::cmp::Ordering;
use std::fmt;

use crate::error::{Error, Result};
use crate::io::{ByteReader, ByteWriter};

/// A version-4 device id. Trailing null segments are trimmed (Java's rule),
/// so ids that differ only by trailing nulls are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceId {
    segments: Vec<Option<String>>,
}

/// Split a dotted tree path into nodes, keeping back-quoted nodes whole.
fn split_path(path: &str) -> Vec<String> {
    let mut nodes = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in path.chars() {
        match c {
            '`' => {
                quoted = !quoted;
                current.push(c);
            }
            '.' if !quoted => nodes.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    nodes.push(current);
    nodes
}

impl DeviceId {
    pub fn from_segments(segments: Vec<Option<String>>) -> Self {
        let mut segments = segments;
        while segments.len() > 1 && segments.last().is_some_and(Option::is_none) {
            segments.pop();
        }
        if segments.is_empty() {
            segments.push(Some(String::new()));
        }
        DeviceId { segments }
    }

    /// A tree-model device such as `root.sg.d1` (→ `["root.sg", "d1"]`).
    pub fn from_tree_path(path: &str) -> Self {
        let nodes = split_path(path);
        let segments: Vec<Option<String>> = match nodes.len() {
            1 => nodes.into_iter().map(Some).collect(),
            2 | 3 => {
                let n = nodes.len();
                vec![Some(nodes[..n - 1].join(".")), Some(nodes[n - 1].clone())]
            }
            _ => std::iter::once(Some(nodes[..3].join(".")))
                .chain(nodes[3..].iter().cloned().map(Some))
                .collect(),
        };
        DeviceId::from_segments(segments)
    }

    pub fn segments(&self) -> &[Option<String>] {
        &self.segments
    }

    /// Segment 0, the table name (`root.sg` for tree devices).
    pub fn table_name(&self) -> &str {
        self.segments[0].as_deref().unwrap_or("null")
    }

    pub fn serialize(&self, out: &mut Vec<u8>) {
        out.put_uvarint(self.segments.len() as u32);
        for s in &self.segments {
            out.put_varstr(s.as_deref().map(str::as_bytes));
        }
    }

    pub fn deserialize(r: &mut ByteReader<'_>) -> Result<Self> {
        let n = r.length(1)?;
        let mut segments = Vec::with_capacity(n);
        for _ in 0..n {
            segments.push(r.varstr()?);
        }
        Ok(DeviceId::from_segments(segments))
    }

    /// Version-3 device: a single `varstr` holding the whole path.
    pub fn deserialize_v3(r: &mut ByteReader<'_>) -> Result<Self> {
        let offset = r.offset();
        let path = r
            .varstr()?
            .ok_or_else(|| Error::corrupt(offset, "null device path"))?;
        Ok(DeviceId::from_tree_path(&path))
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(s.as_deref().unwrap_or("null"))?;
        }
        Ok(())
    }
}

/// Java `String.compareTo`: UTF-16 code unit order.
pub fn compare_java_strings(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

impl Ord for DeviceId {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.segments.iter().zip(&other.segments) {
            let ord = match (a, b) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(a), Some(b)) => compare_java_strings(a, b),
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        self.segments.len().cmp(&other.segments.len())
    }
}

impl PartialOrd for DeviceId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_paths_split_as_the_spec_says() {
        let seg = |p: &str| DeviceId::from_tree_path(p).segments().to_vec();
        let s = |v: &[&str]| v.iter().map(|x| Some(x.to_string())).collect::<Vec<_>>();
        assert_eq!(seg("root"), s(&["root"]));
        assert_eq!(seg("root.sg"), s(&["root", "sg"]));
        assert_eq!(seg("root.sg.d1"), s(&["root.sg", "d1"]));
        assert_eq!(seg("root.ref.enc.int32"), s(&["root.ref.enc", "int32"]));
        assert_eq!(seg("root.a.b.c.d"), s(&["root.a.b", "c", "d"]));
        assert_eq!(DeviceId::from_tree_path("root.a.b.c.d").to_string(), "root.a.b.c.d");
    }

    #[test]
    fn serialization_matches_the_worked_example() {
        let mut out = Vec::new();
        DeviceId::from_tree_path("root.sg.d1").serialize(&mut out);
        assert_eq!(out, b"\x02\x0eroot.sg\x04d1");
        let back = DeviceId::deserialize(&mut ByteReader::new(&out)).unwrap();
        assert_eq!(back.to_string(), "root.sg.d1");
    }

    #[test]
    fn ordering_puts_null_first_and_prefixes_before_longer_ids() {
        let a = DeviceId::from_segments(vec![Some("t".into()), None, Some("x".into())]);
        let b = DeviceId::from_segments(vec![Some("t".into()), Some("a".into())]);
        let c = DeviceId::from_segments(vec![Some("t".into()), Some("a".into()), Some("b".into())]);
        assert!(a < b && b < c);
        let trimmed = DeviceId::from_segments(vec![Some("t".into()), Some("a".into()), None]);
        assert_eq!(trimmed, b);
    }
}
