//! Issue 17.1: the evidence of a run is kept. The replay command a run prints (and its
//! report repeats) works as printed, in the same run dir, without losing the run it
//! replays; a second run and `reset` keep the previous run's sink output, logs,
//! events.jsonl and report in `RUN_DIR/soakcheck-runs/<start>-seed<S>/` and say where;
//! only `reset --purge` deletes kept runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{exe, run_args, serial};

/// The kept runs of `dir`, oldest first.
fn kept(dir: &Path) -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir.join("soakcheck-runs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    runs.sort();
    runs
}

/// The page's "Replay its faults exactly" command, as a person would copy it (the
/// text of its words, each in its own unbreakable span).
fn replay_command(page: &str) -> String {
    let opening = "Replay its faults exactly: <code class=\"command\">";
    let at = page
        .find(opening)
        .expect("the page shows the replay command")
        + opening.len();
    let code = &page[at..at + page[at..].find("</code>").unwrap()];
    code.replace("<span class=\"arg\">", "")
        .replace("</span>", "")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_printed_replay_works_as_printed_and_every_run_is_kept() {
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
            "40000",
            "--time-scale",
            "0.25",
            "--seed",
            "7",
        ],
    );
    let first = Command::new(exe()).args(&args).output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let printed = String::from_utf8_lossy(&first.stdout);
    let events = dir.path().join("events.jsonl");
    assert!(
        printed.contains(&format!("--replay {}", events.display())),
        "{printed}"
    );
    let first_events = std::fs::read_to_string(&events).unwrap();
    let first_report = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    // The page's command, run verbatim by a shell, in the same run dir.
    let command = replay_command(&first_report);
    assert!(command.contains("--replay"), "{command}");
    let replayed = Command::new("sh").args(["-c", &command]).output().unwrap();
    assert_eq!(
        replayed.status.code(),
        Some(0),
        "{command}\n{}",
        text(&replayed)
    );
    // The replayed run is the new one; the first is kept whole, named by its start
    // time and seed, and the run said where it went.
    let runs = kept(dir.path());
    assert_eq!(runs.len(), 1, "{runs:?}");
    let name = runs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with("-seed7"), "{name}");
    assert!(
        String::from_utf8_lossy(&replayed.stdout).contains(&runs[0].display().to_string()),
        "{}",
        text(&replayed)
    );
    assert_eq!(
        std::fs::read_to_string(runs[0].join("events.jsonl")).unwrap(),
        first_events
    );
    assert_eq!(
        std::fs::read_to_string(runs[0].join("report.html")).unwrap(),
        first_report
    );
    for file in [
        "sink-out/output.initializer.txnlog",
        "wallaroo.0",
        "sender.out.A",
        "input-file.A.txt",
    ] {
        assert!(runs[0].join(file).is_file(), "{file} kept");
    }
    // The kept run still verifies where it is.
    common::assert_complete(&runs[0]);
    // The replay repeated the first run's faults.
    let faults = |events: &str| -> Vec<String> {
        events
            .lines()
            .filter(|l| l.contains("\"action\":\"crash\""))
            .map(|l| l.split("\"component\":").nth(1).unwrap_or("").to_string())
            .map(|c| c.split(',').next().unwrap().to_string())
            .collect()
    };
    let again = std::fs::read_to_string(&events).unwrap();
    assert!(!faults(&first_events).is_empty());
    assert_eq!(
        faults(&again)[..faults(&first_events).len().min(3)],
        faults(&first_events)[..faults(&first_events).len().min(3)]
    );
    // The replayed run took the first run's seed (its inputs are made from it), and its
    // page does not offer a --seed command that would not repeat it.
    let header: serde_json::Value = serde_json::from_str(again.lines().next().unwrap()).unwrap();
    assert_eq!(header["run"]["seed"], 7, "{header}");
    let replayed_page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(replayed_page.contains("This run replayed the faults of"));
    assert!(!replayed_page.contains("Repeat: "));
    // reset keeps the second run too, and deletes nothing else.
    std::fs::write(dir.path().join("mine.txt"), "a user's file").unwrap();
    let reset = Command::new(exe())
        .args(["reset", "--run-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(reset.status.code(), Some(0), "{}", text(&reset));
    assert_eq!(kept(dir.path()).len(), 2);
    assert!(!dir.path().join("report.html").exists());
    assert!(!dir.path().join("sink-out").exists());
    assert!(dir.path().join("mine.txt").exists());
    assert!(
        String::from_utf8_lossy(&reset.stdout).contains("reset --purge"),
        "the rule and the purge are said: {}",
        text(&reset)
    );
    // Only an explicit purge deletes kept runs.
    let purge = Command::new(exe())
        .args(["reset", "--purge", "--run-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(purge.status.code(), Some(0), "{}", text(&purge));
    assert!(kept(dir.path()).is_empty());
    assert!(dir.path().join("mine.txt").exists());
    // With nothing left, both say so rather than nothing at all.
    for args in [&["reset"][..], &["reset", "--purge"][..]] {
        let out = Command::new(exe())
            .args(args)
            .arg("--run-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("nothing to reset") || said.contains("no kept run"),
            "{args:?}: {said}"
        );
    }
}

/// A run dir holding one run's files, as a run leaves them.
fn fake_run(dir: &Path) {
    std::fs::create_dir_all(dir.join("sink-out")).unwrap();
    std::fs::write(dir.join("sink-out/output.initializer"), b"A0\n").unwrap();
    std::fs::write(
        dir.join("events.jsonl"),
        "{\"run\":{\"seed\":9,\"command\":[\"soakcheck\"],\"workers\":1,\"keys\":\"A\",\"preset\":\"demo\",\"run_dir\":\"x\",\"start\":1796000000.0,\"utc_offset_s\":0}}\n",
    )
    .unwrap();
    std::fs::write(dir.join("input-file.A.txt"), b"A0\n").unwrap();
    std::fs::write(dir.join("report.html"), b"<html>").unwrap();
    std::fs::write(dir.join("wallaroo.0"), b"log").unwrap();
}

/// Evidence that cannot be moved (here a log made immutable, the last entry moved) is
/// all or nothing: reset says it could not keep the run, exits 2, and every file is
/// where it was, with no half-filled kept folder; a run split between two places would
/// verify in neither.
#[test]
fn evidence_that_cannot_be_moved_is_left_whole_where_it_was() {
    if !common::chattr_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fake_run(dir.path());
    let before: Vec<PathBuf> = walk(dir.path());
    let immutable = common::Immutable::make(&dir.path().join("wallaroo.0"));
    let reset = Command::new(exe())
        .args(["reset", "--run-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    drop(immutable);
    let said = text(&reset);
    assert_eq!(reset.status.code(), Some(2), "{said}");
    assert!(
        said.contains("could not keep the previous run's evidence")
            && said.contains("everything is where it was"),
        "{said}"
    );
    assert_eq!(walk(dir.path()), before, "{said}");
}

/// Every path under `dir`, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                todo.push(entry.path());
            }
            paths.push(entry.path());
        }
    }
    paths.sort();
    paths
}
