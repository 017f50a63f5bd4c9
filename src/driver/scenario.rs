//! What a run does: the original master-crasher's arguments, or a TOML scenario file that
//! can say all of that and more (timings, command templates, scripted steps).
//!
//! Original arguments: `crash-sink`, `crash-source`, `crashN` and `crashN.slow` (N = 0 is
//! the initializer), `grow`, `shrink`, `grow-and-shrink`, `no-ack-progress`,
//! `no-registry-progress`, `no-sanity`, `no-clean-old-gzip-files`, `reset-only`, and
//! `run_customX` for scripted scenarios (`run_custom1`: shrink worker2, then join it
//! again; `run_custom5`: shrink 2, shrink 1, join 1, join 2, twice; others come from the
//! scenario file's `[custom.NAME]` steps). Soakcheck adds `pause`, which turns some
//! crashes into SIGSTOP/SIGCONT pauses.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::command::CommandTemplates;
use super::hosts::{DriverConfig, Hosts};
use super::Component;
use crate::duration::secs;
use crate::rundir::step::{link_client, Act, Action, Step};
use crate::watch::Checks;

/// How often a worker crash loop crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pace {
    /// Every U(0,4) s, down for U(0,4) s.
    Fast,
    /// About 120 s apart.
    Slow,
}

/// The original's default timings (seconds), all scaled by `--time-scale`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timings {
    /// Crash loops start after this (checkpoint 1 must complete first).
    pub start_delay: f64,
    pub worker_up_max: f64,
    pub worker_down_max: f64,
    pub slow_every: f64,
    pub sink_down_max: f64,
    pub sink_up_min: f64,
    pub sink_up_max: f64,
    pub source_up_max: f64,
    pub grow_shrink_every: f64,
    pub pause_max: f64,
    /// A component not ready this long after a restart is judged: a finding when it shows
    /// no progress (see [`super::readiness`]), else it is given as long again.
    pub readiness_timeout: f64,
    /// A component still not ready this long after a restart is a finding, progress or
    /// not.
    pub readiness_limit: f64,
    /// Progress checks do not judge this long after a fault.
    pub recovery_window: f64,
    /// A network loop's link is up for U(0, net_up_max) between faults.
    pub net_up_max: f64,
    /// A network fault lasts U(0, net_down_max) before its heal.
    pub net_down_max: f64,
    /// A clock loop's component keeps true time for U(0, clock_up_max) between faults.
    pub clock_up_max: f64,
    /// A clock fault lasts U(0.1, clock_down_max) before its heal.
    pub clock_down_max: f64,
    /// A clock loop's steps are U(0.1, clock_step_max) seconds, back or forward (a
    /// size, not a wait: `--time-scale` leaves it).
    pub clock_step_max: f64,
    /// A power loop's component runs U(power_up_min, power_up_max) between power cuts.
    pub power_up_min: f64,
    pub power_up_max: f64,
    /// After a power cut a component is down U(0, power_down_max) before its restart.
    pub power_down_max: f64,
    /// A disk loop's component has no disk error for U(0, disk_up_max) between faults.
    pub disk_up_max: f64,
    /// A disk error lasts U(0.1, disk_down_max) before its heal.
    pub disk_down_max: f64,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            start_delay: 3.0,
            worker_up_max: 4.0,
            worker_down_max: 4.0,
            slow_every: 120.0,
            sink_down_max: 2.0,
            sink_up_min: 10.0,
            sink_up_max: 25.0,
            source_up_max: 4.0,
            grow_shrink_every: 1.0,
            pause_max: 2.0,
            readiness_timeout: 15.0,
            readiness_limit: 300.0,
            recovery_window: 5.0,
            net_up_max: 8.0,
            net_down_max: 3.0,
            clock_up_max: 8.0,
            clock_down_max: 4.0,
            clock_step_max: 300.0,
            power_up_min: 5.0,
            power_up_max: 20.0,
            power_down_max: 2.0,
            disk_up_max: 10.0,
            disk_down_max: 3.0,
        }
    }
}

