//! Issue 19.1: the verdict does not trust the sink's clock. A `gen sink` directory of two
//! workers and three keys (key B moves from worker1 to the initializer when worker1
//! leaves) has its txnlog stamps stepped back, forward and back and forth (a strobe), in
//! one txnlog and in all of them (as a sink's one clock steps), with key B's move inside
//! the doubtful stamps and outside them. `verify` and `watch` must give the verdict of
//! the unmodified directory (OK), or say that a key's order is undetermined (exit 2);
//! never a violation. The original verifier fails most of these.
//!
//! Issue 19.2: clock faults in `run` keep the demo's promise: a soak with `clock-sink
//! clock1 crash-sink crash1` (the demo's Rust components under libfaketime) ends green,
//! and `verify --expect-complete` agrees; and the original Python `aloc_sink`, run
//! unmodified by the wallaroo preset, keeps it under `clock-sink` too (with the
//! monotonic clock faked as well: see README, "Clock faults", Limits).

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

use common::{soakcheck, text};

/// Inputs (`in/`) and a sink directory (`sink/`) of 2 workers and keys A, B, C.
fn generated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = soakcheck(&[
        "gen",
        "inputs",
        "--keys",
        "A,B,C",
        "--bytes",
        "200000",
        "--dir",
        &format!("{d}/in"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = soakcheck(&[
        "gen",
        "sink",
        "--input-dir",
        &format!("{d}/in"),
        "--keys",
        "A,B,C",
        "--workers",
        "2",
        "--sink-dir",
        &format!("{d}/sink"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    dir
}

fn txnlogs(sink: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(sink)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".txnlog"))
        .collect();
    all.sort();
    all
}

/// The txnlog of worker1 (which leaves, so its pair is renamed) or of the initializer.
fn txnlog_of(sink: &Path, worker: &str) -> PathBuf {
    txnlogs(sink)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().contains(worker))
        .unwrap()
}

/// Rewrites each record's stamp of `txnlog`: `f(record number, records, stamp)` is the
/// new stamp. A torn last line (`gen sink` writes one) is left as it is.
fn restamp(txnlog: &Path, f: &dyn Fn(usize, usize, f64) -> f64) {
    let text = std::fs::read_to_string(txnlog).unwrap();
    let records = text.matches('\n').count();
    let mut out = String::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        match line.strip_suffix('\n') {
            Some(record) => {
                let (stamp, rest) = record[1..].split_once(',').unwrap();
                let t: f64 = stamp.parse().unwrap();
                out.push_str(&format!("[{:?},{rest}\n", f(i, records, t)));
            }
            None => out.push_str(line),
        }
    }
    std::fs::write(txnlog, out).unwrap();
}

/// The first stamp of any txnlog: shifts below are placed from it.
fn first_stamp(sink: &Path) -> f64 {
    txnlogs(sink)
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let first = text.lines().next().unwrap();
            first[1..]
                .split_once(',')
                .unwrap()
                .0
                .parse::<f64>()
                .unwrap()
        })
        .fold(f64::INFINITY, f64::min)
}

/// `verify --expect-complete`, `watch --until complete` and `report` on `dir`: the
/// three exit codes must be one, and this returns it with the output.
fn check(dir: &Path) -> (i32, i32, String) {
    let d = dir.to_str().unwrap();
    let sink = format!("{d}/sink");
    let input = format!("{d}/in");
    let common = [
        "--sink-dir",
        &sink,
        "--input-dir",
        &input,
        "--keys",
        "A,B,C",
    ];
    let mut args = vec!["verify", "--expect-complete"];
    args.extend(common);
    let verified = soakcheck(&args);
    let mut args = vec![
        "watch",
        "--until",
        "complete",
        "--timeout",
        "60s",
        "--no-sender-logs",
    ];
    args.extend(common);
    let watched = soakcheck(&args);
    let page = format!("{d}/report.html");
    let reported = soakcheck(&[
        "report",
        &sink,
        "--input-dir",
        &input,
        "--keys",
        "A,B,C",
        "-o",
        &page,
    ]);
    let out = text(&verified) + &text(&watched) + &text(&reported);
    assert_eq!(
        reported.status.code(),
        verified.status.code(),
        "the page's verdict is verify's: {out}"
    );
    (
        verified.status.code().unwrap(),
        watched.status.code().unwrap(),
        out,
    )
}

