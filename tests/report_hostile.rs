//! Issue 17.7: `soakcheck report` on hostile or damaged input. A bundle's links are
//! refused (they could put a file of this machine, or another directory, into the
//! page); unpacking is bounded and its temporary directory removed on SIGINT/SIGTERM;
//! a garbled or torn events.jsonl line costs a note, not the page; 100,000 events make
//! a page of kilobytes; control and bidi characters from logs are shown, not obeyed;
//! `--serve` drops clients that send nothing, or one byte a second.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::exe;

type Bundle = tar::Builder<flate2::write::GzEncoder<std::fs::File>>;
/// Writes one hostile bundle's entries.
type Build<'a> = Box<dyn Fn(&mut Bundle) + 'a>;

/// A run dir of the happy fixture (keys A, B, C), with `events` as its events.jsonl.
fn run_dir(dir: &Path, events: &str) -> PathBuf {
    let run = dir.join("run");
    std::fs::create_dir_all(run.join("sink-out")).unwrap();
    for e in std::fs::read_dir("testdata/happy").unwrap().flatten() {
        std::fs::copy(e.path(), run.join("sink-out").join(e.file_name())).unwrap();
    }
    for e in std::fs::read_dir("testdata/in").unwrap().flatten() {
        std::fs::copy(e.path(), run.join(e.file_name())).unwrap();
    }
    std::fs::write(run.join("events.jsonl"), events).unwrap();
    run
}

/// The header of a run that began at the fixture's first commit.
fn header() -> String {
    "{\"run\":{\"seed\":1,\"command\":[\"soakcheck\",\"run\",\"3\"],\"workers\":3,\"keys\":\"ABC\",\"preset\":\"demo\",\"run_dir\":\"run\",\"start\":1704923659.0,\"utc_offset_s\":0}}\n".to_string()
}

fn report(args: &[&std::ffi::OsStr], tmp: &Path) -> Output {
    Command::new(exe())
        .arg("report")
        .args(args)
        .env("TMPDIR", tmp)
        .output()
        .unwrap()
}

fn os<P: AsRef<std::ffi::OsStr> + ?Sized>(p: &P) -> &std::ffi::OsStr {
    p.as_ref()
}

#[test]
fn a_garbled_or_torn_events_line_costs_a_note_not_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let step = "{\"at\":1.0,\"action\":\"crash\",\"component\":\"sink\",\"time\":1704923660.0}\n";
    let events = format!(
        "{}{step}this is not json\n{step}{{\"at\":2.0,\"act",
        header()
    );
    let run = run_dir(dir.path(), &events);
    let out = report(&[os(&run)], dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        page.contains("events.jsonl:3: not an events.jsonl line"),
        "the bad line is named"
    );
    assert!(
        page.contains("events.jsonl:5: the last line is cut short"),
        "the torn line is named"
    );
    assert!(
        page.contains("<th>faults</th><td class=\"num\">2</td>"),
        "both readable steps count"
    );
}

/// An events.jsonl that cannot be read (here a FIFO, which would block a read) costs a
/// note saying the page shows no fault, where it used to be skipped without a word.
#[test]
fn an_events_file_that_cannot_be_read_is_named_on_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), "");
    let events = run.join("events.jsonl");
    std::fs::remove_file(&events).unwrap();
    assert!(Command::new("mkfifo")
        .arg(&events)
        .status()
        .unwrap()
        .success());
    let out = report(&[os(&run)], dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        page.contains("a FIFO") && page.contains("the page shows no fault or finding of the run"),
        "the unreadable file is named"
    );
}