impl Timings {
    /// Every timing by its name in `[timings]`.
    fn fields(&self) -> [(&'static str, f64); 23] {
        [
            ("start_delay", self.start_delay),
            ("worker_up_max", self.worker_up_max),
            ("worker_down_max", self.worker_down_max),
            ("slow_every", self.slow_every),
            ("sink_down_max", self.sink_down_max),
            ("sink_up_min", self.sink_up_min),
            ("sink_up_max", self.sink_up_max),
            ("source_up_max", self.source_up_max),
            ("grow_shrink_every", self.grow_shrink_every),
            ("pause_max", self.pause_max),
            ("readiness_timeout", self.readiness_timeout),
            ("readiness_limit", self.readiness_limit),
            ("recovery_window", self.recovery_window),
            ("net_up_max", self.net_up_max),
            ("net_down_max", self.net_down_max),
            ("clock_up_max", self.clock_up_max),
            ("clock_down_max", self.clock_down_max),
            ("clock_step_max", self.clock_step_max),
            ("power_up_min", self.power_up_min),
            ("power_up_max", self.power_up_max),
            ("power_down_max", self.power_down_max),
            ("disk_up_max", self.disk_up_max),
            ("disk_down_max", self.disk_down_max),
        ]
    }

    /// Every timing is seconds from 0 to 100 years, and `sink_up_min` is at most
    /// `sink_up_max`; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        for (name, value) in self.fields() {
            crate::duration::check_seconds(&format!("timings.{name}"), value)?;
        }
        for (min, max, a, b) in [
            (
                "sink_up_min",
                "sink_up_max",
                self.sink_up_min,
                self.sink_up_max,
            ),
            (
                "power_up_min",
                "power_up_max",
                self.power_up_min,
                self.power_up_max,
            ),
        ] {
            if a > b {
                return Err(format!("timings.{min} = {a} is above timings.{max} = {b}"));
            }
        }
        Ok(())
    }

    pub fn scaled(&self, f: f64) -> Timings {
        Timings {
            start_delay: self.start_delay * f,
            worker_up_max: self.worker_up_max * f,
            worker_down_max: self.worker_down_max * f,
            slow_every: self.slow_every * f,
            sink_down_max: self.sink_down_max * f,
            sink_up_min: self.sink_up_min * f,
            sink_up_max: self.sink_up_max * f,
            source_up_max: self.source_up_max * f,
            grow_shrink_every: self.grow_shrink_every * f,
            pause_max: self.pause_max * f,
            readiness_timeout: self.readiness_timeout,
            readiness_limit: self.readiness_limit,
            recovery_window: self.recovery_window * f,
            net_up_max: self.net_up_max * f,
            net_down_max: self.net_down_max * f,
            clock_up_max: self.clock_up_max * f,
            clock_down_max: self.clock_down_max * f,
            clock_step_max: self.clock_step_max,
            power_up_min: self.power_up_min * f,
            power_up_max: self.power_up_max * f,
            power_down_max: self.power_down_max * f,
            disk_up_max: self.disk_up_max * f,
            disk_down_max: self.disk_down_max * f,
        }
    }
}

/// Which links a network loop strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetScope {
    /// `net-sink`: every worker's link to the sink.
    Sink,
    /// `net-source`: every sender's link to its worker.
    Source,
    /// `net-control`: every worker's link to the initializer's control channel.
    Control,
}

impl NetScope {
    pub fn covers(self, link: &str) -> bool {
        match self {
            NetScope::Sink => link.ends_with("->sink"),
            NetScope::Source => link.starts_with("sender-"),
            // The wallaroo preset's senders also connect to the initializer.
            NetScope::Control => link.ends_with("->initializer") && !link.starts_with("sender-"),
        }
    }

    /// The character after `n`/`h` off a terminal: `S` for a sink link, `N` for worker
    /// N's control link, `sK` for sender K's (`s*` for the wallaroo preset's one link of
    /// every sender).
    pub fn mark(link: &str) -> String {
        let client = link_client(link);
        if link.ends_with("->sink") {
            "S".into()
        } else if let Some(k) = client.strip_prefix("sender-") {
            // `s` first, as in `csA`: a key may be a digit, or `S`.
            format!("s{k}")
        } else {
            crate::topology::worker_number(client).map_or("?".into(), |n| n.to_string())
        }
    }
}

