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

/// Layer of each module of the `sql` crate: a module may use only modules
/// of lower layers (and its own submodules). The pipeline reads bottom-up:
/// shared bottom modules, physical operators, table providers, functions,
/// the TSQL front end, the planner, the session.
fn sql_layer(module: &str) -> Option<u32> {
    Some(match module {
        "error" => 0,
        "query_text" | "time" | "output" | "instance" => 1,
        "convert" | "series" | "pg" => 2,
        "exec" => 3,
        "provider" => 4,
        "functions" => 5,
        "tsql" => 6,
        "planner" => 7,
        "session" => 8,
        _ => return None,
    })
}

/// The `crate::module` names used in Rust source, outside comments.
fn crate_uses(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("sql/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn sql_modules_import_only_downward() {
    let src = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../sql/src"));
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().to_string();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let Some(from) = sql_layer(&module) else {
            violations.push(format!("sql module {module} has no layer: add it to sql_layer in this test"));
            continue;
        };
        let source = std::fs::read_to_string(file).unwrap();
        for used in crate_uses(&source) {
            if used == module || ["Result", "Error"].contains(&used.as_str()) {
                continue;
            }
            let to = sql_layer(&used).unwrap_or(u32::MAX);
            checked += 1;
            if to >= from {
                violations.push(format!("{} (module {module}, layer {from}) uses crate::{used} (layer {to})", relative.display()));
            }
        }
    }
    assert!(checked > 20, "only {checked} imports found under {}", src.display());
    assert!(violations.is_empty(), "sql modules must import downward only:\n{}", violations.join("\n"));
}

#[test]
fn crate_uses_ignore_comments() {
    assert_eq!(crate_uses("use crate::exec::X; // crate::session"), vec!["exec".to_string()]);
    assert_eq!(crate_uses("let a = crate::time::parse(crate::convert::UTC);"), vec!["time".to_string(), "convert".to_string()]);
}
