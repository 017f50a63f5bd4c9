//! `soakcheck watch`: continuous verification of a live sink directory, plus the sender
//! logs' progress and the sink log's errors, stopping at the first finding.
//!
//! It drives the same [`Checker`] as `verify` (there is no second checker): each pass
//! reads what the txnlogs gained ([`sink::SinkTail`]), releases commits in the global
//! order once the release rule allows, reads just their committed chunks and feeds them,
//! so the work per commit is proportional to its bytes. File-system events (inotify
//! through `notify`, or `--poll`) are only hints that wake a pass; every pass re-reads
//! sizes and contents itself, so a missed or merged event costs latency, never
//! correctness. Between events it sleeps: idle CPU is near zero.
//!
//! A reset (a txnlog deleted or shortened: the directory emptied and refilled) stops
//! watch with exit status 2 rather than mixing two runs in one verdict.

pub mod checks;
pub mod events;
pub mod logs;
pub mod sink;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use logs::SenderProgress;
use sink::{SinkTail, SinkTailError};

use crate::duration::unix_now;
use crate::finding::{Finding, FindingKind};
use crate::formats::mapped::FileBytes;
use crate::formats::sinkdir::discover;
use crate::verify::commits::untracked_output_notes;
use crate::verify::{
    build_report, open_inputs, Checker, CommitLog, Report, Severity, Verdict, VerifyError,
    VerifyPlan,
};
use checks::{Fresh, LiveCheck, Pass};
use events::{WatchEvent, WatchState};

/// When watch stops with success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Until {
    /// Every key's committed output equals its input.
    Complete,
    /// Every sender log shows its stream closed at the last line, and the output is complete.
    Eof,
    /// Never: only a finding (or the timeout) stops it.
    Forever,
}

impl crate::choice::Choice for Until {
    const CHOICES: &'static [(Self, &'static str)] = &[
        (
            Until::Complete,
            "Every key's committed output equals its input",
        ),
        (
            Until::Eof,
            "Every sender log shows its stream closed at the last line, and the output is complete",
        ),
        (
            Until::Forever,
            "Never: only a finding (or the timeout) stops it",
        ),
    ];
}

crate::display_as_choice!(Until);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProgressStyle {
    /// A live status line (on a terminal).
    StatusLine,
    /// The original harness's characters: `,` per check tick, `{AP}`, `{RP}`.
    Terse,
    Quiet,
}

/// Everything a watch checks, and how: what `watch`'s flags make, what `run`'s
/// in-process checks use, and (as JSON, `watch --plan -`) what `run` sends a checker on
/// another host, so the checks cannot differ by where they run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WatchPlan {
    /// Sink directory, inputs and semantics (expect_complete is ignored).
    pub verify: VerifyPlan,
    pub sender_logs: Vec<(u8, PathBuf)>,
    pub sink_log: Option<PathBuf>,
    pub ack_timeout: Duration,
    pub registry_window: usize,
    pub until: Until,
    pub timeout: Option<Duration>,
    pub events: Option<PathBuf>,
    pub on_violation: Option<String>,
    /// Poll every DUR instead of using inotify.
    pub poll: Option<Duration>,
    pub progress: ProgressStyle,
    pub checks: Checks,
}

/// Which of the original harness's checks run (`soakcheck run`'s `no-*` arguments turn
/// them off; `watch` runs them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checks {
    /// Verification of every key, sink problems and sink-log errors.
    pub sanity: bool,
    pub ack_progress: bool,
    pub registry_progress: bool,
    /// Whether this watch reads the sink at all.
    pub sink: SinkScope,
    /// The sink's files may lose what was never fsynced (power cuts through `soakcheck
    /// fs`): a txnlog that got shorter or went is a power cut, not a reset.
    #[serde(default)]
    pub power_cuts: bool,
}

/// Whether a watch checks the sink or only sender logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkScope {
    /// The sink directory and log are here: verify them.
    Here,
    /// The sink is on another host (`run` checks it there): only the sender logs given
    /// are checked, and `--until eof` is reached when they are all at their end.
    Elsewhere,
}

