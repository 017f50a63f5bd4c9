//! The two-phase-commit lines as the sink writes nearly all of them, read without the
//! literal parser: on a commit-dense txnlog, building a `Value` tree and owned strings
//! for every line was a fifth of `verify`'s time.
//!
//! How: [`fact`] walks one line byte by byte against the exact shape CPython's `str()`
//! gives these records,
//! `[1795836362.7201483, '1-ok', 'txn', [(1, 0, 3381)]]` and
//! `[1795836362.72054, '2-ok', 'txn', 3381]` (and the two rollbacks), and borrows the
//! txn id from the line. It accepts a strict subset of what [`super::parse_record`]
//! accepts, with the same meaning: plain digits (no sign, underscore, exponent or
//! leading zero), a txn id with no escape (no backslash, no quote but its own), one
//! range in a where_list, no blank but the one after each comma. Anything else, however valid,
//! is None, and the strict parser reads it (and names what is wrong). A proptest holds
//! the two to the same answer.

use super::{Fact, Vote, WhereRange};

/// Longest run of digits read here: 18 digits always fit in a u64 (and an i128); a
/// longer number goes to the strict parser, which checks its range.
const MAX_DIGITS: usize = 18;

/// The time and fact of a `1-ok`, `1-rollback`, `2-ok` or `2-rollback` line in the
/// sink's own spelling; None for any other line.
pub(super) fn fact(line: &[u8]) -> Option<(f64, Fact<'_>)> {
    let mut at = Bytes { line, pos: 0 };
    at.expect(b"[")?;
    let time = at.float()?;
    at.expect(b", '")?;
    let kind = at.until_quote()?;
    at.expect(b"', '")?;
    let txn_id = at.until_quote()?;
    at.expect(b"', ")?;
    let fact = match kind {
        "1-ok" | "1-rollback" => {
            at.expect(b"[(")?;
            let stream_id = at.int()?;
            at.expect(b", ")?;
            let start = at.int()?;
            at.expect(b", ")?;
            let end = at.int()?;
            at.expect(b")]")?;
            let vote = if kind == "1-ok" {
                Vote::Commit
            } else {
                Vote::Rollback
            };
            let first = Some(WhereRange {
                stream_id,
                start,
                end,
            });
            Fact::Vote {
                txn_id,
                vote,
                first,
            }
        }
        "2-ok" => Fact::Committed {
            txn_id,
            offset: at.int()?,
        },
        "2-rollback" => Fact::RolledBack {
            txn_id,
            offset: at.int()?,
        },
        _ => return None,
    };
    at.expect(b"]")?;
    at.at_end().then_some((time, fact))
}

