//! The series a post-mortem plots, each taken from the file that records it:
//! - faults, actions and findings from events.jsonl ([`Timeline`]);
//! - commits per second and committed bytes from the txnlogs ([`CommitBuckets`]), and
//!   each key's committed bytes from the checker as it is fed ([`KeySampler`], a
//!   [`FeedObserver`], so the one checker core is the only reader of the output);
//! - each sender's acked offset from its log, rotated `.gz` copies included
//!   ([`acked_offsets`]);
//! - log excerpts around a moment ([`excerpt`]).
//!
//! Series are downsampled to at most [`MAX_POINTS`] time buckets, so a page stays small
//! however long the soak was.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::finding::Finding;
use crate::rundir::events::{EventLine, RunEnd, RunHeader};
use crate::rundir::step::Action;
use crate::topology::Component;
use crate::verify::{CommitLog, FeedObserver, KeyCursor};

/// The most points a series keeps.
pub const MAX_POINTS: usize = 600;

/// A fault or action placed in wall time.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedStep {
    pub time: f64,
    pub action: Action,
    pub component: String,
    pub effect_ms: Option<f64>,
}

/// What events.jsonl says happened, in wall time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    pub header: Option<RunHeader>,
    pub steps: Vec<TimedStep>,
    pub findings: Vec<(f64, Finding)>,
    pub end: Option<RunEnd>,
    /// The acked offsets `run` recorded as it went: (wall time, key, offset).
    pub acks: Vec<(f64, String, u64)>,
    /// The file's steps carry no wall time (an older soakcheck): they are placed from
    /// the run's start, or else from the first commit.
    pub placed_from_origin: bool,
}

impl Timeline {
    /// Places every line in wall time; `origin` is the wall time of the soak's start
    /// when the lines do not carry it.
    pub fn from_events(events: &[EventLine], origin: Option<f64>) -> Timeline {
        let mut t = Timeline::default();
        let header_start = events.iter().find_map(|e| match e {
            EventLine::Run { run } => Some(run.start),
            _ => None,
        });
        let origin = header_start.or(origin).unwrap_or(0.0);
        for event in events {
            match event {
                EventLine::Run { run } => t.header = Some(run.clone()),
                EventLine::Step {
                    step,
                    time,
                    effect_ms,
                } => {
                    t.placed_from_origin |= time.is_none();
                    t.steps.push(TimedStep {
                        time: time.unwrap_or(origin + step.at),
                        action: step.action(),
                        // A name from a file: shown, never obeyed, in lanes and tables.
                        component: crate::formats::text::shown(step.component()),
                        effect_ms: *effect_ms,
                    });
                }
                EventLine::Finding { finding, time, .. } => {
                    t.findings.push((*time, finding.clone()))
                }
                EventLine::End { end } => t.end = Some(end.clone()),
                EventLine::Acked { acked, time } => t.acks.extend(
                    acked
                        .iter()
                        .map(|(k, o)| (*time, crate::formats::text::shown(k), *o)),
                ),
            }
        }
        t
    }

    /// The components named by the run or its steps, in lane order: the sink, the
    /// workers, the senders.
    pub fn components(&self) -> Vec<String> {
        let mut names: Vec<String> = self.steps.iter().map(|s| s.component.clone()).collect();
        if let Some(h) = &self.header {
            let components = std::iter::once(Component::Sink)
                .chain((0..h.workers.max(1)).map(Component::Worker))
                .chain(h.keys.chars().map(Component::Sender));
            names.extend(components.map(|c| c.name()));
        }
        // The components' own order (sink, workers by number, senders by key), then
        // any name that is no component of ours.
        names.sort_by_key(|n| lane_order(n));
        names.dedup();
        names
    }
}

/// Lanes in the components' own order (sink, workers by number, senders by key), then
/// any name that is no component of ours.
fn lane_order(name: &str) -> (bool, Option<Component>, String) {
    let component = Component::parse(name);
    (component.is_none(), component, name.to_string())
}

/// Equal time buckets over the commits' span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Buckets {
    pub start: f64,
    pub width: f64,
    pub count: usize,
}