impl WatchPlan {
    /// The part of this plan a checker on another host runs: `keys`' inputs, `senders`'
    /// logs, and the sink directory and log only with [`SinkScope::Here`]; every other
    /// choice (the checks switched off, the ack timeout, the registry window) is this
    /// plan's own. It streams its events on stdout, quietly, until every sender's EOF.
    pub fn for_checker(&self, keys: &[u8], senders: &[u8], sink: SinkScope) -> WatchPlan {
        let mut plan = self.clone();
        plan.verify.inputs.retain(|k| keys.contains(&k.key));
        plan.sender_logs.retain(|(k, _)| senders.contains(k));
        if sink == SinkScope::Elsewhere {
            plan.sink_log = None;
        }
        plan.checks.sink = sink;
        plan.until = Until::Eof;
        plan.timeout = None;
        plan.events = Some(PathBuf::from("-"));
        plan.on_violation = None;
        plan.progress = ProgressStyle::Quiet;
        plan
    }
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            sanity: true,
            ack_progress: true,
            registry_progress: true,
            sink: SinkScope::Here,
            power_cuts: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Sink(#[from] SinkTailError),
    #[error("file watching: {0}{hint}", hint = inotify_hint(.0))]
    Notify(notify::Error),
    #[error("{path}: {source}")]
    Events {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] logs::LogTailError),
    #[error("interrupted before --until was reached")]
    Interrupted,
}

fn inotify_hint(e: &notify::Error) -> &'static str {
    let limit = matches!(e.kind, notify::ErrorKind::MaxFilesWatch)
        || matches!(&e.kind, notify::ErrorKind::Io(io) if matches!(io.raw_os_error(), Some(24 | 28)));
    if limit {
        " (the inotify limits are exhausted: raise them with `sysctl fs.inotify.max_user_watches=524288 \
         fs.inotify.max_user_instances=1024`, or use --poll 1s)"
    } else {
        ""
    }
}

/// The end of a watch.
pub struct WatchOutcome {
    pub report: Report,
    pub findings: Vec<Finding>,
}

impl WatchOutcome {
    /// 1 for a finding; else the report's: 0 ok, 1 a violation, 2 could not check (no
    /// sink output, or nothing verified).
    pub fn exit_code(&self) -> i32 {
        if self.findings.is_empty() {
            self.report.verdict.exit_code()
        } else {
            1
        }
    }
}

/// Appends JSON events, one object per line, to a file or (for `--events -`) stdout,
/// where `run` reads them from a checker on another host.
struct EventLog(Option<Box<dyn Write + Send>>);

impl EventLog {
    fn is_on(&self) -> bool {
        self.0.is_some()
    }

    fn open(path: Option<&Path>) -> Result<EventLog, WatchError> {
        let out: Box<dyn Write + Send> = match path {
            None => return Ok(EventLog(None)),
            Some(p) if p == Path::new("-") => Box::new(std::io::stdout()),
            Some(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| WatchError::Events {
                        path: path.to_path_buf(),
                        source,
                    })?,
            ),
        };
        Ok(EventLog(Some(out)))
    }

    fn emit(&mut self, event: WatchEvent) {
        if let Some(f) = &mut self.0 {
            let mut line = event.to_line();
            line.push('\n');
            let _ = f.write_all(line.as_bytes());
            let _ = f.flush();
        }
    }
}

/// What a controlling process (`run`, over `--control-stdin`) tells a running watch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    /// A fault was injected: progress checks do not judge for this long.
    Fault { quiet_for: Duration },
    /// A power cut took back what the sink never fsynced: what was verified committed
    /// must still be there, and the sink directory is read again from the start.
    PowerCut,
    /// Finish now, with the verdict so far (not an interruption).
    Finish,
}

impl Control {
    /// One line of `--control-stdin`: `fault SECONDS` or `finish`.
    pub fn parse(line: &str) -> Option<Control> {
        let mut words = line.split_whitespace();
        match (words.next()?, words.next()) {
            ("fault", Some(secs)) => Some(Control::Fault {
                quiet_for: crate::duration::secs(secs.parse().ok()?),
            }),
            ("finish", None) => Some(Control::Finish),
            ("power-cut", None) => Some(Control::PowerCut),
            _ => None,
        }
    }
}

/// Message id of the last line of `input` (the final acked point of reference).
fn last_line_start(input: &[u8]) -> u64 {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    memchr::memrchr(b'\n', body).map_or(0, |i| i as u64 + 1)
}

/// A core that has read nothing of the plan's sink directory yet.
fn new_core<'i>(plan: &WatchPlan, inputs: &'i [FileBytes]) -> WatchCore<'i> {
    let sink_dir = plan
        .verify
        .sink_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/tmp/sink-out"));
    let keyed: Vec<(u8, &[u8])> = plan
        .verify
        .inputs
        .iter()
        .zip(inputs)
        .map(|(k, b)| (k.key, &b[..]))
        .collect();
    let mut core = WatchCore::new(&sink_dir, Checker::new(plan.verify.semantics, &keyed));
    core.sink.guard_rewrites = plan.checks.power_cuts;
    core
}

