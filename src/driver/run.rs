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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};

use super::events::{EventLine, RunEnd, RunHeader};
use super::preset::{Preset, PresetKind};
use super::scenario::{Scenario, Step};
use super::supervisor::{
    CheckEvent, Cluster, Ending, FreezeResult, RunFailure, SoakPlan, Supervisor, SystemClock,
};
use super::{Component, Fetched, ProcessDriver, Wake};
use crate::duration::secs;
use crate::finding::Finding;
use crate::formats::mapped::{FileBytes, IoMode};
use crate::topology::worker_name;
use crate::verify::{open_inputs, KeyInput, Semantics, VerifyPlan};
use crate::watch::events::{WatchEvent, WatchState};
use crate::watch::{
    watch_loop, Control, LoopFlow, ProgressStyle, StepOutcome, Until, WatchOutcome, WatchPlan,
    Watcher,
};
use crate::wire::external::{query_cluster_status, ShrinkRequest};

/// What to do at the first finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnViolation {
    /// SIGSTOP everything and wait (Ctrl-C then kills it all).
    Freeze,
    /// Kill everything and exit.
    Kill,
    /// Note it and keep running.
    Continue,
}

impl crate::choice::Choice for OnViolation {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            OnViolation::Freeze,
            "freeze",
            "SIGSTOP everything and wait (Ctrl-C then kills it all)",
        ),
        (OnViolation::Kill, "kill", "Kill everything and exit"),
        (
            OnViolation::Continue,
            "continue",
            "Note it and keep running",
        ),
    ];
}

crate::display_as_choice!(OnViolation);

#[derive(Debug, Clone)]
pub struct RunPlan {
    pub scenario: Scenario,
    pub preset: Preset,
    pub seed: u64,
    pub time_scale: f64,
    pub on_violation: OnViolation,
    pub duration: Option<Duration>,
    /// `--replay`'s steps, read when the plan was made.
    pub replay: Option<Vec<Step>>,
    /// The events.jsonl they were read from.
    pub replayed: Option<PathBuf>,
    pub bytes_per_key: u64,
    pub progress: ProgressStyle,
    pub ack_timeout: Duration,
    /// Where the live report is served during the soak.
    pub serve: Option<std::net::SocketAddr>,
    /// How many earlier green runs are kept (`--keep-runs`).
    pub keep_runs: usize,
    /// Who makes the run's pages (none: the run writes no page).
    pub pages: Option<std::sync::Arc<dyn super::pages::RunPages>>,
}

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
    /// The bytes of every key's input: less verified than this is a prefix (a run that
    /// `--duration` ended before its senders' end).
    pub input_bytes: u64,
    /// Keys of which not one byte was verified (a run with any is not a pass).
    pub unverified_keys: Vec<String>,
    pub findings: Vec<Finding>,
    pub frozen: bool,
    pub stopped_by_signal: bool,
    pub postmortem: Option<String>,
    pub run_dir: String,
    /// The post-mortem page written at the end.
    pub report: Option<String>,
    /// Process groups of the run still alive after its stop, with where they are
    /// (empty: nothing of the run is left on any host).
    pub left_running: Vec<String>,
}

/// The bytes of the run's inputs (0 for one that cannot be read).
fn input_bytes(plan: &RunPlan) -> u64 {
    let p = &plan.preset;
    p.keys
        .iter()
        .filter_map(|&k| std::fs::metadata(p.input_path(k)).ok())
        .map(|m| m.len())
        .sum()
}

/// What a soak leaves for its summary.
struct RunTotals {
    ending: Ending,
    frozen: bool,
    postmortem: Option<String>,
    left_running: Vec<String>,
    faults: BTreeMap<String, BTreeMap<String, u64>>,
    fault_count: u64,
    duration_s: f64,
    checked: CheckTotals,
    findings: Vec<Finding>,
}

/// What the checks verified by the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct CheckTotals {
    commits: u64,
    bytes_verified: u64,
    /// Keys with input of which not one byte was verified.
    unverified: Vec<String>,
}

impl RunSummary {
    /// The summary of `reset-only`.
    fn reset(plan: &RunPlan) -> RunSummary {
        RunSummary {
            seed: plan.seed,
            verdict: "reset",
            duration_s: 0.0,
            faults: BTreeMap::new(),
            fault_count: 0,
            commits: 0,
            bytes_verified: 0,
            input_bytes: 0,
            unverified_keys: vec![],
            findings: vec![],
            frozen: false,
            stopped_by_signal: false,
            postmortem: None,
            run_dir: plan.preset.run_dir.display().to_string(),
            report: None,
            left_running: Vec::new(),
        }
    }

    fn new(plan: &RunPlan, t: RunTotals) -> RunSummary {
        let stopped_by_signal = t.ending == Ending::Signal;
        let ended_well = t.ending == Ending::Complete || t.ending == Ending::Duration;
        let nothing = ended_well
            && t.findings.is_empty()
            && (t.checked.bytes_verified == 0 || !t.checked.unverified.is_empty());
        let verdict = if !t.findings.is_empty() {
            "violation"
        } else if nothing {
            "nothing-verified"
        } else if ended_well {
            "ok"
        } else {
            "stopped"
        };
        RunSummary {
            seed: plan.seed,
            verdict,
            duration_s: t.duration_s,
            faults: t.faults,
            fault_count: t.fault_count,
            commits: t.checked.commits,
            bytes_verified: t.checked.bytes_verified,
            input_bytes: input_bytes(plan),
            unverified_keys: t.checked.unverified,
            findings: t.findings,
            frozen: t.frozen,
            stopped_by_signal: stopped_by_signal && !t.frozen,
            postmortem: t.postmortem,
            run_dir: plan.preset.run_dir.display().to_string(),
            report: None,
            left_running: t.left_running,
        }
    }