#[test]
fn a_hundred_thousand_events_make_a_page_of_kilobytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = header();
    let components = [
        "sink",
        "initializer",
        "worker1",
        "worker2",
        "sender-A",
        "sender-B",
    ];
    let actions = ["crash", "restart", "pause", "resume"];
    for i in 0..100_000u32 {
        let at = f64::from(i) * 0.036;
        let c = components[(i / 4) as usize % components.len()];
        let a = actions[i as usize % actions.len()];
        events += &format!(
            "{{\"at\":{at},\"action\":\"{a}\",\"component\":\"{c}\",\"time\":{}}}\n",
            1_704_923_659.0 + at
        );
    }
    let run = run_dir(dir.path(), &events);
    let started = Instant::now();
    let out = report(&[os(&run)], dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size = std::fs::metadata(run.join("report.html")).unwrap().len();
    assert!(
        size < 1_500_000,
        "a page of {size} bytes for 100,000 events"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        page.contains("one mark of each kind per"),
        "the page says marks are merged"
    );
}

#[test]
fn control_and_bidi_characters_of_a_log_line_are_shown_not_obeyed() {
    let dir = tempfile::tempdir().unwrap();
    // A component name in events.jsonl reaches the page's lanes and marks too.
    let hostile_step = "{\"at\":1.0,\"action\":\"crash\",\"component\":\"sink\\u202eevil\\u001b[31m\",\"time\":1704923660.0}\n";
    let run = run_dir(dir.path(), &(header() + hostile_step));
    std::fs::write(
        run.join("wallaroo.0"),
        "2024-01-10 21:54:20,000 ERROR clear\x1b[2J and evil\u{202e}gnp.exe\n",
    )
    .unwrap();
    let out = report(&[os(&run)], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        page.contains(r"clear\x1b[2J and evil\u{202e}gnp.exe"),
        "shown escaped"
    );
    assert!(
        page.contains(r"sink\u{202e}evil\x1b[31m"),
        "the component is shown escaped"
    );
    assert!(
        !page.contains('\u{202e}') && !page.contains('\x1b'),
        "never raw"
    );
}

/// A gzipped tar of `entries` (built by hand: a bundle soakcheck would never write).
fn bundle(path: &Path, build: impl FnOnce(&mut Bundle)) {
    let file = std::fs::File::create(path).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    build(&mut tar);
    tar.into_inner().unwrap().finish().unwrap();
}

/// Appends every file of the happy run dir under `top/`.
fn append_run(tar: &mut Bundle, run: &Path, top: &str, skip: &str) {
    for e in std::fs::read_dir(run.join("sink-out")).unwrap().flatten() {
        tar.append_path_with_name(
            e.path(),
            format!("{top}/sink-out/{}", e.file_name().to_string_lossy()),
        )
        .unwrap();
    }
    for e in std::fs::read_dir(run).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_file() && name != skip {
            tar.append_path_with_name(e.path(), format!("{top}/{name}"))
                .unwrap();
        }
    }
}

fn link(tar: &mut Bundle, kind: tar::EntryType, name: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(0);
    h.set_mode(0o777);
    tar.append_link(&mut h, name, target).unwrap();
}

/// The temporary directories `report` made under `tmp` and left there.
fn left_in(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("soakcheck-report-"))
        .collect()
}

#[test]
fn links_in_a_bundle_are_refused_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), &header());
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let cases: [(&str, Build); 3] = [
        (
            "input-file.B.txt",
            Box::new(|t| {
                append_run(t, &run, "pm", "input-file.B.txt");
                link(
                    t,
                    tar::EntryType::Symlink,
                    "pm/input-file.B.txt",
                    "/etc/hostname",
                );
            }),
        ),
        (
            "sink-out",
            Box::new(|t| {
                append_run(t, &run, "pm", "");
                link(
                    t,
                    tar::EntryType::Symlink,
                    "pm/sink-out2",
                    elsewhere.to_str().unwrap(),
                );
            }),
        ),
        (
            "input-file.C.txt",
            Box::new(|t| {
                append_run(t, &run, "pm", "input-file.C.txt");
                link(
                    t,
                    tar::EntryType::Link,
                    "pm/input-file.C.txt",
                    "pm/input-file.A.txt",
                );
            }),
        ),
    ];
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    for (named, build) in cases {
        let path = dir.path().join("hostile.tar.gz");
        bundle(&path, |t| build(t));
        let out = report(&[os(&path), os("-o"), os(&dir.path().join("r.html"))], &tmp);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{named}: {stderr}");
        assert!(
            stderr.contains(named) && stderr.contains("only files and directories"),
            "{named}: {stderr}"
        );
        assert!(
            !dir.path().join("r.html").exists(),
            "{named}: no page from a hostile bundle"
        );
        assert!(left_in(&tmp).is_empty(), "{named}: {:?}", left_in(&tmp));
    }
}

