//! The supervisor of `soakcheck run`: one event loop that starts the system under test,
//! runs every chaos loop as a timer drawn from one seeded RNG, takes the checks' findings
//! as they come, and at the first one freezes the world or stops it.
//!
//! How it works: every input is a message. A `crossbeam_channel::select!` waits on the
//! signals and child exits ([`super::Wake`]), the checks' events ([`CheckEvent`]: from the
//! in-process watcher thread or a remote `soakcheck watch --events -`), and the earliest
//! timer of a heap ([`Due`]: faults, restarts, readiness checks, the run's end). Nothing
//! polls at a fixed interval: an idle soak sleeps until its next timer.
//!
//! The clock ([`Clock`]), the process driver ([`ProcessDriver`]) and the cluster's probes
//! ([`Cluster`]) are injected, so the unit tests below drive the loops with a fake clock
//! and a fake driver: no processes, no ports, no sleeps.
//!
//! Phases: [`Supervisor::start`] (sink and workers, then senders once the cluster is
//! ready), the soak ([`Supervisor::handle_wake`], [`Supervisor::handle_check`] / [`Supervisor::fire_due`], run by
//! [`Supervisor::run_loop`]), then [`Supervisor::freeze`] or [`Supervisor::stop_all`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};

use super::preset::Preset;
use super::readiness::{judge, Judgment, Limits, Progress, Waiting};
use super::scenario::{NetScope, Pace, Scenario, Timings};
use super::{Component, DriverError, LaunchSpec, ProcessDriver, Wake};
use crate::duration::secs;
use crate::finding::{Finding, FindingKind};
use crate::gen::Rng;
use crate::rundir::events::EventLine;
use crate::rundir::step::{Act, Action, Step, Target};
use crate::watch::{Control, ProgressStyle};

pub mod clock;
mod crash;
mod families;
mod family;
mod membership;
mod network;
mod power;
mod scripted;
mod waits;

use families::FAMILIES;
pub use family::FamilyTimer;

/// Where the supervisor reads the time.
pub trait Clock {
    fn now(&self) -> Instant;
    /// Wall time as Unix seconds (events.jsonl's `time`).
    fn unix_now(&self) -> f64 {
        crate::duration::unix_now()
    }
}

/// The links of the system under test, through the fault proxy (network faults).
pub trait Network {
    /// Every link's name (`worker1->sink`, `sender-A->worker1`, ...).
    fn links(&self) -> Vec<String>;
    fn apply(&self, link: &str, fault: crate::proxy::Fault) -> Result<(), String>;
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// What the supervisor asks the running system (over its external channel, for the
/// presets).
pub trait Cluster {
    /// poll-all-ready: every member is processing, each asked within `timeout`.
    fn ready(&self, timeout: Duration) -> bool;
    /// Whether a restarted component is ready again: its own readiness, not the whole
    /// cluster's (other crash loops may keep other members down on purpose):
    /// the scenario's probe for it, else a worker's own cluster-status, and for the sink,
    /// its port listening and every worker in `live` (members not down on purpose)
    /// processing again.
    fn component_ready(&self, component: &Component, live: &[usize]) -> bool;
    /// Asks the initializer to shrink worker `n` out; true when it accepted.
    fn shrink(&self, n: usize) -> bool;
    /// What can be seen of a component's progress (to tell slow from stuck).
    fn progress(&self, _component: &Component) -> Progress {
        Progress::default()
    }
}

/// What the checks report, in-process or from a remote `watch --events -`.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckEvent {
    /// Terse progress characters (`,`, `{AP}`, `{RP}`).
    Progress(Vec<u8>),
    /// The status line's text (TTY only).
    Status(String),
    Finding(Finding),
    /// `--until` was reached: every input verified and every sender at EOF.
    Complete,
    /// The checker died or its connection dropped: a finding of its own.
    Lost(String),
    /// The senders' acked offsets that moved, by key (recorded in events.jsonl).
    Acked(std::collections::BTreeMap<String, u64>),
}

/// Why the soak ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Ctrl-C or SIGTERM.
    Signal,
    /// A finding (the checks' or the supervisor's own).
    Found,
    /// The checks reached `--until`.
    Complete,
    /// `--duration` elapsed.
    Duration,
}

