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
//! ready), the soak ([`Supervisor::handle`] / [`Supervisor::fire_due`], run by
//! [`Supervisor::run_loop`]), then [`Supervisor::freeze`] or [`Supervisor::stop_all`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};

use super::events::EventLine;
use super::preset::Preset;
use super::readiness::{judge, Judgment, Limits, Progress, Waiting};
use super::scenario::{Action, NetScope, Pace, Scenario, Step, Timings};
use super::{Component, DriverError, LaunchSpec, ProcessDriver, Wake};
use crate::duration::secs;
use crate::finding::{Finding, FindingKind};
use crate::gen::Rng;
use crate::watch::{Control, ProgressStyle};

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
    Crash(Component),
    Restart(Component),
    Resume(Component),
    GrowShrink,
    Scripted(Step),
    /// The source loop kills a random live sender.
    SourceCrash,
    /// Is the restarted component ready yet? Judged once its deadline passes. The number
    /// is its wait's (a crash on purpose ends a wait; a later restart starts another).
    ReadyCheck(Component, u64),
    /// Start phase: is the cluster ready for the senders yet?
    StartupCheck(Instant),
    /// `--duration` is over.
    End,
    /// Redraw the status line.
    Status,
    /// A network loop strikes one of its links.
    NetFault(NetScope),
    /// A link's fault is over; a loop's next fault follows.
    NetHeal(String, Option<NetScope>),
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
        self.preset.spec(c, join)
    }

    fn start_component(&mut self, c: &Component, join: bool) -> Result<(), DriverError> {
        let spec = self.spec(c, join);
        self.driver.start(c, &spec)
    }

    /// Start phase: the sink and the workers; the senders follow once the cluster is
    /// ready (see [`Due::StartupCheck`]).
    pub fn start(&mut self, readiness: Duration) -> Result<(), DriverError> {
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
        let t = self.plan.timings.clone();
        if let Some(d) = self.plan.duration {
            self.schedule(d, Due::End);
        }
        if self.plan.progress == ProgressStyle::StatusLine {
            self.schedule(Duration::ZERO, Due::Status);
        }
        if let Some(steps) = self.plan.replay.clone() {
            for step in steps {
                // Sender restarts follow their crashes by themselves.
                if step.action != Action::Restart || !step.component.starts_with("sender-") {
                    self.schedule(secs(step.at), Due::Scripted(step));
                }
            }
            return Ok(());
        }
        let scenario = &self.plan.scenario;
        if scenario.crash_sink {
            self.schedule(secs(t.start_delay), Due::Crash(Component::Sink));
        }
        for (n, pace) in scenario.crash_workers.clone() {
            let extra = if pace == Pace::Slow {
                secs(t.slow_every)
            } else {
                Duration::ZERO
            };
            let d = secs(t.start_delay) + extra + self.uniform(t.worker_up_max);
            self.schedule(d, Due::Crash(Component::Worker(n)));
        }
        if scenario.grow || scenario.shrink {
            self.schedule(secs(t.start_delay), Due::GrowShrink);
        }
        if scenario.crash_source {
            let d = secs(t.start_delay) + self.uniform(t.source_up_max);
            self.schedule(d, Due::SourceCrash);
        }
        for step in scenario.steps.clone() {
            self.schedule(secs(step.at), Due::Scripted(step));
        }
        for scope in scenario.net.clone() {
            let d = secs(t.start_delay) + self.uniform(t.net_up_max);
            self.schedule(d, Due::NetFault(scope));
        }
        Ok(())
    }

    /// Records a fault or an action in events.jsonl and the fault counts.
    fn event(&mut self, action: Action, c: &Component) {
        let at = self.now().duration_since(self.started).as_secs_f64();
        self.record(Step::process(at, action, &c.name()));
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
        if step.action.is_fault() {
            let by = step.link.clone().unwrap_or_else(|| step.component.clone());
            *self
                .faults
                .entry(step.action.as_str().to_string())
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
        }
    }

    fn elapsed_s(&self) -> f64 {
        self.now().duration_since(self.started).as_secs_f64()
    }

    fn found(&mut self, f: Finding) -> Option<Ending> {
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
        (!self.plan.continue_on_finding).then_some(Ending::Found)
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
                        Due::Restart(Component::Sender(k)),
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
            Due::Crash(c) => self.crash_loop(c)?,
            Due::Restart(c) => self.restart(c)?,
            Due::Resume(c) => {
                self.driver.resume(&c)?;
                self.event(Action::Resume, &c);
                self.say(&format!("u{}", Self::short(&c)));
                self.down.remove(&c);
                self.schedule_next_crash(c);
            }
            Due::GrowShrink => self.grow_shrink()?,
            Due::Scripted(step) => self.scripted(step)?,
            Due::SourceCrash => self.source_crash()?,
            Due::ReadyCheck(c, wait) => return Ok(self.ready_check(c, wait)),
            Due::StartupCheck(deadline) => self.startup_check(deadline)?,
            Due::End => return Ok(Some(Ending::Duration)),
            Due::Status => self.draw_status(),
            Due::NetFault(scope) => self.net_fault(scope)?,
            Due::NetHeal(link, scope) => self.net_heal(&link, scope)?,
        }
        Ok(None)
    }

    fn network(&self) -> Result<&'a dyn Network, RunFailure> {
        self.network.ok_or_else(|| {
            RunFailure::Setup(
                "a network fault needs the fault proxy, which this run does not have".into(),
            )
        })
    }

    /// A network loop: a random fault on a random link of its scope, healed after
    /// U(0.1, net_down_max) s; `p` and the link's mark off a terminal.
    fn net_fault(&mut self, scope: NetScope) -> Result<(), RunFailure> {
        use crate::proxy::{Delay, Fault};
        let network = self.network()?;
        // Links of the cluster as it is: a worker slot not in it has no traffic.
        let member = |link: &str| match Component::parse(super::scenario::link_client(link)) {
            Some(Component::Worker(n)) => self.members.contains(&n),
            _ => true,
        };
        let links: Vec<String> = network
            .links()
            .into_iter()
            .filter(|l| scope.covers(l) && member(l))
            .collect();
        if links.is_empty() {
            return Ok(());
        }
        // `range` is inclusive at both ends.
        let link = links[self.rng.range(0, links.len() as u64 - 1) as usize].clone();
        let fault = match self.rng.range(0, 9) {
            0..=3 => Fault::Partition,
            4..=5 => Fault::Reset { refuse_ms: 500 },
            6..=7 => {
                let ms = self.rng.range(20, 300);
                Fault::Delay(Delay {
                    ms,
                    jitter_ms: ms / 5,
                })
            }
            _ => Fault::Bandwidth {
                bytes_per_s: self.rng.range(16_384, 262_144),
            },
        };
        network.apply(&link, fault).map_err(RunFailure::Setup)?;
        self.net_event(&fault, &link);
        self.say(&format!("p{}", NetScope::mark(&link)));
        let down = secs(0.1) + self.uniform(self.plan.timings.net_down_max);
        self.schedule(down, Due::NetHeal(link, Some(scope)));
        Ok(())
    }

    /// Heals `link`; a loop's next fault is U(0, net_up_max) s later.
    fn net_heal(&mut self, link: &str, scope: Option<NetScope>) -> Result<(), RunFailure> {
        let network = self.network()?;
        network
            .apply(link, crate::proxy::Fault::Heal)
            .map_err(RunFailure::Setup)?;
        self.net_event(&crate::proxy::Fault::Heal, link);
        self.say(&format!("h{}", NetScope::mark(link)));
        if let Some(scope) = scope {
            let up = self.uniform(self.plan.timings.net_up_max);
            self.schedule(up, Due::NetFault(scope));
        }
        Ok(())
    }

    fn startup_check(&mut self, deadline: Instant) -> Result<(), RunFailure> {
        if let Some(Ending::Found) = self.reap()? {
            return Ok(());
        }
        let now = self.now();
        if self.cluster.ready(Duration::from_millis(500)) {
            self.begin_soak()?;
        } else if now > deadline {
            return self.startup_judgment(now);
        } else {
            self.schedule(Duration::from_millis(100), Due::StartupCheck(deadline));
        }
        Ok(())
    }

    /// The cluster is not ready at its start's deadline: slow (its logs grow) is given
    /// another `readiness_timeout`, up to `readiness_limit`; no progress is a setup
    /// failure that says what was seen.
    fn startup_judgment(&mut self, now: Instant) -> Result<(), RunFailure> {
        let seen = self.cluster_progress();
        let waiting = self.startup.clone().unwrap_or(Waiting {
            id: 0,
            since: self.started,
            seen: seen.clone(),
            seen_at: now,
            deadline: now,
        });
        let alive = self
            .driver
            .started()
            .iter()
            .all(|c| self.driver.is_alive(c));
        match judge(
            "the cluster",
            &waiting,
            alive,
            &seen,
            now,
            self.readiness_limits(),
        ) {
            Judgment::Slow(grew) => {
                let limit = self.plan.timings.readiness_limit;
                let _ = writeln!(
                    self.out,
                    "the cluster is slow to be ready, not stuck ({grew}): waiting, up to {limit:.0} s after its start"
                );
                let next = now + secs(self.plan.timings.readiness_timeout);
                self.startup = Some(Waiting {
                    seen,
                    seen_at: now,
                    deadline: next,
                    ..waiting
                });
                self.schedule(Duration::from_millis(100), Due::StartupCheck(next));
                Ok(())
            }
            Judgment::Stuck(evidence) => Err(RunFailure::Setup(format!(
                "the cluster was not ready within {:.0} s ({evidence}); logs are in {}",
                now.saturating_duration_since(waiting.since).as_secs_f64(),
                self.preset.run_dir.display()
            ))),
        }
    }

    /// What can be seen of the whole cluster: the sink's and the workers' logs summed,
    /// and the sink's txnlogs.
    fn cluster_progress(&self) -> Progress {
        let mut parts = vec![self.cluster.progress(&Component::Sink)];
        parts.extend(
            (0..self.plan.scenario.workers).map(|n| self.cluster.progress(&Component::Worker(n))),
        );
        let logs: Option<u64> = parts.iter().map(|p| p.log.as_ref().map(|(_, n)| *n)).sum();
        Progress {
            listening: None,
            log: logs.map(|n| ("the logs of the sink and the workers".to_string(), n)),
            txnlog_bytes: parts[0].txnlog_bytes,
        }
    }

    fn draw_status(&mut self) {
        let line = format!(
            "\r\x1b[2K{:.0}s faults {} | {}",
            self.elapsed_s(),
            self.fault_count,
            self.status
        );
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
        self.schedule(Duration::from_millis(250), Due::Status);
    }

    fn ready_check(&mut self, c: Component, wait: u64) -> Option<Ending> {
        let Some(waiting) = self.waiting.get(&c).filter(|w| w.id == wait).cloned() else {
            // Its wait ended: it was crashed, paused or shrunk on purpose since.
            return None;
        };
        if self.cluster.component_ready(&c, &self.live_workers()) {
            self.waiting.remove(&c);
            return None;
        }
        let now = self.now();
        if now <= waiting.deadline {
            self.schedule(Duration::from_millis(200), Due::ReadyCheck(c, wait));
            return None;
        }
        let seen = self.cluster.progress(&c);
        let alive = self.driver.is_alive(&c);
        match judge(
            &c.name(),
            &waiting,
            alive,
            &seen,
            now,
            self.readiness_limits(),
        ) {
            Judgment::Slow(grew) => {
                let limit = self.plan.timings.readiness_limit;
                let _ = writeln!(
                    self.out,
                    "\n{} is slow to be ready, not stuck ({grew}): waiting, up to {limit:.0} s after its restart",
                    c.name()
                );
                let deadline = now + secs(self.plan.timings.readiness_timeout);
                self.waiting.insert(
                    c.clone(),
                    Waiting {
                        seen,
                        seen_at: now,
                        deadline,
                        ..waiting
                    },
                );
                self.schedule(Duration::from_millis(200), Due::ReadyCheck(c, wait));
                None
            }
            Judgment::Stuck(detail) => {
                self.waiting.remove(&c);
                self.found(Finding {
                    kind: FindingKind::Stalled,
                    key: None,
                    detail,
                    elapsed_s: self.elapsed_s(),
                })
            }
        }
    }

    /// A component goes down on purpose (a crash, a pause, a shrink): it is not waited
    /// for any more, so neither its own next crash nor the others' can be taken for a
    /// failure to come back.
    fn take_down(&mut self, c: &Component) {
        self.down.insert(c.clone(), self.now());
        self.waiting.remove(c);
    }

    /// The members that are not down on purpose (crashed, paused or shrunk).
    fn live_workers(&self) -> Vec<usize> {
        self.members
            .iter()
            .copied()
            .filter(|&n| !self.down.contains_key(&Component::Worker(n)))
            .collect()
    }

    fn readiness_limits(&self) -> Limits {
        let t = &self.plan.timings;
        Limits {
            limit: secs(t.readiness_limit.max(t.readiness_timeout)),
        }
    }

    fn must_be_ready(&mut self, c: Component) {
        let now = self.now();
        self.seq += 1;
        let id = self.seq;
        let waiting = Waiting {
            id,
            since: now,
            seen: self.cluster.progress(&c),
            seen_at: now,
            deadline: now + secs(self.plan.timings.readiness_timeout),
        };
        self.waiting.insert(c.clone(), waiting);
        self.schedule(Duration::from_millis(200), Due::ReadyCheck(c, id));
    }

    fn crash_loop(&mut self, c: Component) -> Result<(), RunFailure> {
        let is_member = match &c {
            Component::Worker(n) => self.members.contains(n),
            _ => true,
        };
        if !is_member {
            self.schedule(secs(1.0), Due::Crash(c));
            return Ok(());
        }
        // Stabilization: a loop skips its crash while the cluster is not ready.
        if !self.cluster.ready(Duration::from_millis(300)) {
            let s = if c == Component::Sink {
                ":s".to_string()
            } else {
                format!(":c{}", Self::short(&c))
            };
            self.say(&s);
            self.schedule(secs(1.0), Due::Crash(c));
            return Ok(());
        }
        // A component that ended by itself is not crashed (no fault is recorded that
        // had no effect); it is restarted as after a crash.
        if !self.driver.is_alive(&c) {
            let _ = writeln!(
                self.out,
                "\n{} had already exited by itself: restarting it, no crash recorded",
                c.name()
            );
            self.take_down(&c);
            self.schedule(Duration::ZERO, Due::Restart(c));
            return Ok(());
        }
        let pause = self.plan.scenario.pauses
            && self.rng.range(0, 9) < 3
            && !matches!(c, Component::Sender(_));
        if pause {
            self.driver.pause(&c)?;
            self.event(Action::Pause, &c);
            self.say(&format!("p{}", Self::short(&c)));
            self.take_down(&c);
            let d = self.uniform(self.plan.timings.pause_max);
            self.schedule(d, Due::Resume(c));
        } else {
            self.driver.kill(&c)?;
            self.event(Action::Crash, &c);
            self.say(&format!("c{}", Self::short(&c)));
            self.take_down(&c);
            let t = &self.plan.timings;
            let d = match c {
                Component::Sink => self.uniform(t.sink_down_max),
                Component::Worker(_) => self.uniform(t.worker_down_max),
                Component::Sender(_) => secs(0.1),
            };
            self.schedule(d, Due::Restart(c));
        }
        Ok(())
    }

    fn restart(&mut self, c: Component) -> Result<(), RunFailure> {
        if matches!(c, Component::Sender(_)) && self.driver.is_alive(&c) {
            return Ok(());
        }
        self.start_component(&c, false)?;
        self.event(Action::Restart, &c);
        self.down.remove(&c);
        // The original prints no character for a sender's restart (its `cs` says it all).
        if !matches!(c, Component::Sender(_)) {
            self.say(&format!("r{}", Self::short(&c)));
            self.must_be_ready(c.clone());
        }
        self.schedule_next_crash(c);
        Ok(())
    }

    fn source_crash(&mut self) -> Result<(), RunFailure> {
        let live: Vec<char> = self
            .plan
            .keys
            .iter()
            .copied()
            .filter(|k| self.driver.is_alive(&Component::Sender(*k)))
            .collect();
        if !live.is_empty() {
            let k = live[self.rng.range(0, live.len() as u64 - 1) as usize];
            let c = Component::Sender(k);
            self.driver.kill(&c)?;
            self.event(Action::Crash, &c);
            self.say("cs");
            self.schedule(Duration::from_millis(100), Due::Restart(c));
        }
        let d = self
            .uniform(self.plan.timings.source_up_max)
            .max(Duration::from_millis(100));
        self.schedule(d, Due::SourceCrash);
        Ok(())
    }

    /// After a restart or resume, when this component's loop strikes next.
    fn schedule_next_crash(&mut self, c: Component) {
        if self.plan.replay.is_some() {
            return;
        }
        let pace = match &c {
            Component::Worker(n) => self
                .plan
                .scenario
                .crash_workers
                .iter()
                .find(|(w, _)| w == n)
                .map(|(_, p)| *p),
            _ => None,
        };
        let t = self.plan.timings.clone();
        let next = match (&c, pace) {
            (Component::Sink, _) if self.plan.scenario.crash_sink => {
                Some(secs(t.sink_up_min) + self.uniform(t.sink_up_max - t.sink_up_min))
            }
            (Component::Worker(_), Some(Pace::Fast)) => Some(self.uniform(t.worker_up_max)),
            (Component::Worker(_), Some(Pace::Slow)) => {
                Some(secs(t.slow_every) + self.uniform(t.worker_up_max))
            }
            // Senders: the source loop picks its next victim itself.
            _ => None,
        };
        if let Some(d) = next {
            self.schedule(d, Due::Crash(c));
        }
    }

    fn grow_shrink(&mut self) -> Result<(), RunFailure> {
        if self.plan.scenario.grow && self.rng.range(0, 9) < 5 {
            if let Some(n) = (1..=9).find(|n| !self.members.contains(n)) {
                self.grow(n)?;
            }
        }
        if self.plan.scenario.shrink && self.rng.range(0, 9) < 5 {
            let candidates: Vec<usize> = self
                .members
                .iter()
                .copied()
                .filter(|&n| n > 0 && !self.down.contains_key(&Component::Worker(n)))
                .collect();
            if !candidates.is_empty() {
                let n = candidates[self.rng.range(0, candidates.len() as u64 - 1) as usize];
                self.shrink(n);
            }
        }
        self.schedule(secs(self.plan.timings.grow_shrink_every), Due::GrowShrink);
        Ok(())
    }

    fn grow(&mut self, n: usize) -> Result<(), RunFailure> {
        let c = Component::Worker(n);
        self.start_component(&c, true)?;
        self.members.push(n);
        self.event(Action::Grow, &c);
        self.say(&format!("Join {n}."));
        self.must_be_ready(c);
        Ok(())
    }

    /// The worker leaves by itself once the initializer accepts; its exit is reaped
    /// as any other (a shrunk worker is down on purpose). A busy initializer is asked
    /// again on a later tick.
    fn shrink(&mut self, n: usize) {
        let c = Component::Worker(n);
        if self.cluster.shrink(n) {
            self.members.retain(|&m| m != n);
            self.take_down(&c);
            self.event(Action::Shrink, &c);
            self.say(&format!("Shrink {n}"));
        }
    }

    fn scripted(&mut self, step: Step) -> Result<(), RunFailure> {
        if let (Some(fault), Some(link)) = (step.fault(), step.link.clone()) {
            let network = self.network()?;
            network.apply(&link, fault).map_err(RunFailure::Setup)?;
            self.net_event(&fault, &link);
            let mark = if step.action == Action::Heal {
                'h'
            } else {
                'p'
            };
            self.say(&format!("{mark}{}", NetScope::mark(&link)));
            if let Some(s) = step.for_s.filter(|_| step.action != Action::Heal) {
                self.schedule(secs(s), Due::NetHeal(link, None));
            }
            return Ok(());
        }
        let Some(c) = Component::parse(&step.component) else {
            return Ok(());
        };
        if let Some(why) = self.step_without_effect(&step, &c) {
            let _ = writeln!(
                self.out,
                "\nstep at {:.1} s, {} {}: skipped, {why}; nothing recorded",
                step.at,
                step.action.as_str(),
                step.component
            );
            return Ok(());
        }
        match step.action {
            Action::Crash => {
                self.driver.kill(&c)?;
                self.take_down(&c);
                self.event(Action::Crash, &c);
                self.say(&format!("c{}", Self::short(&c)));
                if matches!(c, Component::Sender(_)) {
                    self.schedule(Duration::from_millis(100), Due::Restart(c));
                }
            }
            Action::Restart => {
                self.start_component(&c, false)?;
                self.down.remove(&c);
                self.event(Action::Restart, &c);
                self.say(&format!("r{}", Self::short(&c)));
            }
            Action::Pause => {
                self.driver.pause(&c)?;
                self.take_down(&c);
                self.event(Action::Pause, &c);
            }
            Action::Resume => {
                self.driver.resume(&c)?;
                self.down.remove(&c);
                self.event(Action::Resume, &c);
            }
            Action::Grow => {
                if let Component::Worker(n) = c {
                    self.grow(n)?;
                }
            }
            Action::Shrink => {
                if let Component::Worker(n) = c {
                    self.shrink(n);
                }
            }
            // Network steps were handled above (one without a link does nothing).
            _ => {}
        }
        Ok(())
    }

    /// Why a scripted step would do nothing now (so it is not recorded as done): a
    /// crash, pause or resume of a component that is not running, a restart of one that
    /// is.
    fn step_without_effect(&mut self, step: &Step, c: &Component) -> Option<&'static str> {
        let alive = self.driver.is_alive(c);
        match step.action {
            Action::Crash | Action::Pause | Action::Resume if !alive => Some("it is not running"),
            Action::Restart if alive => Some("it is running"),
            Action::Grow if alive => Some("it is already a member"),
            _ => None,
        }
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
                recv(checks) -> e => match e {
                    Ok(e) => self.handle_check(e),
                    Err(_) => self.handle_check(CheckEvent::Lost(
                        "the checks stopped without a verdict".into(),
                    )),
                },
                default(timeout) => None,
            };
            self.check_record()?;
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
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeSet;
    use std::rc::Rc;

    use super::*;

    struct FakeClock(Cell<Instant>);

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.0.get()
        }

        /// A fixed start, so events.jsonl is a function of the seed.
        fn unix_now(&self) -> f64 {
            1_800_000_000.0
        }
    }

    /// What the fake driver did and what it will answer, shared with the test.
    #[derive(Default)]
    struct DriverState {
        calls: Vec<String>,
        alive: BTreeSet<Component>,
        exits: BTreeMap<Component, i32>,
        /// Pausing these fails.
        unpausable: BTreeSet<Component>,
        grace: Vec<Duration>,
    }

    /// Records every action; components live until killed or stopped.
    #[derive(Default, Clone)]
    struct FakeDriver(Rc<RefCell<DriverState>>);

    impl std::ops::Deref for FakeDriver {
        type Target = RefCell<DriverState>;
        fn deref(&self) -> &RefCell<DriverState> {
            &self.0
        }
    }

    impl ProcessDriver for FakeDriver {
        fn start(&mut self, c: &Component, _spec: &LaunchSpec) -> Result<(), DriverError> {
            self.borrow_mut().calls.push(format!("start {}", c.name()));
            self.borrow_mut().alive.insert(c.clone());
            Ok(())
        }
        fn kill(&mut self, c: &Component) -> Result<(), DriverError> {
            self.borrow_mut().calls.push(format!("kill {}", c.name()));
            self.borrow_mut().alive.remove(c);
            Ok(())
        }
        fn pause(&mut self, c: &Component) -> Result<(), DriverError> {
            self.borrow_mut().calls.push(format!("pause {}", c.name()));
            if self.borrow().unpausable.contains(c) {
                return Err(DriverError::Action {
                    action: "pause",
                    component: c.name(),
                    detail: "ssh: connection refused".into(),
                });
            }
            Ok(())
        }
        fn resume(&mut self, c: &Component) -> Result<(), DriverError> {
            self.borrow_mut().calls.push(format!("resume {}", c.name()));
            Ok(())
        }
        fn is_alive(&mut self, c: &Component) -> bool {
            self.borrow().alive.contains(c)
        }
        fn exited(&mut self, c: &Component) -> Option<i32> {
            let code = self.borrow_mut().exits.remove(c)?;
            self.borrow_mut().alive.remove(c);
            Some(code)
        }
        fn stop(&mut self, c: &Component, grace: Duration) -> Result<(), DriverError> {
            self.borrow_mut().calls.push(format!("stop {}", c.name()));
            self.borrow_mut().grace.push(grace);
            self.borrow_mut().alive.remove(c);
            Ok(())
        }
        fn started(&self) -> Vec<Component> {
            self.borrow().alive.iter().cloned().collect()
        }
        fn locate(&self, c: &Component) -> Option<String> {
            Some(format!("fake {}", c.name()))
        }
        fn placement(&self, _c: &Component) -> Option<crate::driver::Placement> {
            None
        }

        fn describe(&self) -> crate::driver::DriverRecord {
            crate::driver::DriverRecord::default()
        }

        fn recorded(
            &mut self,
            _placement: &crate::driver::Placement,
            _act: crate::driver::RecordedAct,
        ) -> Result<bool, DriverError> {
            Ok(false)
        }

        fn survivors(&mut self) -> Vec<String> {
            Vec::new()
        }

        /// Every component is a child on this machine.
        fn remote_command(
            &self,
            _on: &Component,
            _argv: &[String],
        ) -> Option<std::process::Command> {
            None
        }

        /// Exits arrive as SIGCHLD.
        fn watch_exits(&mut self, _wakes: crossbeam_channel::Sender<crate::driver::Wake>) {}

        fn fetch(
            &mut self,
            _host_of: &Component,
            _remote: &std::path::Path,
            _local: &std::path::Path,
        ) -> Result<crate::driver::Fetched, DriverError> {
            Ok(crate::driver::Fetched::AlreadyLocal)
        }
    }

    /// Ready or not, as the test sets it, with a log whose size the test sets too.
    struct FakeCluster {
        ready: Rc<Cell<bool>>,
        log: Rc<Cell<u64>>,
    }

    impl Cluster for FakeCluster {
        fn ready(&self, _timeout: Duration) -> bool {
            self.ready.get()
        }
        fn component_ready(&self, _c: &Component, _live: &[usize]) -> bool {
            self.ready.get()
        }
        fn shrink(&self, _n: usize) -> bool {
            true
        }
        fn progress(&self, c: &Component) -> Progress {
            Progress {
                listening: Some((format!("{}:1", c.name()), true)),
                log: Some((format!("its log {}.log", c.name()), self.log.get())),
                txnlog_bytes: Some(0),
            }
        }
    }

    fn preset() -> Preset {
        crate::driver::preset::test_demo(7100, &['A', 'B'])
    }

    fn plan(args: &[&str]) -> SoakPlan {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let scenario = Scenario::parse("3", &args, None).unwrap();
        SoakPlan {
            timings: scenario.timings.clone(),
            scenario,
            seed: 7,
            keys: vec!['A', 'B'],
            replay: None,
            duration: None,
            progress: ProgressStyle::Terse,
            continue_on_finding: false,
        }
    }

    /// A supervisor over fakes, at a fake time zero.
    struct Rig {
        clock: FakeClock,
        driver: FakeDriver,
        cluster: FakeCluster,
        out: Vec<u8>,
        events: Vec<u8>,
        preset: Preset,
    }

    impl Rig {
        fn new() -> Rig {
            Rig {
                clock: FakeClock(Cell::new(Instant::now())),
                driver: FakeDriver::default(),
                cluster: FakeCluster {
                    ready: Rc::new(Cell::new(true)),
                    log: Rc::new(Cell::new(0)),
                },
                out: Vec::new(),
                events: Vec::new(),
                preset: preset(),
            }
        }

        fn supervisor<'a>(&'a mut self, plan: &'a SoakPlan) -> (Supervisor<'a>, &'a FakeClock) {
            let sup = Supervisor::new(
                plan,
                &self.preset,
                &self.clock,
                &mut self.driver,
                &self.cluster,
                None,
                &mut self.out,
                Some(&mut self.events),
            );
            (sup, &self.clock)
        }
    }

    /// Moves the fake clock from timer to timer until `limit` after the start, or an
    /// ending.
    fn drive(sup: &mut Supervisor<'_>, clock: &FakeClock, limit: Duration) -> Option<Ending> {
        let end = clock.now() + limit;
        while let Some(at) = sup.next_deadline() {
            if at > end {
                break;
            }
            clock.0.set(at.max(clock.now()));
            if let Some(ending) = sup.fire_due().unwrap() {
                return Some(ending);
            }
        }
        clock.0.set(end);
        None
    }

    #[test]
    fn start_waits_for_the_cluster_then_starts_senders_and_the_loops() {
        let p = plan(&["crash1", "crash-sink"]);
        let mut rig = Rig::new();
        rig.cluster.ready.set(false);
        let ready = rig.cluster.ready.clone();
        let rig_driver = rig.driver.clone();
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_secs(1));
        let senders_started = |d: &FakeDriver| {
            d.borrow()
                .calls
                .iter()
                .any(|c| c.starts_with("start sender"))
        };
        assert!(
            !senders_started(&rig_driver),
            "no senders before the cluster is ready"
        );
        ready.set(true);
        drive(&mut sup, clock, Duration::from_millis(150));
        assert!(senders_started(&rig_driver));
        let pending: Vec<Due> = sup.pending().into_iter().map(|(_, d)| d).collect();
        assert!(pending.contains(&Due::Crash(Component::Sink)));
        assert!(pending.contains(&Due::Crash(Component::Worker(1))));
        drop(sup);
        assert_eq!(
            &rig.driver.borrow().calls[..6],
            [
                "start sink",
                "start initializer",
                "start worker1",
                "start worker2",
                "start sender-A",
                "start sender-B"
            ]
        );
    }

    #[test]
    fn startup_gives_up_after_its_deadline() {
        let p = plan(&[]);
        let mut rig = Rig::new();
        rig.cluster.ready.set(false);
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        let end = clock.now() + Duration::from_secs(20);
        let mut failure = None;
        while let Some(at) = sup.next_deadline() {
            if at > end {
                break;
            }
            clock.0.set(at);
            if let Err(e) = sup.fire_due() {
                failure = Some(e.to_string());
                break;
            }
        }
        let failure = failure.expect("a setup failure");
        assert!(failure.contains("not ready within 15 s"), "{failure}");
    }

    /// A soak of `args` whose cluster goes not ready after 100 ms for `not_ready`, then
    /// ready for 2 s: what it printed and what the driver was asked.
    fn stabilization(args: &[&str], not_ready: Duration) -> (String, Vec<String>) {
        let p = plan(args);
        let mut rig = Rig::new();
        let ready = rig.cluster.ready.clone();
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_millis(100));
        ready.set(false);
        drive(&mut sup, clock, not_ready);
        ready.set(true);
        drive(&mut sup, clock, Duration::from_secs(2));
        drop(sup);
        let calls = rig.driver.borrow().calls.clone();
        (String::from_utf8(rig.out).unwrap(), calls)
    }

    /// The crash loops: each crash is followed by a restart, the restart by the next crash,
    /// and the timings are the scenario's; a not-ready cluster makes a loop skip (`:c1`).
    #[test]
    fn crash_loops_alternate_and_stabilize() {
        let p = plan(&["crash1"]);
        let mut rig = Rig::new();
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        assert_eq!(drive(&mut sup, clock, Duration::from_secs(60)), None);
        let faults = sup.fault_count;
        drop(sup);
        let calls = rig.driver.borrow().calls.clone();
        let crashes = calls.iter().filter(|c| *c == "kill worker1").count();
        let restarts = calls.iter().filter(|c| *c == "start worker1").count();
        assert!(crashes >= 10, "{crashes} crashes in 60 s at U(0,4)+U(0,4)");
        assert_eq!(faults, crashes as u64);
        assert!(restarts == crashes || restarts == crashes + 1);
        let events = String::from_utf8(rig.events.clone()).unwrap();
        assert_eq!(events.lines().count(), crashes + restarts - 1);
        // Stabilization: with the cluster not ready, the loop skips and says so.
        // It strikes only once the cluster is ready again: its first `c1` is a `:c1`.
        let (out, calls) = stabilization(&["crash1"], Duration::from_secs(30));
        assert_eq!(out.find("c1"), out.find(":c1").map(|i| i + 1), "{out}");
        assert!(calls.contains(&"kill worker1".to_string()));
        // The same for the sink's loop, with `:s`.
        let (out, calls) = stabilization(&["crash-sink"], Duration::from_secs(10));
        assert!(out.contains(":s") && out.contains("cS"), "{out}");
        assert!(out.find(":s") < out.find("cS"), "{out}");
        assert!(calls.contains(&"kill sink".to_string()));
    }

    /// The source loop kills a live sender (`cs`) and restarts it 0.1 s later, silently,
    /// as the original prints it.
    #[test]
    fn the_source_loop_prints_as_the_original() {
        let p = plan(&["crash-source"]);
        let mut rig = Rig::new();
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_secs(20));
        drop(sup);
        let out = String::from_utf8(rig.out).unwrap();
        assert!(out.contains("cs") && !out.contains("rs"), "{out}");
        let calls = rig.driver.borrow().calls.clone();
        let kills = calls
            .iter()
            .filter(|c| c.starts_with("kill sender"))
            .count();
        let starts = calls
            .iter()
            .filter(|c| c.starts_with("start sender"))
            .count();
        assert!(kills >= 3 && starts > kills, "{calls:?}");
    }

    /// A fake proxy: its links, and every fault applied.
    #[derive(Default)]
    struct FakeNetwork {
        applied: std::cell::RefCell<Vec<(String, crate::proxy::Fault)>>,
    }

    impl Network for FakeNetwork {
        fn links(&self) -> Vec<String> {
            [
                "sender-A->initializer",
                "sender-B->worker1",
                "initializer->sink",
                "worker1->sink",
                "worker2->sink",
                "worker7->sink",
                "worker1->initializer",
            ]
            .map(String::from)
            .to_vec()
        }

        fn apply(&self, link: &str, fault: crate::proxy::Fault) -> Result<(), String> {
            self.applied.borrow_mut().push((link.to_string(), fault));
            Ok(())
        }
    }

    #[test]
    fn network_loops_strike_their_links_of_the_cluster_and_heal_them() {
        use crate::proxy::Fault;
        let p = plan(&["net-sink", "net-source"]);
        let network = FakeNetwork::default();
        let mut rig = Rig::new();
        let (sup, clock) = rig.supervisor(&p);
        let mut sup = sup.with_network(&network);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_secs(120));
        let faults = sup.fault_count;
        drop(sup);
        let applied = network.applied.borrow().clone();
        let struck: Vec<&(String, Fault)> =
            applied.iter().filter(|(_, f)| *f != Fault::Heal).collect();
        assert!(struck.len() >= 10, "{applied:?}");
        assert_eq!(faults as usize, struck.len());
        // Only the loops' scopes, and only links of workers in the cluster.
        for (link, _) in &applied {
            assert!(
                link.ends_with("->sink") || link.starts_with("sender-"),
                "{link}"
            );
            assert_ne!(link, "worker7->sink", "a worker that is not in the cluster");
        }
        // Each loop heals its fault before its next one.
        for scope in [NetScope::Sink, NetScope::Source] {
            let mine: Vec<bool> = applied
                .iter()
                .filter(|(l, _)| scope.covers(l))
                .map(|(_, f)| *f == Fault::Heal)
                .collect();
            assert!(mine.windows(2).all(|w| w[0] != w[1]), "{scope:?}: {mine:?}");
        }
        let out = String::from_utf8(rig.out).unwrap();
        assert!(out.contains("pS") && out.contains("hS"), "{out}");
        assert!(out.contains("pA") || out.contains("pB"), "{out}");
        let events = String::from_utf8(rig.events).unwrap();
        assert!(
            events.contains(r#""link":"worker1->sink""#)
                || events.contains(r#""link":"worker2->sink""#),
            "{events}"
        );
    }

    #[test]
    fn a_scripted_partition_heals_after_its_for_and_needs_the_proxy() {
        use crate::proxy::Fault;
        let mut p = plan(&[]);
        let mut step = Step::process(5.0, Action::Partition, "");
        step.link = Some("worker1->sink".into());
        step.for_s = Some(2.0);
        p.scenario.steps.push(step);
        let network = FakeNetwork::default();
        let mut rig = Rig::new();
        let (sup, clock) = rig.supervisor(&p);
        let mut sup = sup.with_network(&network);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_secs(6));
        assert_eq!(network.applied.borrow().len(), 1);
        drive(&mut sup, clock, Duration::from_secs(2));
        drop(sup);
        assert_eq!(
            *network.applied.borrow(),
            vec![
                ("worker1->sink".to_string(), Fault::Partition),
                ("worker1->sink".to_string(), Fault::Heal)
            ]
        );
        // Without a proxy the step cannot be carried out: a setup failure, not a no-op.
        let mut rig = Rig::new();
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        let end = clock.now() + Duration::from_secs(10);
        let mut failed = false;
        while let Some(at) = sup.next_deadline().filter(|&a| a <= end) {
            clock.0.set(at.max(clock.now()));
            if let Err(RunFailure::Setup(text)) = sup.fire_due() {
                failed = text.contains("fault proxy");
                break;
            }
        }
        assert!(failed, "a network step without a proxy fails the setup");
    }

    /// The same seed gives the same schedule: the loops draw from one seeded RNG.
    #[test]
    fn the_schedule_is_a_function_of_the_seed() {
        let schedule = |seed: u64| {
            let mut p = plan(&["crash0", "crash1", "crash-sink", "crash-source", "pause"]);
            p.seed = seed;
            let mut rig = Rig::new();
            let (mut sup, clock) = rig.supervisor(&p);
            sup.start(Duration::from_secs(15)).unwrap();
            drive(&mut sup, clock, Duration::from_secs(40));
            drop(sup);
            rig.events
        };
        assert_eq!(schedule(3), schedule(3));
        assert_ne!(schedule(3), schedule(4));
    }

    #[test]
    fn a_finding_ends_the_soak_and_freeze_says_what_it_did_per_component() {
        let p = plan(&[]);
        let mut rig = Rig::new();
        rig.driver
            .borrow_mut()
            .unpausable
            .insert(Component::Worker(2));
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_secs(1));
        let finding = Finding {
            kind: FindingKind::Violation,
            key: Some("A".into()),
            detail: "key A breaks".into(),
            elapsed_s: 1.0,
        };
        assert_eq!(sup.handle_check(CheckEvent::Progress(b",".to_vec())), None);
        assert_eq!(
            sup.handle_check(CheckEvent::Finding(finding)),
            Some(Ending::Found)
        );
        let results = sup.freeze();
        assert_eq!(results.len(), 6);
        let failed: Vec<&FreezeResult> = results.iter().filter(|r| r.outcome.is_err()).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].component, Component::Worker(2));
        assert!(failed[0]
            .outcome
            .as_ref()
            .unwrap_err()
            .contains("connection refused"));
        assert_eq!(results[0].location.as_deref(), Some("fake sink"));
    }

    #[test]
    fn a_lost_checker_is_a_finding() {
        let p = plan(&[]);
        let mut rig = Rig::new();
        let (mut sup, _clock) = rig.supervisor(&p);
        let ending = sup.handle_check(CheckEvent::Lost("ssh exited with status 255".into()));
        assert_eq!(ending, Some(Ending::Found));
        assert_eq!(sup.findings[0].kind, FindingKind::CheckerLost);
    }

    /// Stop order is senders, workers, sink; a second interrupt cuts the grace period to
    /// nothing for the rest.
    #[test]
    fn stop_goes_senders_first_and_a_second_interrupt_hurries_it() {
        let p = plan(&[]);
        let mut rig = Rig::new();
        let (wake_tx, wakes) = crossbeam_channel::unbounded();
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_secs(1));
        assert_eq!(
            sup.handle_wake(Wake::Interrupt).unwrap(),
            Some(Ending::Signal)
        );
        wake_tx.send(Wake::Interrupt).unwrap();
        assert!(sup.stop_all(Some(&wakes)).is_empty());
        drop(sup);
        let state = rig.driver.borrow();
        let stops: Vec<&String> = state
            .calls
            .iter()
            .filter(|c| c.starts_with("stop"))
            .collect();
        assert_eq!(stops.first().map(|s| s.as_str()), Some("stop sender-A"));
        assert_eq!(stops.last().map(|s| s.as_str()), Some("stop sink"));
        assert!(state.grace.iter().all(|g| g.is_zero()), "{:?}", state.grace);
        assert!(state.alive.is_empty());
    }

    /// A sender that exits before its EOF is restarted 0.1 s later; one at EOF (status
    /// 0) is not; a worker that cannot bind is a setup failure.
    #[test]
    fn exits_restart_senders_and_fail_setup() {
        let p = plan(&[]);
        let mut rig = Rig::new();
        let driver = rig.driver.clone();
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_secs(1));
        driver.borrow_mut().exits.insert(Component::Sender('A'), 1);
        driver.borrow_mut().exits.insert(Component::Sender('B'), 0);
        assert_eq!(sup.handle_wake(Wake::ChildExited).unwrap(), None);
        drive(&mut sup, clock, Duration::from_millis(200));
        driver.borrow_mut().exits.insert(Component::Worker(1), 2);
        let failure = sup.handle_wake(Wake::ChildExited).unwrap_err();
        assert!(
            failure.to_string().contains("worker1 exited with status 2"),
            "{failure}"
        );
        drop(sup);
        let state = rig.driver.borrow();
        let starts: Vec<&String> = state
            .calls
            .iter()
            .filter(|c| c.starts_with("start sender"))
            .collect();
        assert_eq!(
            starts,
            ["start sender-A", "start sender-B", "start sender-A"]
        );
    }

    /// `--replay` fires the recorded steps at their times and runs no loop of its own.
    #[test]
    fn replay_fires_recorded_steps_only() {
        let mut p = plan(&["crash1", "crash-sink"]);
        let step = |at: f64, action, component: &str| Step::process(at, action, component);
        p.replay = Some(vec![
            step(1.0, Action::Crash, "worker1"),
            step(1.5, Action::Restart, "worker1"),
            step(2.0, Action::Pause, "sink"),
            step(2.5, Action::Resume, "sink"),
        ]);
        let mut rig = Rig::new();
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_secs(30));
        drop(sup);
        let state = rig.driver.borrow();
        let actions: Vec<&String> = state.calls.iter().skip(6).collect();
        assert_eq!(
            actions,
            ["kill worker1", "start worker1", "pause sink", "resume sink"]
        );
        let events = String::from_utf8(rig.events).unwrap();
        let times: Vec<f64> = events
            .lines()
            .map(|l| serde_json::from_str::<Step>(l).unwrap().at)
            .collect();
        assert_eq!(times, [1.0, 1.5, 2.0, 2.5]);
    }

    /// Issue 17.7: a step that would do nothing (a crash of a component that is down, a
    /// restart of one that runs) is skipped with a note and never recorded as done.
    #[test]
    fn a_step_without_effect_is_skipped_and_not_recorded() {
        let mut p = plan(&[]);
        let step = |at: f64, action, component: &str| Step::process(at, action, component);
        p.scenario.steps = vec![
            step(1.0, Action::Crash, "worker1"),
            step(2.0, Action::Crash, "worker1"),
            step(3.0, Action::Restart, "worker2"),
            step(4.0, Action::Restart, "worker1"),
        ];
        let mut rig = Rig::new();
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_secs(10));
        assert_eq!(sup.fault_count, 1);
        drop(sup);
        let actions: Vec<String> = rig.driver.borrow().calls.iter().skip(6).cloned().collect();
        assert_eq!(actions, ["kill worker1", "start worker1"]);
        let events = String::from_utf8(rig.events).unwrap();
        let recorded: Vec<(f64, Action)> = events
            .lines()
            .map(|l| serde_json::from_str::<Step>(l).unwrap())
            .map(|s| (s.at, s.action))
            .collect();
        assert_eq!(recorded, [(1.0, Action::Crash), (4.0, Action::Restart)]);
        let out = String::from_utf8(rig.out).unwrap();
        assert!(
            out.contains("crash worker1: skipped, it is not running"),
            "{out}"
        );
        assert!(
            out.contains("restart worker2: skipped, it is running"),
            "{out}"
        );
    }

    /// Takes `lines` lines, then fails every write, as a file made immutable does.
    struct FailingAfter {
        lines: usize,
        taken: Vec<u8>,
    }

    impl Write for FailingAfter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.taken.iter().filter(|&&b| b == b'\n').count() >= self.lines {
                return Err(std::io::Error::from_raw_os_error(1));
            }
            self.taken.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Issue 17.7: losing the record of faults stops the soak, at the first failed
    /// write, as a failed sink write would: no fault goes on unrecorded.
    #[test]
    fn a_failed_write_of_events_stops_the_soak() {
        let p = plan(&["crash1", "crash-sink"]);
        let mut rig = Rig::new();
        let mut events = FailingAfter {
            lines: 2,
            taken: Vec::new(),
        };
        let mut sup = Supervisor::new(
            &p,
            &rig.preset,
            &rig.clock,
            &mut rig.driver,
            &rig.cluster,
            None,
            &mut rig.out,
            Some(&mut events),
        );
        sup.start(Duration::from_secs(15)).unwrap();
        let end = rig.clock.now() + Duration::from_secs(120);
        let mut failure = None;
        while let Some(at) = sup.next_deadline() {
            if at > end {
                break;
            }
            rig.clock.0.set(at.max(rig.clock.now()));
            if let Err(e) = sup.fire_due() {
                failure = Some(e);
                break;
            }
        }
        let failure = failure.expect("the soak stopped");
        assert!(matches!(failure, RunFailure::Record(_)), "{failure}");
        assert!(failure
            .to_string()
            .contains("events.jsonl could not be written"));
        assert_eq!(
            sup.fault_count, 2,
            "the third fault's record failed, and nothing after it ran"
        );
    }

    /// Issue 17.5: a restarted component not ready at `readiness_timeout` is judged on
    /// evidence. One whose log keeps growing is slow, and waited for (up to the limit);
    /// one that shows no progress for a whole timeout is a finding that says what was
    /// seen.
    #[test]
    fn a_slow_restart_is_waited_for_and_a_silent_one_is_a_finding_with_evidence() {
        let p = plan(&[]);
        let mut rig = Rig::new();
        let (ready, log) = (rig.cluster.ready.clone(), rig.cluster.log.clone());
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_millis(100));
        ready.set(false);
        sup.must_be_ready(Component::Worker(1));
        for _ in 0..8 {
            log.set(log.get() + 100);
            assert_eq!(drive(&mut sup, clock, Duration::from_secs(5)), None);
        }
        assert!(
            sup.findings.is_empty(),
            "40 s of a growing log: slow, not stuck"
        );
        ready.set(true);
        drive(&mut sup, clock, Duration::from_secs(1));
        assert!(sup.waiting.is_empty());
        ready.set(false);
        sup.must_be_ready(Component::Worker(2));
        assert_eq!(
            drive(&mut sup, clock, Duration::from_secs(20)),
            Some(Ending::Found)
        );
        let detail = &sup.findings[0].detail;
        assert!(
            detail.starts_with(
                "worker2 was not ready 15 s after it was restarted and shows no progress"
            ) && detail.contains("nothing was written to its log worker2.log for 15 s"),
            "{detail}"
        );
        drop(sup);
        let out = String::from_utf8(rig.out).unwrap();
        assert!(
            out.contains(
                "worker1 is slow to be ready, not stuck (its log worker1.log grew by 300 bytes)"
            ),
            "{out}"
        );
    }

    /// Issue 17.5: a component crashed on purpose while it is waited for is not judged
    /// (its own crash loop struck again before it was ready): that wait ends, and only
    /// the wait of its next restart is judged.
    #[test]
    fn a_wait_ends_when_its_component_is_taken_down_on_purpose() {
        let p = plan(&[]);
        let mut rig = Rig::new();
        let ready = rig.cluster.ready.clone();
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        drive(&mut sup, clock, Duration::from_millis(100));
        ready.set(false);
        sup.must_be_ready(Component::Worker(1));
        drive(&mut sup, clock, Duration::from_secs(5));
        sup.take_down(&Component::Worker(1));
        assert_eq!(drive(&mut sup, clock, Duration::from_secs(30)), None);
        assert!(sup.findings.is_empty());
        sup.must_be_ready(Component::Worker(1));
        assert_eq!(
            drive(&mut sup, clock, Duration::from_secs(20)),
            Some(Ending::Found)
        );
        assert_eq!(
            sup.findings.len(),
            1,
            "one judgment: the stale wait's timer did nothing"
        );
    }

    /// `--duration` ends the soak at its time, as an event of the timer heap.
    #[test]
    fn the_duration_ends_the_soak() {
        let mut p = plan(&["crash1"]);
        p.duration = Some(Duration::from_secs(5));
        let mut rig = Rig::new();
        let (mut sup, clock) = rig.supervisor(&p);
        sup.start(Duration::from_secs(15)).unwrap();
        assert_eq!(
            drive(&mut sup, clock, Duration::from_secs(60)),
            Some(Ending::Duration)
        );
    }
}