    /// 1 for a finding; 2 when stopped before the end or nothing was verified (a pass
    /// on nothing is not a pass); else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.findings.is_empty() {
            1
        } else if self.stopped_by_signal
            || self.verdict == "nothing-verified"
            || !self.left_running.is_empty()
        {
            2
        } else {
            0
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
        if self.verdict == "ok" && self.bytes_verified < self.input_bytes {
            out += &format!(
                "  a prefix: the soak ended before every sender's end; {} of {} input bytes ({:.1} %) were committed and verified\n",
                self.bytes_verified,
                self.input_bytes,
                self.bytes_verified as f64 * 100.0 / self.input_bytes as f64
            );
        }
        if self.verdict == "nothing-verified" && self.unverified_keys.is_empty() {
            out += &format!(
                "  not a pass: not one committed byte was verified in {}/sink-out\n",
                self.run_dir
            );
        } else if self.verdict == "nothing-verified" {
            out += &format!(
                "  not a pass: not one committed byte of key(s) {} was verified in {}/sink-out\n",
                self.unverified_keys.join(","),
                self.run_dir
            );
        }
        for f in &self.findings {
            out += &format!(
                "  finding: {} after {:.1} s: {}\n",
                f.kind_name(),
                f.elapsed_s,
                f.detail
            );
        }
        if let Some(p) = &self.postmortem {
            out += &format!("  post-mortem bundle: {p}\n");
        }
        if let Some(r) = &self.report {
            out += &format!("  report: {r}\n");
        }
        if !self.left_running.is_empty() {
            out += &format!(
                "  LEFT RUNNING after the stop: {}\n",
                self.left_running.join(", ")
            );
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

/// A run's identity: unique per run (process id and start time), so two runs, even with
/// the same seed, never take each other's components for their own.
pub fn new_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}", std::process::id(), nanos)
}

/// Every port the run will listen on must be free now (a second run on the same ports
/// would otherwise talk to the first run's components). Checked on every host address
/// of this machine the run uses; a host elsewhere cannot be checked from here.
fn require_free_ports(preset: &super::preset::Preset) -> Result<(), RunError> {
    let mut hosts = preset.hosts.all();
    hosts.push(super::hosts::DEFAULT_HOST.to_string());
    for (port, what) in preset.listening_ports() {
        for host in &hosts {
            check_port_free(host, port, &what)?;
        }
    }
    Ok(())
}

/// The kernel's ephemeral port range (where it picks the local port of a client
/// connection), from `/proc/sys/net/ipv4/ip_local_port_range`; Linux's default when it
/// cannot be read.
pub fn local_port_range() -> std::ops::RangeInclusive<u16> {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut words = text.split_whitespace().map(|w| w.parse::<u16>());
    match (words.next(), words.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => low..=high,
        _ => 32768..=60999,
    }
}

/// A warning when ports of the run's scheme lie in the kernel's ephemeral range: any
/// client connection on this machine can be given one of them while its component is
/// down for a restart, and the restart then fails at random.
pub fn ephemeral_ports(
    preset: &super::preset::Preset,
    range: &std::ops::RangeInclusive<u16>,
) -> Option<String> {
    let inside: Vec<u16> = preset
        .listening_ports()
        .into_iter()
        .map(|(port, _)| port)
        .filter(|port| range.contains(port))
        .collect();
    let (low, high) = (inside.iter().min()?, inside.iter().max()?);
    Some(format!(
        "warning: {} port(s) of this run ({low}..{high}) lie in the kernel's ephemeral range \
         ({}-{}, /proc/sys/net/ipv4/ip_local_port_range), where any client connection may be \
         given one while its component is down for a restart, which then fails; a --port-base \
         whose ports all lie below {} avoids it",
        inside.len(),
        range.start(),
        range.end(),
        range.start()
    ))
}

fn check_port_free(host: &str, port: u16, what: &str) -> Result<(), RunError> {
    match std::net::TcpListener::bind((host, port)) {
        Ok(_) => Ok(()),
        // Not an address of this machine: another host's port.
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => Ok(()),
        Err(e) => Err(RunError::Setup(format!(
            "port {port} ({what}) is not free on {host}: {e}; another run or program uses it: \
             choose another --port-base"
        ))),
    }
}

/// The run's post-mortem page, in the run dir.
pub const REPORT: &str = "report.html";

/// Where the files of a run on other hosts are fetched to for its last report.
const REPORT_FILES: &str = "report-files.d";

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The presets' cluster, asked over the initializer's external channel.
struct PresetCluster<'a> {
    preset: &'a Preset,
    probes: &'a BTreeMap<String, super::scenario::Probe>,
}

impl PresetCluster<'_> {
    /// Whether worker `n` answers that it is processing (connected to the sink and
    /// recovered), asked with room for a busy machine.
    fn processing(&self, n: usize) -> bool {
        let answer = query_cluster_status(&self.preset.external_addr(n), READINESS_QUERY);
        matches!(answer, Ok(Some(s)) if s.processing_messages)
    }
}

/// How long one readiness query waits for its answer.
const READINESS_QUERY: Duration = Duration::from_millis(500);