/// How readiness of a component is probed (after its restart, and before a crash loop
/// strikes), each with a timeout in seconds.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Probe {
    /// poll-all-ready over the external channel (the default for workers).
    ClusterStatus {
        #[serde(default = "default_probe_timeout")]
        timeout: f64,
    },
    /// A TCP connect to `address`.
    Tcp {
        address: String,
        #[serde(default = "default_probe_timeout")]
        timeout: f64,
    },
    /// `sh -c command` exits 0.
    Command {
        command: String,
        #[serde(default = "default_probe_timeout")]
        timeout: f64,
    },
}

fn default_probe_timeout() -> f64 {
    2.0
}

impl Probe {
    /// Its timeout in seconds.
    pub fn timeout(&self) -> f64 {
        match self {
            Probe::ClusterStatus { timeout }
            | Probe::Tcp { timeout, .. }
            | Probe::Command { timeout, .. } => *timeout,
        }
    }

    /// Runs the probe once; `cluster_ready` answers the cluster-status kind.
    pub fn ready(&self, cluster_ready: &dyn Fn(Duration) -> bool) -> bool {
        match self {
            Probe::ClusterStatus { timeout } => cluster_ready(secs(*timeout)),
            Probe::Tcp { address, timeout } => address
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| std::net::TcpStream::connect_timeout(&a, secs(*timeout)).is_ok()),
            Probe::Command { command, timeout } => {
                let Ok(mut child) = std::process::Command::new("sh")
                    .args(["-c", command])
                    .spawn()
                else {
                    return false;
                };
                let deadline = std::time::Instant::now() + secs(*timeout);
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => return status.success(),
                        Ok(None) if std::time::Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return false;
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub workers: usize,
    pub crash_sink: bool,
    pub crash_source: bool,
    pub crash_workers: Vec<(usize, Pace)>,
    pub grow: bool,
    pub shrink: bool,
    pub pauses: bool,
    pub checks: Checks,
    pub reset_only: bool,
    pub timings: Timings,
    pub steps: Vec<Step>,
    pub commands: Option<CommandTemplates>,
    /// `[driver]`: how components are started (local, ssh or command templates).
    pub driver: DriverConfig,
    /// `[hosts]`: which host each component runs on.
    pub hosts: Hosts,
    pub seed: Option<u64>,
    /// Readiness probes by component name (`sink`, `workerN`, ...); workers default to
    /// cluster-status.
    pub probes: BTreeMap<String, Probe>,
    /// Network fault loops (`net-sink`, `net-source`, `net-control`).
    pub net: Vec<NetScope>,
    /// Clock fault loops (`clock-sink`, `clockN`), by component.
    pub clocks: Vec<Component>,
    /// Power-loss loops (`power-sink`, `powerN`), by component.
    pub powers: Vec<Component>,
    /// `power-all`: the whole cluster's power cut at once, in a loop.
    pub power_all: bool,
    /// Disk-error loops (`disk-sink`, `diskN`), by component.
    pub disks: Vec<Component>,
    /// `[network]`.
    pub network: NetworkConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("NUM_WORKERS must be between 1 and 9, not {0:?}")]
    Workers(String),
    #[error(
        "the number of workers comes first, then the arguments: `soakcheck run {number} {}`",
        .args.join(" ")
    )]
    WorkersNotFirst { number: String, args: Vec<String> },
    #[error("unknown argument {0:?}: expected crash-sink, crash-source, crashN, crashN.slow, grow, shrink, grow-and-shrink, pause, net-sink, net-source, net-control, clock-sink, clockN, power-sink, powerN, power-all, disk-sink, diskN, no-ack-progress, no-registry-progress, no-sanity, no-clean-old-gzip-files, reset-only or run_customX")]
    Argument(String),
    #[error("crash{0}: there is no worker {0} in a cluster of {1}")]
    NoSuchWorker(usize, usize),
    #[error("{0}: there is no worker {1} in a cluster of {2}")]
    NoSuchWorkerFor(String, usize, usize),
    #[error("{path}: {detail}")]
    File { path: String, detail: String },
    #[error("{0}: no such custom scenario (built in: run_custom1, run_custom5; others need a [custom.NAME] table in --scenario)")]
    Custom(String),
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    workers: Option<usize>,
    #[serde(default)]
    args: Vec<String>,
    seed: Option<u64>,
    #[serde(default)]
    timings: Option<Timings>,
    commands: Option<CommandTemplates>,
    #[serde(default)]
    driver: DriverConfig,
    #[serde(default)]
    hosts: Hosts,
    #[serde(default)]
    steps: Vec<Step>,
    #[serde(default)]
    custom: BTreeMap<String, Vec<Step>>,
    #[serde(default)]
    probes: BTreeMap<String, Probe>,
    #[serde(default)]
    network: NetworkConfig,
}