/// The incremental verification state of a sink directory: the tail, the commits
/// released so far, and the checker they were fed to. One [`WatchCore::pass`] does what
/// one wake-up of `watch` does.
pub struct WatchCore<'i> {
    pub sink: SinkTail,
    pub log: CommitLog,
    pub checker: Checker<'i>,
    /// Keys found undetermined: once open, a key's order stays open (commits and
    /// doubtful spans only grow), so it is not looked for again on every pass.
    undetermined: std::cell::RefCell<crate::verify::clock::KeySet>,
}

impl<'i> WatchCore<'i> {
    pub fn new(sink_dir: &std::path::Path, checker: Checker<'i>) -> Self {
        WatchCore {
            sink: SinkTail::new(sink_dir),
            log: CommitLog::default(),
            checker,
            undetermined: Default::default(),
        }
    }

    /// Reads what the txnlogs gained, releases what the release rule allows, and feeds
    /// the released chunks; returns (commits, bytes) released.
    pub fn pass(&mut self) -> Result<(u64, u64), SinkTailError> {
        self.pass_with(&mut || {})
    }

    /// [`WatchCore::pass`], calling `between` between the txnlogs of each scan (see
    /// [`SinkTail::scan_with`]).
    pub fn pass_with(&mut self, between: &mut dyn FnMut()) -> Result<(u64, u64), SinkTailError> {
        self.sink.scan_with(&mut self.log, between)?;
        if self.sink.has_pending() {
            self.sink.scan_with(&mut self.log, between)?;
        }
        self.sink
            .recheck_committed(&mut self.log, sink::BothGone::Reset)?;
        let first = self.sink.release(&mut self.log);
        let mut bytes = 0u64;
        for i in first..self.log.commits.len() {
            let chunk = self.sink.read_chunk(&mut self.log, i)?;
            bytes += chunk.len() as u64;
            if !chunk.is_empty() {
                self.checker.feed(i, self.log.commits[i].start, &chunk);
            }
        }
        Ok(((self.log.commits.len() - first) as u64, bytes))
    }

    /// Whether `key`'s order, in what was released so far, rests on timestamps that go
    /// back (see [`crate::verify::clock`]).
    pub fn order_undetermined(&self, key: u8) -> bool {
        if self.undetermined.borrow().contains(key) {
            return true;
        }
        let mut checked = crate::verify::clock::KeySet::default();
        checked.insert(key);
        let found = crate::verify::clock::undetermined_keys(&self.log, &mut |i| {
            crate::verify::clock::KeySet::of_chunk(
                &self.sink.read_committed(&self.log, i),
                &checked,
            )
        });
        if !found.is_empty() {
            self.undetermined.borrow_mut().insert(key);
        }
        !found.is_empty()
    }

    /// Whether every key's whole input is verified (a line still torn at the end of the
    /// committed stream counts as `verify` would count it).
    pub fn complete(&self) -> bool {
        let cursors = self.checker.cursors();
        // A key whose order the stamps leave open has no verdict, and never will: it is
        // settled as it is (the final pass says undetermined), not waited for.
        (0..cursors.len()).all(|i| {
            self.checker.complete(i)
                || (cursors[i].mismatch().is_some() && self.order_undetermined(cursors[i].key))
        })
    }

    /// The report of what was verified so far, as `verify` builds it on the committed
    /// stream as it stands: a line still torn at its end is checked as a fragment.
    pub fn report(&self, plan: &VerifyPlan) -> Report {
        let mut checker = self.checker.clone();
        checker.finish();
        let mut report = build_report(
            plan,
            &self.log,
            &|i| Cow::Owned(self.sink.read_committed(&self.log, i)),
            &checker,
        );
        if let Some(Ok(listing)) = plan.sink_dir.as_deref().map(discover) {
            report
                .problems
                .extend(untracked_output_notes(&listing.untracked));
        }
        report
    }
}

/// What a step of a [`Watcher`] ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Keep going.
    Running,
    /// `--until` was reached.
    Succeeded,
    /// A finding stopped it (see [`Watcher::findings`]).
    Found,
}

/// Every check of `watch`, one step at a time: `run_watch` steps it when files change,
/// and `soakcheck run` steps it in-process between faults.
pub struct Watcher<'i> {
    plan: &'i WatchPlan,
    inputs: &'i [FileBytes],
    pub core: WatchCore<'i>,
    senders: Vec<SenderProgress>,
    /// The live checks, run in this order after each pass.
    checks: Vec<Box<dyn LiveCheck>>,
    events: EventLog,
    findings: Vec<Finding>,
    started: Instant,
    commits_total: u64,
    bytes_total: u64,
    next_tick: Instant,
    next_ap: Instant,
    next_rp: Instant,
    succeeded: bool,
    /// When commits were last released to the checker.
    last_commit: Option<Instant>,
    /// The most commits and bytes any core verified before a power cut replaced it: the
    /// summary never says fewer were verified than were (and then found lost).
    verified_before_cut: (u64, u64),
    /// Each sender's acked offset as last reported, and when to report again.
    acks: AckReports,
}

