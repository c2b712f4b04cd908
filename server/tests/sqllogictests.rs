//! Runs every `.slt` suite in `sqllogictests/slt/` against the real `arbor`
//! binary, once in simple and once in extended query mode.

use std::path::Path;

use sqllogictests::{run_file, slt_files, suites_dir, Mode};

async fn run_all(mode: Mode) {
    // `ARBOR_BIN` runs the suites against another build of the server.
    let binary = std::env::var_os("ARBOR_BIN").map_or_else(|| Path::new(env!("CARGO_BIN_EXE_arbor")).to_path_buf(), Into::into);
    let binary = binary.as_path();
    let files = slt_files(&suites_dir());
    assert!(!files.is_empty(), "no .slt files under {}", suites_dir().display());
    let mut failures = Vec::new();
    let mut records = 0;
    for file in &files {
        match run_file(binary, file, mode).await {
            Ok(n) => records += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{} of {} files failed:\n{}", failures.len(), files.len(), failures.join("\n\n"));
    eprintln!("{records} records in {} files passed ({mode:?} mode)", files.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_simple_query_mode() {
    run_all(Mode::Simple).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_extended_query_mode() {
    run_all(Mode::Extended).await;
}
