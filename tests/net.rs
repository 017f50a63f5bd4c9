//! End-to-end tests of network faults in `run`: every link through the fault proxy, the
//! demo keeps its promise under partitions, resets, delays and throttling of its sink
//! and source links; a sender's link partitioned longer than `--ack-timeout` is an
//! `ack-timeout` finding, and a shorter partition is not; `soakcheck proxy`'s control
//! interface over HTTP.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{exe, run_args, serial};
use serde_json::Value;

fn run(dir: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = run_args(dir, extra);
    args.push("--json".into());
    let out = Command::new(exe()).args(&args).output().unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), summary)
}

fn network_steps(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["link"].is_string())
        .collect()
}

#[test]
fn a_soak_with_network_faults_on_sink_and_source_links_ends_green() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (code, summary) = run(
        dir.path(),
        &[
            "3",
            "net-sink",
            "net-source",
            "crash-sink",
            "--bytes-per-key",
            "150000",
            "--rate",
            "30000",
            "--time-scale",
            "0.5",
            "--seed",
            "4",
        ],
    );
    assert_eq!(code, Some(0), "{summary}");
    common::assert_complete(dir.path());
    let steps = network_steps(dir.path());
    let faults: Vec<&Value> = steps.iter().filter(|s| s["action"] != "heal").collect();
    assert!(faults.len() >= 3, "network faults: {steps:?}");
    assert!(faults
        .iter()
        .any(|s| s["link"].as_str().unwrap().ends_with("->sink")));
    assert!(faults
        .iter()
        .any(|s| s["link"].as_str().unwrap().starts_with("sender-")));
}

/// A run of 3 workers whose scenario partitions sender A's link at 3 s for `hold` s.
fn partitioned_sender(dir: &Path, hold: f64) -> (Option<i32>, Value) {
    let scenario = dir.join("partition.toml");
    std::fs::write(
        &scenario,
        format!(
            "[[steps]]\nat = 3.0\naction = \"partition\"\nlink = \"sender-A->initializer\"\nfor = {hold}\n"
        ),
    )
    .unwrap();
    run(
        dir,
        &[
            "3",
            "--scenario",
            scenario.to_str().unwrap(),
            "--bytes-per-key",
            "150000",
            "--rate",
            "30000",
            "--ack-timeout",
            "3s",
            "--on-violation",
            "kill",
            "--seed",
            "1",
        ],
    )
}

#[test]
fn a_sender_partitioned_past_the_ack_timeout_is_a_finding_and_a_short_one_is_not() {
    let _serial = serial();
    let long = tempfile::tempdir().unwrap();
    let (code, summary) = partitioned_sender(long.path(), 9.0);
    assert_eq!(code, Some(1), "{summary}");
    let findings = summary["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "ack-timeout" && f["key"] == "A"),
        "{summary}"
    );
    let short = tempfile::tempdir().unwrap();
    let (code, summary) = partitioned_sender(short.path(), 1.0);
    assert_eq!(code, Some(0), "{summary}");
    let steps = network_steps(short.path());
    let actions: Vec<&str> = steps
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["partition", "heal"]);
}

#[test]
fn a_worker_gives_up_a_partitioned_sink_and_recovers_after_the_heal() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("partition.toml");
    // Longer than the worker's sink timeout (10 s).
    std::fs::write(
        &scenario,
        "[[steps]]\nat = 3.0\naction = \"partition\"\nlink = \"worker1->sink\"\nfor = 15.0\n",
    )
    .unwrap();
    let (code, summary) = run(
        dir.path(),
        &[
            "3",
            "--scenario",
            scenario.to_str().unwrap(),
            "--bytes-per-key",
            "300000",
            "--rate",
            "30000",
            "--seed",
            "2",
        ],
    );
    assert_eq!(code, Some(0), "{summary}");
    common::assert_complete(dir.path());
    // During the partition the worker took the sink as lost (not stalled until the
    // heal), then connected again as after a sink crash.
    let log = std::fs::read_to_string(dir.path().join("wallaroo.1")).unwrap();
    let lost = log
        .lines()
        .position(|l| l.contains("lost the sink connection"));
    let connected: Vec<usize> = log
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("connected to the sink at"))
        .map(|(i, _)| i)
        .collect();
    let lost = lost.unwrap_or_else(|| panic!("worker1 never gave up the sink:\n{log}"));
    assert!(connected.len() >= 2 && connected[1] > lost, "{log}");
    let stamp = |line: &str| soakcheck::report::series::log_time(line.as_bytes(), 0);
    let lines: Vec<&str> = log.lines().collect();
    let waited = stamp(lines[lost]).unwrap() - stamp(lines[connected[0]]).unwrap();
    assert!(
        waited < 15.0,
        "the worker waited {waited:.1} s on a partitioned sink"
    );
}

