//! The live checks, one type each behind [`LiveCheck`]: a key's violation, sink-level
//! problems, errors in the sink's log, each sender's progress (acks and its registry of
//! streams), and the `--timeout`. `Watcher::step` runs those of its plan, in this
//! order, after each pass of the checker core; a new live check is one type here and
//! one line in [`checks_of`].

use std::time::Instant;

use super::logs::{LogTail, SenderProgress};
use super::{WatchCore, WatchError, WatchPlan};
use crate::finding::{Finding, FindingKind};
use crate::verify::Severity;

/// What a check sees after a pass.
pub struct Pass<'p, 'i> {
    pub plan: &'p WatchPlan,
    pub core: &'p WatchCore<'i>,
    pub senders: &'p mut [SenderProgress],
    pub now: Instant,
    pub started: Instant,
}

/// One live check: after each pass, what it finds is pushed to `found`.
pub trait LiveCheck {
    fn check(&mut self, pass: &mut Pass<'_, '_>, found: &mut Fresh) -> Result<(), WatchError>;

    /// The core started over (after a power cut): what it counted in the old one is gone.
    fn restarted(&mut self) {}
}

/// The checks of `plan` over `keys` keys, in the order they run.
pub fn checks_of(plan: &WatchPlan, keys: usize) -> Vec<Box<dyn LiveCheck>> {
    let mut checks: Vec<Box<dyn LiveCheck>> = vec![
        Box::new(KeyViolations {
            reported: vec![false; keys],
        }),
        Box::new(SinkProblems { reported: 0 }),
    ];
    if let Some(path) = &plan.sink_log {
        checks.push(Box::new(SinkLogErrors {
            tail: LogTail::new(path.clone()),
        }));
    }
    checks.push(Box::new(SenderProgressCheck));
    checks.push(Box::new(Timeout));
    checks
}

/// A key whose committed output broke the promise (once per key).
struct KeyViolations {
    reported: Vec<bool>,
}

impl LiveCheck for KeyViolations {
    fn check(&mut self, pass: &mut Pass<'_, '_>, found: &mut Fresh) -> Result<(), WatchError> {
        for (i, c) in pass.core.checker.cursors().iter().enumerate() {
            if let (Some(m), false) = (c.mismatch(), self.reported[i]) {
                self.reported[i] = true;
                // A key whose order rests on timestamps that go back has no verdict:
                // the final pass says so (as verify does), and nothing is found here.
                if pass.core.order_undetermined(c.key) {
                    continue;
                }
                found.push(
                    FindingKind::Violation,
                    Some(c.key),
                    format!(
                        "key {} breaks at input offset {} (key output offset {})",
                        c.key as char, m.input_offset, m.key_offset
                    ),
                );
            }
        }
        Ok(())
    }
}

/// The sink-level problems found since the last pass.
struct SinkProblems {
    reported: usize,
}

impl LiveCheck for SinkProblems {
    fn check(&mut self, pass: &mut Pass<'_, '_>, found: &mut Fresh) -> Result<(), WatchError> {
        let problems = &pass.core.log.problems;
        for p in &problems[self.reported..] {
            if p.severity == Severity::Violation {
                // In a run that cuts the sink's power, committed output gone is what a
                // cut took (seen here when a pass reads before the cut is announced).
                let lost = pass.plan.checks.power_cuts
                    && p.kind == crate::verify::ProblemKind::CommittedDataMissing;
                found.push(
                    if lost {
                        FindingKind::CommittedDataLostOnPowerLoss
                    } else {
                        FindingKind::SinkProblem
                    },
                    None,
                    format!("{}:{}: {}", p.file, p.line, p.detail),
                );
            }
        }
        self.reported = problems.len();
        Ok(())
    }

    fn restarted(&mut self) {
        self.reported = 0;
    }
}

