//! The incremental checker core: committed chunks go in, in commit order; per-key cursors
//! into the inputs come out, with the first mismatch of each key.
//!
//! `verify` feeds every chunk once and `watch` feeds them as they land; both use this one
//! type. Each routing key has a [`KeyCursor`]: the input offset of the next expected line,
//! the furthest input offset delivered, and how many bytes of that key's output stream
//! were seen.
//!
//! How it stays fast: a chunk is not split into lines up front. At a line start whose key
//! byte is a checked key, the chunk is compared with that key's input at its cursor with a
//! word-wise common-prefix scan. Because every input line starts with its key byte, the
//! matching run can only end where a line of another key starts, or at a real difference;
//! the run is accepted up to its last complete line. Only a line that does not match is
//! looked at on its own (the slow path), so the work is proportional to the bytes fed and
//! nothing is buffered but a line torn across chunks.

use std::collections::HashMap;

/// What the checked system promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Semantics {
    /// Each key's output is exactly its input (or a prefix), nothing repeated.
    #[default]
    ExactlyOnce,
    /// After a restart a key's output may resume from any line already delivered;
    /// loss, reorder and corruption are still violations.
    AtLeastOnce,
}

impl Semantics {
    pub fn as_str(self) -> &'static str {
        match self {
            Semantics::ExactlyOnce => "exactly-once",
            Semantics::AtLeastOnce => "at-least-once",
        }
    }
}

/// Where an output line came from: the index of its commit (as the caller numbers them)
/// and its byte offset in that commit's output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineOrigin {
    pub commit: usize,
    pub file_offset: u64,
}

/// The first output line of a key that broke the promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Offset of the line in the key's output stream.
    pub key_offset: u64,
    /// Input offset of the line that was expected there.
    pub input_offset: u64,
    /// Input offset up to which every line had been delivered (at-least-once high water;
    /// equal to `input_offset` for exactly-once).
    pub delivered_offset: u64,
    /// The line found, with its LF when it has one; only its first [`KEPT_PREFIX`] bytes
    /// when it is longer than every line of the key's input (so it cannot be one of them,
    /// and keeping it whole would cost memory in the line's size, not the chunk's).
    pub found: Vec<u8>,
    /// The found line's full length in bytes (LF included).
    pub found_len: u64,
    /// The line was an unterminated fragment at the end of the committed stream.
    pub torn: bool,
    pub origin: LineOrigin,
    /// Where the line's rest came from when a later commit's chunk continued it.
    pub continued: Option<LineOrigin>,
}

/// A line torn at the end of one commit's chunk and continued by a later commit's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Join {
    /// Where the torn line starts.
    pub torn: LineOrigin,
    /// Where its continuation starts.
    pub continued: LineOrigin,
    /// The torn line's first byte, and the continuation's.
    pub torn_key: u8,
    pub continued_key: u8,
}

/// At most this many joins are remembered for the report.
const JOINS_KEPT: usize = 16;

/// Per-key verification state.
#[derive(Debug, Clone)]
pub struct KeyCursor<'i> {
    pub key: u8,
    input: &'i [u8],
    /// Input offset of the next expected line.
    next: usize,
    /// Every input line before this offset has been delivered at least once.
    delivered: usize,
    /// Bytes of this key's output stream seen so far.
    emitted: u64,
    mismatch: Option<Mismatch>,
    /// Line -> input offsets, built on the first replay (at-least-once only).
    replay_index: Option<HashMap<&'i [u8], Vec<usize>>>,
    /// The longest input line (LF included), measured the first time a line longer than
    /// [`SHORT_LINE`] has to be kept.
    longest_line: Option<usize>,
}

/// Lines up to this long are kept whole without measuring the input's longest line.
const SHORT_LINE: usize = 64 << 10;

/// How much of a line that cannot be an input line is kept for the report.
pub const KEPT_PREFIX: usize = 256;

impl<'i> KeyCursor<'i> {
    fn new(key: u8, input: &'i [u8]) -> Self {
        KeyCursor {
            key,
            input,
            next: 0,
            delivered: 0,
            emitted: 0,
            mismatch: None,
            replay_index: None,
            longest_line: None,
        }
    }

    /// The longest line of the input (LF included), measured once.
    fn longest_line(&mut self) -> usize {
        let input = self.input;
        *self.longest_line.get_or_insert_with(|| longest_line(input))
    }