/// A timer's action.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// A fault family's own timer (see [`family`]).
    Family(FamilyTimer),
    /// Is the restarted component ready yet? Judged once its deadline passes. The number
    /// is its wait's (a crash on purpose ends a wait; a later restart starts another).
    ReadyCheck(Component, u64),
    /// Start phase: is the cluster ready for the senders yet?
    StartupCheck(Instant),
    /// `--duration` is over.
    End,
    /// Redraw the status line.
    Status,
}

#[derive(Debug, Clone, PartialEq)]
struct Timer {
    at: Instant,
    seq: u64,
    due: Due,
}

impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What the supervisor needs from the run's plan.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub scenario: Scenario,
    pub timings: Timings,
    pub seed: u64,
    pub keys: Vec<char>,
    /// Replayed steps (`--replay`) instead of the loops.
    pub replay: Option<Vec<Step>>,
    pub duration: Option<Duration>,
    pub progress: ProgressStyle,
    /// Keep running after a finding (`--on-violation continue`).
    pub continue_on_finding: bool,
}

/// What the freeze did to one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeResult {
    pub component: Component,
    /// Where it runs, as the driver names it ("pid 123", "127.0.0.3 pgid 123").
    pub location: Option<String>,
    pub outcome: Result<(), String>,
}

/// The soak's state and its loops.
pub struct Supervisor<'a> {
    plan: &'a SoakPlan,
    preset: &'a Preset,
    clock: &'a dyn Clock,
    pub driver: &'a mut dyn ProcessDriver,
    cluster: &'a dyn Cluster,
    checks: Option<Sender<Control>>,
    out: &'a mut dyn Write,
    events: Option<&'a mut dyn Write>,
    rng: Rng,
    timers: BinaryHeap<Reverse<Timer>>,
    seq: u64,
    pub started: Instant,
    /// Faults by kind, then by component.
    pub faults: BTreeMap<String, BTreeMap<String, u64>>,
    pub fault_count: u64,
    /// Members of the logical cluster (initial workers, joined, minus shrunk).
    members: Vec<usize>,
    /// Components down on purpose (crashed or paused).
    down: BTreeMap<Component, Instant>,
    /// Findings of the checks and of the supervisor itself.
    pub findings: Vec<Finding>,
    /// Interrupts received (a second one cuts the stop's grace period short).
    pub interrupts: u32,
    status: String,
    /// When the timer being fired was due (for the fault's latency).
    firing: Option<Instant>,
    /// Wall time (Unix seconds) at `started`.
    started_unix: f64,
    /// The fault proxy's links, when the run has network faults.
    network: Option<&'a dyn Network>,
    /// Why events.jsonl could not be written: the record of faults is lost from there,
    /// which stops the soak like a failed sink write.
    record_error: Option<String>,
    /// Components restarted and not ready yet, with what was last seen of them.
    waiting: BTreeMap<Component, Waiting>,
    /// The cluster at its start, until it is ready: what was last seen of it.
    startup: Option<Waiting>,
    /// Every component started under libfaketime: on their hosts, the shared-memory
    /// pairs its processes leave are removed once the soak is over.
    faketime_hosts: Vec<Component>,
    /// Wall time (Unix seconds, real) when the first of them was started: its pairs
    /// and every later one's are this soak's.
    faketime_since: Option<f64>,
    /// The `soakcheck fs` layers of the components with power or disk faults.
    layers: power::Layers,
}

/// The grace period of a stop (SIGTERM, then SIGKILL).
pub const STOP_GRACE: Duration = Duration::from_secs(2);