/// A bundle that holds no run (here one file) is "could not check" (exit 2) saying what
/// a bundle holds, not a page of nothing, and nothing unpacked is left.
#[test]
fn a_bundle_that_holds_no_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a run").unwrap();
    let path = dir.path().join("notes.tar.gz");
    bundle(&path, |t| {
        t.append_path_with_name(&notes, "pm/notes.txt").unwrap();
    });
    let out = report(&[os(&path), os("-o"), os(&dir.path().join("r.html"))], &tmp);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&path.display().to_string()) && stderr.contains("holds no run"),
        "{stderr}"
    );
    assert!(!dir.path().join("r.html").exists());
    assert!(left_in(&tmp).is_empty(), "{:?}", left_in(&tmp));
}

#[test]
fn unpacking_is_bounded_and_removed_on_sigterm_or_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let run = run_dir(dir.path(), &header());
    let big = dir.path().join("big.tar.gz");
    let size: u64 = 600 << 20;
    bundle(&big, |t| {
        append_run(t, &run, "pm", "");
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, "pm/wallaroo.9", std::io::repeat(0).take(size))
            .unwrap();
    });
    // Over the limit: refused, naming it, and nothing left.
    let out = report(&[os(&big), os("--unpack-limit"), os("1000000")], &tmp);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--unpack-limit"), "{stderr}");
    assert!(left_in(&tmp).is_empty(), "{:?}", left_in(&tmp));
    // SIGTERM, or SIGHUP (its terminal closed), while it unpacks: the temporary
    // directory goes with it.
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        let mut child = Command::new(exe())
            .args(["report", "-o"])
            .arg(dir.path().join("r.html"))
            .arg(&big)
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while left_in(&tmp).is_empty() {
            assert!(Instant::now() < deadline, "no temporary directory appeared");
            std::thread::sleep(Duration::from_millis(5));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(
            left_in(&tmp).is_empty(),
            "left after {signal}: {:?}",
            left_in(&tmp)
        );
    }
}

#[test]
fn serve_drops_clients_that_send_nothing_or_a_byte_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), &header());
    let port = soakcheck::demo::cluster::free_port().unwrap();
    let mut served = Command::new(exe())
        .args(["report", "--serve", &format!("127.0.0.1:{port}")])
        .arg(&run)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 8];
    served
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    let connect = || {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        s
    };
    let mut idle = connect();
    let mut slow = connect();
    let started = Instant::now();
    let (mut idle_closed, mut slow_closed) = (None, None);
    let mut buf = [0u8; 64];
    while (idle_closed.is_none() || slow_closed.is_none())
        && started.elapsed() < Duration::from_secs(25)
    {
        let _ = slow.write_all(b"G");
        for (stream, closed) in [(&mut idle, &mut idle_closed), (&mut slow, &mut slow_closed)] {
            if closed.is_none() {
                match stream.read(&mut buf) {
                    Ok(0) => *closed = Some(started.elapsed()),
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
                        *closed = Some(started.elapsed())
                    }
                    _ => {}
                }
            }
        }
        std::thread::sleep(Duration::from_millis(900));
    }
    let _ = served.kill();
    let _ = served.wait();
    assert!(
        idle_closed.is_some_and(|t| t < Duration::from_secs(15)),
        "idle: {idle_closed:?}"
    );
    assert!(
        slow_closed.is_some_and(|t| t < Duration::from_secs(15)),
        "slow: {slow_closed:?}"
    );
}