/// When the checker's core starts over after a look at what a power cut took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartOver {
    /// A cut was announced: the files changed under the core.
    Always,
    /// A cut is suspected: only if it took something.
    IfLost,
}

/// The senders' acked offsets, reported once a second while they move: the report
/// charts them for the whole run, though the logs they come from are rotated away.
#[derive(Default)]
struct AckReports {
    sent: BTreeMap<String, u64>,
    /// Taken by [`Watcher::take_acks`] through a shared borrow (watch's loop hands its
    /// callback one).
    ready: std::cell::Cell<BTreeMap<String, u64>>,
    next: Option<Instant>,
}

impl<'i> Watcher<'i> {
    /// `inputs` are the plan's inputs, opened (see [`open_inputs`]).
    pub fn new(plan: &'i WatchPlan, inputs: &'i [FileBytes]) -> Result<Self, WatchError> {
        let core = new_core(plan, inputs);
        let keys = plan.verify.inputs.len().min(inputs.len());
        let senders = plan
            .sender_logs
            .iter()
            .filter_map(|(key, path)| {
                let i = plan.verify.inputs.iter().position(|k| k.key == *key)?;
                Some(SenderProgress::new(
                    *key,
                    path.clone(),
                    last_line_start(&inputs[i]),
                ))
            })
            .collect();
        let mut events = EventLog::open(plan.events.as_deref())?;
        events.emit(WatchEvent::State {
            time: unix_now(),
            state: WatchState::Started,
            until: None,
        });
        let started = Instant::now();
        Ok(Watcher {
            plan,
            core,
            senders,
            checks: checks::checks_of(plan, keys),
            inputs,
            events,
            findings: Vec::new(),
            started,
            commits_total: 0,
            bytes_total: 0,
            next_tick: started + Duration::from_secs(1),
            next_ap: started + plan.ack_timeout,
            next_rp: started + Duration::from_secs(15),
            succeeded: false,
            last_commit: None,
            verified_before_cut: (0, 0),
            acks: AckReports::default(),
        })
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// After a power cut: committed data the cut took (an output now shorter than what
    /// was verified committed in it) is a finding, `committed-data-lost-on-power-loss`;
    /// then the core starts over, reading the sink directory as the restarted system
    /// will (a txnlog may have lost records it had read, or be gone).
    pub fn power_cut(&mut self) -> Result<(), WatchError> {
        self.take_cut(StartOver::Always)
    }

    /// What a cut took from the sink's files, as findings; the core starts over after
    /// an announced cut, and after a suspected one only when it took something.
    fn take_cut(&mut self, start_over: StartOver) -> Result<(), WatchError> {
        if self.plan.checks.sink != SinkScope::Here {
            return Ok(());
        }
        let before = self.core.log.problems.len();
        let lost = sink::BothGone::Lost;
        self.core.sink.recheck_committed(&mut self.core.log, lost)?;
        let elapsed_s = self.started.elapsed().as_secs_f64();
        let lost: Vec<Finding> = self.core.log.problems[before..]
            .iter()
            .filter(|p| p.kind == crate::verify::ProblemKind::CommittedDataMissing)
            .map(|p| Finding {
                kind: FindingKind::CommittedDataLostOnPowerLoss,
                key: None,
                detail: format!("{}:{}: after a power cut, {}", p.file, p.line, p.detail),
                elapsed_s,
            })
            .collect();
        for f in &lost {
            self.events.emit(WatchEvent::Finding {
                time: unix_now(),
                finding: f.clone(),
            });
        }
        if start_over == StartOver::IfLost && lost.is_empty() {
            return Ok(());
        }
        self.findings.extend(lost);
        let verified = self
            .core
            .checker
            .cursors()
            .iter()
            .map(|c| c.verified_bytes())
            .sum();
        let commits = self.core.log.commits.len() as u64;
        let (c, b) = self.verified_before_cut;
        self.verified_before_cut = (c.max(commits), b.max(verified));
        self.core = new_core(self.plan, self.inputs);
        for check in &mut self.checks {
            check.restarted();
        }
        Ok(())
    }

    /// The most commits and bytes verified before a power cut replaced the core (what
    /// the checks saw committed before a cut took some of it back).
    pub fn verified_before_cut(&self) -> (u64, u64) {
        self.verified_before_cut
    }

    /// Restarts the progress clocks (after a pause of the system, or a recovery window).
    pub fn reset_progress_clocks(&mut self) {
        let now = Instant::now();
        for s in &mut self.senders {
            s.restart_clocks(now);
        }
    }

    /// One pass of every check; `progress_out` gets the progress characters or line.
    pub fn step(&mut self, progress_out: &mut dyn Write) -> Result<StepOutcome, WatchError> {
        let plan = self.plan;
        let now = Instant::now();
        let released = self.release_commits(now)?;
        let mut fresh = Fresh::default();
        let mut pass = Pass {
            plan,
            core: &self.core,
            senders: &mut self.senders,
            now,
            started: self.started,
        };
        for check in &mut self.checks {
            check.check(&mut pass, &mut fresh)?;
        }
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let fresh = fresh.kept(plan.checks.sanity, elapsed);
        self.cause_before_symptom(&fresh)?;
        for f in &fresh {
            self.events.emit(WatchEvent::Finding {
                time: unix_now(),
                finding: f.clone(),
            });
        }
        self.findings.extend(fresh);
        self.progress(progress_out, now, released);
        self.report_acks(now);
        if !self.findings.is_empty() {
            return Ok(StepOutcome::Found);
        }
        if self.until_reached() {
            self.succeeded = true;
            self.events.emit(WatchEvent::State {
                time: unix_now(),
                state: WatchState::UntilReached,
                until: Some(format!("{:?}", plan.until).to_lowercase()),
            });
            return Ok(StepOutcome::Succeeded);
        }
        Ok(StepOutcome::Running)
    }

    /// A sink that logs an error where its power can be cut may be logging what a cut
    /// did to its files (its output shorter than a worker's vote) before the cut is
    /// announced or seen here: the sink's files are looked at again first, so committed
    /// data the cut took is found (and reported) before the error it caused.
    fn cause_before_symptom(&mut self, fresh: &[Finding]) -> Result<(), WatchError> {
        let lost = FindingKind::CommittedDataLostOnPowerLoss;
        let symptom = fresh.iter().any(|f| f.kind == FindingKind::SinkError);
        let known = self.findings.iter().chain(fresh).any(|f| f.kind == lost);
        if self.plan.checks.power_cuts && symptom && !known {
            self.take_cut(StartOver::IfLost)?;
        }
        Ok(())
    }

    /// Once a second, the acked offsets that moved: as a `watch --events` line, and
    /// for [`Watcher::take_acks`].
    fn report_acks(&mut self, now: Instant) {
        if self.acks.next.is_some_and(|next| now < next) {
            return;
        }
        self.acks.next = Some(now + Duration::from_secs(1));
        let mut moved = BTreeMap::new();
        for s in &self.senders {
            let key = (s.key as char).to_string();
            if let Some(offset) = s.acked.filter(|o| self.acks.sent.get(&key) != Some(o)) {
                self.acks.sent.insert(key.clone(), offset);
                moved.insert(key, offset);
            }
        }
        if moved.is_empty() {
            return;
        }
        self.events.emit(WatchEvent::Acked {
            time: unix_now(),
            acked: moved.clone(),
        });
        let mut ready = self.acks.ready.take();
        ready.extend(moved);
        self.acks.ready.set(ready);
    }

    /// The acked offsets that moved since the last call (`run` records them).
    pub fn take_acks(&self) -> BTreeMap<String, u64> {
        self.acks.ready.take()
    }

    /// Feeds the commits that landed since the last pass to the checker; returns how
    /// many.
    fn release_commits(&mut self, now: Instant) -> Result<u64, WatchError> {
        let (released, batch_bytes) = match self.plan.checks.sink {
            SinkScope::Here => match self.core.pass() {
                Err(SinkTailError::Reset { .. }) if self.plan.checks.power_cuts => {
                    self.power_cut()?;
                    self.core.pass()?
                }
                passed => passed?,
            },
            SinkScope::Elsewhere => (0, 0),
        };
        if released > 0 {
            self.last_commit = Some(now);
            self.commits_total += released;
            self.bytes_total += batch_bytes;
        }
        // Only a watch that writes its events pays for their per-key map, each pass.
        if released > 0 && self.events.is_on() {
            let verified_bytes = self
                .core
                .checker
                .cursors()
                .iter()
                .map(|c| ((c.key as char).to_string(), c.verified_bytes()))
                .collect();
            self.events.emit(WatchEvent::Commits {
                time: unix_now(),
                commits: released,
                bytes: batch_bytes,
                verified_bytes,
            });
        }
        Ok(released)
    }

    /// Whether `--until` is reached.
    fn until_reached(&self) -> bool {
        let complete = match self.plan.checks.sink {
            SinkScope::Here => self.core.complete(),
            SinkScope::Elsewhere => true,
        };
        let all_eof = !self.senders.is_empty() && self.senders.iter().all(|s| s.eof);
        match self.plan.until {
            Until::Complete => complete,
            Until::Eof => complete && (all_eof || self.senders.is_empty()),
            Until::Forever => false,
        }
    }

    fn progress(&mut self, out: &mut dyn Write, now: Instant, released: u64) {
        let plan = self.plan;
        match plan.progress {
            ProgressStyle::Terse => {
                if now >= self.next_tick {
                    let _ = out.write_all(b",");
                    self.next_tick = now + Duration::from_secs(1);
                }
                if now >= self.next_ap && !self.senders.is_empty() {
                    if self.senders.iter().all(|s| {
                        s.eof
                            || s.last_ack
                                .is_some_and(|t| now.duration_since(t) <= plan.ack_timeout)
                    }) {
                        let _ = out.write_all(b"{AP}");
                    }
                    self.next_ap = now + plan.ack_timeout;
                }
                if now >= self.next_rp && !self.senders.is_empty() {
                    if self
                        .senders
                        .iter()
                        .all(|s| s.registry_ok(plan.registry_window))
                    {
                        let _ = out.write_all(b"{RP}");
                    }
                    self.next_rp = now + Duration::from_secs(15);
                }
                let _ = out.flush();
            }
            ProgressStyle::StatusLine => {
                if now >= self.next_tick || released > 0 {
                    crate::term::redraw(out, &self.status_line(now));
                    self.next_tick = now + Duration::from_millis(250);
                }
            }
            ProgressStyle::Quiet => {}
        }
    }

    /// Per-key verified MB, commits/s, MB/s and the age of each sender's last ack.
    pub fn status_line(&self, now: Instant) -> String {
        let secs = now.duration_since(self.started).as_secs_f64().max(1e-3);
        let keys: Vec<String> = self
            .core
            .checker
            .cursors()
            .iter()
            .map(|c| {
                format!(
                    "{} {:.1}/{:.1}MB",
                    c.key as char,
                    c.verified_bytes() as f64 / 1e6,
                    c.input().len() as f64 / 1e6
                )
            })
            .collect();
        let acks: Vec<String> = self
            .senders
            .iter()
            .map(|s| match s.last_ack {
                Some(t) => format!(
                    "{}:{:.0}s",
                    s.key as char,
                    now.duration_since(t).as_secs_f64()
                ),
                None => format!("{}:-", s.key as char),
            })
            .collect();
        let last_commit = self.last_commit.map_or("-".to_string(), |t| {
            format!("{:.1}s", now.duration_since(t).as_secs_f64())
        });
        format!(
            "{} | {:.0} commits/s {:.1} MB/s, last commit {last_commit} ago | acks {}",
            keys.join(" "),
            self.commits_total as f64 / secs,
            self.bytes_total as f64 / 1e6 / secs,
            if acks.is_empty() {
                "-".into()
            } else {
                acks.join(" ")
            }
        )
    }

    /// The report and the findings; runs `--on-violation` once. With the sink here, the
    /// verdict is `verify`'s on the final directory (one full pass): what changed under
    /// an already verified range is caught there, and what that pass finds beyond the
    /// live findings is a finding too.
    pub fn finish(mut self) -> Result<WatchOutcome, WatchError> {
        let plan = self.plan;
        if plan.progress == ProgressStyle::StatusLine {
            crate::term::clear_line(&mut std::io::stderr());
        }
        let report_plan = VerifyPlan {
            expect_complete: self.succeeded
                && plan.until != Until::Forever
                && plan.checks.sink == SinkScope::Here,
            ..plan.verify.clone()
        };
        let live = self.core.report(&report_plan);
        let mut report = match plan.checks.sink {
            SinkScope::Here => self.final_pass(&report_plan, live)?,
            SinkScope::Elsewhere => live,
        };
        let (commits_before, verified_before) = self.verified_before_cut;
        let verified: u64 = report.keys.iter().map(|k| k.verified_bytes).sum();
        let verified = verified.max(verified_before);
        let unverified = match plan.checks.sink {
            SinkScope::Here => unverified_keys(&report),
            SinkScope::Elsewhere => Vec::new(),
        };
        self.events.emit(WatchEvent::Summary {
            time: unix_now(),
            commits: (self.core.log.commits.len() as u64).max(commits_before),
            verified_bytes: verified,
            unverified_keys: unverified,
            undetermined_keys: undetermined_keys(&report),
            findings: self.findings.len() as u64,
        });
        if !self.findings.is_empty() {
            if report.verdict == Verdict::Ok {
                report.verdict = Verdict::Violation;
            }
            if let Some(cmd) = &plan.on_violation {
                let json = serde_json::to_string(&self.findings[0]).expect("a finding serializes");
                let _ = std::process::Command::new("sh")
                    .args(["-c", cmd])
                    .env("SOAKCHECK_FINDING", json)
                    .status();
            }
        }
        Ok(WatchOutcome {
            report,
            findings: self.findings,
        })
    }

    /// `verify` of the final directory: its report (with the live notes it cannot see,
    /// such as `late-commit`), and a finding for each violation the live checks had not
    /// made. When it cannot check (no sink output, nothing verified) and nothing but the
    /// timeout was found, its error is the outcome: a stall on a directory that never
    /// held sink output is not a finding about a system.
    fn final_pass(&mut self, plan: &VerifyPlan, live: Report) -> Result<Report, WatchError> {
        // Another word for "changed" below: the input may have changed, not the output.
        let mut full = match crate::verify::verify(plan) {
            Ok(full) => full,
            Err(e) if self.findings.iter().all(|f| f.kind == FindingKind::Stalled) => {
                return Err(e.into());
            }
            Err(_) => return Ok(live),
        };
        let elapsed_s = self.started.elapsed().as_secs_f64();
        let mut fresh = Vec::new();
        for k in &full.keys {
            let Some(v) = &k.violation else { continue };
            let known = self.findings.iter().any(|f| {
                f.kind == FindingKind::Violation && f.key.as_deref() == Some(k.key.as_str())
            });
            if known {
                continue;
            }
            let before = live_verified(&live, &k.key);
            let changed = if before > v.input_offset {
                format!(", though the live pass had verified it to {before}: committed bytes (or the input) changed after they were verified")
            } else {
                String::new()
            };
            fresh.push(Finding {
                kind: FindingKind::Violation,
                key: Some(k.key.clone()),
                detail: format!(
                    "key {} breaks at input offset {} (key output offset {}) in the final full pass{changed}",
                    k.key, v.input_offset, v.key_offset
                ),
                elapsed_s,
            });
        }
        for p in full
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Violation)
        {
            let known = live
                .problems
                .iter()
                .any(|q| q.kind == p.kind && q.file == p.file);
            if !known {
                fresh.push(Finding {
                    kind: FindingKind::SinkProblem,
                    key: None,
                    detail: format!("{}:{}: {} (final full pass)", p.file, p.line, p.detail),
                    elapsed_s,
                });
            }
        }
        for f in &fresh {
            self.events.emit(WatchEvent::Finding {
                time: unix_now(),
                finding: f.clone(),
            });
        }
        // Without the sanity checks, violations are not findings (run's no-sanity).
        if self.plan.checks.sanity {
            self.findings.extend(fresh);
        }
        let extra: Vec<_> = live
            .problems
            .into_iter()
            .filter(|p| {
                !full
                    .problems
                    .iter()
                    .any(|q| q.kind == p.kind && q.file == p.file)
            })
            .collect();
        full.problems.extend(extra);
        Ok(full)
    }
}

