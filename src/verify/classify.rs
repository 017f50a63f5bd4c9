//! Classifies the first violation of a key (`duplicate`, `loss`, `reorder`, `corrupt`).
//!
//! Let p be the input offset where the key's output O first differs from its input I, and
//! f the output line found there:
//! - `duplicate`: f is an input line already delivered (before p); `lines` counts how many
//!   consecutive output lines repeat delivered input from there.
//! - `loss`: f is a later input line (at j > p) and none of the lines I[p..j) appear later
//!   in O; `lines` is how many were lost.
//! - `reorder`: as loss, but some of I[p..j) do appear later in O.
//! - `corrupt`: f is not an input line at all, or is a torn fragment.
//!
//! This runs only for a key that failed, so it may index that key's input (a map from line
//! to offsets) and collect that key's later output lines.

use std::borrow::Cow;
use std::collections::HashSet;

use super::checker::{line_index, Mismatch, Semantics};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationKind {
    Loss,
    Duplicate,
    Reorder,
    Corrupt,
}

impl ViolationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::Loss => "loss",
            ViolationKind::Duplicate => "duplicate",
            ViolationKind::Reorder => "reorder",
            ViolationKind::Corrupt => "corrupt",
        }
    }
}

/// The classification of a mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub kind: ViolationKind,
    /// Lines repeated (duplicate), lost (loss), jumped over (reorder), or 1 (corrupt).
    pub lines: u64,
    /// Input offset of the input line equal to the found line, if any.
    pub found_at: Option<u64>,
}

/// Classifies `mismatch` of a key with input `input`; `later` are the key's output lines
/// that follow the found line, in order.
pub fn classify(
    input: &[u8],
    mismatch: &Mismatch,
    semantics: Semantics,
    later: &[Cow<'_, [u8]>],
) -> Classification {
    let corrupt = Classification {
        kind: ViolationKind::Corrupt,
        lines: 1,
        found_at: None,
    };
    if mismatch.torn {
        return corrupt;
    }
    let index = line_index(input);
    let Some(offsets) = index.get(mismatch.found.as_slice()) else {
        return corrupt;
    };
    let p = mismatch.input_offset as usize;
    // Past this offset every line was delivered; a found line at or before it repeats.
    let delivered = match semantics {
        Semantics::ExactlyOnce => p,
        Semantics::AtLeastOnce => mismatch.delivered_offset as usize,
    };
    let earlier = offsets.iter().rev().copied().find(|&o| o < delivered);
    let forward = offsets.iter().copied().find(|&o| o > delivered.max(p));
    let run = |j: usize| repeat_run(input, j, &mismatch.found, later, usize::MAX);
    let duplicate = match (earlier, forward) {
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (Some(e), Some(f)) => run(e) >= run(f),
        (None, None) => return corrupt,
    };
    if duplicate {
        let j = earlier.expect("an earlier occurrence");
        let lines = repeat_run(input, j, &mismatch.found, later, delivered) as u64;
        return Classification {
            kind: ViolationKind::Duplicate,
            lines,
            found_at: Some(j as u64),
        };
    }
    let j = forward.expect("a later occurrence");
    let skipped_from = delivered.max(p);
    let skipped: HashSet<&[u8]> = lines_of(&input[skipped_from..j]).collect();
    let lines = lines_of(&input[skipped_from..j]).count() as u64;
    let reappears = later.iter().any(|l| skipped.contains(l.as_ref()));
    let kind = if reappears {
        ViolationKind::Reorder
    } else {
        ViolationKind::Loss
    };
    Classification {
        kind,
        lines,
        found_at: Some(j as u64),
    }
}

/// How many output lines, starting with `found` and continuing with `later`, equal the
/// input lines from offset `j` on, stopping before offset `limit`.
fn repeat_run(
    input: &[u8],
    j: usize,
    found: &[u8],
    later: &[Cow<'_, [u8]>],
    limit: usize,
) -> usize {
    let mut at = j;
    let mut count = 0;
    for line in std::iter::once(found).chain(later.iter().map(|l| l.as_ref())) {
        if at >= limit || !input[at..].starts_with(line) {
            break;
        }
        at += line.len();
        count += 1;
    }
    count
}

/// The complete lines of `bytes`, each with its LF.
pub fn lines_of(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', bytes).map(move |end| {
        let line = &bytes[start..=end];
        start = end + 1;
        line
    })
}

