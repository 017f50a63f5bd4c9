//! The supervisor of `soakcheck run`: one thread that starts the system under test, runs
//! every chaos loop as a timer drawn from one seeded RNG, steps `watch`'s checks
//! in-process between faults, and on the first finding freezes the world (SIGSTOP to
//! every component at once), writes a post-mortem bundle, and waits.
//!
//! Loops (the original's, with its default timings, scaled by `--time-scale`):
//! worker N crashes every U(0,4) s and restarts after U(0,4) s (`.slow`: about 120 s
//! apart); the sink goes down for U(0,2) s and stays up U(10,25) s; a random sender is
//! killed every U(0,4) s; senders that exit before their EOF are restarted 0.1 s later;
//! grow/shrink every second with probability 1/2 each. A loop skips its crash (printing
//! `:cN` / `:s`) while the cluster is not ready, and a component still not ready
//! `readiness_timeout` after its restart is a finding. Every fault is an event in
//! `RUN_DIR/events.jsonl`; `--replay` replays those events instead of the loops.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::local::prune_rotated;
use super::preset::{initializer_external, Preset, PresetKind};
use super::scenario::{parse_component, secs, Action, Pace, Scenario, Step, Timings};
use super::{Component, ProcessDriver};
use crate::demo::worker::worker_name;
use crate::formats::mapped::IoMode;
use crate::gen::Rng;
use crate::verify::{open_inputs, KeyInput, Semantics, VerifyPlan};
use crate::watch::{Finding, FindingKind, ProgressStyle, StepOutcome, Until, WatchPlan, Watcher};
use crate::wire::external::{query_cluster_status, ShrinkRequest};

/// What to do at the first finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnViolation {
    /// SIGSTOP everything and wait (Ctrl-C then kills it all).
    Freeze,
    /// Kill everything and exit.
    Kill,
    /// Note it and keep running.
    Continue,
}

#[derive(Debug, Clone)]
pub struct RunPlan {
    pub scenario: Scenario,
    pub preset: Preset,
    pub seed: u64,
    pub time_scale: f64,
    pub on_violation: OnViolation,
    pub duration: Option<Duration>,
    pub replay: Option<PathBuf>,
    pub bytes_per_key: u64,
    pub progress: ProgressStyle,
    pub ack_timeout: Duration,
}

/// Ctrl-C / SIGTERM count, set by the binary's handler.
pub static SIGNALS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub seed: u64,
    pub verdict: &'static str,
    pub duration_s: f64,
    /// Faults by kind, then by component.
    pub faults: BTreeMap<String, BTreeMap<String, u64>>,
    pub fault_count: u64,
    pub commits: u64,
    pub bytes_verified: u64,
    pub findings: Vec<Finding>,
    pub frozen: bool,
    pub stopped_by_signal: bool,
    pub postmortem: Option<String>,
    pub run_dir: String,
}

impl RunSummary {
    pub fn exit_code(&self) -> i32 {
        if self.findings.is_empty() && !self.stopped_by_signal {
            0
        } else if self.findings.is_empty() {
            2
        } else {
            1
        }
    }