impl Cluster for PresetCluster<'_> {
    fn ready(&self, timeout: Duration) -> bool {
        let p = self.preset;
        let Ok(Some(status)) = query_cluster_status(&p.external_addr(0), timeout) else {
            return false;
        };
        status.processing_messages
            && status.worker_names.iter().all(|name| {
                let Some(n) = crate::topology::worker_number(name) else { return false };
                matches!(query_cluster_status(&p.external_addr(n), timeout), Ok(Some(s)) if s.processing_messages)
            })
    }

    fn component_ready(&self, c: &Component, live: &[usize]) -> bool {
        if let Some(probe) = self.probes.get(&c.name()) {
            return probe.ready(&|t| self.ready(t));
        }
        let p = self.preset;
        match c {
            Component::Worker(n) => self.processing(*n),
            Component::Sink => {
                let addr = format!("{}:{}", p.host(c), p.ports.out_port);
                super::readiness::listening(&addr) != Some(false)
                    && live.iter().all(|&n| self.processing(n))
            }
            Component::Sender(_) => true,
        }
    }

    fn shrink(&self, n: usize) -> bool {
        let request = ShrinkRequest {
            node_names: vec![worker_name(n)],
            ..Default::default()
        };
        let addr = self.preset.external_addr(0);
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
        matches!(answer, Ok(text) if text.starts_with(b"Shrinking"))
    }

    /// Where it listens (the sink's port, a worker's external channel), its log, and
    /// the sink directory's txnlogs, as far as they can be seen from here.
    fn progress(&self, c: &Component) -> super::readiness::Progress {
        use super::readiness::{listening, size_of, txnlog_bytes};
        let p = self.preset;
        let addr = match c {
            Component::Sink => Some(format!("{}:{}", p.host(c), p.ports.out_port)),
            Component::Worker(n) => Some(p.external_addr(*n)),
            Component::Sender(_) => None,
        };
        let log = p.log_path(c);
        let own = size_of(&log).map(|n| (format!("its log {}", log.display()), n));
        // The sink is ready again when the workers are back on it: their reconnecting
        // is its progress too.
        let log = match c {
            Component::Sink => own.map(|(_, n)| {
                let workers: u64 = (0..super::preset::MAX_WORKERS)
                    .filter_map(|w| size_of(&p.log_path(&Component::Worker(w))))
                    .sum();
                (
                    "the logs of the sink and the workers".to_string(),
                    n + workers,
                )
            }),
            _ => own,
        };
        super::readiness::Progress {
            listening: addr.and_then(|a| listening(&a).map(|up| (a, up))),
            log,
            txnlog_bytes: txnlog_bytes(&p.run_dir.join(crate::formats::sinkdir::SINK_OUT)),
        }
    }
}

/// SIGINT, SIGTERM and SIGCHLD as [`Wake`] messages, until the handle is closed.
fn forward_signals(wakes: Sender<Wake>) -> Result<signal_hook::iterator::Handle, RunError> {
    use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGCHLD])
        .map_err(|e| RunError::Setup(format!("installing signal handlers: {e}")))?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            let wake = if signal == SIGCHLD {
                Wake::ChildExited
            } else {
                Wake::Interrupt
            };
            if wakes.send(wake).is_err() {
                break;
            }
        }
    });
    Ok(handle)
}

/// `watch`'s checks on their own thread, as events, through watch's own loop (quiet
/// about progress during the recovery window after each fault) until `control` closes.
/// Returns what they verified.
fn local_checks(
    watch_plan: &WatchPlan,
    inputs: &[FileBytes],
    events: Sender<CheckEvent>,
    control: Receiver<Control>,
) -> Result<CheckTotals, RunError> {
    let mut watcher = Watcher::new(watch_plan, inputs)?;
    let mut reported = 0;
    let mut completed = false;
    let mut next_status = Instant::now();
    // Only the control channel ends these checks: signals are the supervisor's.
    let never = std::sync::atomic::AtomicBool::new(false);
    watch_loop(
        &mut watcher,
        &never,
        Some(&control),
        &mut |watcher, outcome, progress| {
            if !progress.is_empty() {
                let _ = events.send(CheckEvent::Progress(progress));
            }
            let now = Instant::now();
            if now >= next_status {
                let _ = events.send(CheckEvent::Status(watcher.status_line(now)));
                next_status = now + Duration::from_millis(250);
            }
            for f in &watcher.findings()[reported..] {
                let _ = events.send(CheckEvent::Finding(f.clone()));
            }
            reported = watcher.findings().len();
            if outcome == StepOutcome::Succeeded && !completed {
                completed = true;
                let _ = events.send(CheckEvent::Complete);
            }
            LoopFlow::Continue
        },
    )?;
    let commits = watcher.core.log.commits.len() as u64;
    let live_findings = reported;
    let outcome: WatchOutcome = match watcher.finish() {
        Ok(outcome) => outcome,
        // Nothing could be verified: the run's summary says so from the zero totals.
        Err(_) => return Ok(CheckTotals::default()),
    };
    // What the final full pass found after the soak stopped reading events: the run
    // collects it from the channel once the checks are joined.
    for f in &outcome.findings[live_findings..] {
        let _ = events.send(CheckEvent::Finding(f.clone()));
    }
    let bytes_verified = outcome.report.keys.iter().map(|k| k.verified_bytes).sum();
    Ok(CheckTotals {
        commits,
        bytes_verified,
        unverified: crate::watch::unverified_keys(&outcome.report),
    })
}

/// One checker on another host: where it runs, and its command line, which carries
/// what it checks (its part of the run's one watch plan, as `watch --plan JSON`).
struct RemoteChecker {
    /// A component on its host (the driver runs the command there).
    on: Component,
    label: String,
    argv: Vec<String>,
}

/// The checkers a run needs on other hosts: one on the sink's host (the sink directory,
/// the sink log, and the senders on that host), and one on every other host with
/// senders, for their logs only. Each runs its part of `w`, the plan the in-process
/// checks run, sent whole as JSON: the checks a scenario switches off (`no-sanity`,
/// `no-ack-progress`, `no-registry-progress`) and every limit are the same wherever
/// they run.
fn remote_checkers(plan: &RunPlan, w: &WatchPlan) -> Vec<RemoteChecker> {
    let p = &plan.preset;
    let sink_host = p.host(&Component::Sink).to_string();
    let mut by_host: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for &k in &p.keys {
        by_host
            .entry(p.host(&Component::Sender(k)).to_string())
            .or_default()
            .push(k as u8);
    }
    let all: Vec<u8> = p.keys.iter().map(|&k| k as u8).collect();
    let argv = |keys: &[u8], senders: &[u8], sink| {
        let part = w.for_checker(keys, senders, sink);
        vec![
            p.exe.display().to_string(),
            "watch".to_string(),
            "--plan".to_string(),
            serde_json::to_string(&part).expect("a plan serializes"),
            "--control-stdin".to_string(),
        ]
    };
    let here = by_host.get(&sink_host).map_or(&[][..], |v| &v[..]);
    let mut checkers = vec![RemoteChecker {
        on: Component::Sink,
        label: format!("{sink_host} (the sink's host)"),
        argv: argv(&all, here, crate::watch::SinkScope::Here),
    }];
    for (host, keys) in by_host.iter().filter(|(h, _)| **h != sink_host) {
        checkers.push(RemoteChecker {
            on: Component::Sender(keys[0] as char),
            label: format!("{host} (senders {})", String::from_utf8_lossy(keys)),
            argv: argv(keys, keys, crate::watch::SinkScope::Elsewhere),
        });
    }
    checkers
}

