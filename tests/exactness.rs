//! Issue 8.4 and 8.5: exactness at the edges. Long lines are reported in bounded
//! space, an exact copy of an input whose last line has no LF passes in verify and
//! watch alike, and the report and errors say exactly what happened.

use std::io::Write;
use std::path::Path;

use assert_cmd::Command;
use soakcheck::formats::txnlog::{format_record, Record, WhereRange};

/// The `1-ok` and `2-ok` lines of one commit of `worker`'s bytes [`start`, `end`).
fn commit_records(worker: &str, cid: usize, time: f64, start: u64, end: u64) -> String {
    let txn_id = format!("Passthrough-w-{worker}-id-1:c_id={cid}");
    let where_list = vec![WhereRange {
        stream_id: 1,
        start,
        end,
    }];
    format_record(
        time,
        &Record::Phase1Commit {
            txn_id: txn_id.clone(),
            where_list,
        },
    ) + &format_record(
        time + 0.5,
        &Record::Phase2Commit {
            txn_id,
            offset: end,
        },
    )
}

/// Writes a one-worker sink: `output.initializer` holding `chunks` concatenated, each
/// chunk one commit.
fn write_sink(dir: &Path, chunks: &[&[u8]]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut output = std::fs::File::create(dir.join("output.initializer")).unwrap();
    let mut log = String::new();
    let mut at = 0u64;
    for (i, chunk) in chunks.iter().enumerate() {
        output.write_all(chunk).unwrap();
        let end = at + chunk.len() as u64;
        log += &commit_records("initializer", i, 1_700_000_000.0 + i as f64, at, end);
        at = end;
    }
    std::fs::write(dir.join("output.initializer.txnlog"), log).unwrap();
}

/// Writes key A's input under `dir`; returns the `--input` argument naming it.
fn input_a(dir: &Path, bytes: &[u8]) -> String {
    let input = dir.join("input-file.A.txt");
    std::fs::write(&input, bytes).unwrap();
    format!("A={}", input.display())
}

/// `watch --until complete` of `sink` against `input` (an `--input` argument).
fn watch_until_complete(sink: &str, input: &str) -> (i32, String, String) {
    soakcheck(&[
        "watch",
        "--sink-dir",
        sink,
        "--input",
        input,
        "--until",
        "complete",
        "--timeout",
        "20s",
    ])
}

/// `verify` of `sink` against `input` (an `--input` argument).
fn verify_sink(sink: &Path, input: &str) -> (i32, String, String) {
    soakcheck(&[
        "verify",
        "--sink-dir",
        sink.to_str().unwrap(),
        "--input",
        input,
    ])
}

