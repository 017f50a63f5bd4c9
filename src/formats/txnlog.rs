//! Txnlog records: the sink's per-worker transaction log (spec section 6).
//!
//! Each line is the Python `str()` of a list `[time, kind, ...]`. [`read_txnlog`] parses a
//! whole file with the strict literal parser in [`super::pyliteral`] and turns each line
//! into a typed [`Record`]. A last line without its LF is a torn write (the sink was killed
//! mid-write, or is writing right now): it is not an error, it is returned as
//! [`TxnlogTail::Torn`] so callers can report it as a note. Every other malformed line is
//! an error naming the file, line and column. [`format_record`] writes records back in the
//! exact bytes the original sink writes.

use std::path::{Path, PathBuf};

use super::lines::{LineCursor, ReadAt, ReadEnd};
use super::pyliteral::{self, Value};
use super::regular::open_regular;

mod fast;

/// A line longer than this is refused rather than buffered.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A `(stream_id, start_por, end_por)` triple from a phase-1 where_list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhereRange {
    pub stream_id: u64,
    pub start: u64,
    pub end: u64,
}

/// One txnlog record kind with its facts (wallaroo-formats.md §6.3).
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// `1-ok`: phase 1 voted commit.
    Phase1Commit {
        txn_id: String,
        where_list: Vec<WhereRange>,
    },
    /// `1-rollback`: phase 1 voted abort.
    Phase1Rollback {
        txn_id: String,
        where_list: Vec<WhereRange>,
    },
    /// `2-ok`: phase 2 committed; `offset` is the new committed end of the output file.
    Phase2Commit { txn_id: String, offset: u64 },
    /// `2-rollback`: phase 2 aborted; the output was truncated to `offset`.
    Phase2Rollback { txn_id: String, offset: u64 },
    /// `2-error`: phase 2 for a transaction that was not pending.
    Phase2Error { txn_id: String, message: String },
    /// `list-uncommitted`: the pending transaction ids reported on reconnect.
    ListUncommitted { txn_ids: Vec<String> },
    /// `next-txn-force-abort`: the next vote will be abort.
    NextTxnForceAbort { message: String },
    /// `connection-closed`.
    ConnectionClosed,
    /// `close`: an abort rule closed the connection (`before reply` / `after reply`).
    Close { when: String },
    /// `workers-left`: the names in the WORKERS_LEFT message.
    WorkersLeft { workers: Vec<String> },
    /// `2-s3-ok`: S3 mode only.
    S3Commit {
        txn_id: String,
        object: String,
        reason: String,
    },
}

impl Record {
    /// The record kind exactly as it appears in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Phase1Commit { .. } => "1-ok",
            Record::Phase1Rollback { .. } => "1-rollback",
            Record::Phase2Commit { .. } => "2-ok",
            Record::Phase2Rollback { .. } => "2-rollback",
            Record::Phase2Error { .. } => "2-error",
            Record::ListUncommitted { .. } => "list-uncommitted",
            Record::NextTxnForceAbort { .. } => "next-txn-force-abort",
            Record::ConnectionClosed => "connection-closed",
            Record::Close { .. } => "close",
            Record::WorkersLeft { .. } => "workers-left",
            Record::S3Commit { .. } => "2-s3-ok",
        }
    }
}

/// A phase-1 vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    Commit,
    Rollback,
}