    /// How many bytes of a line of this key need keeping: all of it while it could still
    /// equal an input line, a prefix for the report once it cannot.
    fn keep_limit(&mut self, len: usize) -> usize {
        if len <= SHORT_LINE || len <= self.longest_line() {
            len
        } else {
            KEPT_PREFIX
        }
    }

    /// Input bytes delivered (verified) so far.
    pub fn verified_bytes(&self) -> u64 {
        self.delivered as u64
    }

    /// Bytes of this key's output stream seen so far.
    pub fn output_bytes(&self) -> u64 {
        self.emitted
    }

    pub fn input(&self) -> &'i [u8] {
        self.input
    }

    pub fn mismatch(&self) -> Option<&Mismatch> {
        self.mismatch.as_ref()
    }

    /// True when the whole input was delivered and nothing is wrong.
    pub fn complete(&self) -> bool {
        self.mismatch.is_none() && self.delivered == self.input.len()
    }

    fn advance(&mut self, bytes: usize) {
        self.next += bytes;
        self.emitted += bytes as u64;
        self.delivered = self.delivered.max(self.next);
    }

    /// Checks one complete line (or a torn fragment) against the input at the cursor;
    /// `len` is the line's full length, of which `line` may hold only a prefix (a carried
    /// line too long to be an input line).
    fn check_line(
        &mut self,
        line: &[u8],
        len: u64,
        origin: LineOrigin,
        torn: bool,
        semantics: Semantics,
    ) {
        if self.mismatch.is_some() {
            self.emitted += len;
            return;
        }
        let whole = line.len() as u64 == len;
        let rest = &self.input[self.next..];
        let matches = if torn {
            // The committed stream ends here: a fragment that is exactly the rest of an
            // input whose last line has no LF is that line, delivered.
            rest == line
        } else {
            rest.starts_with(line) && line.last() == Some(&b'\n')
        };
        if whole && matches {
            self.advance(line.len());
            return;
        }
        if semantics == Semantics::AtLeastOnce && !torn && whole {
            if let Some(offset) = self.replay_target(line) {
                self.next = offset + line.len();
                self.delivered = self.delivered.max(self.next);
                self.emitted += len;
                return;
            }
        }
        let kept = self
            .keep_limit(len.min(usize::MAX as u64) as usize)
            .min(line.len());
        self.mismatch = Some(Mismatch {
            key_offset: self.emitted,
            input_offset: self.next as u64,
            delivered_offset: self.delivered as u64,
            found: line[..kept].to_vec(),
            found_len: len,
            torn,
            origin,
            continued: None,
        });
        self.emitted += len;
    }

    /// At-least-once: the latest input offset of `line` that does not skip undelivered
    /// input (at or before the delivered high water).
    fn replay_target(&mut self, line: &[u8]) -> Option<usize> {
        let input = self.input;
        let index = self.replay_index.get_or_insert_with(|| line_index(input));
        let offsets = index.get(line)?;
        let limit = self.delivered;
        offsets.iter().rev().copied().find(|&o| o <= limit)
    }
}

/// The length of the longest line of `input`, LF included.
pub fn longest_line(input: &[u8]) -> usize {
    let mut start = 0;
    let mut longest = 0;
    for end in memchr::memchr_iter(b'\n', input) {
        longest = longest.max(end + 1 - start);
        start = end + 1;
    }
    longest.max(input.len() - start)
}

/// Maps every complete line of `input` (with its LF) to its offsets, ascending.
pub fn line_index(input: &[u8]) -> HashMap<&[u8], Vec<usize>> {
    let mut index: HashMap<&[u8], Vec<usize>> = HashMap::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', input) {
        index.entry(&input[start..=end]).or_default().push(start);
        start = end + 1;
    }
    index
}

/// A line torn across two chunks, waiting for its end. Only as much of it is kept as
/// could still matter (see [`KeyCursor::keep_limit`]); `len` counts all of it.
#[derive(Debug, Clone)]
struct Carry {
    bytes: Vec<u8>,
    len: u64,
    origin: LineOrigin,
    /// Where a later commit's chunk first continued it.
    continued: Option<LineOrigin>,
}

const NO_KEY: u8 = u8::MAX;

/// The checker: one cursor per checked key, fed committed chunks in commit order.
#[derive(Debug, Clone)]
pub struct Checker<'i> {
    semantics: Semantics,
    /// Key byte -> index into `cursors`, or `NO_KEY`.
    slots: [u8; 256],
    cursors: Vec<KeyCursor<'i>>,
    carry: Option<Carry>,
    /// Lines whose first byte is no checked key (the original's `grep ^K` ignores them).
    other_lines: u64,
    /// The first [`JOINS_KEPT`] lines continued across commits.
    joins: Vec<Join>,
}

