//! Issue 8.7: bad arguments are a clear exit 2, never a panic: durations past any
//! clock, repeated keys, zero counts, and port arithmetic past 65535.

use std::time::Duration;

use assert_cmd::Command;

/// Runs soakcheck; asserts exit 2, no panic, and `expected` in the message.
fn refused(args: &[&str], expected: &str) {
    let out = Command::cargo_bin("soakcheck")
        .unwrap()
        .env_remove("MULTIPLE_KEYS_LIST")
        .args(args)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
}

/// Power and disk faults a run cannot serve are refused before it starts (nothing
/// written in the run dir): a component on another host without the ssh driver, a
/// wallaroo worker.
#[test]
fn power_faults_no_layer_can_serve_are_refused_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().to_str().unwrap();
    let scenario = dir.path().join("far.toml");
    std::fs::write(
        &scenario,
        "[driver]\nkind = \"command\"\n[driver.commands]\nstart = \"true\"\nkill = \"true\"\n\
         pause = \"true\"\nresume = \"true\"\nalive = \"true\"\nstop = \"true\"\n\
         [hosts]\nsink = \"10.9.9.9\"\n",
    )
    .unwrap();
    refused(
        &[
            "run",
            "1",
            "power-sink",
            "--run-dir",
            run_dir,
            "--scenario",
            scenario.to_str().unwrap(),
        ],
        "power and disk faults of sink: it runs on 10.9.9.9, and only the ssh driver runs a \
         filesystem layer on another host (this run uses the command driver)",
    );
    refused(
        &[
            "run",
            "2",
            "power1",
            "--preset",
            "wallaroo",
            "--run-dir",
            run_dir,
        ],
        "power and disk faults of worker1: the wallaroo preset's workers",
    );
    refused(
        &[
            "run",
            "1",
            "power-sink",
            "--inject",
            "skip-fsync",
            "--inject-key",
            "A",
            "--run-dir",
            run_dir,
        ],
        "--inject skip-fsync takes no --inject-key",
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "only the scenario file: {left:?}");
}

/// Issue 21.2: usage errors teach: the number of workers is named where it belongs,
/// and a bare `run` shows the usage.
#[test]
fn usage_errors_say_what_to_type() {
    refused(
        &["run", "crash-sink", "3", "crash1"],
        "the number of workers comes first, then the arguments: `soakcheck run 3 crash-sink crash1`",
    );
    refused(&["run"], "Usage: soakcheck run <NUM_WORKERS> [ARGS]...");
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    refused(
        &["watch", "--timeout", "1e300s", "--input-dir", "testdata/in"],
        "longer than 100 years",
    );
    refused(
        &[
            "watch",
            "--ack-timeout",
            "1e18s",
            "--input-dir",
            "testdata/in",
        ],
        "longer than 100 years",
    );
    refused(
        &["bench", "watch", "--keys", "0"],
        "expected a key count from 1 to 26",
    );
    refused(
        &["bench", "verify", "--keys", "0"],
        "expected a key count from 1 to 26",
    );
    refused(
        &["bench", "demo", "--workers", "0"],
        "expected a worker count from 1 to 10",
    );
    refused(
        &["bench", "watch", "--commit-bytes", "0"],
        "expected a positive number of bytes",
    );
    refused(
        &[
            "demo",
            "worker",
            "--name",
            "worker9999",
            "--state-dir",
            "/nonexistent/s",
        ],
        "past 65535",
    );
    refused(
        &[
            "demo",
            "worker",
            "--name",
            "worker3",
            "--in-base",
            "65530",
            "--state-dir",
            "/nonexistent/s",
        ],
        "past 65535",
    );
}

#[test]
fn run_refuses_repeated_keys_and_port_bases_past_the_last_port_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().to_str().unwrap();
    refused(
        &[
            "run",
            "1",
            "--keys",
            "A,A",
            "--run-dir",
            run_dir,
            "--bytes-per-key",
            "1000",
        ],
        "key 'A' is given twice",
    );
    refused(
        &[
            "run",
            "1",
            "--port-base",
            "65500",
            "--run-dir",
            run_dir,
            "--bytes-per-key",
            "1000",
        ],
        "--port-base 65500 needs ports 65500 to 65600, past the last port, 65535 (the demo \
         uses up to +100): the highest that fits is 65435",
    );
    assert!(
        !dir.path().join("soakcheck-run.json").exists(),
        "nothing was started"
    );
}
