//! Helpers shared by the end-to-end tests of `run` (local and over ssh).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("soakcheck")
}

/// The violation of key number `key` (of A, B, C) as `verify --json` sees the sink
/// directory of run dir `dir`: its kind and its commit's txnlog time.
pub fn violation(dir: &Path, key: usize) -> (String, f64) {
    let out = Command::new(exe())
        .args(["verify", "--keys", "A,B,C", "--json", "--sink-dir"])
        .arg(dir.join("sink-out"))
        .arg("--input-dir")
        .arg(dir)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &doc["keys"][key]["violation"];
    let kind = v["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("no violation: {doc}"));
    (kind.to_string(), v["commit"]["time"].as_f64().unwrap())
}
