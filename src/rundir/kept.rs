//! The evidence of earlier runs in a run dir. Nothing a run leaves (its sink output,
//! logs, events.jsonl, report, post-mortem bundles, and the inputs and worker state it
//! made) is deleted by the next run or by `reset`: it is moved, whole, into
//! `RUN_DIR/soakcheck-runs/<local start time>-seed<S>/`, named from its events.jsonl.
//!
//! The rule that bounds the disk they use: at most `keep` earlier runs that ended green,
//! were stopped, or verified nothing are kept (`--keep-runs`, default
//! [`DEFAULT_KEEP`]); when a new one is kept beyond that, the oldest of them is removed,
//! and said so. A run that found something, or never recorded its end (killed, or the
//! machine went down), is never removed by a run: only `soakcheck reset --purge`, which
//! asks for exactly that, removes kept runs.

use std::path::{Path, PathBuf};

use super::events::{EventLine, RunEnd, RunHeader};

/// Where earlier runs are kept, in the run dir.
pub use crate::rundir::KEPT as KEPT_DIR;

/// How many earlier green (or stopped) runs are kept by default.
pub const DEFAULT_KEEP: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error("{}: could not keep the previous run's evidence ({source}); everything is where it was, nothing was deleted, and nothing is started over it", .path.display())]
    Move {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a run dir's events.jsonl says of its run: its header and its end, when they
/// can be read (a garbled line elsewhere does not matter here).
fn run_of(run_dir: &Path) -> (Option<RunHeader>, Option<RunEnd>) {
    let text =
        super::events::read_events_text(&super::RunDir(run_dir).events()).unwrap_or_default();
    let mut header = None;
    let mut end = None;
    for line in text.lines() {
        match serde_json::from_str::<EventLine>(line) {
            Ok(EventLine::Run { run }) => header = header.or(Some(run)),
            Ok(EventLine::End { end: e }) => end = Some(e),
            _ => {}
        }
    }
    (header, end)
}

/// Whether a run dir entry is part of a run's evidence. `inputs` are the input files the
/// run made itself (the demo preset's), which go with it.
fn is_evidence(name: &str, inputs: &[String]) -> bool {
    matches!(
        name,
        crate::formats::sinkdir::SINK_OUT
            | crate::rundir::EVENTS
            | crate::rundir::REPORT
            | crate::rundir::STATE
            | crate::rundir::CLOCK
            | crate::rundir::POWER_CUTS
            | "report-files.d"
    ) || name.starts_with("wallaroo.")
        || name.starts_with("sender.out.")
        || name.starts_with("postmortem-")
        || (name.starts_with("checker-") && name.ends_with(".stderr"))
        || inputs.iter().any(|i| i == name)
}

/// The kept folder's name of a run that started at `start` (Unix seconds) with `seed`,
/// in the run machine's local time (`utc_offset_s`): `2026-12-06T04-09-00-seed42`.
pub fn kept_name(start: f64, utc_offset_s: i32, seed: Option<u64>) -> String {
    let offset = chrono::FixedOffset::east_opt(utc_offset_s)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("UTC"));
    let when = chrono::DateTime::from_timestamp(start.max(0.0) as i64, 0)
        .unwrap_or_default()
        .with_timezone(&offset)
        .format("%Y-%m-%dT%H-%M-%S");
    match seed {
        Some(seed) => format!("{when}-seed{seed}"),
        None => format!("{when}-seed-unknown"),
    }
}

/// Where a run whose header is `header` is kept (after the next run, or a reset).
pub fn kept_dir(run_dir: &Path, header: &RunHeader) -> PathBuf {
    run_dir.join(KEPT_DIR).join(kept_name(
        header.start,
        header.utc_offset_s,
        Some(header.seed),
    ))
}

/// The newest modification time among `paths` (for a run without a header).
fn newest_mtime(paths: &[PathBuf]) -> f64 {
    paths
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(p).ok()?.modified().ok())
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
        .fold(0.0, f64::max)
}

/// Moves the evidence of the run that `run_dir` holds into its kept folder, then
/// applies the rule on how many are kept. Returns what it did, for a person; nothing
/// when the run dir holds no evidence.
pub fn keep_previous(run_dir: &Path, keep: usize) -> Result<Vec<String>, KeepError> {
    let (header, end) = run_of(run_dir);
    let inputs: Vec<String> = match &header {
        Some(h) if h.preset == "demo" => h
            .keys
            .chars()
            .map(|k| format!("input-file.{k}.txt"))
            .collect(),
        _ => Vec::new(),
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| is_evidence(&e.file_name().to_string_lossy(), &inputs))
        .map(|e| e.path())
        .collect();
    names.sort();
    let mut done = Vec::new();
    if !names.is_empty() {
        done.push(move_evidence(run_dir, &names, header.as_ref(), end)?);
    }
    done.extend(prune(run_dir, keep));
    if !kept_runs(run_dir).is_empty() {
        done.push(kept_total(run_dir));
    }
    Ok(done)
}