/// The keys whose order the sink's timestamps leave open (no verdict for them).
pub fn undetermined_keys(report: &Report) -> Vec<String> {
    report
        .keys
        .iter()
        .filter(|k| k.order_undetermined.is_some())
        .map(|k| k.key.clone())
        .collect()
}

/// The keys with input of which not one byte was verified.
pub fn unverified_keys(report: &Report) -> Vec<String> {
    report
        .keys
        .iter()
        .filter(|k| k.verified_bytes == 0 && k.input_bytes > 0)
        .map(|k| k.key.clone())
        .collect()
}

/// How far the live pass had verified `key`.
fn live_verified(live: &Report, key: &str) -> u64 {
    live.keys
        .iter()
        .find(|k| k.key == key)
        .map_or(0, |k| k.verified_bytes)
}

/// Wakes on file-system events (hints only) or a tick.
pub struct Waker {
    rx: mpsc::Receiver<()>,
    watcher: Box<dyn notify::Watcher>,
    dirs: Vec<(PathBuf, bool)>,
}

impl Waker {
    pub fn new(plan: &WatchPlan) -> Result<Waker, WatchError> {
        let (tx, rx) = mpsc::channel::<()>();
        let handler = move |event: notify::Result<notify::Event>| {
            // Our own reads show up as access events (open, read, close-nowrite) on the
            // watched directories; waking on them would make every pass cause the next.
            if let Ok(e) = &event {
                if matches!(e.kind, notify::EventKind::Access(_)) {
                    return;
                }
            }
            let _ = tx.send(());
        };
        let sink_dir = plan
            .verify
            .sink_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/tmp/sink-out"));
        let mut dirs: Vec<PathBuf> = vec![sink_dir];
        dirs.extend(
            plan.sender_logs
                .iter()
                .filter_map(|(_, p)| p.parent().map(|d| d.to_path_buf())),
        );
        dirs.extend(
            plan.sink_log
                .iter()
                .filter_map(|p| p.parent().map(|d| d.to_path_buf())),
        );
        dirs.sort();
        dirs.dedup();
        let watcher: Box<dyn notify::Watcher> = match plan.poll {
            Some(interval) => Box::new(
                notify::PollWatcher::new(
                    handler,
                    notify::Config::default().with_poll_interval(interval),
                )
                .map_err(WatchError::Notify)?,
            ),
            None => Box::new(notify::recommended_watcher(handler).map_err(WatchError::Notify)?),
        };
        Ok(Waker {
            rx,
            watcher,
            dirs: dirs.into_iter().map(|d| (d, false)).collect(),
        })
    }

