//! End-to-end tests of `soakcheck report`: a frozen soak's page names its violation,
//! marks every fault of events.jsonl and escapes a hostile log line; the page renders
//! in headless Chromium (Debian's, installed by scripts/test) with its SVG timeline and
//! violation block, and is not blank; `--serve` re-renders as a run dir grows; two
//! threads give the one-thread page; bad sources are exit 2.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{exe, free_base, RunGuard};
use serde_json::Value;

/// The colours of the fault marks (as `report::chart` draws them).
const MARKS: [(&str, &str); 4] = [
    ("crash", "#7B3294"),
    ("pause", "#FF7F0E"),
    ("grow", "#1F77B4"),
    ("shrink", "#9EC9E2"),
];

fn report(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(exe())
        .arg("report")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn events(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A log stamp (`YYYY-MM-DD HH:MM:SS,mmm`, the run machine's local time) for `time`.
fn stamp(time: f64, utc_offset_s: i64) -> String {
    let millis = ((time + utc_offset_s as f64) * 1000.0) as i64;
    let at = chrono::DateTime::from_timestamp_millis(millis)
        .unwrap()
        .naive_utc();
    at.format("%Y-%m-%d %H:%M:%S,%3f").to_string()
}

#[test]
fn a_frozen_soak_leaves_a_page_that_names_the_violation_marks_every_fault_and_escapes_logs() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let args: Vec<String> = [
        "run",
        "3",
        "crash-sink",
        "crash1",
        "pause",
        "--bytes-per-key",
        "60000",
        "--rate",
        "30000",
        "--time-scale",
        "0.5",
        "--seed",
        "5",
        "--inject",
        "duplicate",
        "--inject-after",
        "2400",
        "--inject-key",
        "C",
        "--keys",
        "A,B,C",
        "--checkpoint-interval",
        "200ms",
        "--run-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        run_dir.display().to_string(),
        "--port-base".into(),
        free_base().to_string(),
        "--serve".into(),
        format!("127.0.0.1:{}", common::free_port()),
    ])
    .collect();
    let mut run = RunGuard::spawn(&args, &run_dir, Stdio::piped());
    let lines = BufReader::new(run.child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut frozen, mut said_report) = (false, false);
    let mut seen = Vec::new();
    let mut live = None;
    for line in lines {
        let line = line.unwrap();
        seen.push(line.clone());
        if let Some(url) = line.strip_prefix("live report: http://") {
            live = Some(url.trim_end_matches('/').to_string());
        }
        frozen |= line.starts_with("FROZEN at ");
        said_report |=
            frozen && line == format!("  report: {}", run_dir.join("report.html").display());
        if line.contains("press Ctrl-C") {
            break;
        }
        assert!(Instant::now() < deadline, "no freeze");
    }
    assert!(
        frozen && said_report,
        "the FROZEN message names the report: {seen:#?}"
    );
    // The live page, while the world is frozen.
    let live = live.expect("run --serve prints its address");
    let page = get(&live);
    assert!(page.contains("VIOLATION") && page.contains("http-equiv=\"refresh\""));
    run.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(run.wait().code(), Some(1));

    // The run's own page, and the copy in the bundle.
    let page = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(
        page.contains("Key <strong>C</strong>: <strong>duplicate</strong>"),
        "{page}"
    );
    let bundle = std::fs::read_dir(&run_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a post-mortem bundle");
    let listing = Command::new("tar")
        .arg("tzf")
        .arg(&bundle)
        .output()
        .unwrap();
    // Issue 17.1: the bundle unpacks into one top folder, named as the bundle.
    let top = bundle
        .file_name()
        .unwrap()
        .to_string_lossy()
        .strip_suffix(".tar.gz")
        .unwrap()
        .to_string();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(listing.lines().any(|l| l == format!("{top}/report.html")));
    assert!(
        listing.lines().all(|l| l.starts_with(&format!("{top}/"))),
        "{listing}"
    );
    let unpacked = tempfile::tempdir().unwrap();
    let untar = Command::new("tar")
        .arg("xzf")
        .arg(&bundle)
        .current_dir(unpacked.path())
        .status()
        .unwrap();
    assert!(untar.success());
    let names: Vec<_> = std::fs::read_dir(unpacked.path())
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(names.len(), 1, "one top folder");

    // A hostile line in a worker's log, stamped at the first finding.
    let events = events(&run_dir);
    let offset = events[0]["run"]["utc_offset_s"].as_i64().unwrap();
    let found_at = events
        .iter()
        .find_map(|e| {
            e["finding"]
                .is_object()
                .then(|| e["time"].as_f64().unwrap())
        })
        .expect("a finding in events.jsonl");
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(run_dir.join("wallaroo.1"))
        .unwrap();
    writeln!(
        log,
        "{} ERROR    [evil.rs:1] <script>alert('pwned')</script> & <img src=x onerror=alert(2)>",
        stamp(found_at + 1.0, offset)
    )
    .unwrap();
    drop(log);
    let out = report(&[run_dir.to_str().unwrap()], dir.path());
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(page.contains("&lt;script&gt;alert('pwned')&lt;/script&gt; &amp; &lt;img src=x"));
    assert!(
        !page.to_lowercase().contains("<script"),
        "a script element in the page"
    );
    assert!(!page.contains("<img"), "an img element in the page");
    assert!(page.contains("class=\"alarm\""), "the ERROR line is marked");

    // One mark per fault of events.jsonl, in its kind's colour, on the whole run's
    // lanes (the detail chart around the finding draws some of them again).
    let lanes = page
        .split("data-chart=\"lanes\"")
        .nth(1)
        .and_then(|rest| rest.split("</figure>").next())
        .expect("the lanes chart");
    let mut faults = 0;
    for (kind, color) in MARKS {
        let n = events.iter().filter(|e| e["action"] == kind).count();
        let marks = lanes.matches(&format!("fill=\"{color}\"")).count();
        assert_eq!(marks, n, "{kind}: {n} in events.jsonl, {marks} marks");
        faults += n;
    }
    assert!(
        faults >= 2,
        "the soak injected {faults} faults before the violation"
    );
    assert!(page.contains("id=\"violation\"") && page.contains("<svg"));

    // The verdict is verify's.
    let verify = Command::new(exe())
        .args(["verify", "--keys", "A,B,C", "--sink-dir"])
        .arg(run_dir.join("sink-out"))
        .arg("--input-dir")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(1));

    // From the bundle: ./postmortem-<time>.html, beside a report.html it leaves alone.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("report.html"), "a run's own page").unwrap();
    let out = report(&[bundle.to_str().unwrap()], elsewhere.path());
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let own = std::fs::read_to_string(elsewhere.path().join("report.html")).unwrap();
    assert_eq!(own, "a run's own page", "the bundle's report replaced it");
    let name = bundle
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(".tar.gz", ".html");
    let page = std::fs::read_to_string(elsewhere.path().join(name)).unwrap();
    assert!(page.contains("Key <strong>C</strong>: <strong>duplicate</strong>"));
}

/// A run dir laid out as `run` leaves it, from `gen`: inputs, `sink-out` (with `fault`
/// on key B), and an events.jsonl with a header, a crash, a pause of every component
/// and a sender crash spread over the commits' span, and a finding when there is a
/// fault. Returns the span.
fn synthetic_run_dir(dir: &Path, bytes: &str, fault: Option<&str>) -> (f64, f64) {
    let gen = |args: &[&str]| {
        let out = Command::new(exe()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let d = dir.to_str().unwrap();
    gen(&[
        "gen", "inputs", "--keys", "A,B,C", "--bytes", bytes, "--dir", d,
    ]);
    let sink = dir.join("sink-out");
    let mut args = vec![
        "gen",
        "sink",
        "--input-dir",
        d,
        "--sink-dir",
        sink.to_str().unwrap(),
        "--keys",
        "A,B,C",
    ];
    if let Some(f) = fault {
        args.extend(["--fault", f, "--key", "B"]);
    }
    gen(&args);
    let (mut t0, mut t1) = (f64::MAX, f64::MIN);
    for e in std::fs::read_dir(&sink).unwrap().flatten() {
        if !e.file_name().to_string_lossy().ends_with(".txnlog") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        for line in text.lines() {
            if let Some(t) = line
                .strip_prefix('[')
                .and_then(|l| l.split(',').next())
                .and_then(|t| t.parse::<f64>().ok())
            {
                t0 = t0.min(t);
                t1 = t1.max(t);
            }
        }
    }
    let at = |share: f64| t0 + (t1 - t0) * share;
    let mut lines = vec![format!(
        r#"{{"run":{{"seed":7,"command":["soakcheck","run","3","crash1"],"workers":3,"keys":"ABC","preset":"demo","run_dir":"{d}","start":{},"utc_offset_s":0}}}}"#,
        t0 - 1.0
    )];
    let step = |share: f64, action: &str, component: &str| {
        format!(
            r#"{{"at":{},"action":"{action}","component":"{component}","time":{},"effect_ms":1.0}}"#,
            at(share) - t0 + 1.0,
            at(share)
        )
    };
    lines.push(step(0.2, "crash", "worker1"));
    lines.push(step(0.25, "restart", "worker1"));
    lines.push(step(0.3, "crash", "sender-B"));
    lines.push(step(0.4, "pause", "sink"));
    lines.push(step(0.45, "resume", "sink"));
    lines.push(step(0.6, "crash", "sender-C"));
    if fault.is_some() {
        lines.push(format!(
            r#"{{"finding":{{"kind":"violation","key":"B","detail":"key B breaks","elapsed_s":1.0}},"at":1.0,"time":{}}}"#,
            at(0.7)
        ));
    }
    std::fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    (t0, t1)
}

/// The page `report` makes of the run dir `dir`, which must exit with `status`.
fn run_page(dir: &Path, status: i32) -> String {
    let out = report(&[dir.to_str().unwrap()], dir);
    assert_eq!(
        out.status.code(),
        Some(status),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.join("report.html")).unwrap()
}

/// The pixels of a screenshot, checked not to be a blank page.
fn not_blank(shot: &Path) -> Vec<[u8; 3]> {
    let decoder = png::Decoder::new(std::fs::File::open(shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let step = info.color_type.samples();
    let rgb: Vec<[u8; 3]> = pixels[..info.buffer_size()]
        .chunks(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    let colors: std::collections::HashSet<&[u8; 3]> = rgb.iter().collect();
    let plain = rgb.iter().filter(|p| p.iter().all(|&c| c >= 0xF0)).count();
    assert!(colors.len() > 50, "{} colours: a blank page", colors.len());
    assert!(
        plain < rgb.len() * 95 / 100,
        "{plain} of {} pixels near white",
        rgb.len()
    );
    rgb
}

/// Chromium's headless flags for this machine's closed network.
fn chromium(user_data: &Path, width: u32) -> Option<Command> {
    let path = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if path.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is missing: scripts/test installs it"
        );
        eprintln!("SKIPPED: chromium is missing (apt-get install chromium)");
    }
    let mut c = Command::new(path?);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--window-size={width},2400"))
    .arg(format!("--user-data-dir={}", user_data.display()))
    .stdin(Stdio::null());
    Some(c)
}

#[test]
fn the_page_renders_in_headless_chromium_with_its_timeline_and_violation() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_run_dir(dir.path(), "40000", Some("corrupt"));
    let out = report(&[dir.path().to_str().unwrap()], dir.path());
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = dir.path().join("report.html");
    // Self-contained: no script, and nothing fetched from anywhere.
    let html = std::fs::read_to_string(&page).unwrap();
    for banned in ["<script", " src=", " href=", "<link", "url("] {
        assert!(!html.contains(banned), "the page has {banned:?}");
    }
    let url = format!("file://{}", page.display());
    let profile = tempfile::tempdir().unwrap();
    let Some(mut dump) = chromium(profile.path(), 1200) else {
        return;
    };
    let dom = dump.arg("--dump-dom").arg(&url).output().unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    let timeline = dom
        .split("id=\"timeline\"")
        .nth(1)
        .expect("the timeline section");
    assert!(timeline.contains("<svg"), "an SVG chart in the timeline");
    assert!(dom.contains("id=\"violation\""), "the violation block");
    assert!(dom.contains("Key B: corrupt"), "the key and kind");
    assert!(
        dom.contains("Byte view of the line"),
        "a hex view for a corrupt line"
    );

    let shot = dir.path().join("page.png");
    let mut take = chromium(profile.path(), 1200).unwrap();
    let status = take
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let rgb = not_blank(&shot);
    // The banner of a violation is red.
    let red = rgb
        .iter()
        .filter(|p| p[0] > 150 && p[1] < 60 && p[2] < 60)
        .count();
    assert!(red > 10_000, "{red} red pixels: no violation banner");
}

#[test]
fn two_threads_give_the_one_thread_page() {
    for fault in [None, Some("duplicate")] {
        let dir = tempfile::tempdir().unwrap();
        // Over 4 MiB of commits, so verify splits the stream between two threads.
        synthetic_run_dir(dir.path(), "1600000", fault);
        let page = |threads: &str| {
            let out = dir.path().join(format!("report-{threads}.html"));
            let status = Command::new(exe())
                .env("RAYON_NUM_THREADS", threads)
                .args(["report", "-o"])
                .arg(&out)
                .arg(dir.path())
                .status()
                .unwrap();
            assert_eq!(status.code(), Some(if fault.is_some() { 1 } else { 0 }));
            std::fs::read_to_string(out).unwrap()
        };
        let one = page("1");
        assert_eq!(one, page("2"), "fault {fault:?}");
        // Both sender crashes had a later commit of their key.
        let recovered = one.matches("<tr class=\"fault\">").count();
        assert_eq!(recovered, 4, "four faults listed");
        assert!(
            !one.contains("<td class=\"num\">no commit since</td>"),
            "every fault was followed by a commit"
        );
    }
}

/// GETs `/` from `addr` and returns the body.
fn get(addr: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

fn commits_shown(page: &str) -> u64 {
    let at = page.find("<span id=\"commits\">").expect("a commit count") + 19;
    page[at..].split('<').next().unwrap().parse().unwrap()
}

/// A `soakcheck report --serve` that is killed when the test ends, however it ends.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_served_page_follows_a_growing_run_dir() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    synthetic_run_dir(&full, "40000", None);
    // The served run dir starts with the first half of every txnlog.
    let live = dir.path().join("live");
    let sink = live.join("sink-out");
    std::fs::create_dir_all(&sink).unwrap();
    let mut txnlogs: Vec<(PathBuf, String)> = Vec::new();
    for e in std::fs::read_dir(&full).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), live.join(e.file_name())).unwrap();
        }
    }
    for e in std::fs::read_dir(full.join("sink-out")).unwrap().flatten() {
        let target = sink.join(e.file_name());
        if e.file_name().to_string_lossy().ends_with(".txnlog") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            std::fs::write(&target, lines[..lines.len() / 2].concat()).unwrap();
            txnlogs.push((target, text));
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
    let child = Command::new(exe())
        .args([
            "report",
            "--serve",
            &format!("127.0.0.1:{}", common::free_port()),
        ])
        .arg(&live)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut served = Served(child);
    let mut first = String::new();
    BufReader::new(served.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    let before = commits_shown(&get(&addr));
    assert!(before > 0);
    for (path, text) in &txnlogs {
        std::fs::write(path, text).unwrap();
    }
    // The page is re-rendered once it is older than a second: ask until it shows more.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let page = get(&addr);
        let n = commits_shown(&page);
        if n > before || Instant::now() > deadline {
            assert!(
                page.contains("http-equiv=\"refresh\""),
                "the live page reloads itself"
            );
            break n;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        after > before,
        "still {after} commits after the run dir grew from {before}"
    );
}

#[test]
fn a_source_that_is_not_a_run_is_exit_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = report(&["nowhere"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere: "));
    std::fs::create_dir(dir.path().join("sink")).unwrap();
    let out = report(&["sink"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sink: ") && err.contains("needs --input-dir"),
        "{err}"
    );
    // A bare sink dir (the happy fixture's) whose inputs are missing: a page with the
    // error, exit 2.
    for e in std::fs::read_dir("testdata/happy").unwrap().flatten() {
        std::fs::copy(e.path(), dir.path().join("sink").join(e.file_name())).unwrap();
    }
    let out = report(&["sink", "--input-dir", "in", "--keys", "A"], dir.path());
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(dir.path().join("sink/report.html")).unwrap();
    assert!(
        page.contains("Could not check") && page.contains("input-file.A.txt"),
        "{page}"
    );
}

/// The page of a run with 3,000 faults stays readable, at 900 px as at 1400: each busy
/// lane is a density strip (marks would be a solid wall), a detail chart draws every
/// mark within 30 s of the first finding, the legend lists only the kinds the run had,
/// the acked offsets the run recorded are charted with no sender log left (rotation
/// removes them), commands break only between words, and nothing overflows the width.
#[test]
fn a_3000_fault_page_stays_readable_at_900_and_1400_px() {
    let dir = tempfile::tempdir().unwrap();
    let (t0, t1) = synthetic_run_dir(dir.path(), "40000", Some("duplicate"));
    let events = dir.path().join("events.jsonl");
    let mut lines = std::fs::read_to_string(&events).unwrap();
    let kinds = [
        ("crash", "sender-A"),
        ("partition", "worker1"),
        ("power-loss", "sink"),
    ];
    for i in 0..3000 {
        let (action, component) = kinds[i % kinds.len()];
        let time = t0 + (t1 - t0) * i as f64 / 3000.0;
        lines += &format!(
            "{{\"at\":{},\"action\":\"{action}\",\"component\":\"{component}\",\"time\":{time}}}\n",
            time - t0
        );
    }
    for i in 0..=20 {
        let time = t0 + (t1 - t0) * i as f64 / 20.0;
        let offset = 40_000 * i / 20;
        lines += &format!("{{\"acked\":{{\"A\":{offset},\"B\":{offset}}},\"time\":{time}}}\n");
    }
    std::fs::write(&events, lines).unwrap();
    let page = run_page(dir.path(), 1);
    // A copy that measures its own width once laid out (the page itself has no script).
    let measured = dir.path().join("measured.html");
    std::fs::write(
        &measured,
        page.replace(
            "</body>",
            "<script>document.body.dataset.scrollWidth=document.documentElement.scrollWidth</script></body>",
        ),
    )
    .unwrap();
    let profile = tempfile::tempdir().unwrap();
    for width in [900, 1400] {
        let Some(mut dump) = chromium(profile.path(), width) else {
            return;
        };
        let dom = dump
            .arg("--dump-dom")
            .arg(format!("file://{}", measured.display()))
            .output()
            .unwrap();
        let dom = String::from_utf8_lossy(&dom.stdout);
        assert_readable(&dom, width);
        let shot = dir.path().join(format!("page-{width}.png"));
        let status = chromium(profile.path(), width)
            .unwrap()
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!(
                "file://{}",
                dir.path().join("report.html").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        not_blank(&shot);
    }
}

/// What a person needs to read a busy run's page, in its laid-out DOM at `width`.
fn assert_readable(dom: &str, width: u32) {
    let attr = |name: &str| -> Vec<String> {
        dom.split(&format!("{name}=\""))
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string())
            .collect()
    };
    let charts: Vec<(String, String)> = attr("data-chart")
        .into_iter()
        .zip(attr("data-mode"))
        .collect();
    assert!(
        charts.contains(&("lanes".into(), "density".into())),
        "{charts:?}"
    );
    assert!(charts.iter().any(|(c, _)| c == "detail"), "{charts:?}");
    assert!(
        charts.iter().any(|(c, _)| c == "acks"),
        "no acked offsets chart: {charts:?}"
    );
    let legend: std::collections::BTreeSet<String> = attr("data-kind").into_iter().collect();
    let had: std::collections::BTreeSet<String> = [
        "crash",
        "pause",
        "recovery",
        "partition",
        "power-loss",
        "finding",
    ]
    .map(String::from)
    .into();
    assert_eq!(legend, had, "the legend lists only the kinds the run had");
    // Every word of a repeat command is unbreakable; only the spaces between them break.
    let command = dom
        .split("class=\"command\"")
        .nth(1)
        .expect("a repeat command");
    assert!(
        command.contains("<span class=\"arg\">--seed</span>"),
        "{command}"
    );
    // The commit's time reads as a wall-clock time at the run's offset, beside its stamp.
    let violation = dom.split("id=\"violation\"").nth(1).expect("the violation");
    let commit = violation.split("in the txnlog)").next().unwrap();
    assert!(commit.contains(" +00:00 ("), "{commit}");
    let scroll: u32 = attr("data-scroll-width")[0].parse().unwrap();
    assert!(
        scroll <= width,
        "the page is {scroll} px wide in a {width} px window"
    );
}

/// A green run's errors (a worker logs a connection reset after its peer was crashed on
/// purpose) are expected: collapsed under a note that says they follow the injected
/// faults, not shown first and in red as a failing run's are.
#[test]
fn a_green_runs_expected_errors_are_collapsed_under_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let (t0, t1) = synthetic_run_dir(dir.path(), "40000", None);
    std::fs::write(
        dir.path().join("wallaroo.1"),
        format!(
            "{} ERROR    [conn.rs:1] connection reset by peer (the sink was crashed)\n",
            stamp((t0 + t1) / 2.0, 0)
        ),
    )
    .unwrap();
    let page = run_page(dir.path(), 0);
    let logs = page.split("id=\"logs\"").nth(1).unwrap();
    assert!(
        logs.contains("Errors logged after the injected faults"),
        "{logs}"
    );
    assert!(
        logs.contains("connection reset by peer"),
        "the line is still there"
    );
    assert!(!logs.contains("class=\"alarm\""), "shown in red: {logs}");
    assert!(!logs.contains("<details open"), "not collapsed: {logs}");
}

/// A record that holds a finding the page cannot read (a kind this soakcheck does not
/// know), or only a run's end that says violation, is never shown as a pass; and a file
/// of bad lines is named by its first notes, not one note per line.
#[test]
fn a_finding_the_page_cannot_read_is_no_pass_and_bad_lines_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (t0, _) = synthetic_run_dir(dir.path(), "40000", None);
    let events = dir.path().join("events.jsonl");
    let clean = std::fs::read_to_string(&events).unwrap();
    let page_of = |extra: &str| {
        std::fs::write(&events, format!("{clean}{extra}")).unwrap();
        let out = report(&[dir.path().to_str().unwrap()], dir.path());
        let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        (out.status.code(), page)
    };
    assert_eq!(page_of("").0, Some(0), "the clean run is green");
    let unknown = format!(
        "{{\"finding\":{{\"kind\":\"disk-full\",\"key\":null,\"detail\":\"x\",\"elapsed_s\":1.0}},\"at\":1.0,\"time\":{t0}}}\n"
    );
    let (code, page) = page_of(&unknown);
    assert_eq!(code, Some(1), "an unreadable finding passed");
    assert!(page.contains("cannot read"), "the page says why");
    let end = format!(
        "{{\"end\":{{\"verdict\":\"violation\",\"time\":{t0},\"duration_s\":1.0,\"fault_count\":1}}}}\n"
    );
    assert_eq!(page_of(&end).0, Some(1), "a recorded violation passed");
    let bad: String = (0..500).map(|i| format!("{{\"bogus\":{i}}}\n")).collect();
    let (code, page) = page_of(&bad);
    assert_eq!(code, Some(0));
    assert!(
        page.matches("not an events.jsonl line").count() <= 20,
        "one note per bad line"
    );
    assert!(
        page.contains("480 more notes are left out"),
        "the rest is counted"
    );
}

/// `-o` never replaces what is there with something else: a device (`/dev/null`'s kind)
/// and a FIFO get the page written into them, a symlink stays a symlink, its target
/// replaced, and `-o -` is standard output. (Renamed over, `-o /dev/null` made the
/// machine's /dev/null a regular file.)
#[test]
fn the_page_goes_into_a_device_or_a_fifo_and_through_a_symlink_never_over_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    synthetic_run_dir(dir.path(), "20000", None);
    let (sink, inputs) = (format!("{d}/sink-out"), d.to_string());
    let page = |out: &Path| {
        let o = out.to_str().unwrap();
        common::soakcheck(&["report", &sink, "--input-dir", &inputs, "-o", o])
    };
    use std::os::unix::fs::FileTypeExt;
    let kind = |p: &Path| std::fs::symlink_metadata(p).unwrap().file_type();
    // A FIFO: its reader gets the whole page.
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = page(&fifo);
    assert!(out.status.success(), "{}", common::text(&out));
    // (Replaced, the FIFO would keep its reader waiting: look before joining it.)
    assert!(kind(&fifo).is_fifo(), "{:?}", kind(&fifo));
    assert!(reader.join().unwrap().ends_with("</html>"));
    // A symlink: the link stays, its target is the page.
    let link = dir.path().join("link.html");
    std::fs::write(dir.path().join("real.html"), "old").unwrap();
    std::os::unix::fs::symlink("real.html", &link).unwrap();
    let out = page(&link);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(kind(&link).is_symlink());
    let real = std::fs::read_to_string(dir.path().join("real.html")).unwrap();
    assert!(real.ends_with("</html>"));
    // `-o -`: standard output gets the page and only the page; the status line goes to
    // standard error.
    let out = common::soakcheck(&["report", &sink, "--input-dir", &inputs, "-o", "-"]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(out.stdout.starts_with(b"<!DOCTYPE html>") && out.stdout.ends_with(b"</html>"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("report: /dev/stdout"));
    // `-o /dev/stdout` appended to a file: the file keeps what it had and gets the page.
    let kept = dir.path().join("kept.html");
    std::fs::write(&kept, "kept\n").unwrap();
    let exe = common::exe();
    let script = format!(
        "exec '{}' report '{sink}' --input-dir '{inputs}' -o /dev/stdout >> '{}'",
        exe.display(),
        kept.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    let text = std::fs::read_to_string(&kept).unwrap();
    assert!(text.starts_with("kept\n<!DOCTYPE html>") && text.ends_with("</html>"));
    // A symlink planted where the old temporary name was (`.NAME.tmp<pid>`) is not
    // written through: its target keeps its bytes.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let page_path = dir.path().join("x.html");
    let script = format!(
        "ln -s '{}' '{}/.x.html.tmp'$$ && exec '{}' report '{sink}' --input-dir '{inputs}' -o '{}'",
        victim.display(),
        dir.path().display(),
        exe.display(),
        page_path.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(kind(&page_path).is_file());
    // A character device, where this runs as root (CI does): /dev/null's own numbers.
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs as root"
        );
        eprintln!("SKIPPED: making a device node needs root");
        return;
    }
    let null = dir.path().join("null");
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o666);
    let dev = nix::sys::stat::makedev(1, 3);
    nix::sys::stat::mknod(&null, nix::sys::stat::SFlag::S_IFCHR, mode, dev).unwrap();
    let out = page(&null);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(kind(&null).is_char_device(), "{:?}", kind(&null));
}