/// What a record says about committed data, all a checker needs of it, borrowed from
/// the record or straight from its line (see [`read_facts`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fact<'a> {
    /// `1-ok` or `1-rollback`: the vote, and the first range of its where_list.
    Vote {
        txn_id: &'a str,
        vote: Vote,
        first: Option<WhereRange>,
    },
    /// `2-ok`: the output is committed up to `offset`.
    Committed { txn_id: &'a str, offset: u64 },
    /// `2-rollback`: the output was truncated to `offset`.
    RolledBack { txn_id: &'a str, offset: u64 },
    /// Every other record: nothing about committed data.
    Nothing,
}

impl Record {
    /// What this record says about committed data.
    pub fn fact(&self) -> Fact<'_> {
        match self {
            Record::Phase1Commit { txn_id, where_list } => Fact::Vote {
                txn_id,
                vote: Vote::Commit,
                first: where_list.first().copied(),
            },
            Record::Phase1Rollback { txn_id, where_list } => Fact::Vote {
                txn_id,
                vote: Vote::Rollback,
                first: where_list.first().copied(),
            },
            Record::Phase2Commit { txn_id, offset } => Fact::Committed {
                txn_id,
                offset: *offset,
            },
            Record::Phase2Rollback { txn_id, offset } => Fact::RolledBack {
                txn_id,
                offset: *offset,
            },
            Record::Phase2Error { .. }
            | Record::ListUncommitted { .. }
            | Record::NextTxnForceAbort { .. }
            | Record::ConnectionClosed
            | Record::Close { .. }
            | Record::WorkersLeft { .. }
            | Record::S3Commit { .. } => Fact::Nothing,
        }
    }
}

/// A record with its time (the sink's wall clock) and 1-based line number.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnlogEntry {
    pub line: usize,
    pub time: f64,
    pub record: Record,
}

/// How a txnlog ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnlogTail {
    /// Every line ends with LF (or the file is empty).
    Complete,
    /// The last line has no LF: a torn write, ignored. `bytes` is its length.
    Torn { line: usize, bytes: usize },
}

/// A whole parsed txnlog.
#[derive(Debug, Clone, PartialEq)]
pub struct Txnlog {
    pub entries: Vec<TxnlogEntry>,
    pub tail: TxnlogTail,
    /// Bytes of complete lines (the offset just after the last LF).
    pub complete_bytes: u64,
}

/// Why a txnlog could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TxnlogError {
    #[error("{path}: cannot read txnlog: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: malformed txnlog record: expected {expected}, found {found}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        expected: String,
        found: String,
    },
    #[error("{path}:{line}: line is longer than {MAX_LINE_BYTES} bytes; a txnlog record is one short line")]
    LineTooLong { path: PathBuf, line: usize },
}

/// Reads and parses a txnlog file (a regular file only: see [`open_regular`]), holding
/// at most one line of it in memory besides the records.
pub fn read_txnlog(path: &Path) -> Result<Txnlog, TxnlogError> {
    parse_from(path, &open_txnlog(path)?)
}