/// ERROR, FATAL or CRITICAL lines new in the sink's log.
///
/// In a run that cuts the sink's power, an error found here may be what a cut did to the
/// sink's files: the watcher then looks at them again before it reports the error
/// (`Watcher::cause_before_symptom`).
struct SinkLogErrors {
    tail: LogTail,
}

impl LiveCheck for SinkLogErrors {
    fn check(&mut self, _pass: &mut Pass<'_, '_>, found: &mut Fresh) -> Result<(), WatchError> {
        let mut errors = Vec::new();
        self.tail.read_new(&mut |line| {
            if [&b"ERROR"[..], b"FATAL", b"CRITICAL"]
                .iter()
                .any(|w| memchr::memmem::find(line, w).is_some())
            {
                errors.push(String::from_utf8_lossy(line).into_owned());
            }
        })?;
        for e in errors {
            found.push(
                FindingKind::SinkError,
                None,
                format!("{}: {e}", self.tail.path.display()),
            );
        }
        Ok(())
    }
}

/// Each sender's progress: a new ack within --ack-timeout, and an open stream among its
/// last `registry_window` added ones.
struct SenderProgressCheck;

impl LiveCheck for SenderProgressCheck {
    fn check(&mut self, pass: &mut Pass<'_, '_>, found: &mut Fresh) -> Result<(), WatchError> {
        let (plan, now) = (pass.plan, pass.now);
        for s in pass.senders.iter_mut() {
            s.update(plan.registry_window, now)?;
            if let (Some(since), false) = (s.since, s.eof) {
                let last = s.last_ack.unwrap_or(since);
                if plan.checks.ack_progress && now.duration_since(last) > plan.ack_timeout {
                    found.push(
                        FindingKind::AckTimeout,
                        Some(s.key),
                        format!(
                            "{}: no new acked Stream(...is_open=True) line for {:?}",
                            s.tail.path.display(),
                            plan.ack_timeout
                        ),
                    );
                    s.last_ack = Some(now);
                }
            }
            if plan.checks.registry_progress && !s.registry_ok(plan.registry_window) {
                found.push(
                    FindingKind::RegistryStall,
                    Some(s.key),
                    format!(
                        "{}: none of the last {} added Stream lines has is_open=True",
                        s.tail.path.display(),
                        plan.registry_window
                    ),
                );
                s.added.clear();
            }
        }
        Ok(())
    }
}

/// `--until` not reached within `--timeout`.
struct Timeout;

impl LiveCheck for Timeout {
    fn check(&mut self, pass: &mut Pass<'_, '_>, found: &mut Fresh) -> Result<(), WatchError> {
        let plan = pass.plan;
        if let Some(limit) = plan.timeout {
            if pass.now.duration_since(pass.started) > limit {
                found.push(
                    FindingKind::Stalled,
                    None,
                    format!("--until {:?} not reached within {limit:?}", plan.until).to_lowercase(),
                );
            }
        }
        Ok(())
    }
}

/// The findings of one pass, before the rules on which of them count.
#[derive(Default)]
pub struct Fresh(Vec<(FindingKind, Option<u8>, String)>);

impl Fresh {
    pub fn push(&mut self, kind: FindingKind, key: Option<u8>, detail: String) {
        self.0.push((kind, key, detail));
    }

    /// The timeout only counts when nothing more specific was found; without the
    /// sanity checks, only progress findings stop a watch.
    pub fn kept(mut self, sanity: bool, elapsed_s: f64) -> Vec<Finding> {
        if self.0.len() > 1 {
            self.0.retain(|f| f.0 != FindingKind::Stalled);
        }
        if !sanity {
            self.0.retain(|f| {
                !matches!(
                    f.0,
                    FindingKind::Violation | FindingKind::SinkProblem | FindingKind::SinkError
                )
            });
        }
        self.0
            .into_iter()
            .map(|(kind, key, detail)| Finding {
                kind,
                key: key.map(|k| (k as char).to_string()),
                detail,
                elapsed_s,
            })
            .collect()
    }
}
