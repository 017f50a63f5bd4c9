//! What the sink's timestamps leave open.
//!
//! A txnlog is append-only, so its own order is the order its commits happened in: its
//! timestamps are data, not an ordering. Time is needed only to interleave the files
//! (a key's lines move from one worker's file to another's on grow, shrink or a sender
//! reconnecting elsewhere), so the files' own sequences are merged by time
//! ([`merge_by_time`](super::commits::merge_by_time)) and a file's commits are never
//! reordered. The original verifier sorts every commit by time instead; on a clock that
//! steps back that reorders a file's own commits and gives a false verdict
//! (wallaroo-formats.md §7.4, "Ordering depends on the sink's wall clock").
//!
//! Where a txnlog's timestamps go back from `from` to `to` ([`inversions`]), the sink's
//! clock stepped back: it read up to `from` before the step and from `to` after it, so a
//! commit stamped between the two, in any file, may have come before the step or after
//! it. The stamps in `[to, from]` are doubtful; overlapping doubtful spans (of any file:
//! the sink stamps every txnlog with one clock) are one ([`doubtful_spans`]). Two commits
//! of different files stamped in one doubtful span may have happened in either order.
//! That matters only for a key with lines in both: such a key gets no verdict (the check
//! says so, exit 2) rather than one that rests on a guess ([`undetermined_keys`]).
//!
//! Limits, both documented in README.md: a step forward that never comes back, in one
//! file only, looks like idle time and cannot be told from it (a real step moves every
//! file of the sink together, which the merge follows); and a commit of a file that does
//! not itself step back, stamped just above the latest stamp seen before a step, is taken
//! as before the step.

use super::commits::{inversions, CommitLog};

/// The set of keys with a line in a chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySet([u64; 4]);

impl KeySet {
    /// The keys of `chunk`'s lines (a line's key is its first byte), among `checked`.
    pub fn of_chunk(chunk: &[u8], checked: &KeySet) -> KeySet {
        let mut set = KeySet::default();
        let mut at = 0;
        while at < chunk.len() {
            let key = chunk[at];
            if checked.contains(key) {
                set.insert(key);
            }
            at = match memchr::memchr(b'\n', &chunk[at..]) {
                Some(nl) => at + nl + 1,
                None => break,
            };
        }
        set
    }

    pub fn insert(&mut self, key: u8) {
        self.0[usize::from(key >> 6)] |= 1 << (key & 63);
    }

    pub fn contains(&self, key: u8) -> bool {
        self.0[usize::from(key >> 6)] & (1 << (key & 63)) != 0
    }

    fn minus(self, other: KeySet) -> KeySet {
        KeySet(std::array::from_fn(|i| self.0[i] & !other.0[i]))
    }

    fn keys(self) -> impl Iterator<Item = u8> {
        (0..=255u8).filter(move |k| self.contains(*k))
    }
}

/// A key whose order rests on timestamps that go back: commits `a` and `b` (of
/// different files, stamped in one doubtful span) both carry its lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Undetermined {
    pub key: u8,
    /// Commit indexes into the log's commits.
    pub a: usize,
    pub b: usize,
    /// The doubtful span both are stamped in.
    pub span: Span,
}

/// Doubtful stamps, `lo..=hi`, and where the stamps first go back into it (a file index
/// and its txnlog line).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub lo: f64,
    pub hi: f64,
    pub file: usize,
    pub line: usize,
    pub cause: Doubt,
}

/// Why stamps are doubtful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doubt {
    /// The clock read them both before and after it stepped back.
    SteppedBack,
    /// Commits of two files share one stamp (a coarse clock).
    Shared,
}

/// The spans of doubtful stamps, in order: each inversion's `[to, from]`, and each stamp
/// that commits of two files share (a coarse clock: which came first, the stamps cannot
/// say), overlapping ones joined.
pub fn doubtful_spans(log: &CommitLog) -> Vec<Span> {
    doubtful_spans_by(log, &by_time(log))
}

/// The log's commit indexes in stamp order.
fn by_time(log: &CommitLog) -> Vec<usize> {
    let mut by_time: Vec<usize> = (0..log.commits.len()).collect();
    by_time.sort_by(|&a, &b| log.commits[a].time.total_cmp(&log.commits[b].time));
    by_time
}

/// [`doubtful_spans`], given the commits in stamp order.
fn doubtful_spans_by(log: &CommitLog, by_time: &[usize]) -> Vec<Span> {
    let mut spans: Vec<Span> = inversions(log)
        .iter()
        .map(|i| Span {
            lo: i.to,
            hi: i.from,
            file: i.file,
            line: i.line,
            cause: Doubt::SteppedBack,
        })
        .collect();
    spans.extend(shared_stamps(log, by_time));
    spans.sort_by(|a, b| a.lo.total_cmp(&b.lo));
    let mut joined: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match joined.last_mut() {
            Some(last) if span.lo <= last.hi => last.hi = last.hi.max(span.hi),
            _ => joined.push(span),
        }
    }
    joined
}

/// Each stamp that commits of two different files share, as a span of its own.
fn shared_stamps(log: &CommitLog, by_time: &[usize]) -> Vec<Span> {
    let mut found = Vec::new();
    for pair in by_time.windows(2) {
        let (a, b) = (&log.commits[pair[0]], &log.commits[pair[1]]);
        if a.time == b.time
            && a.file != b.file
            && found.last().is_none_or(|s: &Span| s.lo != a.time)
        {
            found.push(Span {
                lo: a.time,
                hi: a.time,
                file: b.file,
                line: b.line,
                cause: Doubt::Shared,
            });
        }
    }
    found
}

