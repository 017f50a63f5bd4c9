//! End-to-end tests of `soakcheck run` with the demo preset and small inputs: a run with
//! crashes of every component ends green at EOF; an injected fault freezes the world;
//! grow-and-shrink passes; Ctrl-C and `reset` leave no process behind; `--replay`
//! repeats a run's fault sequence.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{exe, run_args, serial, RunGuard};
use serde_json::Value;

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        !s.lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    })
}

fn recorded_pids(dir: &Path) -> Vec<u32> {
    let text = std::fs::read(dir.join("soakcheck-run.json")).unwrap_or_default();
    let v: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
    v["processes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["pid"].as_u64())
                .map(|p| p as u32)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn crashes_of_every_component_end_green_at_eof() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let args = run_args(
        dir.path(),
        &[
            "3",
            "crash-sink",
            "crash0",
            "crash1",
            "crash-source",
            "--bytes-per-key",
            "60000",
            "--rate",
            "30000",
            "--time-scale",
            "0.25",
            "--seed",
            "5",
            "--json",
        ],
    );
    let out = Command::new(exe()).args(&args).output().unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary["verdict"], "ok");
    assert!(summary["fault_count"].as_u64().unwrap() >= 10, "{summary}");
    let crashes = &summary["faults"]["crash"];
    for c in ["sink", "initializer", "worker1"] {
        assert!(
            crashes[c].as_u64().unwrap_or(0) >= 1,
            "{c} never crashed: {summary}"
        );
    }
    assert!(summary["bytes_verified"].as_u64().unwrap() > 0);
    for pid in recorded_pids(dir.path()) {
        assert!(!alive(pid), "pid {pid} left running");
    }
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert!(events.lines().count() >= 10);
    // The senders' acked offsets are recorded as the run goes (the report charts them
    // after the logs they come from were rotated away).
    let acked: Vec<Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["acked"].is_object())
        .collect();
    assert!(acked.len() >= 2, "{events}");
    assert!(
        acked.iter().all(|e| e["time"].as_f64().is_some()),
        "{acked:?}"
    );
}

#[test]
fn an_injected_fault_freezes_the_world_within_2_seconds() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let args = run_args(
        dir.path(),
        &[
            "2",
            "crash1",
            "--bytes-per-key",
            "60000",
            "--rate",
            "30000",
            "--time-scale",
            "0.5",
            "--seed",
            "3",
            "--inject",
            "corrupt",
            "--inject-after",
            "200",
            "--inject-key",
            "B",
        ],
    );
    let mut child = RunGuard::spawn(&args, dir.path(), Stdio::piped());
    let mut lines = BufReader::new(child.child.stdout.take().unwrap()).lines();
    let mut frozen_at = None;
    let mut pids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("FROZEN at ") {
            // `FROZEN at <local time> (Unix <seconds>): ...`
            let unix = rest
                .split("(Unix ")
                .nth(1)
                .and_then(|r| r.split(')').next());
            frozen_at = unix.and_then(|t| t.parse::<f64>().ok());
        }
        if let Some(pid) = line
            .split(" pid ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse::<u32>().ok())
        {
            pids.push(pid);
        }
        if line.contains("press Ctrl-C") {
            break;
        }
        assert!(Instant::now() < deadline, "no freeze");
    }
    let frozen_at = frozen_at.expect("a FROZEN line");
    assert!(pids.len() >= 4, "sink, 2 workers and senders: {pids:?}");
    for pid in &pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let state = status
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap()
            .to_string();
        assert!(state.contains('T'), "pid {pid} is {state}");
    }
    // The bad commit, as verify sees it in the frozen sink directory.
    let (kind, committed) = common::violation(dir.path(), 1);
    assert_eq!(kind, "corrupt");
    assert!(
        frozen_at - committed < 2.0,
        "froze {:.3} s after the bad commit",
        frozen_at - committed
    );
    let bundle = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("postmortem-"));
    assert!(bundle.is_some(), "a post-mortem bundle");
    // SIGTERM: everything is killed, exit 1.
    child.signal(nix::sys::signal::Signal::SIGTERM);
    let status = child.wait();
    assert_eq!(status.code(), Some(1));
    std::thread::sleep(Duration::from_millis(200));
    for pid in pids {
        assert!(!alive(pid), "pid {pid} left running");
    }
}