    /// Watches directories that appeared since, then sleeps until an event or `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Result<(), WatchError> {
        for (dir, watched) in self.dirs.iter_mut() {
            if !*watched && dir.is_dir() {
                self.watcher
                    .watch(dir, notify::RecursiveMode::NonRecursive)
                    .map_err(WatchError::Notify)?;
                *watched = true;
            }
        }
        match self.rx.recv_timeout(timeout) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {
                // Coalesce a burst of events into one pass.
                while self.rx.try_recv().is_ok() {}
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
        }
        Ok(())
    }
}

/// The longest watch sleeps between passes.
const STOP_LATENCY: Duration = Duration::from_millis(250);

/// Watches until `plan.until`, a finding, the timeout, or `stop`.
pub fn run_watch(
    plan: &WatchPlan,
    stop: &AtomicBool,
    progress_out: &mut dyn Write,
) -> Result<WatchOutcome, WatchError> {
    run_watch_controlled(plan, stop, None, progress_out)
}

/// [`run_watch`], also taking [`Control`] messages (a fault's quiet window, finish).
pub fn run_watch_controlled(
    plan: &WatchPlan,
    stop: &AtomicBool,
    control: Option<&crossbeam_channel::Receiver<Control>>,
    progress_out: &mut dyn Write,
) -> Result<WatchOutcome, WatchError> {
    let inputs: Vec<FileBytes> = open_inputs(&plan.verify)?;
    let mut watcher = Watcher::new(plan, &inputs)?;
    watch_loop(&mut watcher, stop, control, &mut |_, outcome, progress| {
        let _ = progress_out.write_all(&progress);
        match outcome {
            StepOutcome::Running => LoopFlow::Continue,
            StepOutcome::Succeeded | StepOutcome::Found => LoopFlow::Stop,
        }
    })?;
    watcher.finish()
}

