//! Property test: matching a pattern by walking the tree finds exactly the
//! series (and devices) that the direct matcher accepts, in path order.

// Helpers outside #[test] fns unwrap too: in tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use catalog::{Catalog, CatalogConfig, DataType, Page, Path, PathPattern, PatternNode};
use proptest::prelude::*;

const NAMES: [&str; 5] = ["a", "b", "ab", "ba", "c1"];

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(&NAMES[..]).prop_map(str::to_string)
}

/// Series paths: root.<db>.<1..4 nodes>.<measurement>.
fn series_path() -> impl Strategy<Value = Vec<String>> {
    (name(), prop::collection::vec(name(), 1..4), name()).prop_map(|(db, mid, m)| {
        let mut v = vec!["root".to_string(), db];
        v.extend(mid);
        v.push(m);
        v
    })
}

fn pattern_node() -> impl Strategy<Value = PatternNode> {
    prop_oneof![
        4 => name().prop_map(PatternNode::Literal),
        2 => Just(PatternNode::Star),
        2 => Just(PatternNode::DoubleStar),
        1 => prop::sample::select(&["a*", "*a", "*b*", "c*1"][..])
            .prop_map(|g| PatternNode::Glob(g.to_string())),
    ]
}

fn pattern() -> impl Strategy<Value = PathPattern> {
    prop::collection::vec(pattern_node(), 1..7).prop_map(|nodes| {
        let mut all = vec![PatternNode::Literal("root".into())];
        all.extend(nodes);
        PathPattern::from_nodes(all).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn tree_walk_agrees_with_direct_matcher(
        paths in prop::collection::vec(series_path(), 1..40),
        patterns in prop::collection::vec(pattern(), 1..8),
    ) {
        let c = Catalog::in_memory(CatalogConfig::default()).unwrap();
        // Some random paths collide (a measurement where a device is, or
        // the reverse); keep the ones the catalog accepted.
        let mut created = BTreeSet::new();
        for nodes in &paths {
            let path = Path::from_nodes(nodes.clone()).unwrap();
            let device = path.parent().unwrap();
            if c.ensure_series(&device.to_string(), &[(path.last(), DataType::Int64)], false).is_ok() {
                created.insert(path);
            }
        }
        prop_assert_eq!(c.count_series(&PathPattern::all()) as usize, created.len());
        for pattern in &patterns {
            let expected: Vec<_> = created.iter().filter(|p| pattern.matches(p)).cloned().collect();
            let got: Vec<_> = c.list_series(pattern, Page::all()).into_iter().map(|s| s.path).collect();
            prop_assert_eq!(&got, &expected, "pattern {}", pattern);
            prop_assert_eq!(c.count_series(pattern) as usize, expected.len());

            let devices: BTreeSet<_> = created.iter().filter_map(Path::parent).collect();
            let expected: Vec<_> = devices.into_iter().filter(|p| pattern.matches(p)).collect();
            let got: Vec<_> = c.list_devices(pattern, Page::all()).into_iter().map(|d| d.path).collect();
            prop_assert_eq!(got, expected, "devices of pattern {}", pattern);

            // Pages are slices of the full listing.
            let all = c.list_series(pattern, Page::all());
            let page = c.list_series(pattern, Page::new(Some(3), 2));
            let want: Vec<_> = all.iter().skip(2).take(3).cloned().collect();
            prop_assert_eq!(page, want);
        }
    }

    #[test]
    fn printed_patterns_parse_back(pattern in pattern()) {
        let text = pattern.to_string();
        prop_assert_eq!(PathPattern::parse(&text).unwrap(), pattern);
    }

    #[test]
    fn printed_paths_parse_back(nodes in prop::collection::vec("[a-z0-9_. `()\\-中]{1,6}", 1..5)) {
        let mut all = vec!["root".to_string()];
        all.extend(nodes.into_iter().filter(|n| !n.contains('*')));
        let path = Path::from_nodes(all).unwrap();
        prop_assert_eq!(Path::parse(&path.to_string()).unwrap(), path);
    }
}