/// One case: the expected exit code of both, on a fresh directory stepped by `step`.
fn case(name: &str, expected: i32, step: &dyn Fn(&Path)) {
    let dir = generated();
    step(&dir.path().join("sink"));
    let (verified, watched, out) = check(dir.path());
    assert_eq!((verified, watched), (expected, expected), "{name}:\n{out}");
    if expected == 2 {
        assert!(out.contains("UNDETERMINED"), "{name}:\n{out}");
        assert!(
            out.contains("order-undetermined"),
            "{name}: names the files and lines\n{out}"
        );
    } else {
        assert!(!out.contains("VIOLATION"), "{name}:\n{out}");
    }
}

/// The issue's reproduction: 30 s subtracted from every stamp in the second half of one
/// worker's txnlog. The original, and soakcheck before this, said
/// `B DUPLICATE: 4734 delivered line(s) repeated`, exit 1.
#[test]
fn a_txnlog_whose_clock_stepped_back_is_taken_in_its_own_order() {
    let dir = generated();
    let sink = dir.path().join("sink");
    restamp(&txnlog_of(&sink, "worker1"), &|i, n, t| {
        if i >= n / 2 {
            t - 30.0
        } else {
            t
        }
    });
    let (verified, watched, out) = check(dir.path());
    assert_eq!((verified, watched), (0, 0), "{out}");
    assert!(out.contains("clock-went-back"), "the step is noted: {out}");
}

/// Steps in one txnlog: back and forward in the second half, and a strobe, in the file
/// key B leaves (worker1) and in the one it moves to (the initializer).
#[test]
fn steps_in_one_txnlog_give_the_verdict_or_say_it_is_undetermined() {
    let half = |by: f64| move |i: usize, n: usize, t: f64| if i >= n / 2 { t + by } else { t };
    let strobe =
        |by: f64| move |i: usize, _: usize, t: f64| if (i / 5) % 2 == 1 { t + by } else { t };
    // Key B's lines after its move are stamped inside the initializer's doubtful span.
    case("initializer back 30 s", 2, &|s| {
        restamp(&txnlog_of(s, "initializer"), &half(-30.0))
    });
    case("initializer forward 30 s", 0, &|s| {
        restamp(&txnlog_of(s, "initializer"), &half(30.0))
    });
    case("worker1 back 1 s", 0, &|s| {
        restamp(&txnlog_of(s, "worker1"), &half(-1.0))
    });
    case("worker1 strobe", 0, &|s| {
        restamp(&txnlog_of(s, "worker1"), &strobe(-0.5))
    });
    case("initializer strobe", 2, &|s| {
        restamp(&txnlog_of(s, "initializer"), &strobe(-0.5))
    });
}

/// The sink's one clock steps for every txnlog at once, from a time `at` seconds after
/// the first stamp: key B moves about 2.2 s in.
#[test]
fn steps_of_the_sink_s_clock_give_the_verdict_or_say_it_is_undetermined() {
    let sink_step = |at: f64, until: f64, by: f64| {
        move |sink: &Path| {
            let start = first_stamp(sink);
            for txnlog in txnlogs(sink) {
                restamp(&txnlog, &|_, _, t| {
                    if t >= start + at && t < start + until {
                        t + by
                    } else {
                        t
                    }
                });
            }
        }
    };
    // Back 0.5 s, 1 s before B moves and 1 s after: the doubtful stamps miss its move.
    case(
        "sink back 0.5 s before the move",
        0,
        &sink_step(1.0, f64::MAX, -0.5),
    );
    case(
        "sink back 0.5 s after the move",
        0,
        &sink_step(3.0, f64::MAX, -0.5),
    );
    // Back 30 s just before the move: B's lines in both files are doubtful.
    case(
        "sink back 30 s at the move",
        2,
        &sink_step(2.2, f64::MAX, -30.0),
    );
    // Forward: every file moves together, and the merge follows.
    case("sink forward 30 s", 0, &sink_step(2.2, f64::MAX, 30.0));
    // Back 1 s for half a second, then forward again, far from the move.
    case("sink back and forth", 0, &sink_step(0.5, 1.0, -1.0));
}

