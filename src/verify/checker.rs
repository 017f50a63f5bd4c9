//! The incremental checker core: committed chunks go in, in commit order; per-key cursors
//! into the inputs come out, with the first mismatch of each key.
//!
//! `verify` feeds every chunk once and `watch` feeds them as they land; both use this one
//! type. Each routing key has a [`KeyCursor`]: the input offset of the next expected line,
//! the furthest input offset delivered, and how many bytes of that key's output stream
//! were seen.
//!
//! How it stays fast: a chunk is not split into lines up front. At a line start whose key
//! byte is a checked key, the chunk is compared with that key's input at its cursor
//! ([`super::stretch`], which checks the input's line starts on the way). Because every
//! input line starts with its key byte, the matching run can only end where a line of
//! another key starts, or at a real difference; the run is accepted up to its last
//! complete line. Only a line that does not match is looked at on its own (the slow
//! path), so the work is proportional to the bytes fed and nothing is buffered but a line
//! torn across chunks.
//!
//! A long stream can be fed on two threads: [`Checker::resuming`] checks the second half
//! while the first is fed, and [`Checker::join`] keeps its result only when it provably
//! equals the one-thread result.

use std::collections::HashMap;
use std::ops::Range;

use super::stretch::{compare_stretch, prefetch, PREFETCH_AHEAD};

/// What the checked system promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Semantics {
    /// Each key's output is exactly its input (or a prefix), nothing repeated.
    #[default]
    ExactlyOnce,
    /// After a restart a key's output may resume from any line already delivered;
    /// loss, reorder and corruption are still violations.
    AtLeastOnce,
}

impl crate::choice::Choice for Semantics {
    const CHOICES: &'static [(Self, &'static str)] = &[
        (Semantics::ExactlyOnce, "Each key's output is exactly its input (or a prefix), nothing repeated"),
        (Semantics::AtLeastOnce, "After a restart a key's output may resume from any line already delivered; loss, reorder and corruption are still violations"),
    ];
}

crate::display_as_choice!(Semantics);

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
    /// LFs in the input before `delivered`.
    lines: u64,
    /// The start of the first input line found not to start with the key.
    wrong_line: Option<usize>,
    mismatch: Option<Mismatch>,
    /// Line -> input offsets, built on the first replay (at-least-once only).
    replay_index: Option<HashMap<&'i [u8], Vec<usize>>>,
    /// The longest input line (LF included), measured the first time a line longer than
    /// [`SHORT_LINE`] has to be kept.
    longest_line: Option<usize>,
    /// Where the cursor started (see [`Checker::resuming`]).
    anchor: Anchor,
}

/// Why [`Checker::join`] could not prove two halves equal to one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinRefused {
    #[error("a line is torn across the two halves")]
    LineTornAcross,
    #[error("at-least-once replays can reach back into the first half")]
    AtLeastOnce,
    #[error("key {:?} resumed elsewhere than where its first half ended", *.0 as char)]
    PlacedElsewhere(u8),
}

