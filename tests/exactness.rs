//! Issue 8.4 and 8.5: exactness at the edges. Long lines are reported in bounded
//! space, an exact copy of an input whose last line has no LF passes in verify and
//! watch alike, and the report and errors say exactly what happened.

use std::io::Write;
use std::path::Path;

use assert_cmd::Command;
use soakcheck::formats::txnlog::{format_record, Record, WhereRange};

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
        let txn_id = format!("Passthrough-w-initializer-id-1:c_id={i}");
        let time = 1_700_000_000.0 + i as f64;
        log += &format_record(
            time,
            &Record::Phase1Commit {
                txn_id: txn_id.clone(),
                where_list: vec![WhereRange {
                    stream_id: 1,
                    start: at,
                    end,
                }],
            },
        );
        log += &format_record(
            time + 0.5,
            &Record::Phase2Commit {
                txn_id,
                offset: end,
            },
        );
        at = end;
    }
    std::fs::write(dir.join("output.initializer.txnlog"), log).unwrap();
}

fn soakcheck(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("soakcheck")
        .unwrap()
        .env_remove("MULTIPLE_KEYS_LIST")
        .args(args)
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
    let input = dir.path().join("input-file.A.txt");
    std::fs::write(&input, input_bytes).unwrap();
    let input = format!("A={}", input.display());
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
        let (code, stdout, stderr) = soakcheck(&[
            "watch",
            "--sink-dir",
            sink,
            "--input",
            &input,
            "--until",
            "complete",
            "--timeout",
            "20s",
        ]);
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