impl<'i> Checker<'i> {
    /// The most keys one checker takes (one slot value is reserved for "no key").
    pub const MAX_KEYS: usize = NO_KEY as usize;

    /// `inputs` are (key byte, input bytes); keys must be distinct and at most
    /// [`Self::MAX_KEYS`] (callers validate both; see `select_inputs`).
    pub fn new(semantics: Semantics, inputs: &[(u8, &'i [u8])]) -> Self {
        assert!(inputs.len() <= Self::MAX_KEYS, "too many keys");
        let mut slots = [NO_KEY; 256];
        let mut cursors = Vec::with_capacity(inputs.len());
        for (i, &(key, input)) in inputs.iter().enumerate() {
            assert_eq!(slots[usize::from(key)], NO_KEY, "duplicate key");
            slots[usize::from(key)] = i as u8;
            cursors.push(KeyCursor::new(key, input));
        }
        Checker {
            semantics,
            slots,
            cursors,
            carry: None,
            other_lines: 0,
            joins: Vec::new(),
        }
    }

    /// The first lines that were torn at the end of a commit's chunk and continued by a
    /// later commit's (the report names those whose two parts are in different files).
    pub fn joins(&self) -> &[Join] {
        &self.joins
    }

    pub fn semantics(&self) -> Semantics {
        self.semantics
    }

    pub fn cursors(&self) -> &[KeyCursor<'i>] {
        &self.cursors
    }

    /// Lines seen whose first byte is not a checked key.
    pub fn other_lines(&self) -> u64 {
        self.other_lines
    }

    /// Feeds one committed chunk: `chunk` starts at byte `file_offset` of the output file
    /// of commit number `commit`.
    pub fn feed(&mut self, commit: usize, file_offset: u64, chunk: &[u8]) {
        let origin_at = |pos: usize| LineOrigin {
            commit,
            file_offset: file_offset + pos as u64,
        };
        let mut pos = 0usize;
        if let Some(mut carry) = self.carry.take() {
            if carry.continued.is_none() && commit != carry.origin.commit && !chunk.is_empty() {
                carry.continued = Some(origin_at(0));
                if self.joins.len() < JOINS_KEPT {
                    self.joins.push(Join {
                        torn: carry.origin,
                        continued: origin_at(0),
                        torn_key: carry.bytes[0],
                        continued_key: chunk[0],
                    });
                }
            }
            let end = memchr::memchr(b'\n', chunk);
            let piece = end.map_or(chunk, |n| &chunk[..=n]);
            self.extend_carry(&mut carry, piece);
            match end {
                None => {
                    self.carry = Some(carry);
                    return;
                }
                Some(n) => {
                    self.route_carry(&carry, false);
                    pos = n + 1;
                }
            }
        }
        while pos < chunk.len() {
            let rest = &chunk[pos..];
            let slot = self.slots[usize::from(rest[0])];
            if slot != NO_KEY && self.cursors[usize::from(slot)].mismatch.is_none() {
                let cursor = &mut self.cursors[usize::from(slot)];
                let expected = &cursor.input[cursor.next..];
                let matched = common_prefix_len(rest, expected);
                // Accept the run up to its last complete line.
                let boundary = if matched > 0 && rest[matched - 1] == b'\n' {
                    matched
                } else {
                    memchr::memrchr(b'\n', &rest[..matched]).map_or(0, |i| i + 1)
                };
                if boundary > 0 {
                    cursor.advance(boundary);
                    pos += boundary;
                    continue;
                }
            }
            // The line at `pos` is another key's, a key already in violation, or a
            // mismatch: handle it alone.
            match memchr::memchr(b'\n', rest) {
                Some(n) => {
                    self.route_line(&rest[..=n], n as u64 + 1, origin_at(pos), false);
                    pos += n + 1;
                }
                None => {
                    let mut carry = Carry {
                        bytes: Vec::new(),
                        len: 0,
                        origin: origin_at(pos),
                        continued: None,
                    };
                    self.extend_carry(&mut carry, rest);
                    self.carry = Some(carry);
                    break;
                }
            }
        }
    }

    /// Ends the stream: a line still torn at the end of the committed stream is checked as
    /// a fragment (it matches only an input's last line that has no LF).
    pub fn finish(&mut self) {
        if let Some(carry) = self.carry.take() {
            self.route_carry(&carry, true);
        }
    }

    /// Checks a carried line, noting in its mismatch (if it makes one) where it was
    /// continued.
    fn route_carry(&mut self, carry: &Carry, torn: bool) {
        self.route_line(&carry.bytes, carry.len, carry.origin, torn);
        let slot = self.slots[usize::from(carry.bytes[0])];
        if slot != NO_KEY {
            if let Some(m) = self.cursors[usize::from(slot)].mismatch.as_mut() {
                if m.origin == carry.origin {
                    m.continued = carry.continued;
                }
            }
        }
    }

    /// Whether key `i`'s whole input is delivered and nothing is wrong, counting a line
    /// still torn at the end of the stream that is exactly the input's unterminated last
    /// line (as [`Checker::finish`] would).
    pub fn complete(&self, i: usize) -> bool {
        let cursor = &self.cursors[i];
        match &self.carry {
            Some(c) if c.bytes.first() == Some(&cursor.key) && cursor.mismatch.is_none() => {
                c.bytes.len() as u64 == c.len && cursor.input[cursor.next..] == c.bytes[..]
            }
            _ => cursor.complete(),
        }
    }

    /// Appends `piece` to a carried line, keeping only what could still matter: nothing
    /// past the key byte for a line of no checked key or of a key already in violation.
    fn extend_carry(&mut self, carry: &mut Carry, piece: &[u8]) {
        carry.len += piece.len() as u64;
        let first = carry.bytes.first().or(piece.first()).copied();
        let limit = match first.map(|b| self.slots[usize::from(b)]) {
            Some(slot) if slot != NO_KEY => {
                let cursor = &mut self.cursors[usize::from(slot)];
                if cursor.mismatch.is_some() {
                    1
                } else {
                    cursor.keep_limit(carry.len.min(usize::MAX as u64) as usize)
                }
            }
            _ => 1,
        };
        let room = limit.saturating_sub(carry.bytes.len());
        carry
            .bytes
            .extend_from_slice(&piece[..room.min(piece.len())]);
    }

    fn route_line(&mut self, line: &[u8], len: u64, origin: LineOrigin, torn: bool) {
        let slot = self.slots[usize::from(line[0])];
        if slot == NO_KEY {
            self.other_lines += 1;
            return;
        }
        let semantics = self.semantics;
        self.cursors[usize::from(slot)].check_line(line, len, origin, torn, semantics);
    }
}

/// Length of the longest common prefix of `a` and `b`, compared a word at a time.
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut i = 0;
    while i + 32 <= n {
        let word =
            |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
        let x0 = word(a, i) ^ word(b, i);
        let x1 = word(a, i + 8) ^ word(b, i + 8);
        let x2 = word(a, i + 16) ^ word(b, i + 16);
        let x3 = word(a, i + 24) ^ word(b, i + 24);
        if (x0 | x1 | x2 | x3) != 0 {
            for (k, x) in [x0, x1, x2, x3].into_iter().enumerate() {
                if x != 0 {
                    return i + 8 * k + (x.trailing_zeros() / 8) as usize;
                }
            }
        }
        i += 32;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        semantics: Semantics,
        inputs: &[(u8, &[u8])],
        chunks: &[&[u8]],
    ) -> Vec<(u64, Option<Mismatch>)> {
        let mut checker = Checker::new(semantics, inputs);
        for (i, chunk) in chunks.iter().enumerate() {
            checker.feed(i, 0, chunk);
        }
        checker.finish();
        checker
            .cursors()
            .iter()
            .map(|c| (c.verified_bytes(), c.mismatch().cloned()))
            .collect()
    }

    /// Issue 8.4: a 50 MB line without LF, committed 1 MB at a time, costs memory in
    /// the chunk's size, not the line's: the carry and the found line keep a prefix.
    #[test]
    fn an_endless_line_is_carried_as_a_prefix() {
        let input = b"A0 one\nA1 two\n";
        let mut checker = Checker::new(Semantics::ExactlyOnce, &[(b'A', &input[..])]);
        let chunk = vec![b'x'; 1 << 20];
        checker.feed(0, 0, b"A0 one\nA1 t");
        let mut most = 0;
        for i in 1..=50 {
            checker.feed(i, 0, &chunk);
            most = most.max(checker.carry.as_ref().map_or(0, |c| c.bytes.capacity()));
        }
        assert!(most <= SHORT_LINE * 2, "the carry held {most} bytes");
        checker.finish();
        let m = checker.cursors()[0].mismatch().unwrap();
        assert_eq!(m.found.len(), KEPT_PREFIX);
        assert_eq!(m.found_len, 4 + 50 * (1 << 20));
        assert_eq!(checker.cursors()[0].output_bytes(), 11 + 50 * (1 << 20));
    }

    /// Issue 8.5: an output that is a byte-exact copy of an input whose last line has no
    /// LF passes, torn or not across chunks; one byte more or less does not.
    #[test]
    fn an_unterminated_last_input_line_is_delivered_by_its_exact_copy() {
        let input = b"A0 one\nA1 two";
        for cut in 0..input.len() {
            let r = run(
                Semantics::ExactlyOnce,
                &[(b'A', input)],
                &[&input[..cut], &input[cut..]],
            );
            assert_eq!(r[0], (input.len() as u64, None), "cut at {cut}");
        }
        let r = run(
            Semantics::ExactlyOnce,
            &[(b'A', input)],
            &[b"A0 one\nA1 tw"],
        );
        assert!(r[0].1.as_ref().unwrap().torn);
        let r = run(
            Semantics::ExactlyOnce,
            &[(b'A', input)],
            &[b"A0 one\nA1 twoo"],
        );
        assert!(r[0].1.is_some());
        let mut checker = Checker::new(Semantics::ExactlyOnce, &[(b'A', &input[..])]);
        checker.feed(0, 0, input);
        assert!(checker.complete(0), "complete before finish, as watch asks");
        assert!(!checker.cursors()[0].complete());
    }

    #[test]
    fn common_prefix_finds_the_first_difference() {
        let a: Vec<u8> = (0..200u8).collect();
        for diff in [0, 1, 7, 8, 31, 32, 33, 100, 199] {
            let mut b = a.clone();
            b[diff] ^= 1;
            assert_eq!(common_prefix_len(&a, &b), diff);
        }
        assert_eq!(common_prefix_len(&a, &a[..50]), 50);
        assert_eq!(common_prefix_len(b"", b"x"), 0);
    }

    #[test]
    fn interleaved_keys_and_torn_lines_verify() {
        let a: &[u8] = b"A1\nA2\nA3\n";
        let b: &[u8] = b"B1\nB2\n";
        let result = run(
            Semantics::ExactlyOnce,
            &[(b'A', a), (b'B', b)],
            &[b"A1\nB1\nA", b"2\nX9\n", b"B2\nA3\n"],
        );
        assert_eq!(result, vec![(9, None), (6, None)]);
    }

    #[test]
    fn duplicate_is_the_first_mismatch() {
        let a: &[u8] = b"A1\nA2\nA3\n";
        let result = run(
            Semantics::ExactlyOnce,
            &[(b'A', a)],
            &[b"A1\nA2\n", b"A2\nA3\n"],
        );
        let m = result[0].1.clone().unwrap();
        assert_eq!(
            (m.key_offset, m.input_offset, m.found.as_slice()),
            (6, 6, &b"A2\n"[..])
        );
        assert_eq!(
            m.origin,
            LineOrigin {
                commit: 1,
                file_offset: 0
            }
        );
    }

    #[test]
    fn at_least_once_accepts_replays_but_not_loss() {
        let a: &[u8] = b"A1\nA2\nA3\nA4\n";
        let ok = run(
            Semantics::AtLeastOnce,
            &[(b'A', a)],
            &[b"A1\nA2\nA3\n", b"A2\nA3\nA4\n"],
        );
        assert_eq!(ok, vec![(12, None)]);
        let lost = run(
            Semantics::AtLeastOnce,
            &[(b'A', a)],
            &[b"A1\nA2\n", b"A1\nA2\nA4\n"],
        );
        let m = lost[0].1.clone().unwrap();
        assert_eq!(
            (m.input_offset, m.delivered_offset, m.found.as_slice()),
            (6, 6, &b"A4\n"[..])
        );
    }

    #[test]
    fn a_fragment_at_the_end_is_torn() {
        let a: &[u8] = b"A1\nA2\n";
        let result = run(Semantics::ExactlyOnce, &[(b'A', a)], &[b"A1\nA2"]);
        let m = result[0].1.clone().unwrap();
        assert!(m.torn);
        assert_eq!(m.found, b"A2");
    }
}