/// `[network]`: where the fault proxy is reached from the other hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// An address of this (the control) machine that every host reaches; the proxy
    /// listens there. Not needed when every host is a loopback address.
    pub proxy_host: Option<String>,
}

fn built_in_custom(name: &str) -> Option<Vec<Step>> {
    match name {
        "run_custom1" => Some(vec![
            Step::on(2.0, Act::Shrink, "worker2"),
            Step::on(4.0, Act::Grow, "worker2"),
        ]),
        "run_custom5" => {
            let mut steps = Vec::new();
            let mut at = 2.0;
            for _ in 0..2 {
                for (act, w) in [
                    (Act::Shrink as fn(_) -> _, "worker2"),
                    (Act::Shrink, "worker1"),
                    (Act::Grow, "worker1"),
                    (Act::Grow, "worker2"),
                ] {
                    steps.push(Step::on(at, act, w));
                    at += 2.5;
                }
            }
            Some(steps)
        }
        _ => None,
    }
}

/// Why NUM_WORKERS is not a number: the number given after the arguments, or none.
fn workers_misplaced(num_workers: &str, args: &[String]) -> ScenarioError {
    let Some(at) = args.iter().position(|a| a.parse::<usize>().is_ok()) else {
        return ScenarioError::Workers(num_workers.into());
    };
    let mut rest = vec![num_workers.to_string()];
    rest.extend(
        args.iter()
            .enumerate()
            .filter(|&(i, _)| i != at)
            .map(|(_, a)| a.clone()),
    );
    ScenarioError::WorkersNotFirst {
        number: args[at].clone(),
        args: rest,
    }
}

impl Scenario {
    /// Parses `NUM_WORKERS [ARGS...]`, then applies an optional scenario file.
    pub fn parse(
        num_workers: &str,
        args: &[String],
        file: Option<&Path>,
    ) -> Result<Scenario, ScenarioError> {
        let parsed_file = match file {
            Some(path) => read_file(path)?,
            None => ScenarioFile::default(),
        };
        let workers = match parsed_file.workers {
            Some(w) if num_workers.is_empty() => w,
            _ => num_workers
                .parse()
                .map_err(|_| workers_misplaced(num_workers, args))?,
        };
        if !(1..=9).contains(&workers) {
            return Err(ScenarioError::Workers(workers.to_string()));
        }
        let mut s = Scenario {
            workers,
            crash_sink: false,
            crash_source: false,
            crash_workers: Vec::new(),
            grow: false,
            shrink: false,
            pauses: false,
            checks: Checks::default(),
            reset_only: false,
            timings: parsed_file.timings.unwrap_or_default(),
            steps: parsed_file.steps,
            commands: parsed_file.commands.or(parsed_file.driver.commands.clone()),
            driver: parsed_file.driver,
            hosts: parsed_file.hosts,
            seed: parsed_file.seed,
            probes: parsed_file.probes,
            net: Vec::new(),
            clocks: Vec::new(),
            powers: Vec::new(),
            power_all: false,
            disks: Vec::new(),
            network: parsed_file.network,
        };
        for arg in parsed_file.args.iter().chain(args) {
            s.apply_argument(arg, &parsed_file.custom)?;
        }
        let place = file.map_or_else(|| "scenario".to_string(), |p| p.display().to_string());
        s.check(&place)?;
        Ok(s)
    }