/// Moves `names` (the run's evidence) into the run's kept folder; says where.
fn move_evidence(
    run_dir: &Path,
    names: &[PathBuf],
    header: Option<&RunHeader>,
    end: Option<RunEnd>,
) -> Result<String, KeepError> {
    let name = match header {
        Some(h) => kept_name(h.start, h.utc_offset_s, Some(h.seed)),
        None => kept_name(newest_mtime(names), super::events::local_utc_offset(), None),
    };
    let dest = unique(&run_dir.join(KEPT_DIR).join(name));
    std::fs::create_dir_all(&dest).map_err(|source| KeepError::Move {
        path: dest.clone(),
        source,
    })?;
    let mut moved: Vec<(&PathBuf, PathBuf)> = Vec::new();
    for path in names {
        let to = dest.join(path.file_name().expect("a directory entry has a name"));
        if let Err(source) = keep_entry(path, &to, run_dir) {
            // All or nothing: what was moved goes back, so the run stays whole where it
            // was (a run split between two places verifies in neither).
            for (from, to) in moved.iter().rev() {
                let _ = std::fs::rename(to, from);
            }
            let _ = std::fs::remove_dir(&dest);
            // The kept-runs folder too, when this made it and nothing else is in it.
            let _ = std::fs::remove_dir(run_dir.join(KEPT_DIR));
            return Err(KeepError::Move {
                path: path.clone(),
                source,
            });
        }
        moved.push((path, to));
    }
    let verdict = end.map_or_else(|| "no recorded end".to_string(), |e| e.verdict);
    Ok(format!(
        "the previous run ({verdict}) is kept in {} ({})",
        dest.display(),
        megabytes(size_of(&dest))
    ))
}

/// Moves one entry of the run dir into the kept folder. A symlink with a relative
/// target is made anew with the absolute one (relative to the run dir, where it was), so
/// it still leads to its data from the kept folder.
fn keep_entry(from: &Path, to: &Path, run_dir: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(from)?.file_type().is_symlink() {
        let target = std::fs::read_link(from)?;
        if target.is_relative() {
            let absolute = std::path::absolute(run_dir.join(target))?;
            std::os::unix::fs::symlink(absolute, to)?;
            return std::fs::remove_file(from);
        }
    }
    std::fs::rename(from, to)
}

/// `path`, or `path-2`, `path-3`, ... when it is taken.
fn unique(path: &Path) -> PathBuf {
    let mut candidate = path.to_path_buf();
    let mut n = 2;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{}-{n}", path.display()));
        n += 1;
    }
    candidate
}

/// Whether a kept run may be removed to make room: it ended green, was stopped, or
/// verified nothing. One that found something, or never recorded its end, may not.
fn removable(kept: &Path) -> bool {
    matches!(
        run_of(kept).1.map(|e| e.verdict).as_deref(),
        Some("ok" | "stopped" | "nothing-verified")
    )
}