/// The demo keeps its promise through clock faults of the sink and a worker, with crash
/// loops of both: the run ends green at EOF, `verify --expect-complete` agrees, every
/// clock fault is an event with its offset, and libfaketime's shared-memory pairs are
/// gone afterwards.
#[test]
fn a_soak_with_clock_faults_keeps_the_demo_s_promise() {
    if !common::libfaketime_available() {
        return;
    }
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let args = common::run_args(
        dir.path(),
        &[
            "2",
            "clock-sink",
            "clock1",
            "crash-sink",
            "crash1",
            "--bytes-per-key",
            "60000",
            "--rate",
            "30000",
            "--time-scale",
            "0.25",
            "--seed",
            "11",
            "--json",
        ],
    );
    let out = std::process::Command::new(common::exe())
        .args(&args)
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary["verdict"], "ok", "{summary}");
    let faults = &summary["faults"];
    let clock_faults: u64 = ["clock-step", "clock-strobe", "clock-rate"]
        .iter()
        .flat_map(|k| ["sink", "worker1"].map(|c| faults[k][c].as_u64().unwrap_or(0)))
        .sum();
    assert!(clock_faults >= 4, "{summary}");
    assert!(
        faults["crash"]["sink"].as_u64().unwrap_or(0) >= 1,
        "{summary}"
    );
    let d = dir.path().to_str().unwrap();
    let verified = soakcheck(&[
        "verify",
        "--expect-complete",
        "--sink-dir",
        &format!("{d}/sink-out"),
        "--input-dir",
        d,
        "--keys",
        "A,B,C",
    ]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let step = events
        .lines()
        .find(|l| l.contains(r#""action":"clock-step""#))
        .expect("a clock step in events.jsonl");
    assert!(step.contains(r#""by":"#), "with its offset: {step}");
    let leftover = common::dead_faketime_pairs(std::time::UNIX_EPOCH);
    assert!(leftover.is_empty(), "libfaketime left {leftover:?}");
}

/// A soak of the wallaroo preset on its stand-ins: inputs of `bytes` per key and the
/// scenario `steps` in a temporary directory, run with `args` on free ports.
struct WallarooSoak {
    _dir: tempfile::TempDir,
    /// WALLAROO_TOP: the stand-ins' tree (`passthrough` starts a demo worker).
    top: PathBuf,
    run_dir: PathBuf,
    args: Vec<String>,
}

impl WallarooSoak {
    fn new(sink: common::Sink, bytes: &str, steps: &str, args: &[&str]) -> WallarooSoak {
        let dir = tempfile::tempdir().unwrap();
        let (top, run_dir) = (dir.path().join("wallaroo"), dir.path().join("run"));
        let base = common::free_base();
        common::wallaroo_stand_ins(&top, &dir.path().join("state"), base, sink);
        let d = run_dir.to_str().unwrap();
        let out = soakcheck(&[
            "gen", "inputs", "--keys", "A,B,C", "--bytes", bytes, "--dir", d,
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let scenario = dir.path().join("steps.toml");
        std::fs::write(&scenario, steps).unwrap();
        let mut args = common::run_args(&run_dir, args);
        args.extend(["--scenario".into(), scenario.display().to_string()]);
        let at = args.iter().position(|a| a == "--port-base").unwrap();
        args[at + 1] = base.to_string();
        WallarooSoak {
            _dir: dir,
            top,
            run_dir,
            args,
        }
    }

    /// The run, for the caller to give the workers' program (WALLAROO_BIN).
    fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(common::exe());
        c.args(&self.args).env("WALLAROO_TOP", &self.top);
        c
    }
}

/// The original Python sink (`../shared/original/`, unmodified) under the sink's clock
/// faults: its txnlog stamps step back and forth, the run ends green, and `verify`
/// passes where the original's time order (soakcheck's before issue 19) fails every
/// key. libfaketime 0.9.10 refuses Python's `time.sleep` when the monotonic clock is
/// left alone, and the sink sleeps before every phase-1 reply, so this run fakes the
/// monotonic clock too (FAKETIME_DONT_FAKE_MONOTONIC=0 in the run's environment).
#[test]
fn the_original_python_sink_keeps_its_promise_under_clock_faults() {
    if !common::libfaketime_available() {
        return;
    }
    let _serial = common::serial();
    let soak = WallarooSoak::new(
        common::Sink::Original,
        "600000",
        "[[steps]]\nat = 0.5\naction = \"clock-step\"\nby = -30.0\nfor = 4.0\n",
        &[
            "1",
            "clock-sink",
            "--preset",
            "wallaroo",
            "--rate",
            "20000",
            "--seed",
            "4",
            "--json",
        ],
    );
    let d = soak.run_dir.to_str().unwrap();
    let lib = Path::new("../shared/original/machida/lib")
        .canonicalize()
        .unwrap();
    let out = soak
        .command()
        .env("WALLAROO_BIN", soak.top.join("passthrough"))
        .env("PYTHONPATH", lib)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "0")
        .env("DONT_FAKE_MONOTONIC", "0")
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        summary["faults"]["clock-step"]["sink"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{summary}"
    );
    let verified = soakcheck(&[
        "verify",
        "--expect-complete",
        "--sink-dir",
        &format!("{d}/sink-out"),
        "--input-dir",
        d,
        "--keys",
        "A,B,C",
    ]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    assert!(
        text(&verified).contains("clock-went-back"),
        "its stamps went back: {}",
        text(&verified)
    );
}

/// libfaketime's pair of a sink started long before the soak's senders (the workers
/// take 2 s to start here) is removed once a crash has ended that sink: the soak removes
/// the pairs made since its first component started, not since its senders did.
#[test]
fn the_pair_of_a_sink_started_long_before_the_senders_is_removed() {
    if !common::libfaketime_available() {
        return;
    }
    let _serial = common::serial();
    let since = std::time::SystemTime::now();
    let soak = WallarooSoak::new(
        common::Sink::StandIn,
        "60000",
        "[[steps]]\nat = 0.2\naction = \"crash\"\ncomponent = \"sink\"\n\
         [[steps]]\nat = 0.4\naction = \"restart\"\ncomponent = \"sink\"\n\
         [[steps]]\nat = 0.6\naction = \"clock-step\"\nby = -5.0\nfor = 0.5\n",
        &["1", "--preset", "wallaroo", "--rate", "30000", "--json"],
    );
    let slow = soak.top.join("slow-passthrough");
    common::script(
        &slow,
        &format!(
            "sleep 2; exec {} \"$@\"",
            soak.top.join("passthrough").display()
        ),
    );
    let out = soak.command().env("WALLAROO_BIN", &slow).output().unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{summary}\n{}", text(&out));
    assert!(
        summary["faults"]["crash"]["sink"].as_u64().unwrap_or(0) >= 1,
        "{summary}"
    );
    let left = common::dead_faketime_pairs(since);
    assert!(left.is_empty(), "libfaketime left {left:?}");
}

/// A clock of 10 ms (stamps rise or tie): where key B moves between files its last
/// commit in one and its first in the other share a stamp, and which came first the
/// stamps cannot say. The original (and soakcheck before) broke the tie by end offset and
/// said `B REORDER`; now B is undetermined, and the other keys are judged.
#[test]
fn commits_of_two_files_that_share_a_stamp_do_not_order_a_moving_key() {
    case("a 10 ms clock", 2, &|sink| {
        for txnlog in txnlogs(sink) {
            restamp(&txnlog, &|_, _, t| (t * 100.0).floor() / 100.0);
        }
    });
}

/// From a hostile trial: one stamp of f64::MAX (a clock set absurdly far, or a stamp
/// rewritten) once made `report` draw its charts forever; the page now says why it has
/// none, and verify, watch and report agree.
#[test]
fn a_stamp_near_the_largest_float_gives_a_page_without_charts() {
    case("one stamp of f64::MAX", 2, &|sink| {
        restamp(&txnlog_of(sink, "initializer"), &|i, _, t| {
            if i == 502 {
                f64::MAX
            } else {
                t
            }
        });
    });
}