    /// One argument in the original's style (`crash-sink`, `crash1.slow`, `net-sink`,
    /// `run_custom5`, ...).
    fn apply_argument(
        &mut self,
        arg: &str,
        custom: &BTreeMap<String, Vec<Step>>,
    ) -> Result<(), ScenarioError> {
        match arg {
            "crash-sink" => self.crash_sink = true,
            "crash-source" => self.crash_source = true,
            "grow" => self.grow = true,
            "shrink" => self.shrink = true,
            "grow-and-shrink" => (self.grow, self.shrink) = (true, true),
            "pause" => self.pauses = true,
            "no-ack-progress" => self.checks.ack_progress = false,
            "no-registry-progress" => self.checks.registry_progress = false,
            "no-sanity" => self.checks.sanity = false,
            // Rotated logs now go with their run into its kept folder (none is
            // deleted), so there is nothing left for this switch to keep.
            "no-clean-old-gzip-files" => {}
            "reset-only" => self.reset_only = true,
            "net-sink" => self.net.push(NetScope::Sink),
            "net-source" => self.net.push(NetScope::Source),
            "net-control" => self.net.push(NetScope::Control),
            "clock-sink" => self.clocks.push(Component::Sink),
            "power-sink" => self.powers.push(Component::Sink),
            "power-all" => self.power_all = true,
            "disk-sink" => self.disks.push(Component::Sink),
            name if name.starts_with("run_custom") => {
                let steps = custom
                    .get(name)
                    .cloned()
                    .or_else(|| built_in_custom(name))
                    .ok_or_else(|| ScenarioError::Custom(name.into()))?;
                self.steps.extend(steps);
            }
            other if other.starts_with("power") => {
                let n = parse_worker(other, "power", self.workers)?;
                self.powers.push(Component::Worker(n));
            }
            other if other.starts_with("disk") => {
                let n = parse_worker(other, "disk", self.workers)?;
                self.disks.push(Component::Worker(n));
            }
            other if other.starts_with("clock") => {
                let n = parse_worker(other, "clock", self.workers)?;
                self.clocks.push(Component::Worker(n));
            }
            other => {
                let crash = parse_crash(other, self.workers)?;
                self.crash_workers.push(crash);
            }
        }
        Ok(())
    }

    /// Probes name components the run has, timings and steps can take effect (see
    /// [`Scenario::check_step`]); `place` is the scenario file, for the message.
    fn check(&mut self, place: &str) -> Result<(), ScenarioError> {
        for name in self.probes.keys() {
            if Component::parse(name).is_none() {
                return Err(ScenarioError::File {
                    path: "scenario".into(),
                    detail: format!("probe for unknown component {name:?}"),
                });
            }
        }
        let invalid = |detail: String| ScenarioError::File {
            path: place.to_string(),
            detail,
        };
        self.timings.check().map_err(invalid)?;
        for (name, probe) in &self.probes {
            crate::duration::check_seconds(&format!("probes.{name}.timeout"), probe.timeout())
                .map_err(invalid)?;
        }
        for (i, step) in self.steps.iter_mut().enumerate() {
            name_step_component(step).map_err(|why| {
                invalid(format!("steps[{i}] ({}): {why}", step.action().as_str()))
            })?;
        }
        for (i, step) in self.steps.iter().enumerate() {
            self.check_step(step).map_err(|why| {
                invalid(format!(
                    "steps[{i}] ({} at {}): {why}",
                    step.action().as_str(),
                    crate::duration::show_number(step.at)
                ))
            })?;
        }
        Ok(())
    }

