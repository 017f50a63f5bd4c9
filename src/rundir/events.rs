//! events.jsonl: a run's timeline, one JSON object per line, written as it happens.
//!
//! The first line is the run's [`RunHeader`] (seed, command line, when it started); then
//! every fault and action the supervisor took, as a [`Step`] with its wall time; every
//! finding; and, when the run ends by itself or is stopped, its [`RunEnd`]. `--replay`
//! reads back the steps only; `soakcheck report` reads all of it. One definition serves
//! the writer and both readers, so the format cannot drift between them.

use std::path::Path;

use super::step::Step;
use crate::finding::Finding;

/// The run's first line: what a person needs to repeat it and to place it in time.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunHeader {
    pub seed: u64,
    /// The command line, as given.
    pub command: Vec<String>,
    pub workers: usize,
    pub keys: String,
    pub preset: String,
    pub run_dir: String,
    /// Wall time (Unix seconds) when the run began.
    pub start: f64,
    /// The control machine's offset from UTC, in seconds: the components' logs are
    /// stamped in local time.
    pub utc_offset_s: i32,
    /// The directory the command was given in (its relative paths are from there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The events.jsonl whose faults this run replayed (`--replay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed: Option<String>,
}

/// The header of an events.jsonl, read leniently: the first line that is one.
pub fn header_of(path: &Path) -> Option<RunHeader> {
    let text = read_events_text(path).ok()?;
    text.lines()
        .find_map(|line| match serde_json::from_str::<EventLine>(line) {
            Ok(EventLine::Run { run }) => Some(run),
            _ => None,
        })
}

/// This machine's offset from UTC in seconds (what [`RunHeader::utc_offset_s`] records).
pub fn local_utc_offset() -> i32 {
    chrono::Local::now().offset().local_minus_utc()
}

/// The run's last line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunEnd {
    /// `ok`, `violation`, `stopped`, `nothing-verified`, `undetermined`, or `error` (the run failed).
    pub verdict: String,
    pub time: f64,
    pub duration_s: f64,
    pub fault_count: u64,
}

/// One line of events.jsonl.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum EventLine {
    Run {
        run: RunHeader,
    },
    Finding {
        finding: Finding,
        /// Seconds since the soak began.
        at: f64,
        time: f64,
    },
    End {
        end: RunEnd,
    },
    /// The senders' acked offsets that moved (by key), at wall time `time`: the report
    /// charts them for the whole run, though the sender logs are rotated away.
    Acked {
        acked: std::collections::BTreeMap<String, u64>,
        time: f64,
    },
    /// A fault or action; `time` (wall time) and `effect_ms` (how long after it was due
    /// the driver's call returned) are absent from older files.
    Step {
        #[serde(flatten)]
        step: Step,
        #[serde(default)]
        time: Option<f64>,
        #[serde(default)]
        effect_ms: Option<f64>,
    },
}

impl EventLine {
    /// The line as written (without its LF).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("an event line serializes")
    }
}

/// Why events.jsonl could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not an events.jsonl line ({detail}); expected a run, step, finding or end object")]
    Line {
        path: String,
        line: usize,
        detail: String,
    },
}

/// Parses an events.jsonl. A last line without its LF that does not parse is a write
/// cut short by a crash or still under way, and is left out.
pub fn parse_events(path: &Path, text: &str) -> Result<Vec<EventLine>, EventsError> {
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut events = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<EventLine>(line) {
            Ok(event) => events.push(event),
            Err(_) if !complete && n + 1 == lines.len() => break,
            Err(e) => {
                return Err(EventsError::Line {
                    path: path.display().to_string(),
                    line: n + 1,
                    detail: why_not_a_line(line, &e),
                })
            }
        }
    }
    Ok(events)
}

/// Parses an events.jsonl as far as it can be read, for a page a person reads: a line
/// that is not an events.jsonl line is left out with a note naming it, and so is a last
/// line cut short (no LF), so one bad line never costs the whole page.
pub fn parse_events_noting(path: &Path, text: &str) -> NotedEvents {
    let complete = text.is_empty() || text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut events = Vec::with_capacity(lines.len());
    let mut notes = Vec::new();
    let mut unreadable_findings = 0;
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str::<EventLine>(line);
        // Meant as a finding (a kind this soakcheck does not know, a field missing): a
        // record with one is never shown as a pass.
        if event.is_err()
            && serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|v| v.get("finding").is_some())
        {
            unreadable_findings += 1;
        }
        match event {
            Ok(event) => events.push(event),
            Err(_) if !complete && n + 1 == lines.len() => notes.push(format!(
                "{}:{}: the last line is cut short ({} bytes without its LF: a write cut short by a crash, or still under way); it is left out",
                path.display(),
                n + 1,
                line.len()
            )),
            Err(e) => notes.push(format!(
                "{}:{}: not an events.jsonl line ({}); it is left out, and the page shows the rest",
                path.display(),
                n + 1,
                why_not_a_line(line, &e)
            )),
        }
    }
    NotedEvents {
        events,
        notes,
        unreadable_findings,
    }
}