impl Buckets {
    /// At most [`MAX_POINTS`] buckets from `start` to `end`, none shorter than 1 s.
    pub fn over(start: f64, end: f64) -> Buckets {
        let span = (end - start).max(0.0);
        let width = (span / MAX_POINTS as f64).max(1.0);
        Buckets {
            start,
            width,
            count: ((span / width).floor() as usize + 1).min(MAX_POINTS + 1),
        }
    }

    pub fn index(&self, time: f64) -> usize {
        (((time - self.start) / self.width).floor().max(0.0) as usize).min(self.count - 1)
    }

    /// The middle of bucket `i`.
    pub fn time(&self, i: usize) -> f64 {
        self.start + (i as f64 + 0.5) * self.width
    }
}

/// Commits and committed bytes per time bucket, from the txnlogs.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitBuckets {
    pub buckets: Buckets,
    pub commits: Vec<u64>,
    pub bytes: Vec<u64>,
    /// The last commit of each bucket that has one.
    pub last_commit: Vec<Option<usize>>,
}

impl CommitBuckets {
    /// None when nothing was committed.
    pub fn of(log: &CommitLog) -> Option<CommitBuckets> {
        // Stamps need not rise in commit order (the sink's clock may step back).
        let first = log.commits.first()?.time;
        let (first, last) = log.commits.iter().fold((first, first), |(lo, hi), c| {
            (lo.min(c.time), hi.max(c.time))
        });
        let buckets = Buckets::over(first, last);
        let mut out = CommitBuckets {
            buckets,
            commits: vec![0; buckets.count],
            bytes: vec![0; buckets.count],
            last_commit: vec![None; buckets.count],
        };
        for (i, c) in log.commits.iter().enumerate() {
            let b = buckets.index(c.time);
            out.commits[b] += 1;
            out.bytes[b] += c.end.saturating_sub(c.start);
            out.last_commit[b] = Some(i);
        }
        Some(out)
    }

    /// Commits per second in each bucket, at its middle.
    pub fn rate(&self) -> Vec<(f64, f64)> {
        (self.commits.iter().enumerate())
            .map(|(i, &n)| (self.buckets.time(i), n as f64 / self.buckets.width))
            .collect()
    }
}

/// The first commit at or after `from` whose chunk holds a line of key number `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyQuery {
    pub from: usize,
    pub key: usize,
}

/// Records each key's committed output bytes after chosen commits (the end of each
/// time bucket), and answers [`KeyQuery`]s, as the checker is fed.
#[derive(Debug, Clone)]
pub struct KeySampler {
    /// Commits after which to sample, ascending.
    sample_at: Vec<usize>,
    next_sample: usize,
    /// (commit, each key's output bytes after it).
    pub samples: Vec<(usize, Vec<u64>)>,
    queries: Vec<KeyQuery>,
    /// Query indices by `from`, and how many of them have started.
    by_from: Vec<usize>,
    started: usize,
    /// Started queries not answered yet (few: most are answered within a few commits).
    open: Vec<usize>,
    /// The answer to each query, by index.
    pub answers: Vec<Option<usize>>,
    /// Each key's output bytes after the previous commit (of this half).
    last: Vec<u64>,
}

impl KeySampler {
    pub fn new(sample_at: Vec<usize>, queries: Vec<KeyQuery>) -> KeySampler {
        let answers = vec![None; queries.len()];
        let mut by_from: Vec<usize> = (0..queries.len()).collect();
        by_from.sort_by_key(|&i| queries[i].from);
        KeySampler {
            sample_at,
            next_sample: 0,
            samples: Vec::new(),
            queries,
            by_from,
            started: 0,
            open: Vec::new(),
            answers,
            last: Vec::new(),
        }
    }
}

impl FeedObserver for KeySampler {
    fn split(&self, from: usize) -> Self {
        let mut rest = KeySampler::new(self.sample_at.clone(), self.queries.clone());
        rest.next_sample = self.sample_at.partition_point(|&c| c < from);
        rest
    }