#[test]
fn grow_and_shrink_passes() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let args = run_args(
        dir.path(),
        &[
            "3",
            "grow-and-shrink",
            "--bytes-per-key",
            "60000",
            "--rate",
            "30000",
            "--time-scale",
            "1",
            "--seed",
            "8",
            "--json",
        ],
    );
    let out = Command::new(exe()).args(&args).output().unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{summary}");
    let faults = &summary["faults"];
    assert!(
        faults["grow"].is_object() && faults["shrink"].is_object(),
        "{summary}"
    );
}

#[test]
fn ctrl_c_and_reset_leave_no_process() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let args = run_args(
        dir.path(),
        &[
            "2",
            "crash1",
            "--bytes-per-key",
            "400000",
            "--rate",
            "20000",
            "--seed",
            "1",
        ],
    );
    // Ctrl-C, and the hangup of a terminal that closes (it killed the run at once,
    // with no end in its record).
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        let mut child = RunGuard::spawn(&args, dir.path(), Stdio::null());
        std::thread::sleep(Duration::from_secs(4));
        let pids = recorded_pids(dir.path());
        assert!(pids.len() >= 4, "{pids:?}");
        child.signal(signal);
        let status = child.wait();
        assert_eq!(
            status.code(),
            Some(2),
            "{signal}: stopped before EOF: exit 2"
        );
        std::thread::sleep(Duration::from_millis(200));
        for pid in &pids {
            assert!(!alive(*pid), "pid {pid} left running after {signal}");
        }
        let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
        assert!(events.contains("\"end\":"), "{signal}: no end recorded");
    }
    // A driver killed outright leaves its children; reset stops exactly those.
    let mut bystander = Command::new("sleep").arg("60").spawn().unwrap();
    let mut child = RunGuard::spawn(&args, dir.path(), Stdio::null());
    std::thread::sleep(Duration::from_secs(4));
    let pids = recorded_pids(dir.path());
    child.child.kill().unwrap();
    child.wait();
    assert!(
        pids.iter().any(|p| alive(*p)),
        "orphans remain before reset"
    );
    let out = Command::new(exe())
        .arg("reset")
        .arg("--run-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(200));
    for pid in &pids {
        assert!(!alive(*pid), "pid {pid} left running after reset");
    }
    assert!(
        alive(bystander.id()),
        "reset killed a process it did not start"
    );
    bystander.kill().unwrap();
    let _ = bystander.wait();
    assert!(!dir.path().join("sink-out").exists());
}