    pub fn to_human(&self) -> String {
        let mut out = format!(
            "\nsoakcheck run: {} after {:.1} s (seed {}, run dir {})\n",
            self.verdict, self.duration_s, self.seed, self.run_dir
        );
        out += &format!("  faults injected: {}\n", self.fault_count);
        for (kind, by) in &self.faults {
            let list: Vec<String> = by.iter().map(|(c, n)| format!("{c} {n}")).collect();
            out += &format!("    {kind:<8} {}\n", list.join(", "));
        }
        out += &format!(
            "  commits verified: {}, bytes verified: {}\n",
            self.commits, self.bytes_verified
        );
        for f in &self.findings {
            let kind = serde_json::to_value(f.kind).expect("kind serializes");
            out += &format!(
                "  finding: {} after {:.1} s: {}\n",
                kind.as_str().unwrap_or(""),
                f.elapsed_s,
                f.detail
            );
        }
        if let Some(p) = &self.postmortem {
            out += &format!("  post-mortem bundle: {p}\n");
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Driver(#[from] super::DriverError),
    #[error(transparent)]
    Watch(#[from] crate::watch::WatchError),
    #[error(transparent)]
    Verify(#[from] crate::verify::VerifyError),
}

/// One process started by a run, recorded so `soakcheck reset` stops exactly those.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Started {
    pub component: String,
    pub pid: u32,
    /// Field 22 of /proc/PID/stat, so a reused pid is never mistaken for ours.
    pub start_time: u64,
}

pub fn proc_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// A run's identity: unique per run (process id and start time), so two runs, even with
/// the same seed, never take each other's components for their own.
pub fn new_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}", std::process::id(), nanos)
}

/// The name the supervisor records itself under, so a second run in the same run dir
/// sees a live run before any component is up.
const SUPERVISOR: &str = "soakcheck-run";

/// The processes recorded in `run_dir` (none when there is no record); an error names
/// why the record cannot be read.
fn read_record(run_dir: &Path) -> Result<Vec<Started>, String> {
    match std::fs::read(record_path(run_dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// Refuses a run dir where a live run is recorded, or whose record cannot be read (it
/// may list live processes): only `soakcheck reset` kills, and nothing overwrites it.
fn refuse_live_run(run_dir: &Path) -> Result<(), RunError> {
    let record = record_path(run_dir);
    let recorded = read_record(run_dir).map_err(|e| {
        RunError::Setup(format!(
            "{}: unreadable ({e}); it may list live processes: check for them, then remove it",
            record.display()
        ))
    })?;
    let live: Vec<String> = recorded
        .iter()
        .filter(|s| proc_start_time(s.pid) == Some(s.start_time))
        .map(|s| format!("{} (pid {})", s.component, s.pid))
        .collect();
    if live.is_empty() {
        return Ok(());
    }
    Err(RunError::Setup(format!(
        "{}: a live run is recorded here: {}; stop it, or kill it with `soakcheck reset --run-dir {}`",
        record.display(),
        live.join(", "),
        run_dir.display()
    )))
}

/// Every port the run will listen on must be free now (a second run on the same ports
/// would otherwise talk to the first run's components).
fn require_free_ports(preset: &super::preset::Preset) -> Result<(), RunError> {
    for (port, what) in preset.listening_ports() {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return Err(RunError::Setup(format!(
                "port {port} ({what}) is not free: {e}; another run or program uses it: choose \
                 another --port-base"
            )));
        }
    }
    Ok(())
}

/// The last line of a component's log, for a setup failure's message.
fn last_log_line(path: &Path) -> String {
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

fn record_path(run_dir: &Path) -> PathBuf {
    run_dir.join("soakcheck-run.json")
}

/// `soakcheck reset`: kills every process a previous run recorded (and only those: the
/// recorded start time must match) and deletes the state a run leaves, like `reset.sh`.
pub fn reset(run_dir: &Path) -> Vec<String> {
    let mut done = Vec::new();
    let record = record_path(run_dir);
    let started = read_record(run_dir);
    let record_readable = started.is_ok();
    match started {
        Ok(started) => done.extend(started.iter().filter_map(kill_recorded)),
        Err(e) => done.push(format!(
            "{}: unreadable ({e}): no recorded process was killed; it is kept, check for \
             leftover components by hand",
            record.display()
        )),
    }
    for dir in ["sink-out", "soakcheck-state"] {
        if std::fs::remove_dir_all(run_dir.join(dir)).is_ok() {
            done.push(format!("removed {}", run_dir.join(dir).display()));
        }
    }
    for entry in std::fs::read_dir(run_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("wallaroo.")
            || name.starts_with("sender.out.")
            || (name == "soakcheck-run.json" && record_readable)
            || name == "events.jsonl"
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    done
}

/// Kills a recorded process group if it is still the process that was recorded.
fn kill_recorded(s: &Started) -> Option<String> {
    if proc_start_time(s.pid) != Some(s.start_time) {
        return None;
    }
    let pid = nix::unistd::Pid::from_raw(s.pid as i32);
    // Components lead their own process groups; the supervisor's group is its caller's.
    if s.component != SUPERVISOR {
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    Some(format!("killed {} (pid {})", s.component, s.pid))
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A loop's next action.
#[derive(Debug, Clone)]
enum Due {
    Crash(Component),
    Restart(Component),
    Resume(Component),
    GrowShrink,
    Scripted(Step),
}

struct Supervisor<'a> {
    plan: &'a RunPlan,
    driver: &'a mut dyn ProcessDriver,
    rng: Rng,
    timings: Timings,
    started: Instant,
    timers: Vec<(Instant, Due)>,
    events: std::fs::File,
    faults: BTreeMap<String, BTreeMap<String, u64>>,
    fault_count: u64,
    record: Vec<Started>,
    out: &'a mut dyn Write,
    /// Members of the logical cluster (initial workers, joined, minus shrunk).
    members: Vec<usize>,
    /// Components down on purpose (crashed or paused), with when they go down.
    down: BTreeMap<Component, Instant>,
    /// Restarted components that must become ready by this time.
    must_be_ready: Vec<(Component, Instant)>,
    last_fault: Option<Instant>,
    sender_exits: BTreeMap<char, Instant>,
}

impl Supervisor<'_> {
    fn say(&mut self, text: &str) {
        if self.plan.progress == ProgressStyle::Terse {
            let _ = self.out.write_all(text.as_bytes());
            let _ = self.out.flush();
        }
    }

    fn uniform(&mut self, max: f64) -> Duration {
        secs(self.rng.range(0, 1_000_000) as f64 / 1_000_000.0 * max)
    }

    fn start(&mut self, c: &Component, join: bool) -> Result<(), RunError> {
        let spec = self.plan.preset.spec(c, join);
        self.driver.start(c, &spec)?;
        if let Some((_, pid)) = self.driver.pids().into_iter().find(|(x, _)| x == c) {
            if let Some(start_time) = proc_start_time(pid) {
                self.record.retain(|s| s.component != c.name());
                self.record.push(Started {
                    component: c.name(),
                    pid,
                    start_time,
                });
                self.write_record();
            }
        }
        Ok(())
    }

    fn write_record(&self) {
        let _ = crate::gen::write_atomically(&record_path(&self.plan.preset.run_dir), |out| {
            out.write_all(&serde_json::to_vec(&self.record).expect("serializes"))
        });
    }

    /// A sink or worker that exited by itself because it cannot run (it could not bind
    /// its port: exit status 2, or "Address already in use" in its log) is a setup
    /// failure, not something to wait out.
    fn setup_failure(&mut self) -> Option<RunError> {
        let system = std::iter::once(Component::Sink)
            .chain(self.members.iter().map(|&n| Component::Worker(n)))
            .collect::<Vec<_>>();
        for c in system {
            if self.down.contains_key(&c) {
                continue;
            }
            let Some(code) = self.driver.exited(&c) else {
                continue;
            };
            let log = self.plan.preset.log_path(&c);
            let last = last_log_line(&log);
            if code == 2 || last.contains("Address already in use") {
                return Some(RunError::Setup(format!(
                    "{} exited with status {code} and cannot run: {last} (log {})",
                    c.name(),
                    log.display()
                )));
            }
        }
        None
    }

    fn event(&mut self, action: Action, c: &Component) {
        let t = self.started.elapsed().as_secs_f64();
        let step = Step {
            at: t,
            action,
            component: c.name(),
        };
        let _ = writeln!(
            self.events,
            "{}",
            serde_json::to_string(&step).expect("serializes")
        );
        let kind = serde_json::to_value(action)
            .expect("serializes")
            .as_str()
            .unwrap_or("")
            .to_string();
        if matches!(
            action,
            Action::Crash | Action::Pause | Action::Grow | Action::Shrink
        ) {
            *self
                .faults
                .entry(kind)
                .or_default()
                .entry(c.name())
                .or_default() += 1;
            self.fault_count += 1;
            self.last_fault = Some(Instant::now());
        }
    }

    fn short(c: &Component) -> String {
        match c {
            Component::Sink => "S".into(),
            Component::Worker(n) => n.to_string(),
            Component::Sender(k) => format!("s{k}"),
        }
    }

    /// poll-all-ready: the initializer lists the members, each must be processing.
    fn cluster_ready(&self, timeout: Duration) -> bool {
        let ports = &self.plan.preset.ports;
        let Ok(Some(status)) = query_cluster_status(&initializer_external(ports), timeout) else {
            return false;
        };
        status.processing_messages
            && status.worker_names.iter().all(|name| {
                let Some(n) = crate::demo::worker::worker_number(name) else { return false };
                matches!(query_cluster_status(&format!("127.0.0.1:{}", ports.external(n)), timeout), Ok(Some(s)) if s.processing_messages)
            })
    }

    /// The component's probe from the scenario, or poll-all-ready.
    fn component_ready(&self, c: &Component) -> bool {
        match self.plan.scenario.probes.get(&c.name()) {
            Some(probe) => probe.ready(&|t| self.cluster_ready(t)),
            None => self.cluster_ready(Duration::from_millis(200)),
        }
    }

    fn schedule(&mut self, after: Duration, due: Due) {
        self.timers.push((Instant::now() + after, due));
    }

    fn fault(&mut self, due: Due, pauses: bool) -> Result<(), RunError> {
        match due {
            Due::Crash(c) => {
                let is_member = match &c {
                    Component::Worker(n) => self.members.contains(n),
                    _ => true,
                };
                if !is_member {
                    self.schedule(secs(1.0), Due::Crash(c));
                    return Ok(());
                }
                if !self.cluster_ready(Duration::from_millis(300)) {
                    let s = if c == Component::Sink {
                        ":s".to_string()
                    } else {
                        format!(":c{}", Self::short(&c))
                    };
                    self.say(&s);
                    self.schedule(secs(1.0), Due::Crash(c));
                    return Ok(());
                }
                let pause =
                    pauses && self.rng.range(0, 9) < 3 && !matches!(c, Component::Sender(_));
                if pause {
                    self.driver.pause(&c)?;
                    self.event(Action::Pause, &c);
                    self.say(&format!("p{}", Self::short(&c)));
                    self.down.insert(c.clone(), Instant::now());
                    let d = self.uniform(self.timings.pause_max);
                    self.schedule(d, Due::Resume(c));
                } else {
                    self.driver.kill(&c)?;
                    self.event(Action::Crash, &c);
                    self.say(&format!("c{}", Self::short(&c)));
                    self.down.insert(c.clone(), Instant::now());
                    let d = match c {
                        Component::Sink => self.uniform(self.timings.sink_down_max),
                        Component::Worker(_) => self.uniform(self.timings.worker_down_max),
                        Component::Sender(_) => secs(0.1),
                    };
                    self.schedule(d, Due::Restart(c));
                }
            }
            Due::Restart(c) => {
                self.start(&c, false)?;
                self.event(Action::Restart, &c);
                self.say(&format!("r{}", Self::short(&c)));
                self.down.remove(&c);
                if !matches!(c, Component::Sender(_)) {
                    let deadline = Instant::now() + secs(self.timings.readiness_timeout);
                    self.must_be_ready.push((c.clone(), deadline));
                }
                self.schedule_next_crash(c);
            }
            Due::Resume(c) => {
                self.driver.resume(&c)?;
                self.event(Action::Resume, &c);
                self.say(&format!("u{}", Self::short(&c)));
                self.down.remove(&c);
                self.schedule_next_crash(c);
            }
            Due::GrowShrink => {
                let every = self.timings.grow_shrink_every;
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
                        self.shrink(n)?;
                    }
                }
                self.schedule(secs(every), Due::GrowShrink);
            }
            Due::Scripted(step) => {
                let Some(c) = parse_component(&step.component) else {
                    return Ok(());
                };
                match step.action {
                    Action::Crash => {
                        self.driver.kill(&c)?;
                        self.event(Action::Crash, &c);
                        self.say(&format!("c{}", Self::short(&c)));
                    }
                    Action::Restart => {
                        self.start(&c, false)?;
                        self.event(Action::Restart, &c);
                        self.say(&format!("r{}", Self::short(&c)));
                    }
                    Action::Pause => {
                        self.driver.pause(&c)?;
                        self.event(Action::Pause, &c);
                    }
                    Action::Resume => {
                        self.driver.resume(&c)?;
                        self.event(Action::Resume, &c);
                    }
                    Action::Grow => {
                        if let Component::Worker(n) = c {
                            self.grow(n)?;
                        }
                    }
                    Action::Shrink => {
                        if let Component::Worker(n) = c {
                            self.shrink(n)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// After a restart or resume, when this component's loop strikes next.
    fn schedule_next_crash(&mut self, c: Component) {
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
        if self.plan.replay.is_some() {
            return;
        }
        let next = match (&c, pace) {
            (Component::Sink, _) if self.plan.scenario.crash_sink => {
                let t = &self.timings;
                let (min, spread) = (t.sink_up_min, t.sink_up_max - t.sink_up_min);
                Some(secs(min) + self.uniform(spread))
            }
            (Component::Worker(_), Some(Pace::Fast)) => {
                Some(self.uniform(self.timings.worker_up_max))
            }
            (Component::Worker(_), Some(Pace::Slow)) => {
                Some(secs(self.timings.slow_every) + self.uniform(self.timings.worker_up_max))
            }
            // Senders: the source loop picks its next victim itself.
            _ => None,
        };
        if let Some(d) = next {
            self.schedule(d, Due::Crash(c));
        }
    }

    fn grow(&mut self, n: usize) -> Result<(), RunError> {
        let c = Component::Worker(n);
        self.start(&c, true)?;
        self.members.push(n);
        self.event(Action::Grow, &c);
        self.say(&format!("Join {n}."));
        self.must_be_ready
            .push((c, Instant::now() + secs(self.timings.readiness_timeout)));
        Ok(())
    }

    fn shrink(&mut self, n: usize) -> Result<(), RunError> {
        let c = Component::Worker(n);
        let request = ShrinkRequest {
            node_names: vec![worker_name(n)],
            ..Default::default()
        };
        let addr = initializer_external(&self.plan.preset.ports);
        let answer = (|| -> Result<Vec<u8>, crate::wire::WireError> {
            let mut s = std::net::TcpStream::connect(&addr)?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            crate::wire::external::write_message(
                &mut s,
                crate::wire::external::SHRINK_REQUEST,
                &serde_json::to_vec(&request).expect("serializes"),
            )?;
            Ok(crate::wire::external::read_message(&mut s)?.1)
        })();
        match answer {
            Ok(text) if text.starts_with(b"Shrinking") => {
                self.members.retain(|&m| m != n);
                self.event(Action::Shrink, &c);
                self.say(&format!("Shrink {n}"));
                // The worker exits by itself; reap it.
                let deadline = Instant::now() + Duration::from_secs(10);
                while self.driver.exited(&c).is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            // Busy (or the worker is down): try again on a later tick.
            _ => {}
        }
        Ok(())
    }
}

/// Runs the scenario; returns the summary (the binary maps it to an exit status).
pub fn run(
    plan: &RunPlan,
    driver: &mut dyn ProcessDriver,
    out: &mut dyn Write,
) -> Result<RunSummary, RunError> {
    let p = &plan.preset;
    let run_dir = &p.run_dir;
    std::fs::create_dir_all(run_dir)
        .map_err(|e| RunError::Setup(format!("{}: {e}", run_dir.display())))?;
    if !plan.scenario.reset_only {
        refuse_live_run(run_dir)?;
    }
    for line in reset(run_dir) {
        let _ = writeln!(out, "reset: {line}");
    }
    if plan.scenario.reset_only {
        return Ok(RunSummary {
            seed: plan.seed,
            verdict: "reset",
            duration_s: 0.0,
            faults: BTreeMap::new(),
            fault_count: 0,
            commits: 0,
            bytes_verified: 0,
            findings: vec![],
            frozen: false,
            stopped_by_signal: false,
            postmortem: None,
            run_dir: run_dir.display().to_string(),
        });
    }
    if plan.scenario.clean_old_gzip {
        for c in (0..10)
            .map(|n| p.log_path(&Component::Worker(n)))
            .chain(p.keys.iter().map(|k| p.log_path(&Component::Sender(*k))))
        {
            prune_rotated(&c);
        }
    }
    require_free_ports(p)?;
    let sink_dir = run_dir.join("sink-out");
    std::fs::create_dir_all(&sink_dir)
        .map_err(|e| RunError::Setup(format!("{}: {e}", sink_dir.display())))?;
    if p.kind == PresetKind::Demo {
        let keys: Vec<u8> = p.keys.iter().map(|&k| k as u8).collect();
        crate::gen::inputs::generate_inputs(
            &keys,
            plan.bytes_per_key,
            run_dir,
            &crate::gen::inputs::DataSource::Seeded(plan.seed),
        )
        .map_err(|e| RunError::Setup(e.to_string()))?;
    }
    let events_path = run_dir.join("events.jsonl");
    let replay: Vec<Step> = match &plan.replay {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| RunError::Setup(format!("{}: {e}", path.display())))?;
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    serde_json::from_str(l)
                        .map_err(|e| RunError::Setup(format!("{}: {e}", path.display())))
                })
                .collect::<Result<_, _>>()?
        }
        None => Vec::new(),
    };
    let events = std::fs::File::create(&events_path)
        .map_err(|e| RunError::Setup(format!("{}: {e}", events_path.display())))?;
    let _ = writeln!(out, "Start time: {}", unix_ms());
    let _ = writeln!(
        out,
        "soakcheck run: seed {} (repeat with --seed {} or --replay {})",
        plan.seed,
        plan.seed,
        events_path.display()
    );
    let mut sup = Supervisor {
        plan,
        driver,
        rng: Rng::new(plan.seed),
        timings: plan.scenario.timings_scaled(plan.time_scale),
        started: Instant::now(),
        timers: Vec::new(),
        events,
        faults: BTreeMap::new(),
        fault_count: 0,
        record: Vec::new(),
        out,
        members: (0..plan.scenario.workers).collect(),
        down: BTreeMap::new(),
        must_be_ready: Vec::new(),
        last_fault: None,
        sender_exits: BTreeMap::new(),
    };
    if let Some(start_time) = proc_start_time(std::process::id()) {
        sup.record.push(Started {
            component: SUPERVISOR.to_string(),
            pid: std::process::id(),
            start_time,
        });
        sup.write_record();
    }
    // Start the sink, the cluster, and when it is ready the senders.
    sup.start(&Component::Sink, false)?;
    for n in 0..plan.scenario.workers {
        sup.start(&Component::Worker(n), false)?;
    }
    let deadline = Instant::now() + secs(sup.timings.readiness_timeout.max(15.0));
    while !sup.cluster_ready(Duration::from_millis(500)) {
        if let Some(e) = sup.setup_failure() {
            stop_all(&mut sup);
            return Err(e);
        }
        if Instant::now() > deadline {
            stop_all(&mut sup);
            return Err(RunError::Setup(format!(
                "the cluster was not ready within 15 s; logs are in {}",
                run_dir.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for k in p.keys.clone() {
        sup.start(&Component::Sender(k), false)?;
    }
    sup.started = Instant::now();
    // The chaos schedule.
    let t = sup.timings.clone();
    if replay.is_empty() {
        if plan.scenario.crash_sink {
            let d = secs(t.start_delay);
            sup.schedule(d, Due::Crash(Component::Sink));
        }
        for (n, pace) in plan.scenario.crash_workers.clone() {
            let extra = if pace == Pace::Slow {
                secs(t.slow_every)
            } else {
                Duration::ZERO
            };
            let d = secs(t.start_delay) + extra + sup.uniform(t.worker_up_max);
            sup.schedule(d, Due::Crash(Component::Worker(n)));
        }
        if plan.scenario.grow || plan.scenario.shrink {
            sup.schedule(secs(t.start_delay), Due::GrowShrink);
        }
        for step in plan.scenario.steps.clone() {
            sup.schedule(secs(step.at), Due::Scripted(step));
        }
    } else {
        for step in replay {
            if step.action != Action::Restart || !step.component.starts_with("sender-") {
                sup.schedule(secs(step.at), Due::Scripted(step));
            }
        }
    }
    let mut next_source_crash = if plan.scenario.crash_source && plan.replay.is_none() {
        Some(Instant::now() + secs(t.start_delay) + sup.uniform(t.source_up_max))
    } else {
        None
    };
    // The checks of watch, in-process.
    let watch_plan = WatchPlan {
        verify: VerifyPlan {
            sink_dir: Some(run_dir.join("sink-out")),
            plain_outputs: vec![],
            inputs: p
                .keys
                .iter()
                .map(|&k| KeyInput {
                    key: k as u8,
                    path: p.input_path(k),
                })
                .collect(),
            expect_complete: false,
            semantics: Semantics::ExactlyOnce,
            io: IoMode::Mmap,
        },
        sender_logs: p
            .keys
            .iter()
            .map(|&k| (k as u8, p.log_path(&Component::Sender(k))))
            .collect(),
        sink_log: Some(p.log_path(&Component::Sink)),
        ack_timeout: plan.ack_timeout,
        registry_window: 20,
        until: Until::Eof,
        timeout: None,
        events: None,
        on_violation: None,
        poll: None,
        progress: if plan.progress == ProgressStyle::Terse {
            ProgressStyle::Terse
        } else {
            ProgressStyle::Quiet
        },
        checks: plan.scenario.checks,
    };
    let inputs = open_inputs(&watch_plan.verify)?;
    let mut watcher = Watcher::new(&watch_plan, &inputs)?;
    let mut outcome = StepOutcome::Running;
    let mut stopped_by_signal = false;
    let mut next_status = Instant::now();
    let mut extra_findings: Vec<Finding> = Vec::new();
    loop {
        if SIGNALS.load(Ordering::SeqCst) > 0 {
            stopped_by_signal = true;
            break;
        }
        if let Some(e) = sup.setup_failure() {
            stop_all(&mut sup);
            return Err(e);
        }
        let now = Instant::now();
        // Due timers, earliest first.
        sup.timers.sort_by_key(|(at, _)| *at);
        while sup.timers.first().is_some_and(|(at, _)| *at <= now) {
            let (_, due) = sup.timers.remove(0);
            let pauses = plan.scenario.pauses;
            sup.fault(due, pauses)?;
        }
        if let Some(at) = next_source_crash {
            if now >= at {
                let live: Vec<char> = p
                    .keys
                    .iter()
                    .copied()
                    .filter(|k| sup.driver.is_alive(&Component::Sender(*k)))
                    .collect();
                if !live.is_empty() {
                    let k = live[sup.rng.range(0, live.len() as u64 - 1) as usize];
                    let c = Component::Sender(k);
                    sup.driver.kill(&c)?;
                    sup.event(Action::Crash, &c);
                    sup.say("cs");
                }
                next_source_crash =
                    Some(now + sup.uniform(t.source_up_max).max(Duration::from_millis(100)));
            }
        }
        // Senders that exit before their EOF come back 0.1 s later, as the original loop.
        for k in p.keys.clone() {
            let c = Component::Sender(k);
            if let Some(code) = sup.driver.exited(&c) {
                if code != 0 {
                    sup.sender_exits.insert(k, now + Duration::from_millis(100));
                }
            }
            if !sup.driver.is_alive(&c) {
                if let Some(at) = sup.sender_exits.get(&k).copied() {
                    if now >= at {
                        sup.sender_exits.remove(&k);
                        sup.start(&c, false)?;
                    }
                } else if !sup.down.contains_key(&c) {
                    // Killed by the source loop: restart after 0.1 s.
                    sup.sender_exits.insert(k, now + Duration::from_millis(100));
                }
            }
        }
        // A restarted component must become ready in time (its probe, or the cluster's).
        if !sup.must_be_ready.is_empty() {
            let pending = std::mem::take(&mut sup.must_be_ready);
            for (c, deadline) in pending {
                if !sup.component_ready(&c) {
                    sup.must_be_ready.push((c, deadline));
                }
            }
        }
        if let Some((c, _)) = sup.must_be_ready.iter().find(|(_, at)| now > *at).cloned() {
            extra_findings.push(Finding {
                kind: FindingKind::Stalled,
                key: None,
                detail: format!(
                    "{} was not ready {:.0} s after it was restarted",
                    c.name(),
                    sup.timings.readiness_timeout
                ),
                elapsed_s: sup.started.elapsed().as_secs_f64(),
            });
            outcome = StepOutcome::Found;
            break;
        }
        // Progress checks do not judge right after a fault.
        if sup
            .last_fault
            .is_some_and(|f| now.duration_since(f) < secs(sup.timings.recovery_window))
        {
            watcher.reset_progress_clocks();
        }
        let mut progress = Vec::new();
        outcome = watcher.step(&mut progress)?;
        if !progress.is_empty() {
            let _ = sup.out.write_all(&progress);
            let _ = sup.out.flush();
        }
        if plan.progress == ProgressStyle::StatusLine && now >= next_status {
            let line = format!(
                "\r\x1b[2K{:.0}s faults {} | {}",
                sup.started.elapsed().as_secs_f64(),
                sup.fault_count,
                watcher.status_line(now)
            );
            let _ = sup.out.write_all(line.as_bytes());
            let _ = sup.out.flush();
            next_status = now + Duration::from_millis(250);
        }
        match outcome {
            StepOutcome::Running => {}
            StepOutcome::Succeeded => break,
            StepOutcome::Found if plan.on_violation == OnViolation::Continue => {
                // Keep running; the findings stay and make the verdict.
            }
            StepOutcome::Found => break,
        }
        if plan.duration.is_some_and(|d| sup.started.elapsed() >= d) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut frozen = false;
    let mut postmortem = None;
    let has_findings = !watcher.findings().is_empty() || !extra_findings.is_empty();
    if has_findings && plan.on_violation == OnViolation::Freeze && !stopped_by_signal {
        // Pause the world, as near the detection as possible: every component at once.
        let comps: Vec<Component> = sup.driver.pids().into_iter().map(|(c, _)| c).collect();
        for c in &comps {
            let _ = sup.driver.pause(c);
        }
        frozen = true;
        // First the fact and its time, before the (slower) post-mortem bundle.
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let _ = writeln!(
            sup.out,
            "\nFROZEN at {now_s:.3}: every process of the system under test is stopped (SIGSTOP)."
        );
        let _ = sup.out.flush();
        let pids = sup.driver.pids();
        let mut text = String::new();
        for f in watcher.findings().iter().chain(&extra_findings) {
            let kind = serde_json::to_value(f.kind).expect("serializes");
            text += &format!("  finding: {}: {}\n", kind.as_str().unwrap_or(""), f.detail);
        }
        for (c, pid) in &pids {
            text += &format!(
                "  {:<12} pid {pid}   inspect: gdb -p {pid}   resume: kill -CONT -{pid}\n",
                c.name()
            );
        }
        text += &format!(
            "  files: {0}/sink-out, {0}/wallaroo.N, {0}/sender.out.K, {0}/events.jsonl\n",
            run_dir.display()
        );
        let bundle = run_dir.join(format!("postmortem-{}.tar.gz", unix_ms() / 1000));
        match write_postmortem(&bundle, run_dir, &p.keys) {
            Ok(()) => {
                text += &format!("  post-mortem bundle: {} (tar xzf it and run soakcheck verify --sink-dir sink-out --input-dir .)\n", bundle.display());
                postmortem = Some(bundle.display().to_string());
            }
            Err(e) => text += &format!("  post-mortem bundle {} failed: {e}\n", bundle.display()),
        }
        text += "  press Ctrl-C (or send SIGTERM) to kill everything and exit.\n";
        let _ = sup.out.write_all(text.as_bytes());
        let _ = sup.out.flush();
        while SIGNALS.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let duration = sup.started.elapsed().as_secs_f64();
    let _ = writeln!(
        sup.out,
        "\nEnd time: {}\nDuration: {}",
        unix_ms(),
        (duration * 1000.0) as u64
    );
    stop_all(&mut sup);
    let summary_faults = sup.faults.clone();
    let fault_count = sup.fault_count;
    let commits = watcher.core.log.commits.len() as u64;
    let bytes_verified = watcher
        .core
        .checker
        .cursors()
        .iter()
        .map(|c| c.verified_bytes())
        .sum();
    let succeeded = outcome == StepOutcome::Succeeded
        || (plan.duration.is_some() && !has_findings && !stopped_by_signal);
    let mut findings = watcher.finish().findings;
    findings.extend(extra_findings);
    let verdict = if !findings.is_empty() {
        "violation"
    } else if stopped_by_signal {
        "stopped"
    } else if succeeded {
        "ok"
    } else {
        "stopped"
    };
    Ok(RunSummary {
        seed: plan.seed,
        verdict,
        duration_s: duration,
        faults: summary_faults,
        fault_count,
        commits,
        bytes_verified,
        findings,
        frozen,
        stopped_by_signal: stopped_by_signal && !frozen,
        postmortem,
        run_dir: run_dir.display().to_string(),
    })
}

/// Stops every component: SIGCONT (if frozen), SIGTERM, a grace period, SIGKILL; a second
/// Ctrl-C cuts the grace period short.
fn stop_all(sup: &mut Supervisor<'_>) {
    let mut comps: Vec<Component> = sup.driver.pids().into_iter().map(|(c, _)| c).collect();
    // Senders first, then workers, then the sink (the reverse of the start order).
    comps.sort_by_key(|c| match c {
        Component::Sender(_) => 0,
        Component::Worker(_) => 1,
        Component::Sink => 2,
    });
    for c in comps {
        // Re-read per component: a second Ctrl-C during the stop kills the rest at once.
        let grace = if SIGNALS.load(Ordering::SeqCst) > 1 {
            Duration::ZERO
        } else {
            Duration::from_secs(2)
        };
        sup.driver.stop(&c, grace);
    }
}

/// `postmortem-<time>.tar.gz`: the sink directory, txnlogs, logs, events and inputs, so
/// `soakcheck verify` can be rerun elsewhere.
fn write_postmortem(bundle: &Path, run_dir: &Path, keys: &[char]) -> std::io::Result<()> {
    let file = std::fs::File::create(bundle)?;
    let enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(enc);
    tar.append_dir_all("sink-out", run_dir.join("sink-out"))?;
    for entry in std::fs::read_dir(run_dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted = name.starts_with("wallaroo.")
            || name.starts_with("sender.out.")
            || name == "events.jsonl";
        if wanted && entry.path().is_file() {
            tar.append_path_with_name(entry.path(), &name)?;
        }
    }
    for k in keys {
        let name = format!("input-file.{k}.txt");
        if run_dir.join(&name).exists() {
            tar.append_path_with_name(run_dir.join(&name), &name)?;
        }
    }
    tar.into_inner()?.finish()?;
    Ok(())
}
