//! The verification report: one document rendered two ways, as JSON (`--json`, the schema
//! in README.md) and as a human summary with one line per key.

use crate::term::{Paint, Tone};
use std::fmt::Write as _;

use serde::Serialize;

use super::checker::Semantics;
use super::classify::ViolationKind;
use super::commits::{Problem, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ok,
    Violation,
    Error,
    /// No key failed, but a key's order rests on timestamps that go back, so it has no
    /// verdict (exit 2, as for a check that could not be made).
    Undetermined,
}

impl Verdict {
    /// The process exit status for this verdict (documented in README.md).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Ok => 0,
            Verdict::Violation => 1,
            Verdict::Error | Verdict::Undetermined => 2,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    pub semantics: Semantics,
    pub keys: Vec<KeyReport>,
    pub problems: Vec<Problem>,
    pub sink: SinkSummary,
    pub error: Option<String>,
    /// `watch` only: what stopped it (violations, progress findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<serde_json::Value>,
    /// The likely cause of a verdict, when the verdict itself points at one (every key
    /// failing at its first byte: the wrong inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    pub key: String,
    pub input: String,
    pub input_bytes: u64,
    pub verified_bytes: u64,
    pub verified_lines: u64,
    /// Bytes of this key's committed output stream.
    pub output_bytes: u64,
    pub complete: bool,
    pub violation: Option<ViolationReport>,
    /// Set when the key's order rests on timestamps that go back: two commits of
    /// different files that both carry its lines, whose order the timestamps leave open.
    /// The key then has no verdict (and no violation is reported for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_undetermined: Option<[CommitRef; 2]>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ViolationReport {
    pub kind: ViolationKind,
    pub lines: u64,
    pub key_offset: u64,
    pub input_offset: u64,
    /// 1-based line number of `input_offset` in the input file.
    pub input_line: u64,
    /// The input line expected (without LF, at most [`SHOWN_BYTES`] of it); null when
    /// the output went past the input.
    pub expected: Option<String>,
    /// The expected line's length in bytes, without LF.
    pub expected_bytes: Option<u64>,
    /// The output line found (without LF, at most [`SHOWN_BYTES`] of it); null when the
    /// committed output ended early.
    pub found: Option<String>,
    /// The found line's length in bytes, without LF.
    pub found_bytes: Option<u64>,
    /// Where the found line is in the input, when it is an input line.
    pub found_input_offset: Option<u64>,
    /// The commit that carried the found line; null when the output ended early.
    pub commit: Option<CommitRef>,
    /// The later commit whose chunk continued the found line, when it was torn at the end
    /// of its own commit's chunk (in commit order, the two parts are one line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined: Option<CommitRef>,
}

/// Reports show at most this many bytes of a line (and its length).
pub const SHOWN_BYTES: usize = 200;

/// At most [`SHOWN_BYTES`] of `line` (without its LF), as text.
pub fn shown_text(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    String::from_utf8_lossy(&line[..line.len().min(SHOWN_BYTES)]).into_owned()
}