#[test]
fn replay_repeats_the_fault_sequence() {
    let _serial = serial();
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let common = [
        "2",
        "crash1",
        "crash-source",
        "--bytes-per-key",
        "400000",
        "--rate",
        "20000",
        "--time-scale",
        "0.25",
        "--duration",
        "6s",
    ];
    let mut a = common.to_vec();
    a.extend(["--seed", "21"]);
    let out = Command::new(exe())
        .args(run_args(first.path(), &a))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded = first.path().join("recorded-events.jsonl");
    std::fs::copy(first.path().join("events.jsonl"), &recorded).unwrap();
    let mut b = common.to_vec();
    let replay = recorded.display().to_string();
    b.extend(["--replay", &replay]);
    let out = Command::new(exe())
        .args(run_args(second.path(), &b))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let faults = |path: &Path, before: f64| -> Vec<(String, String)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            // Steps only: the run, finding and end lines have no action.
            .filter(|v| v["action"].is_string())
            .filter(|v| v["action"] != "restart" && v["at"].as_f64().unwrap() < before)
            .map(|v| {
                (
                    v["action"].as_str().unwrap().to_string(),
                    v["component"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let original = faults(&recorded, 5.0);
    let replayed = faults(&second.path().join("events.jsonl"), 5.5);
    assert!(original.len() >= 5, "{original:?}");
    assert_eq!(
        &replayed[..original.len()],
        &original[..],
        "replayed {replayed:?}"
    );
}

/// Waits until the run dir's record lists `component` (the run is past its start).
fn wait_recorded(dir: &Path, component: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read(dir.join("soakcheck-run.json")).unwrap_or_default();
        let v: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
        if let Some(pid) = v["processes"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["component"] == component))
            .and_then(|s| s["pid"].as_u64())
        {
            return pid as u32;
        }
        assert!(Instant::now() < deadline, "{component} never recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 8.6: runs cannot disturb each other. A second run in a live run's dir refuses
/// (naming the pid) instead of resetting it; a run whose ports are taken refuses before
/// starting anything (naming the port). The live run is left untouched.
#[test]
fn a_second_run_cannot_disturb_a_live_one() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let args = run_args(
        dir.path(),
        &["1", "--bytes-per-key", "2000000", "--rate", "20000"],
    );
    let base = args[args.iter().position(|a| a == "--port-base").unwrap() + 1].clone();
    let mut first = RunGuard::spawn(&args, dir.path(), Stdio::null());
    let supervisor = wait_recorded(dir.path(), "soakcheck-run");
    let sink = wait_recorded(dir.path(), "sink");
    // Same run dir, other ports.
    let again = run_args(dir.path(), &["1", "--bytes-per-key", "1000"]);
    let out = Command::new(exe()).args(&again).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("a live run is recorded"), "{stderr}");
    assert!(stderr.contains(&format!("pid {supervisor}")), "{stderr}");
    assert!(alive(sink), "the live run's sink was left alone");
    // Another run dir, the live run's ports.
    let other = tempfile::tempdir().unwrap();
    let fresh = other.path().join("fresh");
    let mut taken = run_args(&fresh, &["1", "--bytes-per-key", "1000"]);
    let at = taken.iter().position(|a| a == "--port-base").unwrap() + 1;
    taken[at] = base.clone();
    let out = Command::new(exe()).args(&taken).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not free"), "{stderr}");
    let sink_port = base.parse::<u16>().unwrap() + 100;
    assert!(
        stderr.contains(&format!("port {sink_port} (the sink) is not free")),
        "{stderr}"
    );
    assert!(!fresh.exists(), "nothing was started, nor the run dir made");
    assert!(alive(sink), "the live run's sink was left alone");
    assert!(
        first.child.try_wait().unwrap().is_none(),
        "the live run goes on"
    );
}

/// Issue 8.6: a component that cannot bind its port is a setup failure (exit 2, naming
/// it and its log line) at once, not a wait for a cluster that never comes up. The
/// wallaroo preset runs stand-in programs here: a sink that fails as Python's does on a
/// taken port, and workers that never become ready.
#[test]
fn a_component_that_cannot_bind_is_a_setup_failure() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("wallaroo");
    let script =
        |path: &Path, body: &str| common::executable(path, &format!("#!/bin/sh\n{body}\n"));
    script(
        &top.join("testing/correctness/tests/aloc_sink/aloc_sink"),
        "echo 'socket.error: [Errno 98] Address already in use'; exit 1",
    );
    let bin = top.join("passthrough");
    script(&bin, "exec sleep 60");
    let run_dir = dir.path().join("run");
    // The wallaroo preset's inputs are the user's; the checks open them before anything
    // starts.
    std::fs::create_dir_all(&run_dir).unwrap();
    for key in ["A", "B", "C"] {
        std::fs::write(
            run_dir.join(format!("input-file.{key}.txt")),
            format!("{key}1\n"),
        )
        .unwrap();
    }
    let args = run_args(
        &run_dir,
        &["1", "--preset", "wallaroo", "--bytes-per-key", "1000"],
    );
    let started = Instant::now();
    let out = Command::new(exe())
        .args(&args)
        .env("WALLAROO_TOP", &top)
        .env("WALLAROO_BIN", &bin)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("sink exited with status 1 and cannot run: socket.error: [Errno 98] Address already in use"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    for pid in recorded_pids(&run_dir) {
        assert!(!alive(pid), "pid {pid} left running");
    }
}

/// Issue 17.7: losing the record of faults stops the run. With events.jsonl made
/// immutable mid-run (so every write to it fails), the run stops at the next fault with
/// exit 2 naming the file, and stops every component, where it used to go on injecting
/// faults that were never recorded.
#[test]
fn a_failed_write_of_events_jsonl_stops_the_run() {
    let _serial = serial();
    if !common::chattr_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = run_args(
        dir.path(),
        &[
            "2",
            "crash1",
            "crash-sink",
            "--bytes-per-key",
            "2000000",
            "--rate",
            "20000",
            "--time-scale",
            "0.25",
        ],
    );
    let mut run = RunGuard::spawn_with(&args, dir.path(), Stdio::null(), Stdio::piped());
    let events = dir.path().join("events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "no fault recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _immutable = common::Immutable::make(&events);
    let pids = recorded_pids(dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the run went on without its record"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut run.child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: events.jsonl could not be written",
            events.display()
        )),
        "{stderr}"
    );
    std::thread::sleep(Duration::from_millis(200));
    for pid in pids {
        assert!(!alive(pid), "pid {pid} left running");
    }
}

/// CPU-bound busy loops (`sh` spinning), killed on drop.
struct BusyLoops(Vec<std::process::Child>);

impl BusyLoops {
    fn start(n: usize) -> BusyLoops {
        BusyLoops(
            (0..n)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .unwrap()
                })
                .collect(),
        )
    }
}