    /// A step that can take effect as asked: its times are seconds within bounds, its
    /// network fault is one the proxy can apply, and its worker is one the cluster has
    /// or can grow (a step on a worker that never exists would be recorded as a fault
    /// with no effect).
    pub fn check_step(&self, step: &Step) -> Result<(), String> {
        crate::duration::check_seconds("at", step.at)?;
        if let Some(f) = step.for_s() {
            crate::duration::check_seconds("for", f)?;
        }
        check_clock_step(step)?;
        if let Act::DiskError(crate::rundir::step::DiskError { path: Some(p), .. }) = &step.act {
            regex::Regex::new(p).map_err(|e| format!("path {p:?} is not a regex: {e}"))?;
        }
        if step.action().is_disk()
            && !matches!(
                Component::parse(step.component()),
                Some(Component::Sink | Component::Worker(_))
            )
        {
            return Err(format!(
                "{} has no disk soakcheck can fault: only the sink and the workers do",
                step.component()
            ));
        }
        if let Some(fault) = step.fault() {
            fault.check()?;
        }
        let Some(Component::Worker(n)) = Component::parse(step.component()) else {
            return Ok(());
        };
        let max = super::preset::MAX_WORKERS;
        if n >= max {
            return Err(format!(
                "there is no {}: a cluster has at most {max} workers (initializer, worker1..worker{})",
                step.component(),
                max - 1
            ));
        }
        if matches!(step.action(), Action::Grow | Action::Shrink) && n == 0 {
            return Err("the initializer cannot be grown or shrunk".into());
        }
        let grown = self.grow
            || self.steps.iter().any(|g| {
                g.action() == Action::Grow && g.component() == step.component() && g.at <= step.at
            });
        if n >= self.workers && !grown && step.action() != Action::Grow {
            return Err(format!(
                "there is no {} in a cluster of {} (initializer..worker{}), and nothing grows it first",
                step.component(),
                self.workers,
                self.workers - 1
            ));
        }
        Ok(())
    }

    /// Whether the run needs the fault proxy: a network loop or a network step.
    pub fn network_faults(&self) -> bool {
        !self.net.is_empty() || self.steps.iter().any(|s| s.action().is_network())
    }

    /// Whether a power cut can take back what a component wrote: a power loop or step.
    pub fn power_faults(&self) -> bool {
        self.power_all
            || !self.powers.is_empty()
            || self.steps.iter().any(|s| s.action() == Action::PowerLoss)
    }

    /// The components whose directories go through a `soakcheck fs` layer: each a power
    /// or disk loop or step names, every worker a `power-all` can strike (those a grow
    /// can add too), and the sink with `power-all`.
    pub fn fs_components(&self) -> Vec<Component> {
        let mut out: Vec<Component> = self.powers.iter().chain(&self.disks).cloned().collect();
        let stepped = self.steps.iter().filter(|s| s.action().is_disk());
        out.extend(stepped.filter_map(|s| Component::parse(s.component())));
        if self.power_all {
            out.push(Component::Sink);
            let grown = self.grow || self.steps.iter().any(|s| s.action() == Action::Grow);
            let n = if grown {
                super::preset::MAX_WORKERS
            } else {
                self.workers
            };
            out.extend((0..n).map(Component::Worker));
        }
        out.sort();
        out.dedup();
        out
    }

    /// Whether the run needs `soakcheck fs` layers: a power or disk loop or step.
    pub fn disk_faults(&self) -> bool {
        self.power_all
            || !self.powers.is_empty()
            || !self.disks.is_empty()
            || self.steps.iter().any(|s| s.action().is_disk())
    }

    pub fn timings_scaled(&self, f: f64) -> Timings {
        self.timings.scaled(f)
    }
}

/// A clock step's numbers: an offset of at most 10 years either way, a strobe's period
/// of at least 10 ms, a rate above 0 and at most 100; and only a sink or a worker has a
/// clock of its own (a sender is the original's, not faked).
fn check_clock_step(step: &Step) -> Result<(), String> {
    let (by, period, rate) = match &step.act {
        Act::ClockStep(c) => (Some(c.by), None, None),
        Act::ClockStrobe(c) => (Some(c.by), Some(c.period), None),
        Act::ClockRate(c) => (None, None, Some(c.rate)),
        Act::ClockHeal(_) => (None, None, None),
        _ => return Ok(()),
    };
    if let Some(by) = by {
        crate::duration::check_seconds("by", by.abs())?;
    }
    if let Some(p) = period {
        crate::duration::check_seconds("period", p)?;
        if p < 0.01 {
            return Err(format!("period = {p} is under 10 ms"));
        }
    }
    if let Some(r) = rate.filter(|r| !(r.is_finite() && *r > 0.0 && *r <= 100.0)) {
        return Err(format!("rate = {r} is not above 0 and at most 100"));
    }
    match Component::parse(step.component()) {
        Some(Component::Sink | Component::Worker(_)) => Ok(()),
        _ => Err(format!(
            "{} has no clock soakcheck can fault: only the sink and the workers do",
            step.component()
        )),
    }
}

