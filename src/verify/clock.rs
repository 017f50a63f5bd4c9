//! The commit order, without trusting the sink's clock.
//!
//! A txnlog is append-only, so its own order is the order its commits happened in: its
//! timestamps are data, not an ordering. Time is needed only to interleave the files
//! (a key's lines move from one worker's file to another's on grow, shrink or a sender
//! reconnecting elsewhere), so the files' own sequences are merged by time
//! ([`merge_by_time`](super::commits::merge_by_time)) and a file's commits are never reordered. The original verifier
//! sorts every commit by time instead; on a clock that steps back that reorders a
//! file's own commits and gives a false verdict (wallaroo-formats.md §7.4, "Ordering
//! depends on the sink's wall clock").
//!
//! Where a file's timestamps go back ([`inversions`]), the merge still needs a guess for
//! the commits of other files stamped inside the gap: a commit `b` of another file
//! stamped `t` belongs after this file's commits stamped before `t` and before those
//! stamped after it, and when one stamped after `t` comes first in the file, no place
//! satisfies both. Those pairs' order is undetermined ([`undetermined_keys`]); it
//! matters only for a key with lines on both sides. Such a key gets no verdict (the
//! check says so, exit 2) rather than one that depends on the guess.
//!
//! Limit: a step forward that never comes back, in one file only, looks like idle time
//! and cannot be told from it. The sink stamps every txnlog with one clock, so a real
//! step moves all its files together, which the merge follows.

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

    fn intersection(self, other: KeySet) -> KeySet {
        KeySet(std::array::from_fn(|i| self.0[i] & other.0[i]))
    }

    fn minus(self, other: KeySet) -> KeySet {
        KeySet(std::array::from_fn(|i| self.0[i] & !other.0[i]))
    }

    fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    fn keys(self) -> impl Iterator<Item = u8> {
        (0..=255u8).filter(move |k| self.contains(*k))
    }
}

/// A key whose order rests on timestamps that go back: commit `b` (another file's) may
/// belong before or after commit `a`, and both carry its lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Undetermined {
    pub key: u8,
    /// Commit indexes into the log's commits.
    pub a: usize,
    pub b: usize,
}

/// The keys whose order the timestamps leave open, each with its first witness pair;
/// `keys_of(i)` gives the keys of commit `i`'s chunk. Only commits that meet a file's
/// inversion are read.
pub fn undetermined_keys(
    log: &CommitLog,
    keys_of: &mut dyn FnMut(usize) -> KeySet,
) -> Vec<Undetermined> {
    let mut found: Vec<Undetermined> = Vec::new();
    let mut seen = KeySet::default();
    // Computed once per commit, and only for commits that meet an inversion.
    let mut cache: Vec<Option<KeySet>> = vec![None; log.commits.len()];
    let mut keys = |i: usize| *cache[i].get_or_insert_with(|| keys_of(i));
    for file in files_that_go_back(log) {
        let own = FileTimes::of(log, file);
        for (b, commit) in log.commits.iter().enumerate() {
            if commit.file == file {
                continue;
            }
            let Some(range) = own.undetermined_against(commit.time) else {
                continue;
            };
            let b_keys = keys(b).minus(seen);
            if b_keys.is_empty() {
                continue;
            }
            for &a in &own.commits[range] {
                for key in keys(a).intersection(b_keys).minus(seen).keys() {
                    seen.insert(key);
                    found.push(Undetermined { key, a, b });
                }
            }
        }
    }
    found.sort_by_key(|u| u.key);
    found
}

/// The files whose timestamps go back somewhere.
fn files_that_go_back(log: &CommitLog) -> Vec<usize> {
    let mut files: Vec<usize> = inversions(log).iter().map(|i| i.file).collect();
    files.dedup();
    files.sort_unstable();
    files.dedup();
    files
}

/// One file's commits with the running highest and the lowest-from-here of their times.
struct FileTimes {
    commits: Vec<usize>,
    /// `highest[i]`: the latest time of its commits 0..=i (never falls).
    highest: Vec<f64>,
    /// `lowest[i]`: the earliest time of its commits i.. (never falls either).
    lowest: Vec<f64>,
}

impl FileTimes {
    fn of(log: &CommitLog, file: usize) -> FileTimes {
        let commits: Vec<usize> = (0..log.commits.len())
            .filter(|&i| log.commits[i].file == file)
            .collect();
        let times: Vec<f64> = commits.iter().map(|&i| log.commits[i].time).collect();
        let highest = times
            .iter()
            .scan(f64::NEG_INFINITY, |h, &t| {
                *h = h.max(t);
                Some(*h)
            })
            .collect();
        let mut lowest: Vec<f64> = times
            .iter()
            .rev()
            .scan(f64::INFINITY, |l, &t| {
                *l = l.min(t);
                Some(*l)
            })
            .collect();
        lowest.reverse();
        FileTimes {
            commits,
            highest,
            lowest,
        }
    }

    /// This file's commits whose order against a commit stamped `t` the timestamps leave
    /// open: from the first one stamped after `t` up to the last one stamped before it,
    /// when the first comes before the last (None when `t` has one place in the file).
    fn undetermined_against(&self, t: f64) -> Option<std::ops::Range<usize>> {
        let first_after = self.highest.partition_point(|&h| h <= t);
        let past_last_before = self.lowest.partition_point(|&l| l < t);
        (first_after < past_last_before).then_some(first_after..past_last_before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::commits::{merge_by_time, Commit, FileCommit, Inversion, SinkFile};

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
        log.commits.iter().map(|c: &Commit| (c.file, c.line)).collect()
    }

    #[test]
    fn a_file_s_own_order_is_kept_and_files_interleave_by_time() {
        let log = log(&[&[1.0, 2.0, 0.5, 3.0], &[1.5, 2.5]]);
        assert_eq!(
            order(&log),
            [(0, 1), (1, 1), (0, 2), (0, 3), (1, 2), (0, 4)]
        );
        assert_eq!(
            inversions(&log),
            [Inversion {
                file: 0,
                line: 3,
                from: 2.0,
                to: 0.5
            }]
        );
    }

    #[test]
    fn only_commits_stamped_inside_a_gap_are_undetermined() {
        let log = log(&[&[1.0, 2.0, 0.5, 3.0], &[0.2, 1.5, 2.5]]);
        let own = FileTimes::of(&log, 0);
        // 1.5: after 1.0 and 0.5, before 2.0, but 2.0 comes before 0.5 in the file.
        assert_eq!(own.undetermined_against(1.5), Some(1..3));
        assert_eq!(own.undetermined_against(0.2), None);
        assert_eq!(own.undetermined_against(2.5), None);
        // Key B in file 0's second commit and in file 1's 1.5 commit: undetermined.
        let b = log.commits.iter().position(|c| c.file == 1 && c.line == 2).unwrap();
        let a = log.commits.iter().position(|c| c.file == 0 && c.line == 2).unwrap();
        let mut keys_of = |i: usize| {
            let mut set = KeySet::default();
            if i == a || i == b {
                set.insert(b'B');
            }
            set.insert(b'A' + log.commits[i].file as u8 * 2);
            set
        };
        let found = undetermined_keys(&log, &mut keys_of);
        assert_eq!(found, [Undetermined { key: b'B', a, b }]);
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