    fn after_commit(&mut self, commit: usize, cursors: &[KeyCursor<'_>]) {
        if self.last.len() != cursors.len() {
            self.last = vec![0; cursors.len()];
        }
        while let Some(&i) = self.by_from.get(self.started) {
            if self.queries[i].from > commit {
                break;
            }
            self.open.push(i);
            self.started += 1;
        }
        let (queries, answers, last) = (&self.queries, &mut self.answers, &self.last);
        self.open.retain(|&i| {
            let key = queries[i].key;
            let changed = cursors[key].output_bytes() != last[key];
            if changed {
                answers[i] = Some(commit);
            }
            !changed
        });
        for (last, c) in self.last.iter_mut().zip(cursors) {
            *last = c.output_bytes();
        }
        if self.sample_at.get(self.next_sample) == Some(&commit) {
            self.samples.push((commit, self.last.clone()));
            self.next_sample += 1;
        }
    }

    fn merge(&mut self, rest: Self, base: &[u64]) {
        for (answer, later) in self.answers.iter_mut().zip(rest.answers) {
            *answer = answer.or(later);
        }
        self.samples.extend(
            rest.samples.into_iter().map(|(commit, bytes)| {
                (commit, bytes.iter().zip(base).map(|(b, s)| b + s).collect())
            }),
        );
        self.next_sample = rest.next_sample;
    }
}

/// Where a log line's wall time is: `YYYY-MM-DD HH:MM:SS,mmm` at its start, in the
/// local time of the machine that wrote it (`utc_offset_s` from UTC).
pub fn log_time(line: &[u8], utc_offset_s: i32) -> Option<f64> {
    let stamp = line.get(..23)?;
    let digits = |from: usize, len: usize| -> Option<u32> {
        let field = stamp.get(from..from + len)?;
        field.iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b' '),
        (13, b':'),
        (16, b':'),
        (19, b','),
    ];
    if separators.iter().any(|&(at, sep)| stamp[at] != sep) {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(digits(0, 4)? as i32, digits(5, 2)?, digits(8, 2)?)?;
    let moment = date.and_hms_milli_opt(
        digits(11, 2)?,
        digits(14, 2)?,
        digits(17, 2)?,
        digits(20, 3)?,
    )?;
    let millis = moment.and_utc().timestamp_millis();
    Some(millis as f64 / 1000.0 - f64::from(utc_offset_s))
}

/// A component log: the current file or a rotated (`.EPOCH` or `.EPOCH.gz`) copy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogFile {
    pub component: String,
    /// The rotation's epoch (milliseconds); None for the current file, which sorts last.
    pub rotated: Option<u128>,
    pub path: PathBuf,
}

/// The component a log file name belongs to, and its rotation epoch (the names
/// `driver::preset::Preset::log_path` gives, rotated as `driver::local` rotates them).
fn classify_log(name: &str) -> Option<(String, Option<u128>)> {
    // `wallaroo.1` is itself `BASE.DIGITS`: a name is rotated only when its base is a log.
    if let Some((base, epoch)) = crate::driver::local::rotation_of(name) {
        if let Some(component) = component_of_log(base) {
            return Some((component, Some(epoch)));
        }
    }
    Some((component_of_log(name)?, None))
}

/// `wallaroo.0` is the initializer's log, `wallaroo.N` worker N's, `sender.out.K` sender
/// K's, `stdout-stderr` (in the sink directory) the sink's.
fn component_of_log(name: &str) -> Option<String> {
    if name == crate::rundir::SINK_LOG {
        Some("sink".to_string())
    } else if let Some(n) = name.strip_prefix("wallaroo.") {
        Some(Component::Worker(n.parse::<usize>().ok()?).name())
    } else {
        let k = name.strip_prefix("sender.out.")?;
        (k.chars().count() == 1).then(|| format!("sender-{k}"))
    }
}

/// The component logs in `dirs` (the log directory and the sink directory), oldest
/// rotation first within each component.
pub fn discover_logs(dirs: &[&Path]) -> Vec<LogFile> {
    let mut logs: Vec<LogFile> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (component, rotated) = classify_log(&name)?;
            Some(LogFile {
                component,
                rotated,
                path: e.path(),
            })
        })
        .collect();
    logs.sort_by(|a, b| {
        (
            lane_order(&a.component),
            a.rotated.is_none(),
            a.rotated,
            &a.path,
        )
            .cmp(&(
                lane_order(&b.component),
                b.rotated.is_none(),
                b.rotated,
                &b.path,
            ))
    });
    logs
}

/// The most of one log that is read (decompressed).
pub const MAX_LOG_BYTES: u64 = 256 << 20;