/// Reads a scenario file: a few KB of TOML (/dev/zero or a FIFO is refused, not read
/// forever).
fn read_file(path: &Path) -> Result<ScenarioFile, ScenarioError> {
    let error = |detail: String| ScenarioError::File {
        path: path.display().to_string(),
        detail,
    };
    let bytes =
        crate::formats::regular::read_regular(path, 1 << 20).map_err(|e| error(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| error(format!("not UTF-8 text: {e}")))?;
    toml::from_str(&text).map_err(|e| error(e.to_string()))
}

/// `clockN`: worker N, of a cluster of `workers`.
fn parse_worker(arg: &str, prefix: &str, workers: usize) -> Result<usize, ScenarioError> {
    let n: usize = arg
        .strip_prefix(prefix)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ScenarioError::Argument(arg.into()))?;
    if n >= workers {
        return Err(ScenarioError::NoSuchWorkerFor(arg.into(), n, workers));
    }
    Ok(n)
}

/// `crashN` or `crashN.slow`: worker N's crash loop, of a cluster of `workers`.
fn parse_crash(arg: &str, workers: usize) -> Result<(usize, Pace), ScenarioError> {
    let Some(rest) = arg.strip_prefix("crash") else {
        return Err(ScenarioError::Argument(arg.into()));
    };
    let (n, pace) = match rest.strip_suffix(".slow") {
        Some(n) => (n, Pace::Slow),
        None => (rest, Pace::Fast),
    };
    let n: usize = n.parse().map_err(|_| ScenarioError::Argument(arg.into()))?;
    if n >= workers {
        return Err(ScenarioError::NoSuchWorker(n, workers));
    }
    Ok((n, pace))
}