/// A cursor over one line.
struct Bytes<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn expect(&mut self, text: &[u8]) -> Option<()> {
        let rest = self.line.get(self.pos..)?;
        rest.starts_with(text).then(|| self.pos += text.len())
    }

    fn at_end(&self) -> bool {
        self.pos == self.line.len()
    }

    /// The digits from here (at least one, at most `max`).
    fn digits(&mut self, max: usize) -> Option<&'a [u8]> {
        let rest = &self.line[self.pos..];
        let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > max {
            return None;
        }
        self.pos += n;
        Some(&rest[..n])
    }

    /// A non-negative int as Python writes it (no leading zero but in `0` itself).
    fn int(&mut self) -> Option<u64> {
        let digits = self.digits(MAX_DIGITS)?;
        if digits.len() > 1 && digits[0] == b'0' {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
        )
    }

    /// `DIGITS.DIGITS`, read by the same `str::parse` the strict parser uses, so the
    /// value is the same to the bit. A long one (which `str()` of a time never is) goes
    /// to the strict parser.
    fn float(&mut self) -> Option<f64> {
        let start = self.pos;
        self.digits(MAX_DIGITS)?;
        self.expect(b".")?;
        self.digits(MAX_DIGITS)?;
        let text = std::str::from_utf8(&self.line[start..self.pos]).ok()?;
        text.parse().ok()
    }

    /// The text up to the next `'`, when it has no backslash (so no escape to undo) and
    /// no CR or LF (which the strict parser refuses in a string).
    fn until_quote(&mut self) -> Option<&'a str> {
        let rest = &self.line[self.pos..];
        let n = memchr::memchr(b'\'', rest)?;
        let text = &rest[..n];
        if memchr::memchr3(b'\\', b'\r', b'\n', text).is_some() {
            return None;
        }
        self.pos += n;
        std::str::from_utf8(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{format_record, parse_record, Record};
    use super::*;
    use proptest::prelude::*;

    /// What the strict parser makes of `line`, as a fact with its time's bits.
    fn strict(line: &[u8]) -> Option<(u64, String)> {
        let (time, record) = parse_record(line).ok()?;
        Some((time.to_bits(), format!("{:?}", record.fact())))
    }

    fn quick(line: &[u8]) -> Option<(u64, String)> {
        fact(line).map(|(time, f)| (time.to_bits(), format!("{f:?}")))
    }

    /// Offsets as a sink writes them, and now and then any u64.
    fn number() -> impl Strategy<Value = u64> + Clone {
        prop_oneof![4 => 0..1u64 << 40, 1 => any::<u64>()]
    }

    fn range() -> impl Strategy<Value = WhereRange> + Clone {
        (number(), number(), number()).prop_map(|(stream_id, start, end)| WhereRange {
            stream_id,
            start,
            end,
        })
    }

    /// The four records, with any txn id, any where_list and any offset.
    fn record() -> impl Strategy<Value = Record> {
        let id = prop_oneof![
            "[A-Za-z0-9:=_-]{1,60}",
            "[ -~]{0,60}",
            any::<String>(),
            Just("Passthrough-w-initializer-id-7421690283541770:c_id=1".to_string())
        ];
        let list = prop::collection::vec(range(), 0..3);
        prop_oneof![
            (id.clone(), list.clone())
                .prop_map(|(txn_id, where_list)| Record::Phase1Commit { txn_id, where_list }),
            (id.clone(), list)
                .prop_map(|(txn_id, where_list)| Record::Phase1Rollback { txn_id, where_list }),
            (id.clone(), number())
                .prop_map(|(txn_id, offset)| Record::Phase2Commit { txn_id, offset }),
            (id, number()).prop_map(|(txn_id, offset)| Record::Phase2Rollback { txn_id, offset }),
        ]
    }

    fn time() -> impl Strategy<Value = f64> {
        prop_oneof![
            1.7e9..1.8e9f64,
            any::<f64>().prop_filter("finite", |t| t.is_finite()),
        ]
    }

    #[test]
    fn the_sinks_own_lines_are_read_here() {
        let lines = [
            "[1795836362.7201483, '1-ok', 'Passthrough-w-initializer-id-7421690283541770:c_id=1', [(1, 0, 3381)]]",
            "[1795836362.72054, '2-ok', 'Passthrough-w-initializer-id-7421690283541770:c_id=1', 3381]",
            "[1795836362.8, '1-rollback', 'x', [(1, 3381, 5684)]]",
            "[1795836362.9, '2-rollback', 'x', 3381]",
        ];
        for line in lines {
            assert!(quick(line.as_bytes()).is_some(), "{line}");
            assert_eq!(quick(line.as_bytes()), strict(line.as_bytes()), "{line}");
        }
    }

    /// Every one-byte change of the sink's own lines, by every byte that matters to the
    /// grammar (digits, signs, blanks, quotes, brackets, escapes, a non-ASCII lead):
    /// whatever is read here reads the same in the strict parser.
    #[test]
    fn every_small_damage_of_a_sinks_line_is_never_read_differently() {
        let lines = [
            "[1795836362.7201483, '1-ok', 'P-id-742:c_id=1', [(1, 0, 3381)]]",
            "[1795836362.72054, '2-ok', 'P-id-742:c_id=1', 3381]",
            "[1795836362.8, '1-rollback', 'x', [(1, 3381, 5684)]]",
            "[1795836362.9, '2-rollback', 'x', 0]",
        ];
        let alphabet = b"0159_-+.eE jx,'\"\\()[]\t\n\xc3";
        let mut read_here = 0;
        for line in lines {
            let line = line.as_bytes();
            for i in 0..=line.len() {
                let mut variants = vec![line[..i].to_vec()];
                for &b in alphabet {
                    variants.push([&line[..i], &[b], &line[i..]].concat());
                    if i < line.len() {
                        variants.push([&line[..i], &[b], &line[i + 1..]].concat());
                    }
                }
                for v in variants {
                    if let Some(got) = quick(&v) {
                        read_here += 1;
                        assert_eq!(Some(got), strict(&v), "{}", String::from_utf8_lossy(&v));
                    }
                }
            }
        }
        assert!(
            read_here > 100,
            "only {read_here} damaged lines were read here"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever is read here reads the same in the strict parser; and what the sink
        /// writes with one range, a plain txn id and a time of digits is read here.
        #[test]
        fn a_written_record_reads_as_the_strict_parser_reads_it(t in time(), r in record()) {
            let text = format_record(t, &r);
            let line = text.trim_end_matches('\n').as_bytes();
            if let Some(got) = quick(line) {
                prop_assert_eq!(Some(got), strict(line));
            }
            let plain_id = |id: &str| id.bytes().all(|c| (b' '..=b'~').contains(&c) && c != b'\'' && c != b'\\');
            let plain = match &r {
                Record::Phase1Commit { txn_id, where_list } | Record::Phase1Rollback { txn_id, where_list } =>
                    plain_id(txn_id) && where_list.len() == 1
                        && [where_list[0].stream_id, where_list[0].start, where_list[0].end].iter().all(|&n| n < 10u64.pow(18)),
                Record::Phase2Commit { txn_id, offset } | Record::Phase2Rollback { txn_id, offset } =>
                    plain_id(txn_id) && *offset < 10u64.pow(18),
                _ => false,
            };
            let digits = {
                let s = format!("{t}");
                (1.7e9..1.8e9).contains(&t) && !s.contains('e')
            };
            if plain && digits && text.contains('.') {
                prop_assert!(quick(line).is_some(), "{}", text);
            }
        }

        /// A written line with one byte changed, cut or doubled: whatever is read here
        /// reads the same in the strict parser (which may refuse it: then so does this).
        #[test]
        fn a_damaged_line_is_never_read_differently(
            t in time(),
            r in record(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            how in 0..3u8,
        ) {
            let text = format_record(t, &r);
            let mut line = text.trim_end_matches('\n').as_bytes().to_vec();
            let i = at.index(line.len().max(1)).min(line.len().saturating_sub(1));
            match how {
                0 => line[i] = byte,
                1 => line.truncate(i),
                _ => line.insert(i, line[i]),
            }
            if let Some(got) = quick(&line) {
                prop_assert_eq!(Some(got), strict(&line), "{}", String::from_utf8_lossy(&line));
            }
        }
    }
}
