//! The watch protocol: what `watch --events` writes, one JSON object a line, and what
//! `run` reads from its checkers on other hosts. One serde enum on both sides, so the
//! writer and the reader cannot drift apart.

use std::collections::BTreeMap;

use crate::finding::Finding;

/// One line of `watch --events`; `event` names its kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum WatchEvent {
    /// The watch started, or reached `--until` (then `until` says which).
    State {
        time: f64,
        state: WatchState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<String>,
    },
    /// A batch of commits was verified: how many, their bytes, and every key's
    /// verified bytes so far.
    Commits {
        time: f64,
        commits: u64,
        bytes: u64,
        verified_bytes: BTreeMap<String, u64>,
    },
    /// A finding, as it is found.
    Finding { time: f64, finding: Finding },
    /// The senders' acked offsets that moved (at most once a second).
    Acked {
        time: f64,
        acked: BTreeMap<String, u64>,
    },
    /// The last line: what was verified in all, and the keys of which not one byte was.
    Summary {
        time: f64,
        commits: u64,
        verified_bytes: u64,
        #[serde(default)]
        unverified_keys: Vec<String>,
        /// Keys whose order rests on the sink's timestamps where they go back: no
        /// verdict for them (see `verify::clock`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        undetermined_keys: Vec<String>,
        findings: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WatchState {
    Started,
    UntilReached,
}

impl WatchEvent {
    /// The event's line (without its newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a watch event always serializes")
    }

    /// A line of `watch --events`, or None for one that is not (an older or newer
    /// kind of event is skipped, not an error).
    pub fn from_line(line: &str) -> Option<WatchEvent> {
        serde_json::from_str(line).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::FindingKind;

    /// Every kind survives its own line, and a line of an unknown kind is skipped.
    #[test]
    fn every_event_reads_back_as_written() {
        let events = [
            WatchEvent::State {
                time: 1.5,
                state: WatchState::UntilReached,
                until: Some("complete".into()),
            },
            WatchEvent::Commits {
                time: 2.0,
                commits: 3,
                bytes: 4,
                verified_bytes: BTreeMap::from([("A".to_string(), 4)]),
            },
            WatchEvent::Acked {
                time: 2.5,
                acked: [("A".to_string(), 4900)].into_iter().collect(),
            },
            WatchEvent::Finding {
                time: 3.0,
                finding: Finding {
                    kind: FindingKind::AckTimeout,
                    key: Some("B".into()),
                    detail: "no ack".into(),
                    elapsed_s: 1.0,
                },
            },
            WatchEvent::Summary {
                time: 4.0,
                commits: 3,
                verified_bytes: 4,
                unverified_keys: vec!["C".into()],
                undetermined_keys: vec!["B".into()],
                findings: 1,
            },
        ];
        for e in events {
            let line = e.to_line();
            assert_eq!(WatchEvent::from_line(&line), Some(e), "{line}");
        }
        let started = WatchEvent::State {
            time: 0.0,
            state: WatchState::Started,
            until: None,
        };
        assert!(started
            .to_line()
            .contains("\"event\":\"state\",\"time\":0.0,\"state\":\"started\""));
        assert_eq!(
            WatchEvent::from_line(r#"{"event":"gossip","time":1}"#),
            None
        );
    }
}