/// A network step's component is its link's connecting side; every step names a
/// component of ours, and a network step names its link. Scripted and replayed steps
/// alike.
pub fn name_step_component(step: &mut Step) -> Result<(), String> {
    step.name_component_by_link();
    if step.link().is_some_and(str::is_empty) {
        return Err(format!(
            "a {} step needs a link, such as link = \"worker1->sink\"",
            step.action().as_str()
        ));
    }
    if step.component().is_empty() {
        return Err(format!(
            "a {} step names its component, such as component = \"sink\" (a misspelled field is not read)",
            step.action().as_str()
        ));
    }
    if Component::parse(step.component()).is_none() {
        return Err(format!("unknown component {:?}", step.component()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_original_arguments() {
        let s = Scenario::parse(
            "3",
            &args(&[
                "crash-sink",
                "crash0",
                "crash2.slow",
                "crash-source",
                "grow-and-shrink",
                "no-sanity",
                "no-ack-progress",
            ]),
            None,
        )
        .unwrap();
        assert!(s.crash_sink && s.crash_source && s.grow && s.shrink);
        assert_eq!(s.crash_workers, vec![(0, Pace::Fast), (2, Pace::Slow)]);
        assert!(!s.checks.sanity && !s.checks.ack_progress && s.checks.registry_progress);
        assert!(Scenario::parse("3", &args(&["crash3"]), None).is_err());
        assert!(Scenario::parse("0", &[], None).is_err());
        assert!(Scenario::parse("3", &args(&["explode"]), None).is_err());
        assert_eq!(
            Scenario::parse("3", &args(&["run_custom1"]), None)
                .unwrap()
                .steps
                .len(),
            2
        );
        assert!(Scenario::parse("3", &args(&["run_custom9"]), None).is_err());
    }

    /// Power and disk arguments name their components; a disk step's path regex and its
    /// component are checked at plan time, not when it fires.
    #[test]
    fn power_and_disk_faults_are_checked_at_plan_time() {
        let s = Scenario::parse("3", &args(&["power-sink", "power2", "disk1"]), None).unwrap();
        assert_eq!(s.powers, vec![Component::Sink, Component::Worker(2)]);
        assert_eq!(s.fs_components().len(), 3);
        assert!(Scenario::parse("2", &args(&["power5"]), None).is_err());
        let step = |extra: &str| -> Step {
            toml::from_str(&format!(
                "at = 1.0\naction = \"disk-error\"\nop = \"fsync\"\nerrno = \"EIO\"\n{extra}"
            ))
            .unwrap()
        };
        assert!(s.check_step(&step("component = \"worker1\"")).is_ok());
        let bad = s
            .check_step(&step("component = \"worker1\"\npath = \"([\""))
            .unwrap_err();
        assert!(bad.contains("not a regex"), "{bad}");
        assert!(s.check_step(&step("component = \"sender-A\"")).is_err());
    }

    #[test]
    fn reads_a_scenario_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            r#"
workers = 2
args = ["crash1"]
seed = 42
[timings]
worker_up_max = 1.5
[[steps]]
at = 4.0
action = "pause"
component = "sink"
[custom.run_custom7]
steps = []
"#,
        )
        .unwrap();
        // [custom.X] must be a list of steps: this file is malformed and says where.
        let err = Scenario::parse("", &[], Some(&path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("s.toml"), "{err}");
        std::fs::write(&path, "workers = 2\nargs = [\"crash1\"]\nseed = 42\n[timings]\nworker_up_max = 1.5\n[[steps]]\nat = 4.0\naction = \"pause\"\ncomponent = \"sink\"\n[[custom.run_custom7]]\nat = 1.0\naction = \"shrink\"\ncomponent = \"worker1\"\n").unwrap();
        let s = Scenario::parse("", &args(&["run_custom7"]), Some(&path)).unwrap();
        assert_eq!(
            (s.workers, s.seed, s.timings.worker_up_max),
            (2, Some(42), 1.5)
        );
        assert_eq!(s.crash_workers, vec![(1, Pace::Fast)]);
        assert_eq!(s.steps.len(), 2);
        assert_eq!(Component::parse("sender-A"), Some(Component::Sender('A')));
        std::fs::write(&path, "workers = 1\n[probes.sink]\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\ntimeout = 0.2\n[probes.initializer]\nkind = \"command\"\ncommand = \"true\"\n").unwrap();
        let s = Scenario::parse("", &[], Some(&path)).unwrap();
        let never = |_: Duration| false;
        assert!(!s.probes["sink"].ready(&never), "nothing listens on port 1");
        assert!(s.probes["initializer"].ready(&never));
        assert!(
            !Probe::Command {
                command: "sleep 5".into(),
                timeout: 0.1
            }
            .ready(&never),
            "a probe times out"
        );
        assert!(!Probe::ClusterStatus { timeout: 0.1 }.ready(&never));
        assert_eq!(Component::parse("worker3"), Some(Component::Worker(3)));
    }

    /// Each loop's links, the wallaroo preset's one senders' link included: it goes to
    /// the initializer but is a source link, not a control link.
    #[test]
    fn network_scopes_and_marks() {
        let senders = crate::driver::preset::WALLAROO_SENDERS_LINK;
        for (link, scope, mark) in [
            ("worker2->sink", NetScope::Sink, "S"),
            ("sender-B->worker1", NetScope::Source, "sB"),
            (senders, NetScope::Source, "s*"),
            ("worker3->initializer", NetScope::Control, "3"),
        ] {
            for other in [NetScope::Sink, NetScope::Source, NetScope::Control] {
                assert_eq!(other.covers(link), other == scope, "{link} {other:?}");
            }
            assert_eq!(NetScope::mark(link), mark);
        }
        assert!(Component::parse(link_client(senders)).is_some());
    }
}