/// Every control message to each of `n` checkers; their channels close when `control`
/// does.
fn fan_out(control: Receiver<Control>, n: usize) -> Vec<Receiver<Control>> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..n).map(|_| crossbeam_channel::unbounded()).unzip();
    std::thread::spawn(move || {
        for message in control.iter() {
            for s in &senders {
                let _ = s.send(message);
            }
        }
    });
    receivers
}

/// The checks run by `soakcheck watch --events -` on another host (through the
/// driver): its findings and completion become [`CheckEvent`]s exactly as the in-process
/// checks' do, faults are passed to it as control lines, and closing the control channel
/// finishes it. If it dies or its connection drops before its summary, that is a
/// `checker-lost` finding, never a silent pass.
#[allow(clippy::too_many_arguments)]
fn remote_checks(
    mut command: std::process::Command,
    label: String,
    stderr_log: PathBuf,
    events: Sender<CheckEvent>,
    control: Receiver<Control>,
    incomplete: &std::sync::atomic::AtomicUsize,
) -> Result<CheckTotals, RunError> {
    use std::io::BufRead;
    let log = std::fs::File::create(&stderr_log)
        .map_err(|e| RunError::Setup(format!("{}: {e}", stderr_log.display())))?;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| RunError::Setup(format!("starting the checker on {label}: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || {
        for message in control.iter() {
            let line = match message {
                Control::Fault { quiet_for } => format!("fault {}", quiet_for.as_secs_f64()),
                Control::Finish => break,
            };
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
        let _ = writeln!(stdin, "finish");
    });
    let mut totals = CheckTotals::default();
    let mut summary = false;
    let stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    for line in stdout.lines().map_while(Result::ok) {
        let Some(event) = WatchEvent::from_line(&line) else {
            continue;
        };
        match event {
            WatchEvent::Finding { finding, .. } => {
                let _ = events.send(CheckEvent::Finding(finding));
            }
            WatchEvent::State {
                state: WatchState::UntilReached,
                ..
            } => {
                // The run is complete when every checker is.
                let before = incomplete.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                if before == 1 {
                    let _ = events.send(CheckEvent::Complete);
                }
            }
            WatchEvent::Summary {
                commits,
                verified_bytes,
                unverified_keys,
                ..
            } => {
                summary = true;
                totals.commits = commits;
                totals.bytes_verified = verified_bytes;
                totals.unverified = unverified_keys;
            }
            WatchEvent::State { .. } | WatchEvent::Commits { .. } => {}
        }
    }
    let status = child
        .wait()
        .map(|s| s.to_string())
        .unwrap_or_else(|e| e.to_string());
    if !summary {
        let _ = events.send(CheckEvent::Lost(format!(
            "the checker on {label} ended without a verdict ({status}); its stderr is in {}",
            stderr_log.display()
        )));
    }
    let _ = writer.join();
    Ok(totals)
}

/// The checks' plan for a run: the run's sink dir, inputs and logs.
fn watch_plan(plan: &RunPlan) -> WatchPlan {
    let p = &plan.preset;
    WatchPlan {
        verify: VerifyPlan {
            sink_dir: Some(p.run_dir.join(crate::formats::sinkdir::SINK_OUT)),
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
    }
}

/// Prepare phase: the run dir, its reset, the port check and the inputs.
fn prepare(plan: &RunPlan, out: &mut dyn Write) -> Result<(), RunError> {
    let p = &plan.preset;
    let run_dir = &p.run_dir;
    if !plan.scenario.reset_only {
        if let Some(warning) = ephemeral_ports(p, &local_port_range()) {
            let _ = writeln!(out, "{warning}");
        }
        // Nothing is touched before the run is known to be able to start.
        super::record::refuse_live_run(run_dir).map_err(RunError::Setup)?;
        require_free_ports(p)?;
    }
    std::fs::create_dir_all(run_dir)
        .map_err(|e| RunError::Setup(format!("{}: {e}", run_dir.display())))?;
    for line in reset(run_dir, plan.keep_runs)? {
        let _ = writeln!(out, "{line}");
    }
    if plan.scenario.reset_only {
        return Ok(());
    }
    let sink_dir = run_dir.join(crate::formats::sinkdir::SINK_OUT);
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
    Ok(())
}

/// `soakcheck reset` (and the start of every run): kills what the previous run
/// recorded, on every host, through the driver it used; then keeps its evidence in
/// `RUN_DIR/soakcheck-runs/` (see [`super::kept`]), removing the oldest green kept runs
/// beyond `keep`. Deletes nothing else.
pub fn reset(run_dir: &Path, keep: usize) -> Result<Vec<String>, RunError> {
    let mut done = super::record::kill_recorded(run_dir).map_err(RunError::Setup)?;
    let kept =
        super::kept::keep_previous(run_dir, keep).map_err(|e| RunError::Setup(e.to_string()))?;
    done.extend(kept);
    if done.is_empty() {
        done.push(format!(
            "{}: no recorded process and no run's files: nothing to reset",
            run_dir.display()
        ));
    }
    Ok(done)
}

/// Writes the run's header and opens events.jsonl.
fn open_events(plan: &RunPlan, out: &mut dyn Write) -> Result<std::fs::File, RunError> {
    let events_path = plan.preset.run_dir.join("events.jsonl");
    let mut events = std::fs::File::create(&events_path)
        .map_err(|e| RunError::Setup(format!("{}: {e}", events_path.display())))?;
    let p = &plan.preset;
    let header = EventLine::Run {
        run: RunHeader {
            seed: plan.seed,
            command: std::env::args().collect(),
            workers: plan.scenario.workers,
            keys: p.keys.iter().collect(),
            preset: p.kind.to_string(),
            run_dir: p.run_dir.display().to_string(),
            start: crate::duration::unix_now(),
            utc_offset_s: super::events::local_utc_offset(),
            cwd: std::env::current_dir()
                .ok()
                .map(|d| d.display().to_string()),
            replayed: plan.replayed.as_ref().map(|p| p.display().to_string()),
        },
    };
    writeln!(events, "{}", header.to_line())
        .map_err(|e| RunError::Setup(format!("{}: {e}", events_path.display())))?;
    let _ = writeln!(out, "Start time: {}", unix_ms());
    let _ = match &plan.replayed {
        Some(from) => writeln!(
            out,
            "soakcheck run: seed {}, replaying the faults of {} (repeat with --replay {})",
            plan.seed,
            from.display(),
            events_path.display()
        ),
        None => writeln!(
            out,
            "soakcheck run: seed {} (repeat with --seed {} or --replay {})",
            plan.seed,
            plan.seed,
            events_path.display()
        ),
    };
    Ok(events)
}

/// What the supervisor needs from the run's plan.
fn soak_plan(plan: &RunPlan) -> Result<SoakPlan, RunError> {
    Ok(SoakPlan {
        scenario: plan.scenario.clone(),
        timings: plan.scenario.timings_scaled(plan.time_scale),
        seed: plan.seed,
        keys: plan.preset.keys.clone(),
        replay: plan.replay.clone(),
        duration: plan.duration,
        progress: plan.progress,
        continue_on_finding: plan.on_violation == OnViolation::Continue,
    })
}

/// Where the run's checks go: in-process, or on other hosts through the driver.
enum CheckSites {
    Local(Vec<FileBytes>),
    Remote(Vec<(RemoteChecker, std::process::Command)>),
}

impl CheckSites {
    /// With a driver for other hosts, the checks run where the data is: the sink's on
    /// its host, each sender host's on that host.
    fn choose(
        plan: &RunPlan,
        w: &WatchPlan,
        driver: &dyn ProcessDriver,
    ) -> Result<CheckSites, RunError> {
        let remote: Vec<_> = remote_checkers(plan, w)
            .into_iter()
            .filter_map(|c| {
                let command = driver.remote_command(&c.on, &c.argv)?;
                Some((c, command))
            })
            .collect();
        Ok(if remote.is_empty() {
            CheckSites::Local(open_inputs(&w.verify)?)
        } else {
            CheckSites::Remote(remote)
        })
    }

    /// Starts every checker on `scope`: their events go to `events`; each gets every
    /// control message.
    fn spawn<'scope>(
        self,
        scope: &'scope std::thread::Scope<'scope, '_>,
        w: &'scope WatchPlan,
        run_dir: &'scope Path,
        events: Sender<CheckEvent>,
        control: Receiver<Control>,
    ) -> Vec<std::thread::ScopedJoinHandle<'scope, Result<CheckTotals, RunError>>> {
        match self {
            CheckSites::Local(inputs) => {
                vec![scope.spawn(move || local_checks(w, &inputs, events, control))]
            }
            CheckSites::Remote(remote) => {
                // The run is complete when every checker is.
                let incomplete =
                    std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(remote.len()));
                let controls = fan_out(control, remote.len());
                remote
                    .into_iter()
                    .zip(controls)
                    .enumerate()
                    .map(|(i, ((checker, command), control))| {
                        let log = run_dir.join(format!("checker-{i}.stderr"));
                        let (events, incomplete) = (events.clone(), incomplete.clone());
                        scope.spawn(move || {
                            let label = checker.label;
                            remote_checks(command, label, log, events, control, &incomplete)
                        })
                    })
                    .collect()
            }
        }
    }
}