/// Whether [`watch_loop`] goes on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopFlow {
    Continue,
    Stop,
}

/// The one loop that steps a [`Watcher`]: on file-system hints or a tick, with the
/// [`Control`] messages applied between steps (a fault's quiet window for the progress
/// checks; `Finish`, or the control channel closing, ends it). `on_step` gets each
/// step's outcome and progress output and says whether to go on. `stop` (a signal)
/// ends it with [`WatchError::Interrupted`]. `watch` and `run`'s in-process checks both
/// run it.
pub fn watch_loop(
    watcher: &mut Watcher<'_>,
    stop: &AtomicBool,
    control: Option<&crossbeam_channel::Receiver<Control>>,
    on_step: &mut dyn FnMut(&Watcher<'_>, StepOutcome, Vec<u8>) -> LoopFlow,
) -> Result<(), WatchError> {
    let plan = watcher.plan;
    let mut waker = Waker::new(plan)?;
    // A pass at least every quarter second even when nothing changes, so --timeout,
    // SIGINT and SIGTERM are answered well within a second (an idle pass is a few stats).
    let tick = plan.poll.unwrap_or(STOP_LATENCY).min(STOP_LATENCY);
    waker.wait(Duration::ZERO)?;
    let mut quiet_until: Option<Instant> = None;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err(WatchError::Interrupted);
        }
        if let Some(control) = control {
            loop {
                match control.try_recv() {
                    Ok(Control::Fault { quiet_for }) => {
                        quiet_until = Some(Instant::now() + quiet_for)
                    }
                    Ok(Control::PowerCut) => watcher.power_cut()?,
                    Ok(Control::Finish) | Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        return Ok(())
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                }
            }
        }
        if quiet_until.is_some_and(|t| Instant::now() < t) {
            watcher.reset_progress_clocks();
        }
        let mut progress = Vec::new();
        let outcome = watcher.step(&mut progress)?;
        if on_step(watcher, outcome, progress) == LoopFlow::Stop {
            return Ok(());
        }
        let wait = if watcher.core.sink.has_pending() {
            Duration::from_millis(5)
        } else {
            tick
        };
        waker.wait(wait)?;
    }
}