impl<'a> Supervisor<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: &'a SoakPlan,
        preset: &'a Preset,
        clock: &'a dyn Clock,
        driver: &'a mut dyn ProcessDriver,
        cluster: &'a dyn Cluster,
        checks: Option<Sender<Control>>,
        out: &'a mut dyn Write,
        events: Option<&'a mut dyn Write>,
    ) -> Self {
        Supervisor {
            plan,
            preset,
            rng: Rng::new(plan.seed),
            started: clock.now(),
            clock,
            driver,
            cluster,
            checks,
            out,
            events,
            timers: BinaryHeap::new(),
            seq: 0,
            faults: BTreeMap::new(),
            fault_count: 0,
            members: (0..plan.scenario.workers).collect(),
            down: BTreeMap::new(),
            findings: Vec::new(),
            interrupts: 0,
            status: String::new(),
            firing: None,
            started_unix: clock.unix_now(),
            network: None,
            record_error: None,
            waiting: BTreeMap::new(),
            startup: None,
            faketime_hosts: Vec::new(),
            faketime_since: None,
            layers: power::Layers::default(),
        }
    }

    /// Network faults go to `network`.
    pub fn with_network(mut self, network: &'a dyn Network) -> Self {
        self.network = Some(network);
        self
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Where the supervisor's messages go.
    pub fn out(&mut self) -> &mut dyn Write {
        &mut *self.out
    }

    fn say(&mut self, text: &str) {
        if self.plan.progress == ProgressStyle::Terse {
            let _ = self.out.write_all(text.as_bytes());
            let _ = self.out.flush();
        }
    }

    fn uniform(&mut self, max: f64) -> Duration {
        secs(self.rng.range(0, 1_000_000) as f64 / 1_000_000.0 * max)
    }

    /// Schedules `due` after `after`.
    pub fn schedule(&mut self, after: Duration, due: Due) {
        self.seq += 1;
        let at = self.now() + after;
        self.timers.push(Reverse(Timer {
            at,
            seq: self.seq,
            due,
        }));
    }

    /// When the next timer is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(t)| t.at)
    }

    /// The pending timers, earliest first.
    #[cfg(test)]
    fn pending(&self) -> Vec<(Instant, Due)> {
        let mut all: Vec<&Timer> = self.timers.iter().map(|Reverse(t)| t).collect();
        all.sort();
        all.into_iter().map(|t| (t.at, t.due.clone())).collect()
    }

    fn spec(&self, c: &Component, join: bool) -> LaunchSpec {
        let mut spec = self.preset.spec(c, join);
        if self.clocked(c) {
            // A variable the run's own environment sets wins (FAKETIME_DONT_FAKE_MONOTONIC=0
            // fakes the monotonic clock too, which the original Python sink needs).
            let env = clock::faketime_env(&self.preset.run_dir, c);
            let own: Vec<(String, String)> = env
                .into_iter()
                .filter(|(k, _)| k == "LD_PRELOAD" || !spec.env.iter().any(|(have, _)| have == k))
                .collect();
            spec.env.extend(own);
        }
        spec
    }

    fn start_component(&mut self, c: &Component, join: bool) -> Result<(), DriverError> {
        let spec = self.spec(c, join);
        if self.clocked(c) && self.faketime_since.is_none() {
            // File times are real time, whatever clock drives the soak.
            self.faketime_since = Some(crate::duration::unix_now());
        }
        self.driver.start(c, &spec)?;
        if self.clocked(c) && !self.faketime_hosts.contains(c) {
            self.faketime_hosts.push(c.clone());
        }
        Ok(())
    }

    /// Start phase: the sink and the workers; the senders follow once the cluster is
    /// ready (see [`Due::StartupCheck`]).
    pub fn start(&mut self, readiness: Duration) -> Result<(), DriverError> {
        for family in FAMILIES {
            family.prepare(self)?;
        }
        self.start_component(&Component::Sink, false)?;
        for n in 0..self.plan.scenario.workers {
            self.start_component(&Component::Worker(n), false)?;
        }
        let now = self.now();
        self.startup = Some(Waiting {
            id: 0,
            since: now,
            seen: self.cluster_progress(),
            seen_at: now,
            deadline: now + readiness,
        });
        self.schedule(Duration::ZERO, Due::StartupCheck(now + readiness));
        Ok(())
    }

    /// The soak proper: senders, then every loop's first timer.
    fn begin_soak(&mut self) -> Result<(), DriverError> {
        for k in self.plan.keys.clone() {
            self.start_component(&Component::Sender(k), false)?;
        }
        self.started = self.now();
        self.started_unix = self.clock.unix_now();
        if let Some(d) = self.plan.duration {
            self.schedule(d, Due::End);
        }
        if self.plan.progress == ProgressStyle::StatusLine {
            self.schedule(Duration::ZERO, Due::Status);
        }
        if let Some(steps) = self.plan.replay.clone() {
            for step in steps {
                // Sender restarts follow their crashes by themselves.
                if step.action() != Action::Restart || !step.component().starts_with("sender-") {
                    self.schedule(secs(step.at), Due::of(scripted::Scripted(step)));
                }
            }
            return Ok(());
        }
        // In this order: it is the order of the RNG's draws, so a seed's schedule stays.
        for family in FAMILIES {
            family.begin(self);
        }
        Ok(())
    }

    /// Records a fault or an action in events.jsonl and the fault counts.
    fn event(&mut self, act: fn(Target) -> Act, c: &Component) {
        let at = self.now().duration_since(self.started).as_secs_f64();
        self.record(Step::on(at, act, &c.name()));
    }

    /// Records a step of its own making (a clock fault).
    fn record_act(&mut self, act: Act) {
        let at = self.now().duration_since(self.started).as_secs_f64();
        self.record(Step { at, act });
    }

    /// Records a network fault or heal of `link`.
    fn net_event(&mut self, fault: &crate::proxy::Fault, link: &str) {
        let at = self.now().duration_since(self.started).as_secs_f64();
        self.record(Step::network(at, fault, link));
    }

    /// Writes `step` to events.jsonl; a fault is counted (by its link for a network
    /// fault) and opens the checks' quiet window.
    fn record(&mut self, step: Step) {
        let effect_ms = self
            .firing
            .map(|due| self.now().saturating_duration_since(due).as_secs_f64() * 1000.0);
        let line = EventLine::Step {
            step: step.clone(),
            time: Some(self.started_unix + step.at),
            effect_ms,
        };
        self.write_event(&line);
        if step.action().is_fault() {
            let by = step.link().unwrap_or(step.component()).to_string();
            *self
                .faults
                .entry(step.action().as_str().to_string())
                .or_default()
                .entry(by)
                .or_default() += 1;
            self.fault_count += 1;
            if let Some(checks) = &self.checks {
                let quiet_for = secs(self.plan.timings.recovery_window);
                let _ = checks.send(Control::Fault { quiet_for });
            }
        }
    }

    /// Appends `line` to events.jsonl; the first failure is kept, and ends the soak at
    /// the next turn of the loop.
    fn write_event(&mut self, line: &EventLine) {
        let Some(events) = self.events.as_mut() else {
            return;
        };
        let written = writeln!(events, "{}", line.to_line()).and_then(|()| events.flush());
        if let (Err(e), None) = (written, &self.record_error) {
            self.record_error = Some(format!(
                "events.jsonl could not be written ({e}): the record of faults would be lost, so the soak stops"
            ));
        }
    }

    /// The record's failure, once, as the soak's end.
    fn check_record(&mut self) -> Result<(), RunFailure> {
        match self.record_error.take() {
            Some(e) => Err(RunFailure::Record(e)),
            None => Ok(()),
        }
    }

    fn short(c: &Component) -> String {
        match c {
            Component::Sink => "S".into(),
            Component::Worker(n) => n.to_string(),
            Component::Sender(k) => format!("s{k}"),
        }
    }

    /// Handles one message; `Some` when the soak ends.
    pub fn handle_wake(&mut self, wake: Wake) -> Result<Option<Ending>, RunFailure> {
        match wake {
            Wake::Interrupt => {
                self.interrupts += 1;
                Ok(Some(Ending::Signal))
            }
            Wake::ChildExited => self.reap(),
        }
    }

    /// Handles one event of the checks; `Some` when the soak ends.
    pub fn handle_check(&mut self, event: CheckEvent) -> Option<Ending> {
        match event {
            CheckEvent::Progress(bytes) => {
                let _ = self.out.write_all(&bytes);
                let _ = self.out.flush();
                None
            }
            CheckEvent::Status(text) => {
                self.status = text;
                None
            }
            CheckEvent::Finding(f) => self.found(f),
            CheckEvent::Lost(detail) => self.found(Finding {
                kind: FindingKind::CheckerLost,
                key: None,
                detail,
                elapsed_s: self.elapsed_s(),
            }),
            CheckEvent::Complete => Some(Ending::Complete),
            CheckEvent::Acked(acked) => {
                let time = crate::duration::unix_now();
                self.write_event(&EventLine::Acked { acked, time });
                None
            }
        }
    }

    /// The soak is over: the checks stop judging progress (a system being frozen or
    /// stopped makes none), as in a fault's recovery window, for good. They still
    /// verify what is committed.
    pub fn end_progress_checks(&self) {
        if let Some(checks) = &self.checks {
            let quiet_for = Duration::from_secs(365 * 86_400);
            let _ = checks.send(Control::Fault { quiet_for });
        }
    }

    /// A filesystem layer lost mid-run (its process or its ssh session ended) ends the
    /// run as a failure of soakcheck's own part, before anything the system then does
    /// (its files fail under it) is taken for a finding.
    fn check_layers(&mut self, probe: power::Probe) -> Result<(), RunFailure> {
        match self.layers.lost(probe) {
            Some(why) => Err(RunFailure::Setup(format!(
                "{why}: the filesystem layer is gone, so the run cannot go on"
            ))),
            None => Ok(()),
        }
    }

    /// When the soak started, in Unix seconds.
    pub fn started_unix(&self) -> f64 {
        self.started_unix
    }

    fn elapsed_s(&self) -> f64 {
        self.now().duration_since(self.started).as_secs_f64()
    }

    fn found(&mut self, f: Finding) -> Option<Ending> {
        self.record_finding(f);
        (!self.plan.continue_on_finding).then_some(Ending::Found)
    }

    /// Writes `f` to events.jsonl and keeps it for the summary: every finding the run
    /// reports is in its record.
    pub fn record_finding(&mut self, f: Finding) {
        let at = self
            .now()
            .saturating_duration_since(self.started)
            .as_secs_f64();
        let line = EventLine::Finding {
            finding: f.clone(),
            at,
            time: self.started_unix + at,
        };
        self.write_event(&line);
        self.findings.push(f);
    }

    /// A child exited: a sink or worker that cannot run is a setup failure; a sender that
    /// exits before its EOF comes back 0.1 s later, as the original loop.
    fn reap(&mut self) -> Result<Option<Ending>, RunFailure> {
        for c in self.driver.started() {
            if self.down.contains_key(&c) {
                continue;
            }
            let Some(code) = self.driver.exited(&c) else {
                continue;
            };
            match c {
                Component::Sender(k) if code != 0 => {
                    self.schedule(
                        Duration::from_millis(100),
                        Due::of(crash::CrashTimer::Restart(Component::Sender(k))),
                    );
                }
                Component::Sender(_) => {}
                _ => {
                    let log = self.preset.log_path(&c);
                    let last = last_log_line(&log);
                    if code == 2 || last.contains("Address already in use") {
                        return Err(RunFailure::Setup(format!(
                            "{} exited with status {code} and cannot run: {last} (log {})",
                            c.name(),
                            log.display()
                        )));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Runs every timer that is due; `Some` when the soak ends.
    pub fn fire_due(&mut self) -> Result<Option<Ending>, RunFailure> {
        while let Some(Reverse(t)) = self.timers.peek() {
            if t.at > self.now() {
                break;
            }
            let Reverse(timer) = self.timers.pop().expect("peeked");
            self.firing = Some(timer.at);
            let fired = self.fire(timer.due);
            self.firing = None;
            self.check_record()?;
            if let Some(ending) = fired? {
                return Ok(Some(ending));
            }
        }
        Ok(None)
    }

    fn fire(&mut self, due: Due) -> Result<Option<Ending>, RunFailure> {
        match due {
            Due::Family(timer) => self.fire_family(&timer)?,
            Due::ReadyCheck(c, wait) => return Ok(self.ready_check(c, wait)),
            Due::StartupCheck(deadline) => self.startup_check(deadline)?,
            Due::End => return Ok(Some(Ending::Duration)),
            Due::Status => self.draw_status(),
        }
        Ok(None)
    }

    /// Carries out a scripted or replayed step, through the family whose action it is.
    fn run_step(&mut self, step: &Step) -> Result<(), RunFailure> {
        for family in FAMILIES {
            if let Some(done) = family.step(self, step) {
                return done;
            }
        }
        Err(RunFailure::Setup(format!(
            "no fault family carries out a {} step",
            step.action().as_str()
        )))
    }

    /// Hands a family's timer to the family whose type it is.
    fn fire_family(&mut self, timer: &FamilyTimer) -> Result<(), RunFailure> {
        let family = FAMILIES
            .iter()
            .find(|f| f.timer_type() == timer.timer_type());
        match family.and_then(|f| f.try_fire(self, timer)) {
            Some(fired) => fired,
            None => Err(RunFailure::Setup(format!(
                "no fault family fires {timer:?}"
            ))),
        }
    }

    fn draw_status(&mut self) {
        let mut line = format!("{:.0}s faults {}", self.elapsed_s(), self.fault_count);
        if !self.status.is_empty() {
            line = format!("{line}{}{}", crate::term::PART, self.status);
        }
        crate::term::redraw(self.out, &line);
        self.schedule(Duration::from_millis(250), Due::Status);
    }

    /// The soak's event loop: signals, child exits, the checks' events and the timers,
    /// until one of them ends it.
    pub fn run_loop(
        &mut self,
        wakes: &Receiver<Wake>,
        checks: &Receiver<CheckEvent>,
    ) -> Result<Ending, RunFailure> {
        loop {
            if let Some(ending) = self.fire_due()? {
                return Ok(ending);
            }
            let timeout = self
                .next_deadline()
                .map_or(Duration::from_secs(3600), |at| {
                    at.saturating_duration_since(self.now())
                });
            let ending = select! {
                recv(wakes) -> w => match w {
                    Ok(w) => self.handle_wake(w)?,
                    Err(_) => Some(Ending::Signal),
                },
                recv(checks) -> e => {
                    // What the system did after its layer was lost is not its doing.
                    let finding = matches!(e, Ok(CheckEvent::Finding(_) | CheckEvent::Lost(_)));
                    self.check_layers(if finding { power::Probe::Ask } else { power::Probe::Look })?;
                    match e {
                        Ok(e) => self.handle_check(e),
                        Err(_) => self.handle_check(CheckEvent::Lost(
                            "the checks stopped without a verdict".into(),
                        )),
                    }
                },
                default(timeout) => None,
            };
            self.check_record()?;
            self.check_layers(power::Probe::Look)?;
            if let Some(ending) = ending {
                return Ok(ending);
            }
        }
    }

    /// Pauses every component the run started, at once, and says per component what
    /// was done and what failed: never more than happened.
    pub fn freeze(&mut self) -> Vec<FreezeResult> {
        let mut results = Vec::new();
        for c in self.driver.started() {
            let outcome = if self.driver.is_alive(&c) {
                self.driver.pause(&c).map_err(|e| e.to_string())
            } else {
                Err("not running".to_string())
            };
            results.push(FreezeResult {
                location: self.driver.locate(&c),
                component: c,
                outcome,
            });
        }
        results
    }

    /// Stops every component (senders, then workers, then the sink): SIGCONT if paused,
    /// SIGTERM, the grace period, SIGKILL. A second interrupt (`wakes`) cuts the grace
    /// short for the rest. Returns what could not be stopped.
    pub fn stop_all(&mut self, wakes: Option<&Receiver<Wake>>) -> Vec<(Component, String)> {
        let mut comps = self.driver.started();
        comps.sort_by_key(|c| match c {
            Component::Sender(_) => 0,
            Component::Worker(_) => 1,
            Component::Sink => 2,
        });
        let mut failed = Vec::new();
        for c in comps {
            if let Some(w) = wakes {
                while let Ok(wake) = w.try_recv() {
                    if wake == Wake::Interrupt {
                        self.interrupts += 1;
                    }
                }
            }
            let grace = if self.interrupts > 1 {
                Duration::ZERO
            } else {
                STOP_GRACE
            };
            if let Err(e) = self.driver.stop(&c, grace) {
                failed.push((c, e.to_string()));
            }
        }
        // Only once every group is gone: a live process still uses its pair.
        if failed.is_empty() {
            self.clean_faketime_shm();
        }
        failed.extend(self.layers.stop());
        // The mount points' folder, once its layers are gone and it is empty.
        let _ = std::fs::remove_dir(crate::rundir::RunDir(&self.preset.run_dir).fs_mounts());
        failed
    }
}

/// Why a soak could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    /// The system under test cannot run (exit 2).
    #[error("{0}")]
    Setup(String),
    /// The run's record (events.jsonl) could not be written (exit 2).
    #[error("{0}")]
    Record(String),
    #[error(transparent)]
    Driver(#[from] DriverError),
}

/// The last line of a component's log, for a setup failure's message.
pub fn last_log_line(path: &std::path::Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut tail = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let len = f.metadata().map_or(0, |m| m.len());
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
        let _ = f.take(4096).read_to_end(&mut tail);
    }
    let text = String::from_utf8_lossy(&tail);
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(empty log)")
        .to_string()
}

#[cfg(test)]
mod tests;