/// The kept runs, oldest first (their names start with their start time).
fn kept_runs(run_dir: &Path) -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(run_dir.join(KEPT_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    runs.sort();
    runs
}

/// Removes the oldest removable kept runs beyond `keep`, saying each.
fn prune(run_dir: &Path, keep: usize) -> Vec<String> {
    let removable: Vec<PathBuf> = kept_runs(run_dir)
        .into_iter()
        .filter(|p| removable(p))
        .collect();
    let excess = removable.len().saturating_sub(keep);
    removable
        .into_iter()
        .take(excess)
        .map(|p| match std::fs::remove_dir_all(&p) {
            Ok(()) => format!(
                "removed the kept run {} (it ended without a finding; at most {keep} such runs are kept: --keep-runs)",
                p.display()
            ),
            Err(e) => format!("could not remove the kept run {}: {e}", p.display()),
        })
        .collect()
}

/// How many runs are kept and how much disk they use, and how to purge them.
fn kept_total(run_dir: &Path) -> String {
    let runs = kept_runs(run_dir);
    let bytes: u64 = runs.iter().map(|p| size_of(p)).sum();
    format!(
        "{} earlier run(s) kept in {} ({}); `soakcheck reset --purge --run-dir {}` deletes them",
        runs.len(),
        run_dir.join(KEPT_DIR).display(),
        megabytes(bytes),
        run_dir.display()
    )
}

/// `reset --purge`: deletes every kept run, as asked.
pub fn purge(run_dir: &Path) -> Vec<String> {
    let runs = kept_runs(run_dir);
    if runs.is_empty() {
        return vec![format!(
            "no kept run in {}",
            run_dir.join(KEPT_DIR).display()
        )];
    }
    runs.into_iter()
        .map(|p| match std::fs::remove_dir_all(&p) {
            Ok(()) => format!("deleted the kept run {}", p.display()),
            Err(e) => format!("could not delete the kept run {}: {e}", p.display()),
        })
        .collect()
}

/// Bytes under `path` (files only, links not followed).
fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| size_of(&e.path()))
        .sum()
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(start: f64, seed: u64) -> String {
        format!(
            "{{\"run\":{{\"seed\":{seed},\"command\":[\"soakcheck\"],\"workers\":1,\"keys\":\"AB\",\"preset\":\"demo\",\"run_dir\":\"x\",\"start\":{start},\"utc_offset_s\":0}}}}\n"
        )
    }

    fn end(verdict: &str) -> String {
        format!("{{\"end\":{{\"verdict\":\"{verdict}\",\"time\":1.0,\"duration_s\":1.0,\"fault_count\":0}}}}\n")
    }

    /// A run dir holding one run's files, and a file that is no run's.
    fn fill(dir: &Path, start: f64, seed: u64, verdict: Option<&str>) {
        std::fs::create_dir_all(dir.join("sink-out")).unwrap();
        std::fs::write(dir.join("sink-out/output.initializer"), b"A0\n").unwrap();
        std::fs::write(dir.join("wallaroo.0"), b"log").unwrap();
        std::fs::write(dir.join("wallaroo.0.1700000000000.gz"), b"old log").unwrap();
        std::fs::write(dir.join("input-file.A.txt"), b"A0\n").unwrap();
        std::fs::write(dir.join("postmortem-17.tar.gz"), b"tgz").unwrap();
        let events = header(start, seed) + &verdict.map(end).unwrap_or_default();
        std::fs::write(dir.join("events.jsonl"), events).unwrap();
        std::fs::write(dir.join("unrelated.txt"), b"mine").unwrap();
    }

    #[test]
    fn the_previous_run_is_moved_whole_and_named_by_its_start_and_seed() {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path(), 1_796_527_439.0, 42, Some("violation"));
        let said = keep_previous(dir.path(), DEFAULT_KEEP).unwrap();
        let kept = dir.path().join(KEPT_DIR).join("2026-12-06T03-23-59-seed42");
        assert!(said[0].contains(&kept.display().to_string()), "{said:?}");
        for name in [
            "sink-out/output.initializer",
            "wallaroo.0",
            "wallaroo.0.1700000000000.gz",
            "input-file.A.txt",
            "postmortem-17.tar.gz",
            "events.jsonl",
        ] {
            assert!(kept.join(name).exists(), "{name} kept");
            assert!(!dir.path().join(name).exists(), "{name} moved");
        }
        assert!(dir.path().join("unrelated.txt").exists());
        let again = keep_previous(dir.path(), DEFAULT_KEEP).unwrap();
        assert_eq!(
            again.len(),
            1,
            "nothing moved, the kept runs counted: {again:?}"
        );
        assert!(
            again[0].starts_with("1 earlier run(s) kept in"),
            "{again:?}"
        );
    }

    #[test]
    fn only_green_runs_beyond_the_bound_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let verdicts = [
            Some("ok"),
            Some("violation"),
            None,
            Some("ok"),
            Some("stopped"),
            Some("ok"),
        ];
        for (i, v) in verdicts.iter().enumerate() {
            fill(dir.path(), 1_796_000_000.0 + i as f64 * 60.0, i as u64, *v);
            keep_previous(dir.path(), 2).unwrap();
        }
        let left: Vec<String> = kept_runs(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // The violation (seed 1) and the run with no end (seed 2) stay; of the four
        // removable runs, the newest two stay.
        assert_eq!(left.len(), 4, "{left:?}");
        for seed in ["seed1", "seed2", "seed4", "seed5"] {
            assert!(left.iter().any(|n| n.ends_with(seed)), "{seed}: {left:?}");
        }
        assert_eq!(purge(dir.path()).len(), 4);
        assert!(kept_runs(dir.path()).is_empty());
    }

    /// A run dir whose sink-out is a relative symlink (to a bigger disk, say): the kept
    /// folder's sink-out still leads to the data, where a moved relative link would
    /// point nowhere from its new place.
    #[test]
    fn a_relative_symlink_still_leads_to_its_data_from_the_kept_folder() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("run");
        fill(&run_dir, 1_796_000_000.0, 3, Some("violation"));
        std::fs::rename(run_dir.join("sink-out"), dir.path().join("big-disk")).unwrap();
        std::os::unix::fs::symlink("../big-disk", run_dir.join("sink-out")).unwrap();
        keep_previous(&run_dir, DEFAULT_KEEP).unwrap();
        let kept = &kept_runs(&run_dir)[0];
        assert_eq!(
            std::fs::read(kept.join("sink-out/output.initializer")).unwrap(),
            b"A0\n"
        );
        assert!(std::fs::symlink_metadata(run_dir.join("sink-out")).is_err());
    }

    #[test]
    fn two_runs_of_one_second_and_seed_keep_two_folders() {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path(), 1_796_000_000.0, 7, Some("ok"));
        keep_previous(dir.path(), 5).unwrap();
        fill(dir.path(), 1_796_000_000.0, 7, Some("ok"));
        keep_previous(dir.path(), 5).unwrap();
        assert_eq!(kept_runs(dir.path()).len(), 2);
    }
}
