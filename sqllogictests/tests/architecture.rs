//! The crate graph is the architecture: `server → sql → {storage, catalog} → tsfile`.
//! This test reads `cargo metadata` and fails when a crate depends against
//! that direction, or when `tsfile` picks up an async runtime.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

/// Layer of each workspace crate; a crate may depend only on lower layers.
fn layer(name: &str) -> Option<u32> {
    Some(match name {
        "tsfile" => 0,
        "catalog" | "storage" => 1,
        "sql" => 2,
        "server" | "arbor" => 3,
        "sqllogictests" => 4,
        _ => return None,
    })
}

#[test]
fn workspace_dependencies_point_one_way() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let names: Vec<&str> = packages.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let mut violations = Vec::new();
    let mut graph = BTreeMap::new();
    for p in packages {
        let name = p["name"].as_str().unwrap();
        let Some(from) = layer(name) else {
            violations.push(format!("workspace crate {name} has no layer: add it to ARCHITECTURE.md and this test"));
            continue;
        };
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            let dev = d["kind"].as_str() == Some("dev");
            if name == "tsfile" && !dev && ["tokio", "async-std", "futures"].contains(&dep) {
                violations.push(format!("tsfile must not use an async runtime, but depends on {dep}"));
            }
            if !names.contains(&dep) {
                continue;
            }
            graph.entry(name).or_insert_with(Vec::new).push(dep);
            let to = layer(dep).unwrap_or(u32::MAX);
            // Test-only dependencies may reach sideways or up (e.g. a crate's
            // tests using a sibling's fixtures) but never into the server.
            // The server's tests drive the sqllogictest runner (it needs the
            // server's binary, which only the server's own tests can name).
            let test_harness = dev && name == "server" && dep == "sqllogictests";
            if (!dev && to >= from) || (dev && to > from && name != "sqllogictests" && !test_harness) {
                violations.push(format!("{name} (layer {from}) depends on {dep} (layer {to})"));
            }
        }
    }
    assert!(violations.is_empty(), "dependency direction broken:\n{}\ngraph: {graph:?}", violations.join("\n"));
    assert!(names.contains(&"tsfile"), "the workspace has a tsfile crate");
}
