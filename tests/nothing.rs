//! Issue 17.2: a verdict on nothing is exit 2. A directory that holds no sink output, a
//! sink whose txnlogs commit nothing, and a watch whose directory never held sink output
//! are "could not check", with a message that names the directory and what was expected;
//! and when every key fails at its first byte, the message says the inputs are likely
//! the wrong ones.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;

fn soakcheck(args: &[&str]) -> Output {
    Command::cargo_bin("soakcheck")
        .unwrap()
        .env_remove("MULTIPLE_KEYS_LIST")
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts exit 2 and that stderr names `dir` and each of `words`.
fn assert_could_not_check(out: &Output, dir: &Path, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
    assert!(stderr.contains(s(dir)), "names {}: {stderr}", dir.display());
    for w in words {
        assert!(stderr.contains(w), "says {w:?}: {stderr}");
    }
}

#[test]
fn verify_on_an_empty_directory_is_could_not_check() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for extra in [&[][..], &["--expect-complete"][..], &["--json"][..]] {
        let mut args = vec![
            "verify",
            "--sink-dir",
            s(&empty),
            "--input-dir",
            "testdata/in",
        ];
        args.extend(extra);
        let out = soakcheck(&args);
        assert_could_not_check(
            &out,
            &empty,
            &[
                "holds no sink output",
                "output.<worker>.txnlog",
                "it is empty",
            ],
        );
        if extra == ["--json"] {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(doc["verdict"], "error", "{doc}");
        }
    }
}

#[test]
fn verify_pointed_at_the_inputs_says_they_are_inputs() {
    let out = soakcheck(&[
        "verify",
        "--sink-dir",
        "testdata/in",
        "--input-dir",
        "testdata/in",
    ]);
    assert_could_not_check(
        &out,
        Path::new("testdata/in"),
        &["holds no sink output", "looks like the input directory"],
    );
}

#[test]
fn a_run_dir_given_as_the_sink_dir_points_at_its_sink_out() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sink-out")).unwrap();
    let out = soakcheck(&[
        "verify",
        "--sink-dir",
        s(dir.path()),
        "--input-dir",
        "testdata/in",
    ]);
    assert_could_not_check(&out, dir.path(), &["did you mean", "sink-out"]);
}

#[test]
fn txnlogs_without_a_commit_verify_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("sink");
    std::fs::create_dir(&sink).unwrap();
    std::fs::write(
        sink.join("output.worker1.txnlog"),
        "[1704923659.00055, 'list-uncommitted', []]\n\
         [1704923659.004725, '1-ok', 'Passthrough-w-worker1-id-1:c_id=1', [(1, 0, 392)]]\n",
    )
    .unwrap();
    std::fs::write(sink.join("output.worker1"), "").unwrap();
    let out = soakcheck(&[
        "verify",
        "--sink-dir",
        s(&sink),
        "--input-dir",
        "testdata/in",
    ]);
    assert_could_not_check(&out, &sink, &["nothing was verified", "hold no commit"]);
}

#[test]
fn commits_of_other_keys_only_verify_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input-file.Z.txt"), "Z0000000 1234\n").unwrap();
    let out = soakcheck(&[
        "verify",
        "--sink-dir",
        "testdata/happy",
        "--input-dir",
        s(dir.path()),
    ]);
    assert_could_not_check(
        &out,
        Path::new("testdata/happy"),
        &["nothing was verified", "none of key(s) Z"],
    );
}

#[test]
fn report_on_an_empty_directory_is_could_not_check() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let page = dir.path().join("r.html");
    let out = soakcheck(&[
        "report",
        s(&empty),
        "--input-dir",
        "testdata/in",
        "-o",
        s(&page),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("holds no sink output"), "the page says why");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds no sink output"),
        "and so does stderr: {}",
        text(&out)
    );
    // A run dir whose sink-out is empty, too.
    let run = dir.path().join("run");
    std::fs::create_dir_all(run.join("sink-out")).unwrap();
    for k in ["A", "B"] {
        std::fs::copy(
            format!("testdata/in/input-file.{k}.txt"),
            run.join(format!("input-file.{k}.txt")),
        )
        .unwrap();
    }
    let out = soakcheck(&["report", s(&run)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn watch_until_complete_on_nothing_is_could_not_check() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    // Inputs that are there, and a directory that never holds sink output.
    let out = soakcheck(&[
        "watch",
        "--sink-dir",
        s(&empty),
        "--input-dir",
        "testdata/in",
        "--until",
        "complete",
        "--timeout",
        "1s",
    ]);
    assert_could_not_check(&out, &empty, &["holds no sink output"]);
    // Empty inputs: "complete" at once, on nothing.
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    std::fs::write(inputs.join("input-file.A.txt"), "").unwrap();
    let out = soakcheck(&[
        "watch",
        "--sink-dir",
        s(&empty),
        "--input-dir",
        s(&inputs),
        "--until",
        "complete",
        "--timeout",
        "10s",
    ]);
    assert_could_not_check(&out, &empty, &["holds no sink output"]);
}

#[test]
fn every_key_failing_at_its_first_byte_points_at_the_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let other = soakcheck(&[
        "gen",
        "inputs",
        "--keys",
        "A,B,C",
        "--bytes",
        "2000",
        "--seed",
        "9",
        "--dir",
        s(dir.path()),
    ]);
    assert!(other.status.success());
    let out = soakcheck(&[
        "verify",
        "--sink-dir",
        "testdata/happy",
        "--input-dir",
        s(dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("every key failed at its first byte")
            && stdout.contains("--input-dir")
            && stdout.contains(s(dir.path())),
        "{stdout}"
    );
    let json = soakcheck(&[
        "verify",
        "--sink-dir",
        "testdata/happy",
        "--input-dir",
        s(dir.path()),
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        doc["hint"].as_str().unwrap().contains("first byte"),
        "{doc}"
    );
    // One key right: no such hint.
    let right = soakcheck(&[
        "verify",
        "--sink-dir",
        "testdata/happy",
        "--input-dir",
        s(dir.path()),
        "--input",
        "A=testdata/in/input-file.A.txt",
    ]);
    assert!(!String::from_utf8_lossy(&right.stdout).contains("first byte"));
}