/// A log's bytes, gunzipped when its name ends in `.gz`; at most [`MAX_LOG_BYTES`].
pub fn read_log(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = crate::formats::regular::open_regular(path)?;
    let mut bytes = Vec::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(file)
            .take(MAX_LOG_BYTES)
            .read_to_end(&mut bytes)?;
    } else {
        file.take(MAX_LOG_BYTES).read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}

/// A sender log's acks: (wall time, acked point of reference, a byte offset).
pub fn acked_offsets(log: &[u8], utc_offset_s: i32) -> Vec<(f64, u64)> {
    log.split(|&b| b == b'\n')
        .filter(|line| memchr::memmem::find(line, crate::watch::logs::ACKED).is_some())
        .filter_map(|line| {
            let time = log_time(line, utc_offset_s)?;
            Some((time, crate::watch::logs::point_of_ref(line)?))
        })
        .collect()
}

/// At most [`MAX_POINTS`] points of a time series: the last of each time bucket.
pub fn downsample(points: &[(f64, u64)]) -> Vec<(f64, u64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    let buckets = Buckets::over(lo, hi);
    let mut kept: Vec<(usize, (f64, u64))> = Vec::new();
    for &p in points {
        let b = buckets.index(p.0);
        match kept.last_mut() {
            Some((last, q)) if *last == b => *q = p,
            _ => kept.push((b, p)),
        }
    }
    kept.into_iter().map(|(_, p)| p).collect()
}

/// A log line shown in an excerpt.
#[derive(Debug, Clone, PartialEq)]
pub struct ExcerptLine {
    /// 1-based line number in its file.
    pub number: usize,
    pub time: Option<f64>,
    pub text: String,
    /// An ERROR, FATAL or CRITICAL line.
    pub alarm: bool,
}

/// The lines of one log in a time window.
#[derive(Debug, Clone, PartialEq)]
pub struct Excerpt {
    pub lines: Vec<ExcerptLine>,
    /// Lines in the window beyond the cap.
    pub omitted: usize,
}

/// The most lines an excerpt shows, and the most characters of a line.
pub const EXCERPT_LINES: usize = 300;
pub const EXCERPT_LINE_CHARS: usize = 400;

/// Whether a log line is an ERROR, FATAL or CRITICAL one (its level field).
pub fn is_alarm(line: &[u8]) -> bool {
    let level = line.get(24..32).unwrap_or(b"");
    level.starts_with(b"ERROR") || level.starts_with(b"FATAL") || level.starts_with(b"CRITICAL")
}