/// A `soakcheck proxy` killed when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn the_proxy_command_is_controlled_over_http() {
    let upstream = std::net::TcpListener::bind(("127.0.0.1", common::free_port())).unwrap();
    let up = upstream.local_addr().unwrap();
    let control = format!("127.0.0.1:{}", common::free_port());
    let child = Command::new(exe())
        .args(["proxy", "--control", &control, "--link"])
        .arg(format!("a->b,127.0.0.1:{},{up}", common::free_port()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut proxy = Running(child);
    let mut lines = BufReader::new(proxy.0.stdout.take().unwrap()).lines();
    let link = lines.next().unwrap().unwrap();
    let listen = link
        .split(": ")
        .nth(1)
        .unwrap()
        .split(" -> ")
        .next()
        .unwrap()
        .to_string();
    let control = lines.next().unwrap().unwrap();
    let control = control
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    let (status, body) = http(
        &control,
        "POST",
        "/links/a-%3Eb",
        r#"{"fault":"partition","direction":"up"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let state: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (state["up"].as_str(), state["down"].as_str()),
        (Some("partition"), Some("clear"))
    );
    // Held while partitioned (not even the connection reaches the other side),
    // delivered after the heal.
    let mut client = std::net::TcpStream::connect(&listen).unwrap();
    client.write_all(b"held").unwrap();
    upstream.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let early = upstream.accept();
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "nothing crosses a partition: {early:?}"
    );
    upstream.set_nonblocking(false).unwrap();
    let (status, _) = http(&control, "POST", "/links/a-%3Eb", r#"{"fault":"heal"}"#);
    assert_eq!(status, 200);
    let (mut server, _) = upstream.accept().unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"held");
    let (status, body) = http(&control, "GET", "/links", "");
    assert_eq!(status, 200);
    let links: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(links[0]["forwarded_up"], 4);
    let (status, body) = http(&control, "POST", "/links/nope", r#"{"fault":"heal"}"#);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("a->b"), "the error lists the links: {body}");
    let (status, _) = http(&control, "POST", "/links/a-%3Eb", r#"{"fault":"explode"}"#);
    assert!((400..500).contains(&status));
}

/// The wallaroo preset through the proxy: its one senders' link at IN_BASE, and each
/// worker's sink and control links (so `net-control` too) get faults, and the run ends
/// green. Stand-ins take the original programs' command lines (see above).
#[test]
fn the_wallaroo_preset_runs_its_links_through_the_proxy() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let top = dir.path().join("wallaroo");
    let base = common::free_base();
    common::wallaroo_stand_ins(&top, &dir.path().join("state"), base, common::Sink::StandIn);
    // The wallaroo preset's inputs are the user's.
    let gen = Command::new(exe())
        .args([
            "gen", "inputs", "--keys", "A,B,C", "--bytes", "80000", "--dir",
        ])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(gen.status.success());
    let mut args = run_args(
        &run_dir,
        &[
            "2",
            "--preset",
            "wallaroo",
            "net-sink",
            "net-source",
            "net-control",
            "--rate",
            "30000",
            "--time-scale",
            "0.5",
            "--seed",
            "3",
            "--json",
        ],
    );
    let at = args.iter().position(|a| a == "--port-base").unwrap();
    args[at + 1] = base.to_string();
    let out = Command::new(exe())
        .args(&args)
        .env("WALLAROO_TOP", &top)
        .env("WALLAROO_BIN", top.join("passthrough"))
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{summary}");
    common::assert_complete(&run_dir);
    // The stand-ins were started on the preset's command lines: the initializer's
    // source moved behind the proxy, each worker's sink at its proxy port.
    let log = |n: usize| std::fs::read_to_string(run_dir.join(format!("wallaroo.{n}"))).unwrap();
    let sink_at = |n: u16| format!("sink at 127.0.0.1:{}", base + 10 * n + 6);
    let initializer = log(0);
    assert!(
        initializer.contains(&format!("sources on 127.0.0.1:{}", base + 8)),
        "{initializer}"
    );
    assert!(initializer.contains(&sink_at(0)), "{initializer}");
    assert!(log(1).contains(&sink_at(1)), "{}", log(1));
    let steps = network_steps(&run_dir);
    let struck = |what: &dyn Fn(&str) -> bool| {
        steps
            .iter()
            .any(|s| s["action"] != "heal" && what(s["link"].as_str().unwrap()))
    };
    assert!(struck(&|l| l == "sender-*->initializer"), "{steps:?}");
    assert!(struck(&|l| l.ends_with("->sink")), "{steps:?}");
    assert!(struck(&|l| l == "worker1->initializer"), "{steps:?}");
}