/// A txnlog file opened for reading (a regular file only).
fn open_txnlog(path: &Path) -> Result<std::fs::File, TxnlogError> {
    open_regular(path).map_err(|source| TxnlogError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a whole txnlog file (a regular file only) with [`read_facts`], and says how it
/// ends.
pub fn read_txnlog_facts(
    path: &Path,
    each: &mut dyn FnMut(usize, f64, Fact<'_>),
) -> Result<TxnlogTail, TxnlogError> {
    let mut cursor = LineCursor::default();
    read_facts(&mut cursor, &open_txnlog(path)?, path, each)?;
    checked_tail(path, &cursor)
}

/// How a whole txnlog ends. A last line without its LF is a torn write only if it
/// could be one: the sink writes each record whole, so what is torn off one begins
/// with its `[` and holds no NUL. Anything else there (zeros, other bytes) is not a
/// record, and an error naming the line, never a note.
fn checked_tail(path: &Path, cursor: &LineCursor) -> Result<TxnlogTail, TxnlogError> {
    let partial = cursor.partial();
    let tail = match partial.len() {
        0 => TxnlogTail::Complete,
        bytes => TxnlogTail::Torn {
            line: cursor.lines() + 1,
            bytes,
        },
    };
    // `str()` of a record has no NUL: a zero-filled tail is a file grown by a crash.
    match partial.first() {
        None => Ok(tail),
        Some(b'[') if memchr::memchr(0, partial).is_none() => Ok(tail),
        Some(_) => Err(TxnlogError::Syntax {
            path: path.to_path_buf(),
            line: cursor.lines() + 1,
            column: 1,
            expected: "the start of a record torn by a crash ('[', and no NUL byte)".into(),
            found: format!(
                "{:?}",
                String::from_utf8_lossy(&cursor.partial()[..cursor.partial().len().min(12)])
            ),
        }),
    }
}

/// Parses txnlog bytes exactly as [`read_txnlog`] parses a file; `path` is only used in
/// errors.
pub fn parse_txnlog(path: &Path, bytes: &[u8]) -> Result<Txnlog, TxnlogError> {
    parse_from(path, &bytes)
}

/// The whole txnlog in `source`, framed by the one [`LineCursor`].
fn parse_from(path: &Path, source: &dyn ReadAt) -> Result<Txnlog, TxnlogError> {
    let mut cursor = LineCursor::default();
    let mut entries = Vec::new();
    read_records(&mut cursor, source, path, &mut |entry| entries.push(entry))?;
    Ok(Txnlog {
        entries,
        tail: checked_tail(path, &cursor)?,
        complete_bytes: cursor.offset(),
    })
}

/// Parses the complete records `file` gained since `cursor` (a partial last line stays in
/// the cursor for the next call), calling `each` for every record. A line over
/// [`MAX_LINE_BYTES`] is an error, complete or not, so no read holds more than that of
/// one line.
fn read_records(
    cursor: &mut LineCursor,
    file: &dyn ReadAt,
    path: &Path,
    each: &mut dyn FnMut(TxnlogEntry),
) -> Result<(), TxnlogError> {
    read_parsed(cursor, file, path, &mut |line, text| {
        let (time, record) = parse_record(text)?;
        each(TxnlogEntry { line, time, record });
        Ok(())
    })
}

/// [`read_records`], giving only what each record says about committed data, as
/// `each(line, time, fact)`: the one txnlog reader of both `verify` and `watch`. The
/// sink's own spelling of a two-phase-commit line is read without building the record
/// (see [`fast`]); every other line goes through the strict parser, so a malformed line
/// is the same error either way.
pub fn read_facts(
    cursor: &mut LineCursor,
    file: &dyn ReadAt,
    path: &Path,
    each: &mut dyn FnMut(usize, f64, Fact<'_>),
) -> Result<(), TxnlogError> {
    read_parsed(cursor, file, path, &mut |line, text| {
        match fast::fact(text) {
            Some((time, fact)) => each(line, time, fact),
            None => {
                let (time, record) = parse_record(text)?;
                each(line, time, record.fact());
            }
        }
        Ok(())
    })
}

/// What reads one line: `parse(line number, text)`.
type LineParser<'a> = dyn FnMut(usize, &[u8]) -> Result<(), RecordError> + 'a;

/// The lines of `file` since `cursor`, each given to `parse(line number, text)`; the
/// first record error stops the read and is returned naming the file and line.
fn read_parsed(
    cursor: &mut LineCursor,
    file: &dyn ReadAt,
    path: &Path,
    parse: &mut LineParser<'_>,
) -> Result<(), TxnlogError> {
    let mut failure = None;
    let end = cursor
        .read_lines(
            file,
            MAX_LINE_BYTES,
            &mut |line, text| match parse(line, text) {
                Ok(()) => true,
                Err(e) => {
                    failure = Some(TxnlogError::Syntax {
                        path: path.to_path_buf(),
                        line,
                        column: e.column,
                        expected: e.expected,
                        found: e.found,
                    });
                    false
                }
            },
        )
        .map_err(|source| TxnlogError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if let Some(e) = failure {
        return Err(e);
    }
    match end {
        ReadEnd::TooLong { line } => Err(TxnlogError::LineTooLong {
            path: path.to_path_buf(),
            line,
        }),
        ReadEnd::Eof | ReadEnd::Stopped | ReadEnd::Budget => Ok(()),
    }
}

/// A record-level error with a column (1-based) into the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub column: usize,
    pub expected: String,
    pub found: String,
}

/// Parses one line (without its LF) into its time and record.
pub fn parse_record(text: &[u8]) -> Result<(f64, Record), RecordError> {
    let value = pyliteral::parse(text).map_err(|e| RecordError {
        column: e.column,
        expected: e.expected.to_string(),
        found: e.found,
    })?;
    let Value::List(items) = value else {
        return Err(shape(
            "a list [time, kind, ...]".into(),
            value.type_name().into(),
        ));
    };
    let (time, kind) = head(&items)?;
    let fields = Fields {
        kind,
        args: &items[2..],
    };
    let record = match kind {
        "1-ok" | "1-rollback" | "2-ok" | "2-rollback" | "2-error" => phase_record(&fields)?,
        _ => other_record(&fields)?,
    };
    Ok((time, record))
}

/// A shape error: it points at the start of the line, as the literal itself was well
/// formed.
fn shape(expected: String, found: String) -> RecordError {
    RecordError {
        column: 1,
        expected,
        found,
    }
}

/// A record's time and kind (elements 0 and 1).
fn head(items: &[Value]) -> Result<(f64, &str), RecordError> {
    let time = match items.first() {
        Some(Value::Float(t)) => *t,
        Some(Value::Int(t)) => *t as f64,
        Some(other) => {
            return Err(shape(
                "a float time as element 0".into(),
                other.type_name().into(),
            ))
        }
        None => {
            return Err(shape(
                "a list [time, kind, ...]".into(),
                "an empty list".into(),
            ))
        }
    };
    let kind = match items.get(1) {
        Some(Value::Str(k)) => k.as_str(),
        Some(other) => {
            return Err(shape(
                "a str record kind as element 1".into(),
                other.type_name().into(),
            ))
        }
        None => return Err(shape("a record kind as element 1".into(), "nothing".into())),
    };
    Ok((time, kind))
}

/// The elements of a record after its kind.
struct Fields<'a> {
    kind: &'a str,
    args: &'a [Value],
}

impl Fields<'_> {
    /// Exactly `n` elements, laid out as `layout`.
    fn want(&self, n: usize, layout: &str) -> Result<(), RecordError> {
        if self.args.len() == n {
            Ok(())
        } else {
            let kind = self.kind;
            Err(shape(
                format!("'{kind}' record [time, '{kind}', {layout}]"),
                format!("{} elements after the kind", self.args.len()),
            ))
        }
    }

    fn string(&self, i: usize, what: &str) -> Result<String, RecordError> {
        match &self.args[i] {
            Value::Str(s) => Ok(s.clone()),
            other => Err(shape(
                format!("{what} (str) in '{}'", self.kind),
                other.type_name().into(),
            )),
        }
    }

    fn offset(&self, i: usize, what: &str) -> Result<u64, RecordError> {
        match &self.args[i] {
            Value::Int(n) if *n >= 0 && *n <= i128::from(u64::MAX) => Ok(*n as u64),
            Value::Int(n) => Err(shape(
                format!("{what} (a non-negative int) in '{}'", self.kind),
                n.to_string(),
            )),
            other => Err(shape(
                format!("{what} (int) in '{}'", self.kind),
                other.type_name().into(),
            )),
        }
    }
}

/// The two-phase-commit records: `1-ok`, `1-rollback`, `2-ok`, `2-rollback`, `2-error`.
fn phase_record(f: &Fields<'_>) -> Result<Record, RecordError> {
    Ok(match f.kind {
        "1-ok" | "1-rollback" => {
            f.want(2, "txn_id, [(stream_id, start, end), ...]")?;
            let txn_id = f.string(0, "txn_id")?;
            let where_list = parse_where_list(&f.args[1]).map_err(|found| {
                shape(
                    format!(
                        "a where_list [(stream_id, start, end), ...] in '{}'",
                        f.kind
                    ),
                    found,
                )
            })?;
            if f.kind == "1-ok" {
                Record::Phase1Commit { txn_id, where_list }
            } else {
                Record::Phase1Rollback { txn_id, where_list }
            }
        }
        "2-ok" => {
            f.want(2, "txn_id, end_offset")?;
            Record::Phase2Commit {
                txn_id: f.string(0, "txn_id")?,
                offset: f.offset(1, "end offset")?,
            }
        }
        "2-rollback" => {
            f.want(2, "txn_id, start_offset")?;
            Record::Phase2Rollback {
                txn_id: f.string(0, "txn_id")?,
                offset: f.offset(1, "start offset")?,
            }
        }
        _ => {
            f.want(2, "txn_id, message")?;
            Record::Phase2Error {
                txn_id: f.string(0, "txn_id")?,
                message: f.string(1, "message")?,
            }
        }
    })
}

/// The records around the two phases, and the S3 sink's commit.
fn other_record(f: &Fields<'_>) -> Result<Record, RecordError> {
    Ok(match f.kind {
        "list-uncommitted" => {
            f.want(1, "[txn_id, ...]")?;
            let txn_ids = string_list(&f.args[0]).map_err(|found| {
                shape("a list of txn_id str in 'list-uncommitted'".into(), found)
            })?;
            Record::ListUncommitted { txn_ids }
        }
        "next-txn-force-abort" => {
            f.want(1, "message")?;
            Record::NextTxnForceAbort {
                message: f.string(0, "message")?,
            }
        }
        "connection-closed" => {
            f.want(1, "True")?;
            match &f.args[0] {
                Value::Bool(_) => Record::ConnectionClosed,
                other => {
                    return Err(shape(
                        "True in 'connection-closed'".into(),
                        other.type_name().into(),
                    ))
                }
            }
        }
        "close" => {
            f.want(1, "'before reply' or 'after reply'")?;
            Record::Close {
                when: f.string(0, "when")?,
            }
        }
        "workers-left" => {
            f.want(1, "\"['name', ...]\"")?;
            let text = f.string(0, "the repr of the worker name list")?;
            let workers = pyliteral::parse(text.as_bytes())
                .map_err(|e| e.found)
                .and_then(|v| string_list(&v))
                .map_err(|found| {
                    shape(
                        "a str holding a list of worker names in 'workers-left'".into(),
                        found,
                    )
                })?;
            Record::WorkersLeft { workers }
        }
        "2-s3-ok" => {
            f.want(3, "txn_id, object_name, reason")?;
            Record::S3Commit {
                txn_id: f.string(0, "txn_id")?,
                object: f.string(1, "object name")?,
                reason: f.string(2, "reason")?,
            }
        }
        other => return Err(shape(
            "a known record kind (1-ok, 1-rollback, 2-ok, 2-rollback, 2-error, list-uncommitted, \
                 next-txn-force-abort, connection-closed, close, workers-left, 2-s3-ok)"
                .into(),
            format!("{other:?}"),
        )),
    })
}

fn string_list(value: &Value) -> Result<Vec<String>, String> {
    let Value::List(items) = value else {
        return Err(value.type_name().into());
    };
    items
        .iter()
        .map(|v| match v {
            Value::Str(s) => Ok(s.clone()),
            other => Err(format!("a list holding {}", other.type_name())),
        })
        .collect()
}

fn parse_where_list(value: &Value) -> Result<Vec<WhereRange>, String> {
    let Value::List(items) = value else {
        return Err(value.type_name().into());
    };
    items
        .iter()
        .map(|item| match item {
            Value::Tuple(t) if t.len() == 3 => {
                let mut n = [0u64; 3];
                for (slot, v) in n.iter_mut().zip(t) {
                    match v {
                        Value::Int(i) if *i >= 0 && *i <= i128::from(u64::MAX) => *slot = *i as u64,
                        other => {
                            return Err(format!("a triple holding {}", pyliteral::repr(other)))
                        }
                    }
                }
                Ok(WhereRange {
                    stream_id: n[0],
                    start: n[1],
                    end: n[2],
                })
            }
            other => Err(format!("an element {}", pyliteral::repr(other))),
        })
        .collect()
}

/// Formats a record exactly as the sink writes it, including the trailing LF.
pub fn format_record(time: f64, record: &Record) -> String {
    let s = |text: &str| Value::Str(text.to_string());
    let where_value = |wl: &[WhereRange]| {
        Value::List(
            wl.iter()
                .map(|w| {
                    Value::Tuple(vec![
                        Value::Int(w.stream_id.into()),
                        Value::Int(w.start.into()),
                        Value::Int(w.end.into()),
                    ])
                })
                .collect(),
        )
    };
    let mut items = vec![Value::Float(time), s(record.kind())];
    match record {
        Record::Phase1Commit { txn_id, where_list }
        | Record::Phase1Rollback { txn_id, where_list } => {
            items.push(s(txn_id));
            items.push(where_value(where_list));
        }
        Record::Phase2Commit { txn_id, offset } | Record::Phase2Rollback { txn_id, offset } => {
            items.push(s(txn_id));
            items.push(Value::Int((*offset).into()));
        }
        Record::Phase2Error { txn_id, message } => {
            items.push(s(txn_id));
            items.push(s(message));
        }
        Record::ListUncommitted { txn_ids } => {
            items.push(Value::List(txn_ids.iter().map(|t| s(t)).collect()))
        }
        Record::NextTxnForceAbort { message } => items.push(s(message)),
        Record::ConnectionClosed => items.push(Value::Bool(true)),
        Record::Close { when } => items.push(s(when)),
        Record::WorkersLeft { workers } => {
            let list = Value::List(workers.iter().map(|w| s(w)).collect());
            items.push(Value::Str(pyliteral::repr(&list)));
        }
        Record::S3Commit {
            txn_id,
            object,
            reason,
        } => {
            items.push(s(txn_id));
            items.push(s(object));
            items.push(s(reason));
        }
    }
    let mut line = pyliteral::repr(&Value::List(items));
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Record {
        parse_record(line.as_bytes()).unwrap().1
    }

    #[test]
    fn parses_and_reformats_every_kind() {
        let lines = [
            "[1587413104.8807573, 'list-uncommitted', []]",
            "[1587413105.9012375, '1-ok', 'P-w-i-id-7:c_id=1', [(1, 0, 2940)]]",
            "[1587413105.9031806, '2-ok', 'P-w-i-id-7:c_id=1', 2940]",
            "[1587413106.9140022, '1-rollback', 'P-w-i-id-7:c_id=2', [(1, 2940, 7350)]]",
            "[1587413106.9177134, '2-rollback', 'P-w-i-id-7:c_id=2', 2940]",
            "[1587413108.2318327, 'connection-closed', True]",
            "[1587413110.6420872, 'list-uncommitted', ['P-w-i-id-7:c_id=3']]",
            "[1587413110.7, '2-error', 'P-w-i-id-7:c_id=9', 'unknown txn_id, commit True']",
            "[1587413111.0, 'next-txn-force-abort', 'MISSING DATA: self._output_offset 5 tell 5 < msg.message_id 9 worker w']",
            "[1587413112.5, 'close', 'before reply']",
            "[1587413199.8327417, 'workers-left', \"['worker2']\"]",
            "[1587413200.25, '2-s3-ok', 'P-w-i-id-7:c_id=4', 'prefix0000000000009800', 'commit']",
        ];
        for line in lines {
            let (time, record) = parse_record(line.as_bytes()).unwrap();
            assert_eq!(format_record(time, &record), format!("{line}\n"), "{line}");
        }
        assert_eq!(
            one("[1.0, 'workers-left', \"['worker2', 'worker3']\"]"),
            Record::WorkersLeft {
                workers: vec!["worker2".into(), "worker3".into()]
            }
        );
    }

    /// Every record kind we write is a Python literal whose repr is the same bytes
    /// (checked with CPython's ast.literal_eval when python3 is present).
    #[test]
    fn every_written_kind_is_a_python_literal() {
        let wl = vec![WhereRange {
            stream_id: 1,
            start: 2940,
            end: 5390,
        }];
        let records = [
            Record::Phase1Commit {
                txn_id: "P-w-initializer-id-7:c_id=1".into(),
                where_list: wl.clone(),
            },
            Record::Phase1Rollback {
                txn_id: "P-w-initializer-id-7:c_id=2".into(),
                where_list: wl,
            },
            Record::Phase2Commit {
                txn_id: "T".into(),
                offset: 5390,
            },
            Record::Phase2Rollback {
                txn_id: "T".into(),
                offset: 2940,
            },
            Record::Phase2Error {
                txn_id: "T".into(),
                message: "unknown txn_id, commit True".into(),
            },
            Record::ListUncommitted { txn_ids: vec![] },
            Record::ListUncommitted {
                txn_ids: vec!["T:c_id=3".into()],
            },
            Record::NextTxnForceAbort {
                message: "2PC: Phase 1 invalid start_por 1 end_por 9 msg2 'T'".into(),
            },
            Record::ConnectionClosed,
            Record::Close {
                when: "before reply".into(),
            },
            Record::WorkersLeft {
                workers: vec!["worker2".into()],
            },
            Record::S3Commit {
                txn_id: "T".into(),
                object: "p0000000000005390".into(),
                reason: "commit".into(),
            },
        ];
        let lines: String = records
            .iter()
            .enumerate()
            .map(|(i, r)| format_record(1587413105.0 + i as f64 / 7.0, r))
            .collect();
        for line in lines.lines() {
            assert_eq!(format!("{}\n", line), {
                let (t, r) = parse_record(line.as_bytes()).unwrap();
                format_record(t, &r)
            });
        }
        let script = "import ast,sys\nfor l in sys.stdin:\n    l=l.rstrip('\\n')\n    v=ast.literal_eval(l)\n    assert repr(v)==l,(repr(v),l)\nprint('ok')";
        let Some((stdout, stderr)) = crate::formats::pyliteral::python::run(script, &lines) else {
            return; // no python3: the round trip above still holds
        };
        assert_eq!(stdout.trim(), "ok", "{stderr}");
    }

    #[test]
    fn torn_last_line_is_a_tail_not_an_error() {
        let text = b"[1.0, '2-ok', 'a', 5]\n[2.0, '2-ok', 'b";
        let log = parse_txnlog(Path::new("x.txnlog"), text).unwrap();
        assert_eq!(log.entries.len(), 1);
        assert_eq!(log.tail, TxnlogTail::Torn { line: 2, bytes: 16 });
        assert_eq!(log.complete_bytes, 22);
    }

    #[test]
    fn a_last_line_no_record_begins_is_an_error_not_a_torn_tail() {
        let good = "[1.5, 'connection-closed', True]\n";
        for tail in ["\0\0\0\0", "hello", "[1.5, 'co\0\0"] {
            let bytes = format!("{good}{tail}");
            let err = parse_txnlog(Path::new("t.txnlog"), bytes.as_bytes()).unwrap_err();
            assert!(err.to_string().starts_with("t.txnlog:2:1: "), "{err}");
        }
        let torn = format!("{good}[1.5, 'conn");
        let log = parse_txnlog(Path::new("t.txnlog"), torn.as_bytes()).unwrap();
        assert_eq!(log.tail, TxnlogTail::Torn { line: 2, bytes: 11 });
    }

    #[test]
    fn malformed_lines_name_file_line_and_column() {
        let text = b"[1.0, '2-ok', 'a', 5]\n[2.0, '2-ok', 'b' 7]\n";
        let err = parse_txnlog(Path::new("d/output.w.txnlog"), text)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "d/output.w.txnlog:2:19: malformed txnlog record: expected ',' or ']', found \"7]\""
        );
        for bad in [
            "[1.0, '2-ok', 'a', -5]",
            "[1.0, '2-ok', 'a']",
            "[1.0, '9-ok', 'a', 5]",
            "['x', '2-ok', 'a', 5]",
            "[1.0, '1-ok', 'a', [(1, 2)]]",
            "[1.0, 'workers-left', \"[3]\"]",
            "(1.0, '2-ok', 'a', 5)",
        ] {
            assert!(parse_record(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlong_line_is_refused() {
        let mut text = b"[1.0, 'close', '".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 1));
        let err = parse_txnlog(Path::new("t"), &text).unwrap_err();
        assert!(matches!(err, TxnlogError::LineTooLong { line: 1, .. }));
        // A complete line just over the limit, its LF landing in the read that crosses
        // it, is refused too (the framing once accepted it).
        let mut text = b"[1.0, 'list-uncommitted', []]\n[1.0, 'close', '".to_vec();
        let line_start = text.len() - "[1.0, 'close', '".len();
        text.extend(std::iter::repeat_n(
            b'x',
            MAX_LINE_BYTES + 40 - (text.len() - line_start),
        ));
        text.extend_from_slice(b"']\n");
        let err = parse_txnlog(Path::new("t"), &text).unwrap_err();
        assert!(
            matches!(err, TxnlogError::LineTooLong { line: 2, .. }),
            "{err}"
        );
    }
}