/// The keys whose order the timestamps leave open, each with its first witness pair;
/// `keys_of(i)` gives the keys of commit `i`'s chunk, and is asked only for commits
/// stamped in a doubtful span.
pub fn undetermined_keys(
    log: &CommitLog,
    keys_of: &mut dyn FnMut(usize) -> KeySet,
) -> Vec<Undetermined> {
    // Sorted once: the shared stamps and each span's commits are found in it.
    let by_time = by_time(log);
    let spans = doubtful_spans_by(log, &by_time);
    if spans.is_empty() {
        return Vec::new();
    }
    let mut found: Vec<Undetermined> = Vec::new();
    let mut decided = KeySet::default();
    for span in spans {
        let from = by_time.partition_point(|&i| log.commits[i].time < span.lo);
        let to = by_time.partition_point(|&i| log.commits[i].time <= span.hi);
        // The first commit carrying each key in this span.
        let mut first: Vec<Option<usize>> = vec![None; 256];
        for &i in &by_time[from..to] {
            for key in keys_of(i).minus(decided).keys() {
                match first[usize::from(key)] {
                    None => first[usize::from(key)] = Some(i),
                    Some(a) if log.commits[a].file != log.commits[i].file => {
                        decided.insert(key);
                        found.push(Undetermined { key, a, b: i, span });
                    }
                    Some(_) => {}
                }
            }
        }
    }
    found.sort_by_key(|u| u.key);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::commits::{merge_by_time, FileCommit, SinkFile};

    fn log(files: &[&[f64]]) -> CommitLog {
        let mut log = CommitLog::default();
        let mut per_file = Vec::new();
        for (f, times) in files.iter().enumerate() {
            log.files.push(SinkFile {
                name: format!("output.w{f}"),
                output: format!("output.w{f}").into(),
                txnlog: None,
                output_len: None,
            });
            per_file.push(
                times
                    .iter()
                    .enumerate()
                    .map(|(i, &time)| FileCommit {
                        txn_id: format!("c{i}"),
                        time,
                        end: (i as u64 + 1) * 10,
                        line: i + 1,
                    })
                    .collect(),
            );
        }
        for (file, c) in merge_by_time(&log.clone(), per_file) {
            log.push(file, c);
        }
        log
    }

    fn order(log: &CommitLog) -> Vec<(usize, usize)> {
        log.commits.iter().map(|c| (c.file, c.line)).collect()
    }

    #[test]
    fn a_file_s_own_order_is_kept_and_files_interleave_by_time() {
        let log = log(&[&[1.0, 2.0, 0.5, 3.0], &[1.5, 2.5]]);
        assert_eq!(
            order(&log),
            [(0, 1), (1, 1), (0, 2), (0, 3), (1, 2), (0, 4)]
        );
        let inverted = inversions(&log);
        assert_eq!(inverted.len(), 1);
        assert_eq!((inverted[0].file, inverted[0].line), (0, 3));
        assert_eq!((inverted[0].from, inverted[0].to), (2.0, 0.5));
    }

    /// Overlapping spans of two files are one: the sink has one clock.
    #[test]
    fn doubtful_spans_of_all_files_are_joined() {
        let log = log(&[&[1.0, 9.9, 7.5, 8.0], &[5.0, 10.0, 7.6, 20.0, 19.0]]);
        let spans: Vec<(f64, f64)> = doubtful_spans(&log).iter().map(|s| (s.lo, s.hi)).collect();
        assert_eq!(spans, [(7.5, 10.0), (19.0, 20.0)]);
    }

    /// A key with lines in two files' commits stamped in one doubtful span has no
    /// order; a key in one file only, or whose other commits are outside, has one.
    #[test]
    fn only_a_key_in_two_files_inside_a_span_is_undetermined() {
        let log = log(&[&[1.0, 9.9, 7.5, 8.0], &[5.0, 9.0, 12.0]]);
        let at = |file: usize, line: usize| {
            log.commits
                .iter()
                .position(|c| c.file == file && c.line == line)
                .unwrap()
        };
        let (w0_99, w1_9, w1_5) = (at(0, 2), at(1, 2), at(1, 1));
        let mut asked = Vec::new();
        let mut keys_of = |i: usize| {
            asked.push(i);
            let mut set = KeySet::default();
            set.insert(b'A' + log.commits[i].file as u8); // A in file 0, B in file 1
            if i == w0_99 || i == w1_9 || i == w1_5 {
                set.insert(b'K');
            }
            set
        };
        let found = undetermined_keys(&log, &mut keys_of);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key, b'K');
        assert_eq!(
            [found[0].a, found[0].b]
                .iter()
                .collect::<std::collections::BTreeSet<_>>(),
            [w1_9, w0_99].iter().collect()
        );
        assert!(
            !asked.contains(&w1_5),
            "a commit outside every span is not read"
        );
    }

    #[test]
    fn keys_of_a_chunk_are_its_lines_first_bytes() {
        let mut checked = KeySet::default();
        checked.insert(b'A');
        checked.insert(b'B');
        let set = KeySet::of_chunk(b"A1\nC2\nB3\nA4", &checked);
        assert!(set.contains(b'A') && set.contains(b'B') && !set.contains(b'C'));
        assert_eq!(KeySet::of_chunk(b"", &checked), KeySet::default());
    }
}
