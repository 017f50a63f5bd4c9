//! Power-loss and disk faults in `run`, through real `soakcheck fs` mounts: the demo
//! keeps its promise through power cuts, and a planted bug (a sink that acknowledges
//! commits it never fsynced) passes a crash loop but not a power loop.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use common::{assert_complete, fuse_available, run_args, serial, text, RunGuard};
use serde_json::Value;

/// `run ARGS --json` to its end: its summary.
fn run_json(dir: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = run_args(dir, extra);
    // A finding ends the run (a frozen world would wait for a person).
    args.extend(["--on-violation".into(), "kill".into()]);
    let out = std::process::Command::new(common::exe())
        .args(&args)
        .output()
        .unwrap();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), summary, text(&out))
}

/// No mount is left under the run dir, and no layer folder in the sink's directory.
fn nothing_left(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let d = dir.display().to_string();
    assert!(!mounts.contains(&d), "a mount is left under {d}:\n{mounts}");
    assert!(!dir.join("sink-out/.soakcheck-fs").exists());
    assert!(
        !dir.join("soakcheck-fs").exists(),
        "the mount points are left"
    );
}

fn faults(summary: &Value, kind: &str, component: &str) -> u64 {
    summary["faults"][kind][component].as_u64().unwrap_or(0)
}