impl Drop for BusyLoops {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Issue 17.5: a slow component is not called stuck. A soak with crash-sink, crash0,
/// crash1 and crash-source beside four CPU-bound busy loops (two per core) for its whole
/// length ends green. Its `readiness_timeout` is 1 s, so a readiness check that blamed a
/// restarted component for the other crash loops' downtime (it waited for the whole
/// cluster to be ready at once), or called a slow restart stuck without looking for
/// progress, would fire within the soak.
#[test]
fn a_soak_beside_four_busy_loops_ends_green() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(&scenario, "[timings]\nreadiness_timeout = 1.0\n").unwrap();
    let mut args = run_args(
        dir.path(),
        &[
            "3",
            "crash-sink",
            "crash0",
            "crash1",
            "crash-source",
            "--bytes-per-key",
            "500000",
            "--time-scale",
            "0.5",
            "--on-violation",
            "kill",
            "--json",
        ],
    );
    args.extend(["--scenario".into(), scenario.display().to_string()]);
    let _busy = BusyLoops::start(4);
    let out = Command::new(exe()).args(&args).output().unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{summary}");
    assert_eq!(summary["verdict"], "ok", "{summary}");
    let crashes = &summary["faults"]["crash"];
    for (c, at_least) in [("sink", 1), ("initializer", 2), ("worker1", 2)] {
        assert!(
            crashes[c].as_u64().unwrap_or(0) >= at_least,
            "{c}: {summary}"
        );
    }
    common::assert_complete(dir.path());
}

/// On a real terminal (a pty that `script` opens, 60 columns wide) the status line is
/// redrawn in place and never reaches the last column, so it never wraps: each redraw
/// of a wrapped line left its first rows behind. The end is written on a clean line.
#[test]
fn the_status_line_fits_a_real_terminal() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let args = run_args(
        dir.path(),
        &[
            "2",
            "crash-sink",
            "--bytes-per-key",
            "40000",
            "--rate",
            "20000",
        ],
    );
    let command = format!(
        "stty cols 60 rows 20 && exec {} {}",
        exe().display(),
        args.join(" ")
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script(1) from util-linux runs a command in a pty");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let lines: Vec<&str> = text
        .split("\r\x1b[2K")
        .skip(1)
        .map(|s| s.split(['\r', '\n']).next().unwrap_or(""))
        .filter(|s| !s.is_empty())
        .collect();
    assert!(lines.len() >= 5, "too few status lines:\n{text}");
    for line in &lines {
        assert!(
            line.chars().count() < 60,
            "{} columns: {line:?}",
            line.chars().count()
        );
        assert!(line.contains(" faults "), "{line:?}");
    }
    // The line was wider than 60 columns, so it was cut, not left out.
    assert!(lines.iter().any(|l| l.ends_with('…')), "{lines:?}");
    assert!(text.contains("\nsoakcheck run: ok after "), "{text}");
    // A fresh run dir had nothing to reset: a run does not say so (only `reset` does).
    assert!(!text.contains("nothing to reset"), "{text}");
}