/// An events.jsonl read for a page: its lines, a note on each it left out, and how many
/// of those were meant as findings.
#[derive(Debug, Default)]
pub struct NotedEvents {
    pub events: Vec<EventLine>,
    pub notes: Vec<String>,
    pub unreadable_findings: usize,
}

/// Why a line is no event, as precisely as can be said: a line with an `action` is meant
/// as a step, so the step's own error (an unknown action, a missing or mistyped field)
/// says more than "no variant matched".
fn why_not_a_line(line: &str, error: &serde_json::Error) -> String {
    let value: Option<serde_json::Value> = serde_json::from_str(line).ok();
    if value.as_ref().is_some_and(|v| v.get("action").is_some()) {
        if let Err(e) = serde_json::from_str::<Step>(line) {
            return format!("a step: {e}");
        }
    }
    error.to_string()
}

/// The largest events.jsonl read (a long soak's is a few MB: 100,000 events are about
/// 15 MB); a larger file, or one that is not a regular file (`/dev/zero`, a FIFO), is
/// an error rather than a read without end.
pub const EVENTS_LIMIT: u64 = 1 << 30;

/// Reads an events.jsonl (a regular file of at most [`EVENTS_LIMIT`] bytes) as text.
pub fn read_events_text(path: &Path) -> Result<String, EventsError> {
    let bytes = crate::formats::regular::read_regular(path, EVENTS_LIMIT).map_err(|source| {
        EventsError::Read {
            path: path.display().to_string(),
            source,
        }
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads and parses an events.jsonl.
pub fn read_events(path: &Path) -> Result<Vec<EventLine>, EventsError> {
    parse_events(path, &read_events_text(path)?)
}

/// The steps of an events.jsonl, for `--replay`.
pub fn steps(events: &[EventLine]) -> Vec<Step> {
    events
        .iter()
        .filter_map(|e| match e {
            EventLine::Step { step, .. } => Some(step.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::FindingKind;
    use crate::rundir::step::Act;

    #[test]
    fn every_kind_of_line_reads_back_and_old_steps_still_parse() {
        let lines = vec![
            EventLine::Run {
                run: RunHeader {
                    seed: u64::MAX,
                    command: vec!["soakcheck".into(), "run".into(), "3".into()],
                    workers: 3,
                    keys: "ABC".into(),
                    preset: "demo".into(),
                    run_dir: "/tmp".into(),
                    start: 1_795_920_447.5,
                    utc_offset_s: 3600,
                    cwd: Some("/home/u".into()),
                    replayed: None,
                },
            },
            EventLine::Step {
                step: Step::on(3.0, Act::Crash, "sink"),
                time: Some(1_795_920_450.5),
                effect_ms: Some(1.5),
            },
            EventLine::Finding {
                finding: Finding {
                    kind: FindingKind::Violation,
                    key: Some("C".into()),
                    detail: "key C breaks".into(),
                    elapsed_s: 1.0,
                },
                at: 4.0,
                time: 1_795_920_451.5,
            },
            EventLine::End {
                end: RunEnd {
                    verdict: "violation".into(),
                    time: 1_795_920_460.0,
                    duration_s: 12.5,
                    fault_count: 1,
                },
            },
        ];
        let text: String = lines.iter().map(|l| l.to_line() + "\n").collect();
        let path = Path::new("events.jsonl");
        assert_eq!(parse_events(path, &text).unwrap(), lines);
        let old = r#"{"at":3.001959915,"action":"crash","component":"sink","effect_ms":1.96}"#;
        let parsed = parse_events(path, &format!("{old}\n")).unwrap();
        assert!(matches!(&parsed[0], EventLine::Step { time: None, .. }));
        assert_eq!(steps(&lines).len(), 1);
    }

    #[test]
    fn a_torn_last_line_is_left_out_but_a_bad_line_names_its_number() {
        let path = Path::new("/r/events.jsonl");
        let good = r#"{"at":1.0,"action":"crash","component":"sink"}"#;
        let torn = format!("{good}\n{{\"at\":2.0,\"act");
        assert_eq!(parse_events(path, &torn).unwrap().len(), 1);
        let bad = format!("{good}\n{{\"at\":2.0}}\n{good}\n");
        let err = parse_events(path, &bad).unwrap_err().to_string();
        assert!(
            err.starts_with("/r/events.jsonl:2: not an events.jsonl line"),
            "{err}"
        );
    }
}