/// The lines of `log` stamped within `window` (a line without a stamp belongs to the
/// stamped line before it); with `alarms_only`, only the ERROR, FATAL and CRITICAL ones.
pub fn excerpt(log: &[u8], window: (f64, f64), alarms_only: bool, utc_offset_s: i32) -> Excerpt {
    let mut out = Excerpt {
        lines: Vec::new(),
        omitted: 0,
    };
    let mut current = None;
    for (n, line) in log.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(t) = log_time(line, utc_offset_s) {
            current = Some(t);
        }
        let inside = current.is_some_and(|t| t >= window.0 && t <= window.1);
        let alarm = is_alarm(line);
        if !inside || (alarms_only && !alarm) {
            continue;
        }
        if out.lines.len() == EXCERPT_LINES {
            out.omitted += 1;
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let text: String = match text.char_indices().nth(EXCERPT_LINE_CHARS) {
            Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], line.len()),
            None => text.into_owned(),
        };
        out.lines.push(ExcerptLine {
            number: n + 1,
            time: current,
            text,
            alarm,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::FindingKind;
    use crate::rundir::step::Step;

    #[test]
    fn events_are_placed_in_wall_time_with_or_without_their_stamps() {
        let step = |at: f64, time: Option<f64>| EventLine::Step {
            step: Step::on(at, crate::rundir::step::Act::Crash, "worker1"),
            time,
            effect_ms: None,
        };
        let finding = EventLine::Finding {
            finding: Finding {
                kind: FindingKind::Violation,
                key: Some("C".into()),
                detail: "d".into(),
                elapsed_s: 2.0,
            },
            at: 2.0,
            time: 1002.0,
        };
        let t = Timeline::from_events(&[step(1.0, Some(1001.0)), finding], None);
        assert_eq!(t.steps[0].time, 1001.0);
        assert!(!t.placed_from_origin);
        assert_eq!(t.findings[0].0, 1002.0);
        let old = Timeline::from_events(&[step(1.5, None)], Some(500.0));
        assert_eq!(old.steps[0].time, 501.5);
        assert!(old.placed_from_origin);
        assert_eq!(old.components(), vec!["worker1".to_string()]);
    }

    /// A commit log of one file whose commits carry `chunks`, one a second.
    fn log_of(chunks: &[&[u8]]) -> CommitLog {
        let mut log = CommitLog::default();
        let mut at = 0u64;
        for (i, c) in chunks.iter().enumerate() {
            log.commits.push(crate::verify::commits::Commit {
                file: 0,
                txn_id: format!("t{i}"),
                time: 1000.0 + i as f64,
                start: at,
                end: at + c.len() as u64,
                line: 2 * i + 2,
            });
            at += c.len() as u64;
        }
        log
    }

    #[test]
    fn commits_are_counted_per_second_and_each_bucket_knows_its_last() {
        let log = log_of(&[b"A1\n", b"B1\nA2\n", b"", b"B2\n"]);
        let b = CommitBuckets::of(&log).unwrap();
        assert_eq!(b.buckets.count, 4);
        assert_eq!(b.commits, vec![1, 1, 1, 1]);
        assert_eq!(b.bytes, vec![3, 6, 0, 3]);
        assert_eq!(b.last_commit, vec![Some(0), Some(1), Some(2), Some(3)]);
        assert_eq!(b.rate()[1], (1001.5, 1.0));
        assert!(CommitBuckets::of(&CommitLog::default()).is_none());
        let long = Buckets::over(0.0, 36_000.0);
        assert!(long.count <= MAX_POINTS + 1 && long.index(36_000.0) == long.count - 1);
    }

    #[test]
    fn the_sampler_gives_the_same_series_on_one_thread_or_two() {
        use crate::verify::{Checker, Semantics};
        let (a, b) = (b"A1\nA2\nA3\nA4\n".to_vec(), b"B1\nB2\nB3\n".to_vec());
        let chunks: [&[u8]; 7] = [
            b"A1\n",
            b"B1\nA2\n",
            b"",
            b"A3\n",
            b"B2\n",
            b"A4\nB3",
            b"\n",
        ];
        let log = log_of(&chunks);
        let chunk = |i: usize| (log.commits[i].start, chunks[i]);
        let inputs = [(b'A', &a[..]), (b'B', &b[..])];
        // Samples after commits 1, 3, 4 and 6; when is B next committed from commit 2
        // (commit 4), and A from commit 6 (never).
        let sampler = || {
            KeySampler::new(
                vec![1, 3, 4, 6],
                vec![KeyQuery { from: 2, key: 1 }, KeyQuery { from: 6, key: 0 }],
            )
        };
        let mut one = sampler();
        let mut single = Checker::new(Semantics::ExactlyOnce, &inputs);
        single.feed_range_observed(&chunk, 0..7, &mut one);
        assert_eq!(
            one.samples,
            vec![
                (1, vec![6, 3]),
                (3, vec![9, 3]),
                (4, vec![9, 6]),
                (6, vec![12, 9])
            ]
        );
        assert_eq!(one.answers, vec![Some(4), None]);
        for middle in 1..7 {
            let mut two = sampler();
            let fraction = middle as f64 / 7.0;
            let halves = Checker::new(Semantics::ExactlyOnce, &inputs)
                .feed_halves_observed(&chunk, 7, middle, fraction, &mut two);
            assert_eq!(two.samples, one.samples, "cut before commit {middle}");
            assert_eq!(two.answers, one.answers, "cut before commit {middle}");
            assert_eq!(halves.cursors()[0].output_bytes(), 12);
        }
    }

    #[test]
    fn log_stamps_are_local_time_at_the_writers_offset() {
        let line = b"2026-11-29 02:47:29,018 DEBUG    [connectors.py:493] x";
        assert_eq!(log_time(line, 0), Some(1_795_920_449.018));
        assert_eq!(log_time(line, 3600), Some(1_795_920_449.018 - 3600.0));
        assert_eq!(log_time(b"2026-11-29 02:47:29.018 DEBUG", 0), None);
        assert_eq!(log_time(b"Traceback (most recent call last):", 0), None);
        assert_eq!(log_time(b"2026-13-29 02:47:29,018 DEBUG", 0), None);
    }

    #[test]
    fn sender_acks_come_from_acked_lines_only() {
        let log = b"Version 0.0.1 cookie x\n\
2026-11-29 02:47:28,023 DEBUG    [connectors.py:442] MultiSourceConnector added Stream(id=1, name='x', point_of_ref=0, is_open=False)\n\
2026-11-29 02:47:29,018 DEBUG    [connectors.py:493] MultiSourceConnector acked Stream(id=1, name='x', point_of_ref=65317, is_open=True)\n\
2026-11-29 02:47:30,018 DEBUG    [connectors.py:493] MultiSourceConnector acked Stream(id=1, name='x', point_of_ref=130634L, is_open=True)\n";
        assert_eq!(
            acked_offsets(log, 0),
            vec![(1_795_920_449.018, 65317), (1_795_920_450.018, 130_634)]
        );
    }

    #[test]
    fn rotated_gz_logs_are_read_and_ordered_before_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let sink = dir.path().join("sink-out");
        std::fs::create_dir(&sink).unwrap();
        let gz = dir.path().join("wallaroo.1.1795919257219.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut enc, b"old line\n").unwrap();
        enc.finish().unwrap();
        for name in [
            "wallaroo.1",
            "wallaroo.0",
            "sender.out.C",
            "input-file.C.txt",
            "wallaroo.x",
        ] {
            std::fs::write(dir.path().join(name), "x\n").unwrap();
        }
        std::fs::write(sink.join("stdout-stderr"), "x\n").unwrap();
        let logs = discover_logs(&[dir.path(), &sink]);
        let names: Vec<(String, String)> = logs
            .iter()
            .map(|l| {
                let name = l.path.file_name().unwrap().to_string_lossy().into_owned();
                (l.component.clone(), name)
            })
            .collect();
        let expected = [
            ("sink", "stdout-stderr"),
            ("initializer", "wallaroo.0"),
            ("worker1", "wallaroo.1.1795919257219.gz"),
            ("worker1", "wallaroo.1"),
            ("sender-C", "sender.out.C"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(names, expected);
        assert_eq!(read_log(&gz).unwrap(), b"old line\n");
    }

    #[test]
    fn an_excerpt_keeps_its_window_marks_alarms_and_caps_lines() {
        let mut log = String::new();
        for s in 0..40 {
            let level = if s == 20 { "ERROR   " } else { "INFO    " };
            log += &format!("2026-11-29 02:47:{s:02},000 {level} [w.rs:1] line {s}\n");
            if s == 21 {
                log += "  a continuation line\n";
            }
        }
        let at = log_time(b"2026-11-29 02:47:20,000", 0).unwrap();
        let e = excerpt(log.as_bytes(), (at - 10.0, at + 10.0), false, 0);
        assert_eq!(e.lines.len(), 22);
        assert_eq!(e.lines[0].number, 11);
        assert!(e.lines.iter().any(|l| l.text == "  a continuation line"));
        let alarms: Vec<_> = e.lines.iter().filter(|l| l.alarm).collect();
        assert_eq!(alarms.len(), 1);
        assert!(alarms[0].text.ends_with("line 20"));
        let only = excerpt(log.as_bytes(), (0.0, f64::MAX), true, 0);
        assert_eq!(only.lines.len(), 1);
        let long = format!("2026-11-29 02:47:20,000 INFO     {}\n", "x".repeat(5000)).repeat(400);
        let capped = excerpt(long.as_bytes(), (0.0, f64::MAX), false, 0);
        assert_eq!((capped.lines.len(), capped.omitted), (EXCERPT_LINES, 100));
        assert!(capped.lines[0].text.ends_with("… (5033 bytes)"));
    }

    #[test]
    fn downsampling_keeps_the_last_point_of_each_bucket() {
        let points: Vec<(f64, u64)> = (0..10_000).map(|i| (i as f64 * 0.5, i)).collect();
        let kept = downsample(&points);
        assert!(kept.len() <= MAX_POINTS + 1, "{}", kept.len());
        assert_eq!(kept.last(), points.last());
        assert!(kept.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
