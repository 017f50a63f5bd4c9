//! CLI tests: every case runs through the binary, and through each I/O path (mmap and
//! read) where the path matters, as ripgrep's tester does.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

const IO_MODES: [&str; 2] = ["mmap", "read"];
const ORIGINAL: &str = "../shared/testdata/original-aloc-sink";

fn soakcheck() -> Command {
    let mut cmd = Command::cargo_bin("soakcheck").unwrap();
    cmd.env_remove("MULTIPLE_KEYS_LIST").env_remove("NO_COLOR");
    cmd
}

/// Runs `verify --json` with `args`, checks the exit status, returns the document.
fn verify_json(args: &[&str], io: &str, status: i32) -> Value {
    let out = soakcheck()
        .arg("verify")
        .args(args)
        .args(["--json", "--io", io])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(status),
        "args {args:?} io {io}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("exactly one JSON document on stdout")
}

fn fixture(dir: &str) -> Vec<String> {
    vec![
        "--sink-dir".into(),
        format!("testdata/{dir}"),
        "--input-dir".into(),
        "testdata/in".into(),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn happy_fixture_passes_complete_with_a_torn_txnlog_note() {
    let mut a = fixture("happy");
    a.push("--expect-complete".into());
    for io in IO_MODES {
        let doc = verify_json(&args(&a), io, 0);
        assert_eq!(doc["verdict"], "ok");
        assert_eq!(doc["semantics"], "exactly-once");
        let keys = doc["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 3);
        for k in keys {
            assert_eq!(k["complete"], true);
            assert_eq!(k["verified_bytes"], k["input_bytes"]);
            assert_eq!(k["verified_lines"], 126);
            assert!(k["violation"].is_null());
        }
        let problems = doc["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0]["kind"], "torn-txnlog-tail");
        assert_eq!(problems[0]["severity"], "note");
        assert_eq!(doc["sink"]["files"], 6);
        assert!(doc["error"].is_null());
    }
}

#[test]
fn original_python_sink_output_verifies_complete() {
    let sink = format!("{ORIGINAL}/sink-out");
    let input = format!("{ORIGINAL}/in");
    for io in IO_MODES {
        let doc = verify_json(
            &[
                "--sink-dir",
                &sink,
                "--input-dir",
                &input,
                "--expect-complete",
            ],
            io,
            0,
        );
        assert_eq!(doc["verdict"], "ok");
        assert_eq!(doc["problems"].as_array().unwrap().len(), 0);
        assert_eq!(doc["keys"].as_array().unwrap().len(), 3);
        for k in doc["keys"].as_array().unwrap() {
            assert_eq!(k["verified_bytes"], 24500);
            assert_eq!(k["complete"], true);
        }
        // The renamed pair of the worker that left is read like any other.
        assert_eq!(doc["sink"]["files"], 6);
        assert_eq!(doc["sink"]["committed_bytes"], 73500);
    }
}

#[test]
fn each_injected_fault_is_named_with_its_commit() {
    for (dir, kind, lines) in [
        ("loss", "loss", 2),
        ("duplicate", "duplicate", 2),
        ("reorder", "reorder", 1),
        ("corrupt", "corrupt", 1),
    ] {
        let mut a = fixture(dir);
        a.push("--expect-complete".into());
        for io in IO_MODES {
            let doc = verify_json(&args(&a), io, 1);
            assert_eq!(doc["verdict"], "violation", "{dir}");
            let keys = doc["keys"].as_array().unwrap();
            assert!(
                keys[0]["violation"].is_null() && keys[2]["violation"].is_null(),
                "{dir}: only B is faulty"
            );
            let v = &keys[1]["violation"];
            assert_eq!(v["kind"], kind, "{dir}: {v}");
            assert_eq!(v["lines"], lines, "{dir}: {v}");
            // The fault was injected at input offset 2254 (gen sink's report).
            assert_eq!(v["input_offset"], 2254, "{dir}");
            assert_eq!(v["key_offset"], 2254, "{dir}");
            assert_eq!(keys[1]["verified_bytes"], 2254);
            let commit = &v["commit"];
            assert!(
                commit["txn_id"]
                    .as_str()
                    .unwrap()
                    .starts_with("Passthrough-w-worker1-id-"),
                "{dir}"
            );
            assert_eq!(commit["file"], "output.worker1");
            let file_offset = commit["file_offset"].as_u64().unwrap() as usize;
            let output = std::fs::read(format!("testdata/{dir}/output.worker1")).unwrap();
            let found = v["found"].as_str().unwrap();
            assert_eq!(
                &output[file_offset..file_offset + found.len()],
                found.as_bytes(),
                "{dir}: offset points at the line"
            );
            assert!(v["expected"].as_str().unwrap().starts_with('B'));
        }
    }
}

#[test]
fn sink_problems_are_violations() {
    for (dir, kind, line) in [
        (
            "problem-committed-data-missing",
            "committed-data-missing",
            5,
        ),
        ("problem-commit-regressed", "commit-regressed", 7),
        ("problem-phase2-mismatch", "phase2-mismatch", 3),
    ] {
        let mut a = fixture(dir);
        a.extend(["--keys".into(), "A".into()]);
        for io in IO_MODES {
            let doc = verify_json(&args(&a), io, 1);
            assert_eq!(doc["verdict"], "violation");
            let p = &doc["problems"][0];
            assert_eq!(p["kind"], kind);
            assert_eq!(p["severity"], "violation");
            assert_eq!(p["file"], "output.initializer.txnlog");
            assert_eq!(p["line"], line);
            assert!(
                doc["keys"][0]["violation"].is_null(),
                "{dir}: the key itself is a clean prefix"
            );
        }
    }
}

#[test]
fn bad_input_exits_2_naming_the_file_and_line() {
    let cases: [(&[&str], &str); 8] = [
        (&["--sink-dir", "testdata/bad-malformed-txnlog", "--input-dir", "testdata/in", "--keys", "A"],
         "testdata/bad-malformed-txnlog/output.initializer.txnlog:3:64: malformed txnlog record: expected ',' or ']'"),
        (&["--sink-dir", "testdata/bad-unknown-record", "--input-dir", "testdata/in", "--keys", "A"],
         "testdata/bad-unknown-record/output.initializer.txnlog:2:1: malformed txnlog record: expected a known record kind"),
        (&["--sink-dir", "testdata/bad-missing-output", "--input-dir", "testdata/in", "--keys", "A"],
         "testdata/bad-missing-output/output.initializer: output file is missing"),
        (&["--sink-dir", "testdata/happy", "--input-dir", "testdata/bad-input-wrong-key", "--keys", "A"],
         "testdata/bad-input-wrong-key/input-file.A.txt:4: expected every line to start with the key byte 'A'"),
        (&["--sink-dir", "testdata/happy", "--input-dir", "testdata/in", "--keys", "A,Z"],
         "testdata/in/input-file.Z.txt: cannot read input of key 'Z'"),
        (&["--sink-dir", "testdata/no-such-dir", "--input-dir", "testdata/in"],
         "testdata/no-such-dir: cannot read sink directory"),
        (&["--sink-dir", "testdata/happy", "--input-dir", "testdata/in", "--keys", "AB"],
         "a key is one byte"),
        (&["--sink-dir", "testdata/happy", "--input-dir", "testdata/empty-no-inputs"],
         "no keys to check"),
    ];
    for (a, message) in cases {
        for io in IO_MODES {
            let out = soakcheck()
                .arg("verify")
                .args(a)
                .args(["--io", io])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{a:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(message), "{a:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            let doc = verify_json(a, io, 2);
            assert_eq!(doc["verdict"], "error");
            assert!(doc["error"].as_str().unwrap().contains(message));
        }
    }
}

#[test]
fn keys_come_from_flag_then_environment_then_input_dir() {
    let keys_of = |doc: &Value| -> Vec<String> {
        doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["key"].as_str().unwrap().to_string())
            .collect()
    };
    let base = [
        "verify",
        "--sink-dir",
        "testdata/happy",
        "--input-dir",
        "testdata/in",
        "--json",
    ];
    let run = |extra: &[&str], env: Option<&str>| {
        let mut cmd = soakcheck();
        if let Some(e) = env {
            cmd.env("MULTIPLE_KEYS_LIST", e);
        }
        let out = cmd.args(base).args(extra).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(keys_of(&run(&[], None)), ["A", "B", "C"]);
    assert_eq!(keys_of(&run(&[], Some("C A"))), ["C", "A"]);
    assert_eq!(keys_of(&run(&["--keys", "B"], Some("C A"))), ["B"]);
    // --input overrides one key's path.
    let doc = run(
        &["--keys", "A", "--input", "A=testdata/in/input-file.A.txt"],
        None,
    );
    assert_eq!(doc["keys"][0]["input"], "testdata/in/input-file.A.txt");
    let out = soakcheck()
        .args(base)
        .args(["--keys", "A", "--input", "A=testdata/in/input-file.B.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "B's file is not A's input");
}

#[test]
fn human_output_has_no_colour_off_a_tty() {
    let out = soakcheck()
        .args(["verify"])
        .args(fixture("loss"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'));
    assert!(text.contains("B  LOSS"), "{text}");
    assert!(text.contains("expected: \"B"));
    assert!(text.contains("commit:   Passthrough-w-worker1-id-"));
}

#[test]
fn at_least_once_allows_replays_but_not_loss() {
    let plain = |file: &str, semantics: &str, status: i32| {
        verify_json(
            &[
                "--plain-output",
                file,
                "--input-dir",
                "testdata/in",
                "--keys",
                "A",
                "--semantics",
                semantics,
                "--expect-complete",
            ],
            "mmap",
            status,
        )
    };
    let doc = plain("testdata/plain/replayed.out", "at-least-once", 0);
    assert_eq!(doc["semantics"], "at-least-once");
    assert_eq!(doc["keys"][0]["complete"], true);
    let doc = plain("testdata/plain/replayed.out", "exactly-once", 1);
    // The replay re-sends lines 9-10 (already delivered) before new data.
    assert_eq!(doc["keys"][0]["violation"]["kind"], "duplicate");
    assert_eq!(doc["keys"][0]["violation"]["lines"], 2);
    let doc = plain("testdata/plain/lost.out", "at-least-once", 1);
    assert_eq!(doc["keys"][0]["violation"]["kind"], "loss");
    assert_eq!(doc["keys"][0]["violation"]["lines"], 1);
}

#[test]
fn expect_complete_turns_a_short_output_into_loss() {
    let dir = tempfile::tempdir().unwrap();
    let half = dir.path().join("half.out");
    let input = std::fs::read("testdata/in/input-file.A.txt").unwrap();
    std::fs::write(&half, &input[..49 * 60]).unwrap();
    let half = half.to_str().unwrap();
    let doc = verify_json(
        &[
            "--plain-output",
            half,
            "--input-dir",
            "testdata/in",
            "--keys",
            "A",
        ],
        "read",
        0,
    );
    assert_eq!(doc["keys"][0]["complete"], false);
    let doc = verify_json(
        &[
            "--plain-output",
            half,
            "--input-dir",
            "testdata/in",
            "--keys",
            "A",
            "--expect-complete",
        ],
        "read",
        1,
    );
    let v = &doc["keys"][0]["violation"];
    assert_eq!(v["kind"], "loss");
    assert_eq!(v["lines"], 66);
    assert!(v["found"].is_null() && v["commit"].is_null());
    assert_eq!(v["input_offset"], 49 * 60);
}

#[test]
fn newcomer_flow_generates_verifies_and_names_each_fault() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    soakcheck()
        .args([
            "gen",
            "inputs",
            "--keys",
            "A,B,C,D",
            "--bytes",
            "30000",
            "--dir",
            &d("in"),
        ])
        .assert()
        .success();
    soakcheck()
        .args([
            "gen",
            "sink",
            "--input-dir",
            &d("in"),
            "--sink-dir",
            &d("sink"),
            "--workers",
            "3",
        ])
        .assert()
        .success();
    let doc = verify_json(
        &[
            "--sink-dir",
            &d("sink"),
            "--input-dir",
            &d("in"),
            "--expect-complete",
        ],
        "mmap",
        0,
    );
    assert_eq!(doc["keys"].as_array().unwrap().len(), 4);
    // gen sink refuses to overwrite a directory.
    let before = std::fs::read(d("sink/output.initializer")).unwrap();
    let out = soakcheck()
        .args([
            "gen",
            "sink",
            "--input-dir",
            &d("in"),
            "--sink-dir",
            &d("sink"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    assert_eq!(std::fs::read(d("sink/output.initializer")).unwrap(), before);
    for kind in ["loss", "duplicate", "reorder", "corrupt"] {
        let sink = d(&format!("sink-{kind}"));
        soakcheck()
            .args([
                "gen",
                "sink",
                "--input-dir",
                &d("in"),
                "--sink-dir",
                &sink,
                "--fault",
                kind,
                "--key",
                "C",
                "--seed",
                "9",
            ])
            .assert()
            .success();
        let doc = verify_json(
            &[
                "--sink-dir",
                &sink,
                "--input-dir",
                &d("in"),
                "--expect-complete",
            ],
            "mmap",
            1,
        );
        assert_eq!(doc["keys"][2]["violation"]["kind"], kind);
        for k in [0, 1, 3] {
            assert!(doc["keys"][k]["violation"].is_null());
        }
    }
}

#[test]
fn gen_inputs_has_the_original_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    soakcheck()
        .args([
            "gen", "inputs", "--keys", "Q", "--bytes", "4000000", "--dir", out,
        ])
        .assert()
        .success();
    let text = std::fs::read(Path::new(out).join("input-file.Q.txt")).unwrap();
    assert_eq!(text.len(), 12_368_938);
    assert_eq!(&text[12_368_928..], b"Q17204400\n");
}

/// Issue 8.8: verify feeds a long stream (4.9 MB here) on two threads. Wherever a fault
/// lands (seed 3 puts it at a third of key C's input, seed 11 at three quarters: in each
/// half), the report is byte for byte the one-thread report.
#[test]
fn two_threads_give_the_one_thread_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    soakcheck()
        .args(["gen", "inputs", "--keys", "A,B,C,D", "--bytes", "400000"])
        .args(["--dir", &d("in")])
        .assert()
        .success();
    let verify = |sink: &str, threads: &str| {
        soakcheck()
            .env("RAYON_NUM_THREADS", threads)
            .args(["verify", "--sink-dir", sink, "--input-dir", &d("in")])
            .args(["--expect-complete", "--json"])
            .output()
            .unwrap()
    };
    for (i, fault) in ["", "loss", "duplicate", "reorder", "corrupt"]
        .iter()
        .enumerate()
    {
        for seed in ["3", "11"] {
            let sink = d(&format!("sink-{i}-{seed}"));
            let mut gen = soakcheck();
            gen.args(["gen", "sink", "--input-dir", &d("in"), "--sink-dir", &sink])
                .args(["--seed", seed]);
            if !fault.is_empty() {
                gen.args(["--fault", fault, "--key", "C"]);
            }
            gen.assert().success();
            let (one, two) = (verify(&sink, "1"), verify(&sink, "2"));
            assert_eq!(
                one.status.code(),
                Some(if fault.is_empty() { 0 } else { 1 })
            );
            assert_eq!(two.status.code(), one.status.code(), "{fault} seed {seed}");
            assert_eq!(
                String::from_utf8_lossy(&two.stdout),
                String::from_utf8_lossy(&one.stdout),
                "{fault} seed {seed}"
            );
        }
    }
}

/// Issue 21.4: the bash completion script loads in a real bash and completes
/// `soakcheck r` to the three commands that begin so.
#[test]
fn the_bash_completion_completes_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let out = soakcheck().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let script = dir.path().join("soakcheck.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let probe = format!(
        "source {}\nCOMP_WORDS=(soakcheck r)\nCOMP_CWORD=1\nCOMP_LINE='soakcheck r'\n\
         COMP_POINT=11\n_soakcheck soakcheck r soakcheck\necho \"${{COMPREPLY[@]}}\"\n",
        script.display()
    );
    let done = std::process::Command::new("bash")
        .args(["--norc", "-c", &probe])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    let mut words: Vec<String> = String::from_utf8_lossy(&done.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    words.sort();
    assert_eq!(words, ["report", "reset", "run"], "{stderr}");
}

/// Issue 21.4: `soakcheck man` writes roff; with --dir, a page for every command.
#[test]
fn man_writes_a_page_for_every_command() {
    let out = soakcheck().arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH soakcheck"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let out = soakcheck()
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    for name in [
        "soakcheck",
        "soakcheck-run",
        "soakcheck-fs",
        "soakcheck-demo-sink",
    ] {
        let text = std::fs::read_to_string(dir.path().join(format!("{name}.1"))).unwrap();
        assert!(text.contains(&format!(".TH {name}")), "{name}: {text}");
    }
}

/// The README stays a README (at most 300 lines) whose links to `docs/` lead to pages
/// that exist, and it explains every character `run` prints, as `run --help` does.
#[test]
fn the_readme_explains_every_mark_and_links_pages_that_exist() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    assert!(
        readme.lines().count() <= 300,
        "{} lines",
        readme.lines().count()
    );
    let spans: std::collections::BTreeSet<&str> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| span.split_whitespace())
        .collect();
    let help = soakcheck().args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for (mark, meaning) in soakcheck::driver::marks::MARKS {
        for token in mark.split_whitespace() {
            assert!(spans.contains(token), "README does not explain {token:?}");
        }
        assert!(
            help.contains(mark) && help.contains(meaning),
            "run --help: {mark}"
        );
    }
    for link in readme.split("](").skip(1) {
        let target = link.split([')', '#']).next().unwrap();
        if !target.starts_with("http") {
            assert!(
                Path::new(target).exists(),
                "README links to {target}, which is missing"
            );
        }
    }
    for page in std::fs::read_dir("docs").unwrap() {
        let page = page.unwrap().path();
        if page.extension().is_some_and(|e| e == "md") {
            let text = std::fs::read_to_string(&page).unwrap();
            for link in text.split("](").skip(1) {
                let target = link.split([')', '#']).next().unwrap();
                if !target.starts_with("http") && !target.is_empty() {
                    let path = Path::new("docs").join(target);
                    assert!(path.exists(), "{} links to {target}", page.display());
                }
            }
        }
    }
}