/// Waits for every checker; the sum of what they verified.
fn join_checks(
    handles: Vec<std::thread::ScopedJoinHandle<'_, Result<CheckTotals, RunError>>>,
) -> Result<CheckTotals, RunError> {
    let mut sum = CheckTotals::default();
    let mut first_error = None;
    for handle in handles {
        match handle.join().expect("a checks thread does not panic") {
            Ok(t) => {
                sum.commits += t.commits;
                sum.bytes_verified += t.bytes_verified;
                sum.unverified.extend(t.unverified);
            }
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    first_error.map_or(Ok(sum), Err)
}

/// Runs the scenario; returns the summary (the binary maps it to an exit status).
pub fn run(
    plan: &RunPlan,
    driver: &mut dyn ProcessDriver,
    out: &mut dyn Write,
) -> Result<RunSummary, RunError> {
    prepare(plan, out)?;
    if plan.scenario.reset_only {
        return Ok(RunSummary::reset(plan));
    }
    let p = &plan.preset;
    let soak = soak_plan(plan)?;
    let mut events = open_events(plan, out)?;
    let (wakes_tx, wakes) = crossbeam_channel::unbounded();
    let signals = forward_signals(wakes_tx.clone())?;
    let cluster = PresetCluster {
        preset: p,
        probes: &plan.scenario.probes,
    };
    let mut recorded = super::record::Recorder::new(driver, &p.run_dir);
    recorded.watch_exits(wakes_tx);
    let watch_plan = watch_plan(plan);
    let checks = CheckSites::choose(plan, &watch_plan, &recorded)?;
    let live = plan
        .serve
        .map(|addr| serve_live(addr, plan, out))
        .transpose()?
        .flatten();
    let proxy = start_proxy(plan, out)?;
    let result = std::thread::scope(|scope| {
        let (check_tx, check_rx) = crossbeam_channel::unbounded();
        let (control_tx, control_rx) = crossbeam_channel::unbounded();
        let handles = checks.spawn(scope, &watch_plan, &p.run_dir, check_tx, control_rx);
        let mut sup = Supervisor::new(
            &soak,
            p,
            &SystemClock,
            &mut recorded,
            &cluster,
            Some(control_tx),
            out,
            Some(&mut events),
        );
        if let Some(proxy) = &proxy {
            sup = sup.with_network(proxy);
        }
        let soaked = soak_and_end(&mut sup, plan, &wakes, &check_rx);
        let (faults, fault_count, started) = (sup.faults.clone(), sup.fault_count, sup.started);
        let mut findings = std::mem::take(&mut sup.findings);
        // The control channel closes with the supervisor: every checker finishes.
        drop(sup);
        let checked = join_checks(handles);
        findings.extend(late_findings(&check_rx, duration_s(started)));
        let Soaked {
            ending,
            frozen,
            postmortem,
            left_running,
        } = soaked?;
        let totals = RunTotals {
            ending,
            frozen,
            postmortem,
            left_running,
            faults,
            fault_count,
            duration_s: duration_s(started),
            checked: checked?,
            findings,
        };
        Ok(RunSummary::new(plan, totals))
    });
    signals.close();
    drop(live);
    let mut result = result;
    if let Ok(summary) = &mut result {
        record_end(summary, events);
        summary.report = end_report(plan, &mut recorded, out);
    }
    result
}

/// The run's last line of events.jsonl: its verdict.
fn record_end(summary: &RunSummary, mut events: std::fs::File) {
    let end = EventLine::End {
        end: RunEnd {
            verdict: summary.verdict.to_string(),
            time: crate::duration::unix_now(),
            duration_s: summary.duration_s,
            fault_count: summary.fault_count,
        },
    };
    let _ = writeln!(events, "{}", end.to_line());
}

/// Writes the run's page at its end (from files fetched from other hosts when the run
/// had any); returns where, or says on `out` why not.
fn end_report(
    plan: &RunPlan,
    driver: &mut dyn ProcessDriver,
    out: &mut dyn Write,
) -> Option<String> {
    let staging = plan.preset.run_dir.join(REPORT_FILES);
    let (files, notes) = gather_files(driver, plan, &staging);
    for note in notes {
        let _ = writeln!(out, "report: {note}");
    }
    match write_run_report(plan, &files) {
        Ok(path) => Some(path.display().to_string()),
        Err(e) => {
            let _ = writeln!(out, "report: {e}");
            None
        }
    }
}

fn duration_s(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}

/// What the checks found after the soak stopped reading their events: the final full
/// pass of the sink directory, or a checker lost on its way out.
fn late_findings(checks: &Receiver<CheckEvent>, elapsed_s: f64) -> Vec<Finding> {
    checks
        .try_iter()
        .filter_map(|event| match event {
            CheckEvent::Finding(f) => Some(f),
            CheckEvent::Lost(detail) => Some(Finding {
                kind: crate::finding::FindingKind::CheckerLost,
                key: None,
                detail,
                elapsed_s,
            }),
            _ => None,
        })
        .collect()
}

/// The fault proxy of a run with network faults: every link of the topology goes
/// through it.
struct ProxyNetwork(crate::proxy::Proxy);

impl super::supervisor::Network for ProxyNetwork {
    fn links(&self) -> Vec<String> {
        self.0.link_names()
    }

    fn apply(&self, link: &str, fault: crate::proxy::Fault) -> Result<(), String> {
        self.0
            .apply(link, crate::proxy::Directions::Both, fault)
            .map_err(|e| e.to_string())
    }
}

fn start_proxy(plan: &RunPlan, out: &mut dyn Write) -> Result<Option<ProxyNetwork>, RunError> {
    let p = &plan.preset;
    if p.proxy.is_none() {
        return Ok(None);
    }
    let links = p
        .proxy_links()
        .map_err(|e| RunError::Setup(format!("the fault proxy's links: {e}")))?;
    let count = links.len();
    let proxy =
        crate::proxy::Proxy::start(links, plan.seed).map_err(|e| RunError::Setup(e.to_string()))?;
    let _ = writeln!(
        out,
        "network faults: {count} links go through the fault proxy"
    );
    Ok(Some(ProxyNetwork(proxy)))
}

/// Serves the run's live report during the soak.
fn serve_live(
    addr: std::net::SocketAddr,
    plan: &RunPlan,
    out: &mut dyn Write,
) -> Result<Option<super::pages::LivePage>, RunError> {
    let Some(pages) = &plan.pages else {
        return Ok(None);
    };
    let live = pages
        .serve(addr, &plan.preset.run_dir)
        .map_err(|e| RunError::Setup(format!("--serve {addr}: {e}")))?;
    let _ = writeln!(out, "live report: http://{}/", live.addr);
    Ok(Some(live))
}

/// Writes RUN_DIR/report.html from `files`: the run dir itself, or where the sink
/// directory and logs were fetched to from other hosts.
fn write_run_report(plan: &RunPlan, files: &Path) -> Result<PathBuf, String> {
    let pages = plan.pages.as_ref().ok_or("this run makes no page")?;
    let run_dir = &plan.preset.run_dir;
    let out = run_dir.join(REPORT);
    pages.write(run_dir, files, &out)?;
    Ok(out)
}

/// The soak, then the freeze or the stop; returns how it ended, whether it froze, and
/// the post-mortem bundle.
fn soak_and_end(
    sup: &mut Supervisor<'_>,
    plan: &RunPlan,
    wakes: &Receiver<Wake>,
    checks: &Receiver<CheckEvent>,
) -> Result<Soaked, RunError> {
    let readiness = secs(
        plan.scenario
            .timings_scaled(plan.time_scale)
            .readiness_timeout
            .max(15.0),
    );
    let soaked = sup
        .start(readiness)
        .map_err(RunFailure::from)
        .and_then(|()| sup.run_loop(wakes, checks));
    let ending = match soaked {
        Ok(ending) => ending,
        Err(e) => {
            stop_everything(sup, wakes);
            return Err(match e {
                RunFailure::Setup(text) => RunError::Setup(text),
                RunFailure::Record(text) => RunError::Setup(format!(
                    "{}: {text}",
                    plan.preset.run_dir.join("events.jsonl").display()
                )),
                RunFailure::Driver(d) => RunError::Driver(d),
            });
        }
    };
    // Findings that arrived with the one that ended the soak.
    while let Ok(event) = checks.try_recv() {
        if let CheckEvent::Finding(f) = event {
            sup.findings.push(f);
        }
    }
    let mut frozen = false;
    let mut postmortem = None;
    if ending == Ending::Found && plan.on_violation == OnViolation::Freeze {
        let results = sup.freeze();
        frozen = true;
        postmortem = report_freeze(sup, plan, &results);
        // Wait for Ctrl-C or SIGTERM; child exits (of paused children: none) are ignored.
        while let Ok(w) = wakes.recv() {
            if w == Wake::Interrupt {
                sup.interrupts += 1;
                break;
            }
        }
    }
    let duration_ms = (sup.started.elapsed().as_secs_f64() * 1000.0) as u64;
    let _ = writeln!(
        sup.out(),
        "\nEnd time: {}\nDuration: {duration_ms}",
        unix_ms()
    );
    let left_running = stop_everything(sup, wakes);
    Ok(Soaked {
        ending,
        frozen,
        postmortem,
        left_running,
    })
}

/// How a soak ended, and what it left.
struct Soaked {
    ending: Ending,
    frozen: bool,
    postmortem: Option<String>,
    /// Process groups of the run still alive after the stop, on any host.
    left_running: Vec<String>,
}

/// Stops every component, then asks every host which of the run's groups are left,
/// and says so: that everything is stopped only when it is. Returns what is left.
fn stop_everything(sup: &mut Supervisor<'_>, wakes: &Receiver<Wake>) -> Vec<String> {
    for (c, e) in sup.stop_all(Some(wakes)) {
        let _ = writeln!(sup.out(), "could not stop {}: {e}", c.name());
    }
    let left = sup.driver.survivors();
    let out = sup.out();
    if left.is_empty() {
        let _ = writeln!(
            out,
            "stopped: no process group of this run is left, on any host"
        );
    } else {
        let _ = writeln!(out, "LEFT RUNNING after the stop: {}", left.join(", "));
        let _ = writeln!(
            out,
            "  `soakcheck reset --run-dir DIR` kills what the run recorded, on every host"
        );
    }
    left
}

/// The FROZEN message: the time, the findings, what the freeze did to each component
/// (and what it could not do), and the post-mortem bundle.
fn report_freeze(
    sup: &mut Supervisor<'_>,
    plan: &RunPlan,
    results: &[FreezeResult],
) -> Option<String> {
    let run_dir = &plan.preset.run_dir;
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let paused = results.iter().filter(|r| r.outcome.is_ok()).count();
    let mut text = format!(
        "\nFROZEN at {now_s:.3}: {paused} of {} components paused (SIGSTOP to each process group).\n",
        results.len()
    );
    for f in &sup.findings {
        text += &format!("  finding: {}: {}\n", f.kind_name(), f.detail);
    }
    for r in results {
        let at = r.location.clone().unwrap_or_else(|| "-".into());
        match &r.outcome {
            Ok(()) => text += &format!("  {:<12} paused   {at}\n", r.component.name()),
            Err(e) => text += &format!("  {:<12} NOT paused: {e}   {at}\n", r.component.name()),
        }
    }
    text += "  inspect: gdb -p PID   resume one: kill -CONT -PID\n";
    text += &format!(
        "  files: {0}/sink-out, {0}/wallaroo.N, {0}/sender.out.K, {0}/events.jsonl\n",
        run_dir.display()
    );
    let stamp = unix_ms() / 1000;
    let bundle = run_dir.join(format!("postmortem-{stamp}.tar.gz"));
    let mut postmortem = None;
    let (files, notes) = gather_files(
        sup.driver,
        plan,
        &run_dir.join(format!("postmortem-{stamp}.d")),
    );
    for note in notes {
        text += &format!("  post-mortem: {note}\n");
    }
    let report = match write_run_report(plan, &files) {
        Ok(path) => {
            text += &format!("  report: {}\n", path.display());
            Some(path)
        }
        Err(e) => {
            text += &format!("  report failed: {e}\n");
            None
        }
    };
    match write_postmortem(
        &bundle,
        &files,
        run_dir,
        &plan.preset.keys,
        report.as_deref(),
    ) {
        Ok(()) => {
            let top = bundle_top(&bundle);
            text += &format!(
                "  post-mortem bundle: {} (it unpacks into {top}/: `soakcheck report` it, or `tar xzf` it and `soakcheck verify --sink-dir {top}/sink-out --input-dir {top}`)\n",
                bundle.display()
            );
            postmortem = Some(bundle.display().to_string());
        }
        Err(e) => text += &format!("  post-mortem bundle {} failed: {e}\n", bundle.display()),
    }
    text += "  press Ctrl-C (or send SIGTERM) to kill everything and exit.\n";
    let out = sup.out();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    postmortem
}

/// Where the sink directory and the component logs are: the run dir when the driver
/// runs everything here, else `staging`, where they are fetched from their hosts through
/// the driver. Also returns what could not be fetched.
fn gather_files(
    driver: &mut dyn ProcessDriver,
    plan: &RunPlan,
    staging: &Path,
) -> (PathBuf, Vec<String>) {
    let p = &plan.preset;
    let mut notes = Vec::new();
    match driver.fetch(
        &Component::Sink,
        &p.run_dir.join(crate::formats::sinkdir::SINK_OUT),
        staging,
    ) {
        Ok(Fetched::AlreadyLocal) => return (p.run_dir.clone(), notes),
        Ok(Fetched::Copied) => {}
        Err(e) => notes.push(e.to_string()),
    }
    let components = (0..super::preset::MAX_WORKERS)
        .map(Component::Worker)
        .chain(p.keys.iter().map(|&k| Component::Sender(k)));
    for c in components {
        let log = p.log_path(&c);
        if let Err(e) = driver.fetch(&c, &log, staging) {
            if matches!(c, Component::Sender(_)) || c == Component::Worker(0) {
                notes.push(e.to_string());
            }
        }
    }
    (staging.to_path_buf(), notes)
}

/// `postmortem-<time>.tar.gz`: the sink directory, txnlogs, logs, events and inputs, so
/// `soakcheck verify` (or `report`) can be run again elsewhere. Everything is under one
/// top folder named as the bundle (`postmortem-<time>/`), so unpacking it never
/// scatters files into the current directory.
fn write_postmortem(
    bundle: &Path,
    files: &Path,
    run_dir: &Path,
    keys: &[char],
    report: Option<&Path>,
) -> std::io::Result<()> {
    let top = bundle_top(bundle);
    let file = std::fs::File::create(bundle)?;
    let enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(enc);
    tar.append_dir_all(
        format!("{top}/sink-out"),
        files.join(crate::formats::sinkdir::SINK_OUT),
    )?;
    let logs = std::fs::read_dir(files)?.flatten();
    // The events are the control node's (already among the logs when they are local).
    let events = std::fs::read_dir(run_dir)?
        .flatten()
        .filter(|e| files != run_dir && e.file_name() == "events.jsonl");
    for entry in logs.chain(events) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted = name.starts_with("wallaroo.")
            || name.starts_with("sender.out.")
            || name == "events.jsonl";
        if wanted && entry.path().is_file() {
            tar.append_path_with_name(entry.path(), format!("{top}/{name}"))?;
        }
    }
    for k in keys {
        let name = format!("input-file.{k}.txt");
        if run_dir.join(&name).exists() {
            tar.append_path_with_name(run_dir.join(&name), format!("{top}/{name}"))?;
        }
    }
    if let Some(report) = report {
        tar.append_path_with_name(report, format!("{top}/{REPORT}"))?;
    }
    tar.into_inner()?.finish()?;
    Ok(())
}

/// The one top folder of a bundle: its file name without `.tar.gz`.
fn bundle_top(bundle: &Path) -> String {
    let name = bundle
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    name.strip_suffix(".tar.gz").unwrap_or(&name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::preset::Preset;

    fn preset(base: u16) -> Preset {
        crate::driver::preset::test_demo(base, &['A'])
    }

    /// Issue 17.6: a scheme with ports in the ephemeral range is warned about, naming
    /// them and the range; one below it is not.
    #[test]
    fn ports_in_the_ephemeral_range_are_warned_about() {
        let range = 32768..=60999;
        let warning = ephemeral_ports(&preset(40_000), &range).unwrap();
        assert!(warning.contains("32768-60999"), "{warning}");
        assert!(warning.contains("(40000..40100)"), "{warning}");
        let straddling = ephemeral_ports(&preset(32_700), &range).unwrap();
        assert!(
            straddling.contains("7 port(s) of this run (32770..32800)"),
            "{straddling}"
        );
        assert_eq!(ephemeral_ports(&preset(7100), &range), None);
        assert_eq!(ephemeral_ports(&preset(20_000), &range), None);
    }

    fn plan() -> RunPlan {
        RunPlan {
            scenario: Scenario::parse("1", &[], None).unwrap(),
            preset: crate::driver::preset::test_demo(7100, &['A', 'B']),
            seed: 1,
            time_scale: 1.0,
            on_violation: OnViolation::Freeze,
            duration: None,
            replay: None,
            replayed: None,
            bytes_per_key: 1000,
            progress: ProgressStyle::Quiet,
            ack_timeout: Duration::from_secs(1),
            serve: None,
            keep_runs: 5,
            pages: None,
        }
    }

    fn totals(ending: Ending, bytes_verified: u64, unverified: &[&str]) -> RunTotals {
        RunTotals {
            ending,
            frozen: false,
            postmortem: None,
            left_running: vec![],
            faults: BTreeMap::new(),
            fault_count: 0,
            duration_s: 1.0,
            checked: CheckTotals {
                commits: 3,
                bytes_verified,
                unverified: unverified.iter().map(|k| k.to_string()).collect(),
            },
            findings: vec![],
        }
    }

    /// Issue 17.2: a soak in which one key verified not one byte did not test that key,
    /// so it is `nothing-verified` (exit 2) naming the key, not ok; a soak that verified
    /// every key is ok, and one stopped by a signal stays `stopped`.
    #[test]
    fn a_key_that_verified_nothing_makes_the_run_not_a_pass() {
        let plan = plan();
        let one_key = RunSummary::new(&plan, totals(Ending::Duration, 5000, &["B"]));
        assert_eq!(one_key.verdict, "nothing-verified");
        assert_eq!(one_key.exit_code(), 2);
        assert!(one_key
            .to_human()
            .contains("not one committed byte of key(s) B was verified"));
        let every_key = RunSummary::new(&plan, totals(Ending::Complete, 5000, &[]));
        assert_eq!((every_key.verdict, every_key.exit_code()), ("ok", 0));
        let none = RunSummary::new(&plan, totals(Ending::Duration, 0, &[]));
        assert_eq!(none.verdict, "nothing-verified");
        let stopped = RunSummary::new(&plan, totals(Ending::Signal, 5000, &["B"]));
        assert_eq!((stopped.verdict, stopped.exit_code()), ("stopped", 2));
    }
}