/// The line of `input` that starts at `offset` (with its LF), or None at the end.
pub fn line_at(input: &[u8], offset: u64) -> Option<&[u8]> {
    let rest = input.get(offset as usize..).filter(|r| !r.is_empty())?;
    Some(match memchr::memchr(b'\n', rest) {
        Some(n) => &rest[..=n],
        None => rest,
    })
}

/// 1-based line number of the line starting at `offset`.
pub fn line_number(input: &[u8], offset: u64) -> u64 {
    let end = (offset as usize).min(input.len());
    memchr::memchr_iter(b'\n', &input[..end]).count() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::checker::{Checker, LineOrigin};

    fn first_violation(
        semantics: Semantics,
        input: &[u8],
        output: &[u8],
    ) -> Option<Classification> {
        let mut checker = Checker::new(semantics, &[(b'A', input)]);
        checker.feed(0, 0, output);
        checker.finish();
        let m = checker.cursors()[0].mismatch()?.clone();
        let start = m.origin.file_offset as usize + m.found.len();
        let later: Vec<Cow<[u8]>> = lines_of(&output[start..]).map(Cow::Borrowed).collect();
        Some(classify(input, &m, semantics, &later))
    }

    const I: &[u8] = b"A0\nA1\nA2\nA3\nA4\nA5\n";

    #[test]
    fn classifies_each_kind() {
        let c =
            |out: &[u8]| first_violation(Semantics::ExactlyOnce, I, out).map(|c| (c.kind, c.lines));
        assert_eq!(c(b"A0\nA1\nA2\n"), None);
        assert_eq!(
            c(b"A0\nA1\nA0\nA1\nA2\n"),
            Some((ViolationKind::Duplicate, 2))
        );
        assert_eq!(c(b"A0\nA1\nA1\nA2\n"), Some((ViolationKind::Duplicate, 1)));
        assert_eq!(c(b"A0\nA3\nA4\n"), Some((ViolationKind::Loss, 2)));
        assert_eq!(c(b"A0\nA2\nA1\nA3\n"), Some((ViolationKind::Reorder, 1)));
        assert_eq!(c(b"A0\nA1\nAx\nA3\n"), Some((ViolationKind::Corrupt, 1)));
        assert_eq!(c(b"A0\nA1\nA2"), Some((ViolationKind::Corrupt, 1)));
        assert_eq!(
            c(b"A0\nA1\nA2\nA3\nA4\nA5\nA5\n"),
            Some((ViolationKind::Duplicate, 1))
        );
    }

    #[test]
    fn at_least_once_allows_replays_only() {
        let c =
            |out: &[u8]| first_violation(Semantics::AtLeastOnce, I, out).map(|c| (c.kind, c.lines));
        assert_eq!(c(b"A0\nA1\nA2\nA1\nA2\nA3\n"), None);
        assert_eq!(c(b"A0\nA1\nA2\nA1\nA4\n"), Some((ViolationKind::Loss, 1)));
        assert_eq!(c(b"A0\nA2\nA1\n"), Some((ViolationKind::Reorder, 1)));
        assert_eq!(c(b"A0\nA9\n"), Some((ViolationKind::Corrupt, 1)));
    }

    #[test]
    fn helpers() {
        assert_eq!(line_at(I, 3), Some(&b"A1\n"[..]));
        assert_eq!(line_at(I, 18), None);
        assert_eq!(line_number(I, 6), 3);
        let _ = LineOrigin {
            commit: 0,
            file_offset: 0,
        };
    }
}
