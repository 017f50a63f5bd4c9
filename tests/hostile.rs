//! Issue 8.3: hostile files. A FIFO, a device (a symlink to `/dev/zero`) or a directory
//! where verify or watch expects a regular file is exit 2 naming it, at once: never a
//! hang in `open`, never a read without end, never a verdict.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use assert_cmd::Command;

/// A copy of the happy sink and its inputs in a temporary directory.
fn copy_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [("testdata/happy", "sink"), ("testdata/in", "in")] {
        std::fs::create_dir_all(dir.path().join(to)).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join(to).join(e.file_name())).unwrap();
        }
    }
    dir
}

fn make_fifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).unwrap();
}

fn link_zero(path: &Path) {
    let _ = std::fs::remove_file(path);
    std::os::unix::fs::symlink("/dev/zero", path).unwrap();
}

/// Runs soakcheck with `args` (and a hard timeout, so a hang fails rather than blocks
/// the suite); asserts exit 2 and a message naming `named` and what it is.
fn assert_refused(args: &[&std::ffi::OsStr], named: &Path, what: &str) {
    let started = Instant::now();
    let out = Command::cargo_bin("soakcheck")
        .unwrap()
        .env_remove("MULTIPLE_KEYS_LIST")
        .args(args)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(&named.display().to_string()) && stderr.contains(what),
        "{args:?}: the message names {} and {what}: {stderr}",
        named.display()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{args:?} took too long"
    );
}

/// A sparse regular file of 64 GiB of zeros (no line end anywhere).
fn sparse_zeros(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(64 << 30).unwrap();
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn verify_args(dir: &Path) -> Vec<PathBuf> {
    vec![
        "verify".into(),
        "--sink-dir".into(),
        dir.join("sink"),
        "--input-dir".into(),
        dir.join("in"),
    ]
}

#[test]
fn verify_refuses_fifos_and_devices_where_files_are_expected() {
    type Setup = fn(&Path);
    let cases: [(&str, Setup, &str); 6] = [
        ("sink/output.worker1.txnlog", make_fifo, "a FIFO"),
        (
            "sink/output.worker1.txnlog",
            link_zero,
            "a character device",
        ),
        ("in/input-file.B.txt", make_fifo, "a FIFO"),
        ("in/input-file.B.txt", link_zero, "a character device"),
        ("sink/output.worker1", make_fifo, "a FIFO"),
        ("sink/output.worker1", link_zero, "a character device"),
    ];
    for (file, setup, what) in cases {
        let dir = copy_fixture();
        let target = dir.path().join(file);
        setup(&target);
        let args = verify_args(dir.path());
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        assert_refused(&args, &target, what);
    }
}

#[test]
fn verify_refuses_a_device_or_directory_as_plain_output() {
    let dir = copy_fixture();
    let zero = dir.path().join("zero");
    link_zero(&zero);
    let input = dir.path().join("in");
    for (plain, what) in [(&zero, "a character device"), (&input, "a directory")] {
        assert_refused(
            &[
                os("verify"),
                os("--input-dir"),
                input.as_os_str(),
                os("--plain-output"),
                plain.as_os_str(),
            ],
            plain,
            what,
        );
    }
}

#[test]
fn verify_bounds_a_regular_txnlog_without_line_ends() {
    // A sparse 64 GiB regular file of zeros: an error at the first MiB, never a read
    // of the whole file into memory.
    let dir = copy_fixture();
    let txnlog = dir.path().join("sink/output.worker1.txnlog");
    sparse_zeros(&txnlog);
    let args = verify_args(dir.path());
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    assert_refused(&args, &txnlog, "longer than");
}

fn watch_args<'a>(dir: &'a Path, extra: &[&'a std::ffi::OsStr]) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "watch".into(),
        "--sink-dir".into(),
        dir.join("sink").into(),
        "--input-dir".into(),
        dir.join("in").into(),
        "--until".into(),
        "forever".into(),
        "--timeout".into(),
        "30s".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_os_string()));
    args
}

#[test]
fn watch_refuses_fifos_and_devices_in_the_sink_dir_and_logs() {
    // A FIFO txnlog, a FIFO output, a sender log and a sink log linked to /dev/zero.
    let dir = copy_fixture();
    let fifo_txnlog = dir.path().join("sink/output.worker9.txnlog");
    make_fifo(&fifo_txnlog);
    let args = watch_args(dir.path(), &[]);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    assert_refused(&args, &fifo_txnlog, "a FIFO");

    let dir = copy_fixture();
    let fifo_output = dir.path().join("sink/output.worker1");
    make_fifo(&fifo_output);
    let args = watch_args(dir.path(), &[]);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    assert_refused(&args, &fifo_output, "a FIFO");

    let dir = copy_fixture();
    let zero = dir.path().join("sender.out.A");
    link_zero(&zero);
    let spec = format!("A={}", zero.display());
    let args = watch_args(dir.path(), &[os("--sender-log"), os(&spec)]);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    assert_refused(&args, &zero, "a character device");

    let args = watch_args(dir.path(), &[os("--sink-log"), zero.as_os_str()]);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    assert_refused(&args, &zero, "a character device");
}

/// A sink log far larger than one pass may read (a sparse 64 GiB regular file without a
/// line end) cannot hold watch: SIGTERM is answered within a second.
#[test]
fn watch_answers_sigterm_within_a_second_while_reading_a_huge_log() {
    let dir = copy_fixture();
    let log = dir.path().join("sink.log");
    sparse_zeros(&log);
    let args = watch_args(dir.path(), &[os("--sink-log"), log.as_os_str()]);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("soakcheck"))
        .args(&args)
        .env_remove("MULTIPLE_KEYS_LIST")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The signal handler is installed before the first pass, which writes the events'
    // "started" state; give it a moment to be inside its reads.
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut status = None;
    while sent.elapsed() < Duration::from_secs(5) {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let answered = sent.elapsed();
    if status.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    assert!(status.is_some(), "watch ignored SIGTERM");
    assert!(
        answered < Duration::from_secs(1),
        "answered in {answered:?}"
    );
}

/// A txn id is text from the sink's files: in `verify`'s human output its control
/// characters are shown (`\x1b`), never sent to the terminal, where an id holding
/// `ESC [2K CR` could draw a fake `OK` line over a failing verdict.
#[test]
fn control_characters_of_a_txn_id_never_reach_the_terminal() {
    let dir = copy_fixture();
    let txnlog = dir
        .path()
        .join("sink/output.worker2.1704923659.0591345.txnlog");
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&txnlog)
        .unwrap();
    std::io::Write::write_all(
        &mut log,
        b"[1704923659.07, '2-ok', 'c\\x1b[2K\\rOK: 0 of 3 keys failed', 3479]\n",
    )
    .unwrap();
    let out = Command::cargo_bin("soakcheck")
        .unwrap()
        .args(verify_args(dir.path()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.stdout.contains(&0x1b) && !out.stdout.contains(&b'\r'),
        "{text}"
    );
    assert!(
        text.contains(r"2-ok for c\x1b[2K\x0dOK: 0 of 3 keys failed"),
        "{text}"
    );
}