/// Runs soakcheck on exactly the inputs the test names: `--input K=PATH` comes with
/// `--input-dir` of PATH's directory, since the default, `/tmp`, may hold another run's
/// inputs, whose keys would be checked too.
fn soakcheck(args: &[&str]) -> (i32, String, String) {
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let named = args
        .iter()
        .position(|a| a == "--input")
        .map(|i| &args[i + 1]);
    if let Some(spec) = named.filter(|_| !args.iter().any(|a| a == "--input-dir")) {
        let path = Path::new(spec.split_once('=').map_or(spec.as_str(), |(_, p)| p));
        let dir = path.parent().unwrap().display().to_string();
        args.extend(["--input-dir".to_string(), dir]);
    }
    let out = Command::cargo_bin("soakcheck")
        .unwrap()
        .env_remove("MULTIPLE_KEYS_LIST")
        .args(&args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_50_mb_committed_line_is_reported_in_200_bytes_and_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input-file.A.txt");
    std::fs::write(&input, b"A0 one\nA1 two\n").unwrap();
    let sink = dir.path().join("sink");
    let block = vec![b'x'; 1 << 20];
    let mut chunks: Vec<&[u8]> = vec![b"A0 one\nA"];
    chunks.extend(std::iter::repeat_n(&block[..], 50));
    write_sink(&sink, &chunks);
    let sink = sink.to_str().unwrap();
    let input = format!("A={}", input.display());
    for format in ["--json", "--human"] {
        let mut args = vec!["verify", "--sink-dir", sink, "--input", &input];
        if format == "--json" {
            args.push("--json");
        }
        let (code, stdout, _) = soakcheck(&args);
        assert_eq!(code, 1, "{stdout}");
        assert!(
            stdout.len() < 4096,
            "{format}: {} bytes of report",
            stdout.len()
        );
        let line_bytes = (50 << 20) + 1;
        if format == "--json" {
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            let violation = &v["keys"][0]["violation"];
            assert_eq!(violation["kind"], "corrupt");
            assert_eq!(violation["found_bytes"], line_bytes);
            assert_eq!(violation["found"].as_str().unwrap().len(), 200);
            assert_eq!(violation["expected"], "A1 two");
            assert_eq!(violation["expected_bytes"], 6);
        } else {
            assert!(
                stdout.contains(&format!("({line_bytes} bytes, the first 200 shown)")),
                "{stdout}"
            );
        }
    }
}

#[test]
fn an_exact_copy_of_an_input_without_its_final_lf_passes_verify_and_watch() {
    let dir = tempfile::tempdir().unwrap();
    let input_bytes = b"A0 one\nA1 two\nA2 three";
    let input = input_a(dir.path(), input_bytes);
    // Cut across commits inside the last line, and at its start.
    for cut in [14, 17] {
        let sink = dir.path().join(format!("sink-{cut}"));
        write_sink(&sink, &[&input_bytes[..cut], &input_bytes[cut..]]);
        let sink = sink.to_str().unwrap();
        let (code, stdout, stderr) = soakcheck(&[
            "verify",
            "--sink-dir",
            sink,
            "--input",
            &input,
            "--expect-complete",
        ]);
        assert_eq!(code, 0, "verify, cut {cut}: {stdout}{stderr}");
        let (code, stdout, stderr) = watch_until_complete(sink, &input);
        assert_eq!(code, 0, "watch, cut {cut}: {stdout}{stderr}");
    }
    let plain = dir.path().join("plain");
    std::fs::write(&plain, input_bytes).unwrap();
    let (code, stdout, _) = soakcheck(&[
        "verify",
        "--plain-output",
        plain.to_str().unwrap(),
        "--input",
        &input,
        "--expect-complete",
    ]);
    assert_eq!(code, 0, "{stdout}");
}

/// Writes a sink whose two txnlogs commit offsets near 2^64 (their outputs are short).
fn write_huge_offsets(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, w) in ["initializer", "worker1"].iter().enumerate() {
        std::fs::write(dir.join(format!("output.{w}")), b"A0 one\n").unwrap();
        let end = u64::MAX - i as u64;
        let log = commit_records(w, 1, 1_700_000_000.0 + i as f64, 0, end);
        std::fs::write(dir.join(format!("output.{w}.txnlog")), log).unwrap();
    }
}

#[test]
fn committed_byte_counts_near_2_pow_64_do_not_wrap_or_exhaust_memory() {
    let dir = tempfile::tempdir().unwrap();
    let input = input_a(dir.path(), b"A0 one\n");
    let sink = dir.path().join("sink");
    write_huge_offsets(&sink);
    let sink = sink.to_str().unwrap();
    let (code, stdout, stderr) =
        soakcheck(&["verify", "--sink-dir", sink, "--input", &input, "--json"]);
    assert_eq!(code, 1, "{stderr}");
    let total = 2 * u128::from(u64::MAX) - 1;
    assert!(
        stdout.contains(&format!("\"committed_bytes\": {total}")),
        "{stdout}"
    );
    let (code, stdout, stderr) = watch_until_complete(sink, &input);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("committed-data-missing"), "{stdout}");
}

#[test]
fn an_output_file_without_a_txnlog_is_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let input = input_a(dir.path(), b"A0 one\n");
    let sink = dir.path().join("sink");
    write_sink(&sink, &[b"A0 one\n"]);
    std::fs::write(sink.join("output.worker9"), b"A0 one\n").unwrap();
    // Not outputs: the sink's diagnostic copy and the original verifier's own files.
    std::fs::write(sink.join("output.worker9.1.diag"), b"x").unwrap();
    std::fs::write(sink.join("output.concatenated"), b"x").unwrap();
    let sink = sink.to_str().unwrap();
    let (code, stdout, _) = soakcheck(&["verify", "--sink-dir", sink, "--input", &input]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        stdout.matches("output-without-txnlog").count(),
        1,
        "{stdout}"
    );
    assert!(
        stdout.contains("note: output.worker9: output-without-txnlog"),
        "{stdout}"
    );
    let (code, stdout, _) = watch_until_complete(sink, &input);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("note: output.worker9: output-without-txnlog"),
        "{stdout}"
    );
}

