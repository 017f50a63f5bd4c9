//! A violation in context: the lines around it in the key's input and in the key's
//! committed output, side by side, with the bytes where they differ; where the found
//! line came from; and, for a corrupt line, both lines byte by byte.

use std::path::PathBuf;

use crate::verify::classify::ViolationKind;
use crate::verify::{CommitRef, Verified};

/// Lines of context shown before and after the violation.
pub const CONTEXT_LINES: usize = 5;

/// The most bytes of a line shown in the context (its length is shown when cut).
pub const CONTEXT_BYTES: usize = 400;

/// One row of the context: the input's line and the output's line at the same place of
/// the key's stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextRow {
    /// Rows before the violation are negative, its own row is 0.
    pub offset: i64,
    /// 1-based input line number.
    pub input_line: Option<u64>,
    pub input: Option<Vec<u8>>,
    pub output: Option<Vec<u8>>,
}

impl ContextRow {
    pub fn differs(&self) -> bool {
        self.input != self.output
    }
}

/// One failing key, ready to show.
#[derive(Debug, Clone)]
pub struct ViolationView {
    pub key: String,
    pub kind: ViolationKind,
    pub lines: u64,
    pub input_path: PathBuf,
    pub input_line: u64,
    pub input_offset: u64,
    pub key_offset: u64,
    pub rows: Vec<ContextRow>,
    pub commit: Option<CommitRef>,
    pub joined: Option<CommitRef>,
    /// Whether a byte view helps: a corrupt line, or one with bytes that do not print.
    pub hex: bool,
}

/// The views of every key that failed.
pub fn views(verified: &Verified, keys: &[(u8, PathBuf)]) -> Vec<ViolationView> {
    verified
        .report
        .keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| {
            let v = k.violation.as_ref()?;
            let input = verified.input(i);
            let at = v.input_offset as usize;
            let mut rows = before_rows(input, at, v.input_line);
            let found_line = v
                .commit
                .as_ref()
                .and_then(|c| verified.origin_of(c))
                .map(|origin| {
                    let mut found =
                        vec![line_from(verified.chunk(origin.commit), origin, verified)];
                    let later = verified.key_lines_after(keys[i].0, i, origin, CONTEXT_LINES);
                    found.extend(later.iter().map(|l| shown(l)));
                    found
                })
                .unwrap_or_default();
            let after = input_lines(input, at, CONTEXT_LINES + 1);
            for n in 0..=CONTEXT_LINES {
                let input_line = after.get(n).cloned();
                let output = found_line.get(n).cloned();
                if input_line.is_none() && output.is_none() {
                    break;
                }
                rows.push(ContextRow {
                    offset: n as i64,
                    input_line: input_line.as_ref().map(|_| v.input_line + n as u64),
                    input: input_line,
                    output,
                });
            }
            let unprintable = |l: &Option<Vec<u8>>| {
                l.as_ref()
                    .is_some_and(|l| l.iter().any(|b| !(0x20..0x7f).contains(b)))
            };
            let hex = v.kind == ViolationKind::Corrupt
                || rows
                    .iter()
                    .any(|r| unprintable(&r.input) || unprintable(&r.output));
            Some(ViolationView {
                key: k.key.clone(),
                kind: v.kind,
                lines: v.lines,
                input_path: keys[i].1.clone(),
                input_line: v.input_line,
                input_offset: v.input_offset,
                key_offset: v.key_offset,
                rows,
                commit: v.commit.clone(),
                joined: v.joined.clone(),
                hex,
            })
        })
        .collect()
}

/// The rows before the violation: the verified lines, the same in input and output.
fn before_rows(input: &[u8], at: usize, line: u64) -> Vec<ContextRow> {
    let mut starts = Vec::new();
    let mut end = at;
    while starts.len() < CONTEXT_LINES && end > 0 {
        let start = memchr::memrchr(b'\n', &input[..end - 1]).map_or(0, |i| i + 1);
        starts.push((start, end));
        end = start;
    }
    starts
        .iter()
        .rev()
        .enumerate()
        .map(|(n, &(s, e))| {
            let back = (starts.len() - n) as u64;
            let text = shown(&input[s..e]);
            ContextRow {
                offset: -(back as i64),
                input_line: Some(line.saturating_sub(back)),
                input: Some(text.clone()),
                output: Some(text),
            }
        })
        .collect()
}

/// Up to `n` lines of `input` from `at`, without their LFs.
fn input_lines(input: &[u8], at: usize, n: usize) -> Vec<Vec<u8>> {
    let rest = &input[at.min(input.len())..];
    rest.split_inclusive(|&b| b == b'\n')
        .take(n)
        .map(shown)
        .collect()
}

/// The line of the committed output that starts at `origin` (as far as its commit's
/// chunk holds it).
fn line_from(chunk: &[u8], origin: crate::verify::LineOrigin, verified: &Verified) -> Vec<u8> {
    let start = verified.log.commits[origin.commit].start;
    let from = (origin.file_offset.saturating_sub(start) as usize).min(chunk.len());
    let rest = &chunk[from..];
    let line = memchr::memchr(b'\n', rest).map_or(rest, |n| &rest[..=n]);
    shown(line)
}

/// A line without its LF, cut at [`CONTEXT_BYTES`].
fn shown(line: &[u8]) -> Vec<u8> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line[..line.len().min(CONTEXT_BYTES)].to_vec()
}

/// The lengths of the common prefix and the common suffix of `a` and `b` (not
/// overlapping): what lies between them is where a reader's eye should land.
pub fn diff_span(a: &[u8], b: &[u8]) -> (usize, usize) {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let room = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    (prefix, suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_differing_middle_is_found_from_both_ends() {
        assert_eq!(diff_span(b"A0001 abcd", b"A0001 abXd"), (8, 1));
        assert_eq!(diff_span(b"A0001", b"A0001"), (5, 0));
        assert_eq!(diff_span(b"A01", b"A0101"), (3, 0));
        assert_eq!(diff_span(b"", b"x"), (0, 0));
    }

    #[test]
    fn rows_before_are_the_verified_lines() {
        let input = b"A1\nA2\nA3\nA4\nA5\nA6\nA7\n";
        let rows = before_rows(input, 18, 7);
        let texts: Vec<&[u8]> = rows.iter().map(|r| r.input.as_deref().unwrap()).collect();
        assert_eq!(texts, [&b"A2"[..], b"A3", b"A4", b"A5", b"A6"]);
        assert_eq!(rows[0].input_line, Some(2));
        assert_eq!(rows[0].offset, -5);
        assert!(rows.iter().all(|r| !r.differs()));
        assert_eq!(before_rows(input, 3, 2).len(), 1);
        assert_eq!(input_lines(input, 18, 6), vec![b"A7".to_vec()]);
    }
}
