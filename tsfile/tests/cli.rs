//! `arbor-tsfile` through the real binary: dump, write, inspect, and bad input.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_arbor-tsfile"))
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = bin().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn dump_prints_the_worked_example() {
    let out = bin().arg("dump").arg(fixture("00_tiny_tree.tsfile")).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "device,measurement,data_type,time,value\nroot.sg.d1,s1,INT32,1,10\nroot.sg.d1,s1,INT32,2,-3\nroot.sg.d1,s1,INT32,3,300\n"
    );
}

const CSV: &str = "device,measurement,data_type,time,value
root.ln.wf01.wt01,blob,BLOB,1,\\x00ff
root.ln.wf01.wt01,date,DATE,1,2024-02-29
root.ln.wf01.wt01,status,BOOLEAN,1,true
root.ln.wf01.wt01,status,BOOLEAN,2,false
root.ln.wf01.wt01,temperature,DOUBLE,1,25.1
root.ln.wf01.wt01,temperature,DOUBLE,2,NaN
root.ln.wf01.wt01,temperature,DOUBLE,3,-inf
root.ln.wf01.wt01,text,TEXT,2,\"a,b \"\"c\"\"\"
root.ln.wf01.wt02,f,FLOAT,5,0.1
root.ln.wf01.wt02,ts,TIMESTAMP,5,1700000000000
";

#[test]
fn write_then_dump_gives_back_the_csv_aligned_or_not() {
    let dir = tempfile::tempdir().unwrap();
    for extra in [vec![], vec!["--aligned"], vec!["--compression", "ZSTD", "--encoding", "DOUBLE=GORILLA", "--encoding", "BOOLEAN=RLE"]] {
        let path = dir.path().join("out.tsfile");
        let mut args = vec!["write", path.to_str().unwrap()];
        args.extend(extra.iter().copied());
        let out = run_with_stdin(&args, CSV);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let dump = bin().arg("dump").arg(&path).output().unwrap();
        assert_eq!(String::from_utf8(dump.stdout).unwrap(), CSV, "{extra:?}");
        let inspect = bin().arg("inspect").arg(&path).output().unwrap();
        let text = String::from_utf8(inspect.stdout).unwrap();
        assert!(text.contains("version: 4") && text.contains("root.ln.wf01.wt01") && text.contains("bloom_filter"), "{text}");
        if extra.contains(&"--aligned") {
            assert!(text.contains("(aligned)"), "{text}");
        }
    }
}

#[test]
fn bad_csv_exits_2_with_the_line_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.tsfile");
    for (csv, line) in [
        ("device,measurement,data_type,time,value\nroot.a.b,s,INT32,1,5\nroot.a.b,s,INT99,2,5\n", "line 3"),
        ("device,measurement,data_type,time,value\nroot.a.b,s,INT32,1,x\n", "line 2"),
        ("device,measurement,data_type,time,value\nroot.a.b,s,INT32,1,5\nroot.a.b,s,INT32,2.5,5\n", "line 3"),
        ("device,measurement,data_type,time,value\nroot.a.b,s,INT32,1,5\nroot.a.b,s,INT32,1,6\n", "line 3"),
        ("device,measurement,data_type,time,value\nroot.a.b,s,DATE,1,2023-02-29\n", "line 2"),
        ("nope\n", "line 1"),
    ] {
        let out = run_with_stdin(&["write", path.to_str().unwrap()], csv);
        assert_eq!(out.status.code(), Some(2), "{csv}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(line), "{csv}: {err}");
        assert!(!path.exists(), "no partial file");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no temporary file left");
    }
}

#[test]
fn unreadable_files_exit_1_with_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.tsfile");
    std::fs::write(&path, b"TsFile\x04 this is not a tsfile at all").unwrap();
    let out = bin().arg("dump").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("garbage.tsfile") && err.contains("offset"), "{err}");
}
