//! Issue 17.7: what cannot be done is refused when the run is planned (exit 2 naming the
//! field), never counted as a fault that had no effect, and no number makes soakcheck
//! panic: timings and step times of 1e300, NaN, inf or below zero, `--time-scale 0`,
//! `--duration 0`, a step on a worker or sender the run never has, a proxy delay past
//! what a clock can hold, and proxy links that could not be faulted or feed themselves.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;

fn soakcheck(args: &[&str]) -> Output {
    Command::cargo_bin("soakcheck")
        .unwrap()
        .env_remove("MULTIPLE_KEYS_LIST")
        .args(args)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap()
}

/// `run 3 EXTRA...` in a fresh run dir with a scenario file of `toml` (if any): must be
/// refused with exit 2 and a message holding every one of `words`, before the run dir
/// is touched.
fn assert_run_refused(toml: Option<&str>, extra: &[&str], words: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut args: Vec<String> = vec!["run".into(), "3".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    if let Some(text) = toml {
        let path = dir.path().join("s.toml");
        std::fs::write(&path, text).unwrap();
        args.extend(["--scenario".into(), path.display().to_string()]);
    }
    args.extend([
        "--run-dir".into(),
        run_dir.display().to_string(),
        "--keys".into(),
        "A,B,C".into(),
        "--port-base".into(),
        common::free_base().to_string(),
        "--bytes-per-key".into(),
        "2000".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = soakcheck(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{toml:?} {extra:?}: {stderr}");
    for w in words {
        assert!(
            stderr.contains(w),
            "{toml:?} {extra:?}: says {w:?}: {stderr}"
        );
    }
    assert!(
        !run_dir.exists(),
        "{toml:?} {extra:?}: the run dir was touched"
    );
}

#[test]
fn huge_nan_infinite_and_negative_times_are_refused_naming_the_field() {
    for (toml, field) in [
        (
            "[[steps]]\nat = 1e300\naction = \"pause\"\ncomponent = \"sink\"\n",
            "at = 1e300",
        ),
        (
            "[timings]\nworker_up_max = 1e308\n",
            "timings.worker_up_max",
        ),
        ("[timings]\nstart_delay = 1e300\n", "timings.start_delay"),
        ("[timings]\nsink_down_max = nan\n", "timings.sink_down_max"),
        ("[timings]\nnet_up_max = inf\n", "timings.net_up_max"),
        ("[timings]\npause_max = -1.0\n", "timings.pause_max"),
        ("[timings]\nsink_up_min = 30.0\n", "timings.sink_up_min"),
        (
            "[[steps]]\nat = 1.0\naction = \"partition\"\nlink = \"worker1->sink\"\nfor = inf\n",
            "for = inf",
        ),
    ] {
        assert_run_refused(Some(toml), &[], &[field]);
    }
}

#[test]
fn time_scale_and_duration_that_mean_nothing_are_refused() {
    for scale in ["0", "NaN", "inf", "-1", "1e300"] {
        assert_run_refused(None, &[&format!("--time-scale={scale}")], &["--time-scale"]);
    }
    assert_run_refused(None, &["--duration", "0"], &["--duration 0"]);
}

#[test]
fn steps_on_components_the_run_never_has_are_refused() {
    for (toml, words) in [
        (
            "[[steps]]\nat = 1.0\naction = \"crash\"\ncomponent = \"worker99\"\n",
            &["worker99", "at most 10 workers"][..],
        ),
        (
            "[[steps]]\nat = 1.0\naction = \"crash\"\ncomponent = \"worker5\"\n",
            &["no worker5 in a cluster of 3"][..],
        ),
        (
            "[[steps]]\nat = 1.0\naction = \"crash\"\ncomponent = \"sender-Z\"\n",
            &["no sender-Z", "ABC"][..],
        ),
        (
            "[[steps]]\nat = 1.0\naction = \"partition\"\nlink = \"worker1->nowhere\"\n",
            &["no link \"worker1->nowhere\""][..],
        ),
    ] {
        assert_run_refused(Some(toml), &[], words);
    }
    // Grown first, worker5 exists.
    let grown = "[[steps]]\nat = 1.0\naction = \"grow\"\ncomponent = \"worker5\"\n\
                 [[steps]]\nat = 2.0\naction = \"crash\"\ncomponent = \"worker5\"\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, grown).unwrap();
    let s = soakcheck::driver::scenario::Scenario::parse("3", &[], Some(&path)).unwrap();
    assert_eq!(s.steps.len(), 2);
}

#[test]
fn a_delay_past_an_hour_is_refused_in_steps_and_in_the_proxy_api() {
    let huge = "[[steps]]\nat = 1.0\naction = \"delay\"\nlink = \"worker1->sink\"\nms = 9223372036854775808\n";
    assert_run_refused(
        Some(huge),
        &[],
        &["delay 9223372036854775808 ms", "one hour"],
    );
    let proxy = soakcheck::proxy::Proxy::start(
        vec![soakcheck::proxy::parse_link(&format!(
            "a->b,127.0.0.1:{},127.0.0.1:9",
            common::free_port()
        ))
        .unwrap()],
        1,
    )
    .unwrap();
    for fault in [
        soakcheck::proxy::Fault::Delay(soakcheck::proxy::Delay {
            ms: 1 << 63,
            jitter_ms: 0,
        }),
        soakcheck::proxy::Fault::Reset {
            refuse_ms: u64::MAX,
        },
        soakcheck::proxy::Fault::Bandwidth { bytes_per_s: 0 },
    ] {
        let e = proxy
            .apply("a->b", soakcheck::proxy::Directions::Both, fault)
            .unwrap_err();
        assert!(e.to_string().contains("a->b"), "{e}");
        let status = &proxy.status()[0];
        assert_eq!(
            (&status.up[..], &status.down[..]),
            ("clear", "clear"),
            "{fault:?} was not applied"
        );
    }
}

/// `soakcheck proxy` with `links`: must be refused (exit 2) saying each of `words`.
fn assert_proxy_refused(links: &[&str], extra: &[&str], words: &[&str]) {
    let mut args = vec!["proxy"];
    for l in links {
        args.extend(["--link", l]);
    }
    args.extend(extra);
    let out = soakcheck(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    for w in words {
        assert!(stderr.contains(w), "{args:?}: says {w:?}: {stderr}");
    }
}

#[test]
fn proxy_links_that_cannot_be_faulted_or_feed_themselves_are_refused() {
    let port = common::free_base();
    let a = format!("w->s,127.0.0.1:{port},127.0.0.1:{}", port + 1);
    let b = format!("w->s,127.0.0.1:{},127.0.0.1:{}", port + 2, port + 1);
    assert_proxy_refused(&[&a, &b], &[], &["\"w->s\"", "given twice"]);
    let own = format!("loop,127.0.0.1:{port},127.0.0.1:{port}");
    assert_proxy_refused(&[&own], &[], &["\"loop\"", "where link \"loop\" listens"]);
    let any = format!("loop,0.0.0.0:{port},127.0.0.1:{port}");
    assert_proxy_refused(&[&any], &[], &["\"loop\""]);
    let mapped = format!("loop,127.0.0.1:{port},[::ffff:127.0.0.1]:{port}");
    assert_proxy_refused(&[&mapped], &[], &["\"loop\""]);
    let empty = format!(",127.0.0.1:{port},127.0.0.1:{}", port + 1);
    assert_proxy_refused(&[&empty], &[], &["needs a name"]);
    assert_proxy_refused(
        &[&a],
        &["--control", &format!("0.0.0.0:{}", port + 3)],
        &["--allow-remote-control", "0.0.0.0"],
    );
}

/// A schedule or scenario that is not a regular file (`/dev/zero` never ends, a FIFO
/// waits for a writer) is refused when the run is planned, naming the file, where it
/// used to be read without end.
#[test]
fn a_replay_or_scenario_that_is_not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("events.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let fifo = fifo.display().to_string();
    for (flag, path, what) in [
        ("--replay", "/dev/zero", "a character device"),
        ("--replay", fifo.as_str(), "a FIFO"),
        ("--scenario", "/dev/zero", "a character device"),
        ("--scenario", fifo.as_str(), "a FIFO"),
    ] {
        assert_run_refused(None, &[flag, path], &[path, what]);
    }
}

#[test]
fn the_refusals_touch_nothing_on_disk() {
    // (Each case above asserts the run dir was not created; this one checks that a
    // refused run does not reset an existing run dir either.)
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("events.jsonl");
    std::fs::write(&marker, "{\"run\":{}}\n").unwrap();
    let base = common::free_base().to_string();
    let out = soakcheck(&[
        "run",
        "3",
        "--time-scale",
        "0",
        "--run-dir",
        dir.path().to_str().unwrap(),
        "--keys",
        "A",
        "--bytes-per-key",
        "2000",
        "--port-base",
        &base,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(Path::new(&marker).exists());
}

/// Issue 17.6: `run` warns at start when ports of its scheme lie in the kernel's
/// ephemeral range. (The run dir records a live run, the test itself, so the run stops
/// right after the warning and starts nothing there.)
#[test]
fn ports_in_the_ephemeral_range_are_warned_about_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let me = std::process::id();
    let stat = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
    let start_time = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    std::fs::write(
        dir.path().join("soakcheck-run.json"),
        format!("{{\"processes\":[{{\"component\":\"soakcheck-run\",\"pid\":{me},\"start_time\":{start_time}}}]}}"),
    )
    .unwrap();
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let low: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    let base = (low - 100).to_string();
    let out = soakcheck(&[
        "run",
        "1",
        "--run-dir",
        dir.path().to_str().unwrap(),
        "--port-base",
        &base,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout.contains("lie in the kernel's ephemeral range")
            && stdout.contains(&format!("below {low}")),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("a live run is recorded"));
}

/// Issue 17.7: a run that verified nothing is not ok. A one-second soak whose first
/// checkpoint is ten seconds away commits nothing: it ends `nothing-verified`, exit 2,
/// where it used to say ok with 0 bytes verified.
#[test]
fn a_run_that_verified_nothing_is_not_ok() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut args = common::run_args(
        dir.path(),
        &[
            "1",
            "--bytes-per-key",
            "20000",
            "--duration",
            "1s",
            "--json",
        ],
    );
    let at = args
        .iter()
        .position(|a| a == "--checkpoint-interval")
        .unwrap()
        + 1;
    args[at] = "10s".into();
    let out = Command::cargo_bin("soakcheck")
        .unwrap()
        .args(&args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{summary}");
    assert_eq!(summary["verdict"], "nothing-verified", "{summary}");
    assert_eq!(summary["bytes_verified"], 0, "{summary}");
}

/// A soak that `--duration` ends before its senders' end passed on a prefix, and its
/// summary says so (verified and input bytes), rather than a bare `ok`.
#[test]
fn a_soak_ended_by_its_duration_says_it_verified_a_prefix() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let args = common::run_args(
        dir.path(),
        &[
            "1",
            "--bytes-per-key",
            "2000000",
            "--rate",
            "40000",
            "--duration",
            "3s",
        ],
    );
    let out = Command::cargo_bin("soakcheck")
        .unwrap()
        .args(&args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("a prefix: the soak ended before every sender's end"),
        "{stdout}"
    );
}

/// From a hostile trial: a replayed step is checked as a scripted one is. A step with no
/// component (or a misspelled field, which is not read), an events file with no run
/// line, and an unknown timing are refused (exit 2, naming the file), never a run that
/// silently does nothing.
#[test]
fn replayed_steps_and_timings_are_checked_as_scripted_ones_are() {
    let dir = tempfile::tempdir().unwrap();
    let run = r#"{"run":{"seed":1,"command":["soakcheck"],"workers":3,"keys":"ABC","preset":"demo","run_dir":"/tmp","start":1.0,"utc_offset_s":0}}"#;
    for (name, text, word) in [
        (
            "no-component",
            format!("{run}\n{{\"at\":1.0,\"action\":\"crash\"}}\n"),
            "names its component",
        ),
        (
            "misspelled",
            format!("{run}\n{{\"at\":1.0,\"action\":\"crash\",\"componnet\":\"sink\"}}\n"),
            "misspelled",
        ),
        (
            "no-run-line",
            "{\"at\":1.0,\"action\":\"crash\",\"component\":\"sink\"}\n".to_string(),
            "no run line",
        ),
        ("empty", String::new(), "no run line"),
    ] {
        let path = dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&path, text).unwrap();
        let p = path.to_str().unwrap();
        assert_run_refused(None, &["--replay", p], &[p, word]);
    }
    assert_run_refused(
        Some("[timings]\nworker_up_mx = 1.0\n"),
        &[],
        &["s.toml", "worker_up_mx"],
    );
}