#[test]
fn an_io_error_is_named_once_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let input = input_a(dir.path(), b"A0 one\n");
    let sink = dir.path().join("sink");
    write_sink(&sink, &[b"A0 one\n"]);
    std::fs::remove_file(sink.join("output.initializer")).unwrap();
    std::fs::create_dir(sink.join("output.initializer")).unwrap();
    let (code, _, stderr) = verify_sink(&sink, &input);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.matches("directory").count(), 1, "{stderr}");
    assert!(
        stderr.contains(&sink.join("output.initializer").display().to_string()),
        "{stderr}"
    );
    // run in a directory where nothing can be created names the path it tried.
    let (code, _, stderr) = soakcheck(&[
        "run",
        "1",
        "--run-dir",
        "/proc/self",
        "--bytes-per-key",
        "1000",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/proc/self/sink-out: "), "{stderr}");
}

#[test]
fn reset_says_when_its_state_file_is_unreadable_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("soakcheck-run.json");
    std::fs::write(&record, b"{not json").unwrap();
    std::fs::create_dir(dir.path().join("sink-out")).unwrap();
    let (code, _, stderr) = soakcheck(&["reset", "--run-dir", dir.path().to_str().unwrap()]);
    // Issue 17: its processes may be alive and writing, so nothing is moved either.
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("soakcheck-run.json: unreadable"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing was killed and nothing moved"),
        "{stderr}"
    );
    assert!(
        record.exists(),
        "the only record of what may still run is kept"
    );
    assert!(
        dir.path().join("sink-out").is_dir(),
        "the run's files stay where they are"
    );
    // A run in that dir refuses rather than overwrite it.
    let (code, _, stderr) = soakcheck(&[
        "run",
        "1",
        "--run-dir",
        dir.path().to_str().unwrap(),
        "--bytes-per-key",
        "1000",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("soakcheck-run.json: unreadable"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&record).unwrap(), b"{not json");
}

#[test]
fn a_torn_line_joined_with_another_files_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input-file.A.txt"), b"A0 one\nA1 two\n").unwrap();
    std::fs::write(dir.path().join("input-file.B.txt"), b"B0 one\nB1 two\n").unwrap();
    let sink = dir.path().join("sink");
    write_sink(&sink, &[b"A0 one\nA1 two\n"]);
    // worker1 commits first a torn B line; the initializer's commit (later) continues it.
    std::fs::rename(sink.join("output.initializer"), sink.join("keep")).unwrap();
    std::fs::rename(
        sink.join("output.initializer.txnlog"),
        sink.join("keep.txnlog"),
    )
    .unwrap();
    let w1 = dir.path().join("w1");
    write_sink(&w1, &[b"B0 one\nB1 t"]);
    let text = std::fs::read_to_string(w1.join("output.initializer.txnlog"))
        .unwrap()
        .replace("initializer", "worker1")
        .replace("1700000000.", "1699999999.");
    std::fs::write(sink.join("output.worker1.txnlog"), text).unwrap();
    std::fs::copy(w1.join("output.initializer"), sink.join("output.worker1")).unwrap();
    std::fs::rename(sink.join("keep"), sink.join("output.initializer")).unwrap();
    std::fs::rename(
        sink.join("keep.txnlog"),
        sink.join("output.initializer.txnlog"),
    )
    .unwrap();
    let (code, stdout, _) = soakcheck(&[
        "verify",
        "--sink-dir",
        sink.to_str().unwrap(),
        "--input-dir",
        dir.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let b = &v["keys"][1]["violation"];
    assert_eq!(b["found"], "B1 tA0 one");
    assert_eq!(b["joined"]["file"], "output.initializer");
    let note = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "torn-line-joined")
        .expect("a torn-line-joined note");
    let detail = note["detail"].as_str().unwrap();
    assert!(
        detail.contains("starting 'B'") && detail.contains("starts 'A'"),
        "{detail}"
    );
}

/// Issue 8.8 moved the input check into the comparison. A line of another key inside an
/// input is still exit 2 naming its line: echoed in the output (checked by the
/// comparison, whole or cut anywhere across commits), or past what was delivered
/// (checked after), or in an input nothing was delivered from.
#[test]
fn a_foreign_line_in_an_input_is_exit_2_wherever_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: &[u8] = b"A0 zero\nA1 one\nB2 two\nA3 three\nA4 four\n";
    let input = input_a(dir.path(), bytes);
    let delivered_upto = [bytes.len(), 15, 8, 0];
    for (n, upto) in delivered_upto.into_iter().enumerate() {
        for cut in [0, 3, 14, 15, 16, 20] {
            let cut = cut.min(upto);
            let sink = dir.path().join(format!("sink-{n}-{cut}"));
            write_sink(&sink, &[&bytes[..cut], &bytes[cut..upto]]);
            let (code, _, stderr) = verify_sink(&sink, &input);
            assert_eq!(code, 2, "delivered {upto}, cut {cut}: {stderr}");
            assert!(
                stderr.contains("input-file.A.txt:3: expected every line to start with the key byte 'A', found \"B2 two\""),
                "delivered {upto}, cut {cut}: {stderr}"
            );
        }
    }
}