/// Where a cursor's checking started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// At the input's start: the checker sees the stream from its beginning.
    Start,
    /// Not yet known: the checker sees the stream from a midpoint, and the key's first
    /// line there will be looked for near this input offset.
    Pending { guess: usize },
    /// At this input offset, where the key's first line there was found.
    Found(usize),
    /// The key's first line there is nowhere in the input.
    Lost,
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
            lines: 0,
            wrong_line: None,
            mismatch: None,
            replay_index: None,
            longest_line: None,
            anchor: Anchor::Start,
        }
    }

    /// A pending cursor waits at the input's end, so that the fast path, which compares
    /// with nothing there, hands its first line to [`Self::check_line`].
    fn pending(key: u8, input: &'i [u8], guess: usize) -> Self {
        let end = input.len();
        KeyCursor {
            next: end,
            delivered: end,
            anchor: Anchor::Pending {
                guess: guess.min(end),
            },
            ..KeyCursor::new(key, input)
        }
    }

    /// Places a pending cursor at the occurrence of its first line nearest its guess.
    fn place(&mut self, line: &[u8], guess: usize) {
        match find_line_near(self.input, line, guess) {
            Some(at) => {
                self.next = at;
                self.delivered = at;
                self.anchor = Anchor::Found(at);
            }
            None => self.anchor = Anchor::Lost,
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

    /// Complete input lines (LFs) delivered so far.
    pub fn verified_lines(&self) -> u64 {
        self.lines
    }

    /// The start of the first line of the input that does not start with the key. The
    /// comparison checked every line start it passed, so every line before
    /// `verified_bytes()` was checked; only the rest of the input is read here (nothing,
    /// once the whole input is delivered).
    pub fn first_wrong_line(&self) -> Option<usize> {
        self.wrong_line.or_else(|| {
            let from = self.delivered;
            let scan = crate::formats::input::scan_lines(self.key, &self.input[from..]);
            scan.first_wrong.map(|at| from + at)
        })
    }

    /// Continues this cursor (of the first part of a stream) with `later`, placed where
    /// it ended (see [`Checker::join`]).
    fn join(&mut self, later: KeyCursor<'i>) {
        let first_emitted = self.emitted;
        self.emitted += later.emitted;
        if self.mismatch.is_some() || matches!(later.anchor, Anchor::Pending { .. }) {
            return;
        }
        self.next = later.next;
        self.delivered = later.delivered;
        self.lines += later.lines;
        self.wrong_line = self.wrong_line.or(later.wrong_line);
        self.mismatch = later.mismatch.map(|m| Mismatch {
            key_offset: first_emitted + m.key_offset,
            ..m
        });
        self.longest_line = self.longest_line.or(later.longest_line);
    }

    /// Moves the cursor `bytes` on; `lfs` of them are LFs.
    fn advance(&mut self, bytes: usize, lfs: u64) {
        let from = self.next;
        self.next += bytes;
        self.emitted += bytes as u64;
        self.deliver(from, lfs);
    }

    /// Raises the delivered high water to `next`, which was reached by matching the input
    /// from `from` on, with `lfs` LFs in between.
    fn deliver(&mut self, from: usize, lfs: u64) {
        if self.next <= self.delivered {
            return;
        }
        self.lines += if from >= self.delivered {
            lfs
        } else {
            // After an at-least-once replay: count only what is new.
            memchr::memchr_iter(b'\n', &self.input[self.delivered..self.next]).count() as u64
        };
        self.delivered = self.next;
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
        if let Anchor::Pending { guess } = self.anchor {
            self.place(line, guess);
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
            self.advance(line.len(), u64::from(!torn));
            return;
        }
        if semantics == Semantics::AtLeastOnce && !torn && whole {
            if let Some(offset) = self.replay_target(line) {
                self.next = offset + line.len();
                self.deliver(offset, 1);
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

/// The line start in `input` nearest `guess` where `line` occurs, looked for in windows
/// around the guess that grow fourfold until they cover the input.
fn find_line_near(input: &[u8], line: &[u8], guess: usize) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(line);
    let mut radius = 4096usize;
    loop {
        let low = guess.saturating_sub(radius);
        let high = guess
            .saturating_add(radius)
            .saturating_add(line.len())
            .min(input.len());
        let nearest = finder
            .find_iter(&input[low..high])
            .map(|p| low + p)
            .filter(|&p| p == 0 || input[p - 1] == b'\n')
            .min_by_key(|&p| p.abs_diff(guess));
        if nearest.is_some() || (low == 0 && high == input.len()) {
            return nearest;
        }
        radius = radius.saturating_mul(4);
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

/// Watches a feed commit by commit (the post-mortem report's series come from it): after
/// every commit it is shown the cursors. On two threads the second half gets its own
/// observer, whose cursors count the key's output bytes from 0 at the cut, and it is
/// merged back with what each key had emitted before the cut. `()` observes nothing.
pub trait FeedObserver: Send + Sized {
    /// An observer for the commits from `from` on, fed by a checker of its own.
    fn split(&self, from: usize) -> Self;
    /// Commit `commit` was fed (it may have been empty).
    fn after_commit(&mut self, commit: usize, cursors: &[KeyCursor<'_>]);
    /// Takes back a split-off observer; `base[i]` is key i's output bytes before its
    /// first commit.
    fn merge(&mut self, rest: Self, base: &[u64]);
}

impl FeedObserver for () {
    fn split(&self, _from: usize) -> Self {}
    fn after_commit(&mut self, _commit: usize, _cursors: &[KeyCursor<'_>]) {}
    fn merge(&mut self, _rest: Self, _base: &[u64]) {}
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
                let stretch = compare_stretch(rest, expected, cursor.key);
                if let Some(wrong) = stretch.wrong_line {
                    cursor.wrong_line.get_or_insert(cursor.next + wrong);
                }
                let matched = stretch.matched;
                // Accept the run up to its last complete line.
                let boundary = if matched > 0 && rest[matched - 1] == b'\n' {
                    matched
                } else {
                    memchr::memrchr(b'\n', &rest[..matched]).map_or(0, |i| i + 1)
                };
                if boundary > 0 {
                    cursor.advance(boundary, stretch.lfs);
                    prefetch(cursor.input, cursor.next + PREFETCH_AHEAD);
                    pos += boundary;
                    prefetch(chunk, pos + PREFETCH_AHEAD);
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

    /// A checker for the rest of a stream of which `self` feeds the first part, so the
    /// two can run side by side. Where each key's rest starts in its input is not known
    /// until `self` is done; it is guessed from `fraction` (the share of the stream's
    /// bytes in the first part) and the key's first line in the rest, and proven by
    /// [`Checker::join`].
    pub fn resuming(&self, fraction: f64) -> Checker<'i> {
        let cursors = self
            .cursors
            .iter()
            .map(|c| {
                let guess = (c.input.len() as f64 * fraction.clamp(0.0, 1.0)) as usize;
                KeyCursor::pending(c.key, c.input, guess)
            })
            .collect();
        Checker {
            cursors,
            carry: None,
            other_lines: 0,
            joins: Vec::new(),
            ..*self
        }
    }

    /// Joins `self`, fed the first part of a stream, with `rest`, a [`Checker::resuming`]
    /// fed the rest and finished. `self` becomes exactly the state one checker fed the
    /// whole stream would have, or is left as it was when that cannot be proven (the
    /// caller then feeds it the rest).
    ///
    /// Why it is exact: a cursor's outcome depends only on where it stands, its bytes seen
    /// and its mismatch. A key without a mismatch in the first part ends it at `next`
    /// with everything before it delivered; a rest placed at that very offset saw what
    /// the single checker would have seen from there. A key with a mismatch stays as it
    /// is, only counting its bytes, as it would have.
    pub fn join(&mut self, rest: Checker<'i>) -> Result<(), JoinRefused> {
        let placed_right = |first: &KeyCursor, later: &KeyCursor| match later.anchor {
            Anchor::Pending { .. } => true,
            Anchor::Found(at) => first.mismatch.is_some() || at == first.next,
            Anchor::Start | Anchor::Lost => first.mismatch.is_some(),
        };
        if self.carry.is_some() {
            return Err(JoinRefused::LineTornAcross);
        }
        if self.semantics != Semantics::ExactlyOnce {
            return Err(JoinRefused::AtLeastOnce);
        }
        if let Some((first, _)) =
            (self.cursors.iter().zip(&rest.cursors)).find(|(f, l)| !placed_right(f, l))
        {
            return Err(JoinRefused::PlacedElsewhere(first.key));
        }
        for (first, later) in self.cursors.iter_mut().zip(rest.cursors) {
            first.join(later);
        }
        self.other_lines += rest.other_lines;
        let room = JOINS_KEPT.saturating_sub(self.joins.len());
        self.joins.extend(rest.joins.into_iter().take(room));
        self.carry = rest.carry;
        Ok(())
    }

    /// Feeds the chunks of commits `commits`; `chunk(i)` is commit i's chunk and the
    /// file offset it starts at.
    pub fn feed_range<'c>(
        &mut self,
        chunk: &dyn Fn(usize) -> (u64, &'c [u8]),
        commits: Range<usize>,
    ) {
        self.feed_range_observed(chunk, commits, &mut ());
    }

    /// [`Checker::feed_range`], telling `observer` the cursors after every commit.
    pub fn feed_range_observed<'c, O: FeedObserver>(
        &mut self,
        chunk: &dyn Fn(usize) -> (u64, &'c [u8]),
        commits: Range<usize>,
        observer: &mut O,
    ) {
        for i in commits {
            let (file_offset, bytes) = chunk(i);
            if !bytes.is_empty() {
                self.feed(i, file_offset, bytes);
            }
            observer.after_commit(i, &self.cursors);
        }
    }

    /// Feeds commits `0..commits` and finishes, the halves before and after `middle` side
    /// by side on two threads; `fraction` is the share of the stream's bytes before
    /// `middle`. The second half is fed again after the first when [`Checker::join`]
    /// cannot prove the two-thread result equal to the one-thread one.
    pub fn feed_halves<'c>(
        self,
        chunk: &(dyn Fn(usize) -> (u64, &'c [u8]) + Sync),
        commits: usize,
        middle: usize,
        fraction: f64,
    ) -> Checker<'i> {
        self.feed_halves_observed(chunk, commits, middle, fraction, &mut ())
    }

    /// [`Checker::feed_halves`], telling `observer` the cursors after every commit: the
    /// second half's observer is [`FeedObserver::split`] off and merged back when the
    /// halves join; when they cannot, `observer` sees the second half fed again.
    pub fn feed_halves_observed<'c, O: FeedObserver>(
        mut self,
        chunk: &(dyn Fn(usize) -> (u64, &'c [u8]) + Sync),
        commits: usize,
        middle: usize,
        fraction: f64,
        observer: &mut O,
    ) -> Checker<'i> {
        let mut rest = self.resuming(fraction);
        let mut rest_observer = observer.split(middle);
        rayon::join(
            || self.feed_range_observed(chunk, 0..middle, observer),
            || {
                rest.feed_range_observed(chunk, middle..commits, &mut rest_observer);
                rest.finish();
            },
        );
        let base: Vec<u64> = self.cursors.iter().map(|c| c.output_bytes()).collect();
        match self.join(rest) {
            Ok(()) => observer.merge(rest_observer, &base),
            Err(_) => {
                self.feed_range_observed(chunk, middle..commits, observer);
                self.finish();
            }
        }
        self
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
    fn a_wrong_line_start_inside_a_run_is_found() {
        let input = b"A1\nA2\nB3\nA4\n";
        let s = compare_stretch(input, input, b'A');
        assert_eq!((s.matched, s.lfs, s.wrong_line), (6, 2, Some(6)));
        let mut checker = Checker::new(Semantics::ExactlyOnce, &[(b'A', &input[..])]);
        checker.feed(0, 0, input);
        assert_eq!(checker.cursors()[0].first_wrong_line(), Some(6));
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

    /// Everything of a checker that a report reads.
    #[allow(clippy::type_complexity)]
    fn outcome(
        c: &Checker<'_>,
    ) -> (
        Vec<(usize, usize, u64, u64, Option<usize>, Option<Mismatch>)>,
        u64,
        Vec<Join>,
    ) {
        let cursors = c
            .cursors()
            .iter()
            .map(|k| {
                let m = k.mismatch().cloned();
                (
                    k.next,
                    k.delivered,
                    k.emitted,
                    k.lines,
                    k.first_wrong_line(),
                    m,
                )
            })
            .collect();
        (cursors, c.other_lines(), c.joins().to_vec())
    }

    /// Inputs of three keys, with lines that repeat (so a resuming cursor can be placed
    /// wrong) and, when asked, a line of another key inside key A's input.
    fn split_inputs(repeat: usize, wrong_in_a: Option<usize>) -> Vec<(u8, Vec<u8>)> {
        [b'A', b'B', b'C']
            .iter()
            .map(|&key| {
                let mut bytes = Vec::new();
                for i in 0..40usize {
                    let first = if key == b'A' && wrong_in_a == Some(i) {
                        b'B'
                    } else {
                        key
                    };
                    let n = if repeat > 0 { i % repeat } else { i };
                    bytes.extend_from_slice(format!("{}{n:03} line\n", first as char).as_bytes());
                }
                (key, bytes)
            })
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// The two-thread feed equals the one-thread feed wherever the stream is cut, on
        /// clean and broken streams: lost, repeated, swapped, corrupt and foreign lines,
        /// repeating input lines, a wrong line start in an input, chunks cut mid-line.
        #[test]
        fn feeding_in_two_halves_equals_feeding_in_one(
            seed in proptest::prelude::any::<u64>(),
            repeat in 0usize..4,
            wrong in proptest::option::of(0usize..40),
            edits in proptest::collection::vec((0u8..5, proptest::prelude::any::<usize>()), 0..3),
            cuts in proptest::collection::vec(proptest::prelude::any::<usize>(), 1..12),
        ) {
            let inputs = split_inputs(repeat, wrong);
            let keyed: Vec<(u8, &[u8])> = inputs.iter().map(|(k, b)| (*k, &b[..])).collect();
            // Interleave the keys' lines in a seeded order, then edit.
            let mut state = seed | 1;
            let mut rand = move |n: usize| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % n as u64) as usize
            };
            let mut pending: Vec<Vec<&[u8]>> = keyed
                .iter()
                .map(|(_, b)| b.split_inclusive(|&c| c == b'\n').collect())
                .collect();
            for p in &mut pending {
                p.reverse();
            }
            let mut lines: Vec<Vec<u8>> = Vec::new();
            while pending.iter().any(|p| !p.is_empty()) {
                let k = rand(3);
                if let Some(line) = pending[k].pop() {
                    lines.push(line.to_vec());
                }
            }
            for (kind, at) in edits {
                let at = at % lines.len();
                match kind {
                    0 => { lines.remove(at); }
                    1 => { let l = lines[at].clone(); lines.insert(at, l); }
                    2 if at + 1 < lines.len() => lines.swap(at, at + 1),
                    3 => lines[at][2] ^= 1,
                    _ => lines.insert(at, b"Z foreign\n".to_vec()),
                }
            }
            let stream: Vec<u8> = lines.concat();
            let mut ends: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
            ends.push(stream.len());
            ends.sort_unstable();
            let starts: Vec<usize> = std::iter::once(0).chain(ends.iter().copied()).collect();
            let chunk = |i: usize| (starts[i] as u64, &stream[starts[i]..ends[i]]);
            let mut one = Checker::new(Semantics::ExactlyOnce, &keyed);
            one.feed_range(&chunk, 0..ends.len());
            one.finish();
            let expected = outcome(&one);
            for middle in 0..=ends.len() {
                let fraction = starts[middle.min(ends.len() - 1)] as f64 / stream.len().max(1) as f64;
                let two = Checker::new(Semantics::ExactlyOnce, &keyed)
                    .feed_halves(&chunk, ends.len(), middle, fraction);
                proptest::prop_assert_eq!(&outcome(&two), &expected, "cut at commit {}", middle);
            }
        }
    }

    /// On a clean stream of unique lines the halves are joined, not fed again: the
    /// two-thread path is the one taken.
    #[test]
    fn halves_of_a_clean_stream_join() {
        let inputs = split_inputs(0, None);
        let keyed: Vec<(u8, &[u8])> = inputs.iter().map(|(k, b)| (*k, &b[..])).collect();
        let mut stream = Vec::new();
        for i in 0..40 {
            for (_, bytes) in &inputs {
                stream.extend_from_slice(&bytes[i * 10..(i + 1) * 10]);
            }
        }
        let (first, rest) = stream.split_at(stream.len() / 2);
        let mut one = Checker::new(Semantics::ExactlyOnce, &keyed);
        let mut two = one.resuming(0.5);
        one.feed(0, 0, first);
        two.feed(1, first.len() as u64, rest);
        two.finish();
        one.join(two).expect("the halves join");
        assert!((0..3).all(|i| one.cursors()[i].complete()));
        assert_eq!(one.cursors()[0].verified_lines(), 40);
        // A line repeated across the cut places the second half elsewhere: refused.
        let mut one = Checker::new(Semantics::ExactlyOnce, &keyed);
        let mut two = one.resuming(0.5);
        one.feed(0, 0, first);
        let repeated = [&first[first.len() - 10..], rest].concat();
        two.feed(1, first.len() as u64, &repeated);
        two.finish();
        assert_eq!(one.join(two), Err(JoinRefused::PlacedElsewhere(b'C')));
    }
}