/// Power cuts of the sink and a worker, with sender crashes, end green at EOF, and
/// `verify --expect-complete` agrees on what the power cuts left.
#[test]
fn the_demo_keeps_its_promise_through_power_cuts() {
    if !fuse_available() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (code, summary, out) = run_json(
        dir.path(),
        &[
            "2",
            "power-sink",
            "power1",
            "crash-source",
            "--bytes-per-key",
            "500000",
            "--rate",
            "30000",
            "--time-scale",
            "0.3",
            "--seed",
            "11",
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(faults(&summary, "power-loss", "sink") >= 1, "{summary}");
    assert!(faults(&summary, "power-loss", "worker1") >= 1, "{summary}");
    assert_complete(dir.path());
    nothing_left(dir.path());
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let cut = events
        .lines()
        .find(|l| l.contains("\"power-loss\""))
        .unwrap();
    assert!(cut.contains("\"lost_bytes\":"), "{cut}");
}

/// The planted bug: a sink that never fsyncs passes a crash loop, because the page
/// cache survives a kill.
#[test]
fn a_sink_that_never_fsyncs_passes_a_crash_loop() {
    if !fuse_available() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (code, summary, out) = run_json(
        dir.path(),
        &[
            "2",
            "crash-sink",
            "--inject",
            "skip-fsync",
            "--bytes-per-key",
            "400000",
            "--rate",
            "30000",
            "--time-scale",
            "0.3",
            "--seed",
            "12",
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(faults(&summary, "crash", "sink") >= 1, "{summary}");
    assert_complete(dir.path());
}

/// ... and a power loop finds it: the committed output it lost is a finding named for
/// what it is, and the world freezes on it.
#[test]
fn a_power_cut_finds_the_sink_that_never_fsyncs() {
    if !fuse_available() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let args = run_args(
        dir.path(),
        &[
            "2",
            "power-sink",
            "--inject",
            "skip-fsync",
            "--bytes-per-key",
            "400000",
            "--rate",
            "30000",
            "--time-scale",
            "0.3",
            "--seed",
            "13",
        ],
    );
    let mut run = RunGuard::spawn(&args, dir.path(), Stdio::piped());
    let mut lines = BufReader::new(run.child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("press Ctrl-C") {
            break;
        }
    }
    run.signal(nix::sys::signal::Signal::SIGTERM);
    seen.extend(lines.map_while(Result::ok).map(|l| l + "\n"));
    assert_eq!(run.wait().code(), Some(1), "{seen}");
    assert!(seen.contains("committed-data-lost-on-power-loss"), "{seen}");
    assert!(seen.contains("committed bytes are gone"), "{seen}");
    // What was verified before the cut took it back was verified: the totals say so.
    assert!(!seen.contains("commits verified: 0,"), "{seen}");
    // The evidence outlives the cut: the bytes it took back are kept, where the summary
    // and the cut's event say.
    assert!(seen.contains("what each power cut took back"), "{seen}");
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let cut: Value = events
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|e: &Value| e["action"] == "power-loss")
        .unwrap();
    // Every finding the summary names is in the run's record.
    let recorded = events
        .lines()
        .filter(|l| l.starts_with("{\"finding\""))
        .count();
    let summary = &seen[seen.rfind("soakcheck run: ").unwrap()..];
    assert_eq!(
        recorded,
        summary.matches("  finding: ").count(),
        "{seen}\n{events}"
    );
    let folder = dir.path().join("soakcheck-power-cuts/sink/cut-1");
    assert_eq!(cut["kept"], "soakcheck-power-cuts/sink/cut-1", "{cut}");
    let kept: u64 = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let lost = cut["lost_bytes"].as_u64().unwrap();
    assert!(lost > 0 && kept >= lost, "kept {kept} of {lost}: {cut}");
    // The frozen run's bundle carries that evidence, and none of the layer's own files.
    let bundle = seen
        .lines()
        .find_map(|l| l.trim().strip_prefix("post-mortem bundle: "))
        .and_then(|rest| rest.split(' ').next())
        .expect("a bundle");
    let listing = std::process::Command::new("tar")
        .args(["tzf", bundle])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("/soakcheck-power-cuts/sink/cut-1/"),
        "{listing}"
    );
    assert!(!listing.contains(".soakcheck-fs"), "{listing}");
    // The page agrees with the run: a violation, though the directory holds no commit
    // any more.
    let d = dir.path().display().to_string();
    let page = common::soakcheck(&["report", &d, "--output", &format!("{d}/page.html")]);
    assert_eq!(page.status.code(), Some(1), "{}", text(&page));
    nothing_left(dir.path());
}

/// Scripted steps: a power loss of the sink and an fsync error on a worker's state,
/// each an event, and the run still green.
#[test]
fn scripted_power_loss_and_disk_error_steps_are_carried_out() {
    if !fuse_available() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("steps.toml");
    std::fs::write(
        &scenario,
        "[[steps]]\nat = 1.0\naction = \"power-loss\"\ncomponent = \"sink\"\n\n\
         [[steps]]\nat = 1.5\naction = \"disk-error\"\ncomponent = \"worker1\"\nop = \"fsync\"\nerrno = \"EIO\"\nfor = 1.0\n",
    )
    .unwrap();
    let scenario = scenario.display().to_string();
    let (code, summary, out) = run_json(
        dir.path(),
        &[
            "2",
            "--scenario",
            &scenario,
            "--bytes-per-key",
            "200000",
            "--rate",
            "40000",
            "--seed",
            "14",
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(faults(&summary, "power-loss", "sink"), 1, "{summary}");
    assert_eq!(faults(&summary, "disk-error", "worker1"), 1, "{summary}");
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert!(events.contains("\"action\":\"disk-heal\""), "{events}");
    assert_complete(dir.path());
    nothing_left(dir.path());
}

/// The original Python `aloc_sink` (`../shared/original/`, unmodified) with the demo's
/// workers, under one power cut. It fsyncs its output and txnlog before each vote, but
/// never its directory: the files it created when the workers connected were never made
/// durable, so the cut takes them whole, with every commit in them. The run says so:
/// `committed-data-lost-on-power-loss`, naming the files.
#[test]
fn the_original_python_sink_loses_its_files_on_a_power_cut() {
    if !fuse_available() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (top, run_dir) = (dir.path().join("wallaroo"), dir.path().join("run"));
    std::fs::create_dir_all(&run_dir).unwrap();
    let base = common::free_base();
    common::wallaroo_stand_ins(
        &top,
        &dir.path().join("state"),
        base,
        common::Sink::Original,
    );
    let d = run_dir.to_str().unwrap();
    let gen = common::soakcheck(&[
        "gen", "inputs", "--keys", "A,B,C", "--bytes", "400000", "--dir", d,
    ]);
    assert!(gen.status.success(), "{}", text(&gen));
    let scenario = dir.path().join("steps.toml");
    std::fs::write(
        &scenario,
        "[[steps]]\nat = 4.0\naction = \"power-loss\"\ncomponent = \"sink\"\n",
    )
    .unwrap();
    let mut args = run_args(
        &run_dir,
        &[
            "1", "--preset", "wallaroo", "--rate", "20000", "--seed", "4", "--json",
        ],
    );
    args.extend(["--scenario".into(), scenario.display().to_string()]);
    args.extend(["--on-violation".into(), "kill".into()]);
    let at = args.iter().position(|a| a == "--port-base").unwrap();
    args[at + 1] = base.to_string();
    let lib = Path::new("../shared/original/machida/lib")
        .canonicalize()
        .unwrap();
    let out = std::process::Command::new(common::exe())
        .args(&args)
        .env("WALLAROO_TOP", &top)
        .env("WALLAROO_BIN", top.join("passthrough"))
        .env("PYTHONPATH", lib)
        .output()
        .unwrap();
    let summary: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!(out.status.code(), Some(1), "{summary}\n{}", text(&out));
    assert_eq!(faults(&summary, "power-loss", "sink"), 1, "{summary}");
    let findings = summary["findings"].to_string();
    assert!(
        findings.contains("committed-data-lost-on-power-loss"),
        "{summary}"
    );
    assert!(
        findings.contains("was deleted"),
        "the cut took the files whole: {summary}"
    );
    nothing_left(&run_dir);
}

/// After a SIGKILL of the run, its layers' mounts are dead: `soakcheck reset` kills
/// what the run left, detaches the mounts and removes their folders and the layers' own
/// folders, so nothing of them is left.
#[test]
fn reset_after_a_killed_run_detaches_its_layers() {
    if !fuse_available() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let args = run_args(
        dir.path(),
        &[
            "2",
            "power-sink",
            "power1",
            "--bytes-per-key",
            "2000000",
            "--rate",
            "20000",
        ],
    );
    let mut run = RunGuard::spawn(&args, dir.path(), Stdio::null());
    let d = dir.path().display().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let record = dir.path().join("soakcheck-run.json");
    // Every component recorded (the sink, two workers, three senders, the supervisor).
    loop {
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        let recorded: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if recorded["processes"].as_array().map_or(0, Vec::len) >= 7 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not all recorded: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert_eq!(mounts.matches(&format!("{d}/soakcheck-fs/")).count(), 2);
    run.signal(nix::sys::signal::Signal::SIGKILL);
    run.wait();
    let out = common::soakcheck(&["reset", "--run-dir", &d]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("unmounted"), "{}", text(&out));
    nothing_left(dir.path());
}
