//! A finding: what a live check (or the supervisor) reports when the promise was
//! broken, or could not be watched. `watch` makes them, `run` records them in
//! events.jsonl and stops on them, and the report shows them.

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A key's committed output broke the promise.
    Violation,
    /// A sink-level problem (committed data missing, a regressed commit, ...).
    SinkProblem,
    /// A sender showed no new ack within --ack-timeout.
    AckTimeout,
    /// None of a sender's last N `added` lines was open.
    RegistryStall,
    /// An ERROR, FATAL or CRITICAL line in the sink log.
    SinkError,
    /// --timeout passed before --until was reached.
    Stalled,
    /// Committed output a power cut took back: the sink acknowledged it before it was
    /// durable.
    CommittedDataLostOnPowerLoss,
    /// A remote checker died or its connection dropped: nothing is being checked.
    CheckerLost,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub key: Option<String>,
    pub detail: String,
    /// Seconds since watch started.
    pub elapsed_s: f64,
}

impl Finding {
    /// The kind's name, as in JSON (`ack-timeout`).
    pub fn kind_name(&self) -> String {
        crate::json_name(&self.kind)
    }
}