/// The human form of a line shown: quoted, with its length when it was cut.
fn shown_line(text: &Option<String>, bytes: Option<u64>, none: &str) -> String {
    match (text, bytes) {
        (Some(t), Some(n)) if n > SHOWN_BYTES as u64 => {
            format!("{t:?}... ({n} bytes, the first {SHOWN_BYTES} shown)")
        }
        (Some(t), _) => format!("{t:?}"),
        (None, _) => none.to_string(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CommitRef {
    pub txn_id: String,
    pub time: f64,
    pub file: String,
    pub file_offset: u64,
    /// The `2-ok` line in the file's txnlog (0 for a plain output file, which has none).
    pub txnlog_line: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SinkSummary {
    pub dir: Option<String>,
    pub files: usize,
    pub commits: u64,
    pub committed_bytes: u128,
    /// Committed lines whose first byte is no checked key (ignored, as the original does).
    pub other_key_lines: u64,
}

/// The hint of a report whose every key failed at its very first byte: the output is
/// probably not of these inputs at all.
pub fn wrong_inputs_hint(keys: &[KeyReport]) -> Option<String> {
    let at_first_byte = |k: &KeyReport| {
        k.violation
            .as_ref()
            .is_some_and(|v| v.input_offset == 0 && v.key_offset == 0 && v.found.is_some())
    };
    if keys.is_empty() || !keys.iter().all(at_first_byte) {
        return None;
    }
    let dirs: std::collections::BTreeSet<String> = keys
        .iter()
        .map(|k| {
            std::path::Path::new(&k.input)
                .parent()
                .map_or_else(String::new, |d| d.display().to_string())
        })
        .collect();
    let dirs: Vec<String> = dirs.into_iter().collect();
    Some(format!(
        "every key failed at its first byte, so the inputs are probably not the ones this output \
         was made from: they were read from {} (the default --input-dir is /tmp, which may hold \
         another run's input-file.K.txt); name this run's inputs with --input-dir or --input",
        dirs.join(", ")
    ))
}

impl Report {
    /// A report for a check that could not be made.
    pub fn error(semantics: Semantics, message: String) -> Report {
        Report {
            verdict: Verdict::Error,
            semantics,
            keys: Vec::new(),
            problems: Vec::new(),
            sink: SinkSummary {
                dir: None,
                files: 0,
                commits: 0,
                committed_bytes: 0,
                other_key_lines: 0,
            },
            error: Some(message),
            findings: None,
            hint: None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The human summary; `color` adds ANSI colours to the verdict words.
    pub fn to_human(&self, color: bool) -> String {
        let paint = Paint(color);
        let mut out = String::new();
        if let Some(message) = &self.error {
            let _ = writeln!(out, "{}: {message}", paint.on("error", Tone::Bad));
            return out;
        }
        let _ = writeln!(
            out,
            "sink {}: {} files, {} commits, {} committed bytes ({})",
            self.sink.dir.as_deref().unwrap_or("(plain outputs)"),
            self.sink.files,
            self.sink.commits,
            self.sink.committed_bytes,
            crate::choice::Choice::name(self.semantics)
        );
        let width = self.keys.iter().map(|k| k.key.len()).max().unwrap_or(1);
        for k in &self.keys {
            write_key(&mut out, k, width, paint);
        }
        for p in &self.problems {
            write_problem(&mut out, p, paint);
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{}: {hint}", paint.on("hint", Tone::Note));
        }
        self.write_verdict(&mut out, paint);
        out
    }

    /// The last line: the verdict and what failed.
    fn write_verdict(&self, out: &mut String, paint: Paint) {
        let failed_keys = self.keys.iter().filter(|k| k.violation.is_some()).count();
        let failed_problems = self
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Violation)
            .count();
        let counts = format!(
            "{failed_keys} of {} keys failed, {failed_problems} sink problem(s)",
            self.keys.len()
        );
        let undetermined = self
            .keys
            .iter()
            .filter(|k| k.order_undetermined.is_some())
            .count();
        let _ = match (self.verdict, self.other_findings()) {
            (Verdict::Ok, _) => writeln!(out, "{}: {counts}", paint.on("OK", Tone::Pass)),
            (Verdict::Undetermined, _) => writeln!(
                out,
                "{}: {counts}; {undetermined} key(s) without a verdict, because the sink's \
                 timestamps cannot order their lines where they move between files",
                paint.on("UNDETERMINED", Tone::Bad)
            ),
            (_, Some(found)) => {
                writeln!(out, "{}: {found}; {counts}", paint.on("FINDING", Tone::Bad))
            }
            (_, None) => writeln!(out, "{}: {counts}", paint.on("VIOLATION", Tone::Bad)),
        };
    }

    /// `watch`'s findings other than a key's violation or a sink problem (an ack
    /// timeout, a stall, a sink-log error), named with their key, so the last line says
    /// what stopped it when no key failed.
    fn other_findings(&self) -> Option<String> {
        let findings = self.findings.as_ref()?.as_array()?;
        let mut named: Vec<String> = Vec::new();
        for f in findings {
            let kind = f["kind"].as_str().unwrap_or("finding");
            if matches!(kind, "violation" | "sink-problem") {
                continue;
            }
            let name = match f["key"].as_str() {
                Some(key) => format!("{kind} (key {key})"),
                None => kind.to_string(),
            };
            if !named.contains(&name) {
                named.push(name);
            }
        }
        (!named.is_empty()).then(|| named.join(", "))
    }
}

/// One key's line, and its violation's lines.
fn write_key(out: &mut String, k: &KeyReport, width: usize, paint: Paint) {
    let state = match (&k.violation, k.complete) {
        _ if k.order_undetermined.is_some() => paint.on("UNDETERMINED", Tone::Bad),
        (Some(v), _) => paint.on(&format!("{:<9}", v.kind.as_str().to_uppercase()), Tone::Bad),
        (None, true) => paint.on("ok       ", Tone::Good),
        (None, false) => paint.on("ok-prefix", Tone::Good),
    };
    let _ = writeln!(
        out,
        "  {:<width$}  {state}  {}/{} bytes, {} lines verified  {}",
        k.key, k.verified_bytes, k.input_bytes, k.verified_lines, k.input
    );
    if let Some(v) = &k.violation {
        write_violation(out, v);
    }
    if let Some([a, b]) = &k.order_undetermined {
        let _ = writeln!(
            out,
            "      its lines in {} (txnlog line {}, stamped {}) and in {} (txnlog line {}, stamped {}) \
             may have been committed in either order: their stamps cannot order them (the \
             order-undetermined note says why)",
            a.file,
            a.txnlog_line,
            crate::duration::show_number(a.time),
            b.file,
            b.txnlog_line,
            crate::duration::show_number(b.time)
        );
    }
}

/// What a violation is, where, what was expected and found, and in which commit.
fn write_violation(out: &mut String, v: &ViolationReport) {
    let what = match v.kind {
        ViolationKind::Duplicate => format!("{} delivered line(s) repeated", v.lines),
        ViolationKind::Loss if v.found.is_none() => {
            format!(
                "{} line(s) missing: the committed output ended early",
                v.lines
            )
        }
        ViolationKind::Loss => format!("{} line(s) lost", v.lines),
        ViolationKind::Reorder => format!(
            "a line {} line(s) early; the skipped lines come later",
            v.lines
        ),
        ViolationKind::Corrupt => "a line that is not in the input".to_string(),
    };
    let _ = writeln!(
        out,
        "      {what}: at input line {} (input offset {}, key output offset {})",
        v.input_line, v.input_offset, v.key_offset
    );
    let _ = writeln!(
        out,
        "      expected: {}",
        shown_line(&v.expected, v.expected_bytes, "(end of input)")
    );
    let _ = writeln!(
        out,
        "      found:    {}",
        shown_line(&v.found, v.found_bytes, "(end of committed output)")
    );
    write_where(out, v);
}

/// Where a violation's line is: its commit (or plain output file) and, for a line torn
/// across chunks, the chunk that continued it. Names and ids come from the sink's files,
/// so they are shown, never obeyed by the terminal.
fn write_where(out: &mut String, v: &ViolationReport) {
    match &v.commit {
        Some(c) if c.txnlog_line == 0 => {
            let (file, at) = (shown(&c.file), c.file_offset);
            let _ = writeln!(out, "      in:       plain output {file} byte {at}");
        }
        Some(c) => {
            let (id, file) = (shown(&c.txn_id), shown(&c.file));
            let _ = writeln!(
                out,
                "      commit:   {id} at {} ({file}.txnlog line {}), {file} byte {}",
                c.time, c.txnlog_line, c.file_offset
            );
        }
        None => {}
    }
    if let Some(j) = &v.joined {
        let _ = writeln!(
            out,
            "      joined:   the line is torn at the end of that chunk and continued by {} ({} byte {})",
            shown(&j.txn_id),
            shown(&j.file),
            j.file_offset
        );
    }
}

use crate::formats::text::shown;

/// A sink problem or note, with its place.
fn write_problem(out: &mut String, p: &Problem, paint: Paint) {
    let label = match p.severity {
        Severity::Violation => paint.on("problem", Tone::Bad),
        Severity::Note => paint.on("note", Tone::Note),
    };
    // Names and details come from the sink's files: a txn id must not drive the terminal.
    let place = if p.line > 0 {
        format!("{}:{}", shown(&p.file), p.line)
    } else {
        shown(&p.file)
    };
    let _ = writeln!(
        out,
        "{label}: {place}: {}: {}",
        crate::json_name(&p.kind),
        shown(&p.detail)
    );
}
