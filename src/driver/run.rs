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

use super::preset::{Preset, PresetKind};
use super::scenario::Scenario;
use super::supervisor::{
    CheckEvent, Cluster, Ending, FreezeResult, RunFailure, SoakPlan, Supervisor, SystemClock,
};
use super::{Component, Fetched, ProcessDriver, Wake};
use crate::duration::secs;
use crate::finding::Finding;
use crate::formats::mapped::{FileBytes, IoMode};
use crate::rundir::events::{EventLine, RunEnd, RunHeader};
use crate::rundir::step::Step;
use crate::topology::worker_name;
use crate::verify::{open_inputs, KeyInput, Semantics, VerifyPlan};
use crate::watch::events::{WatchEvent, WatchState};
use crate::watch::{
    watch_loop, Control, LoopFlow, ProgressStyle, StepOutcome, Until, WatchOutcome, WatchPlan,
    Watcher,
};
use crate::wire::external::{query_cluster_status, ShrinkRequest};

mod checks;
mod cluster;
mod ports;
mod postmortem;
mod summary;

use checks::*;
use cluster::*;
use ports::*;
pub use ports::{ephemeral_ports, local_port_range};
use postmortem::*;
pub use summary::RunSummary;
use summary::*;

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
    const CHOICES: &'static [(Self, &'static str)] = &[
        (
            OnViolation::Freeze,
            "SIGSTOP everything and wait (Ctrl-C then kills it all)",
        ),
        (OnViolation::Kill, "Kill everything and exit"),
        (OnViolation::Continue, "Note it and keep running"),
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

/// The run's post-mortem page, in the run dir.
pub use crate::rundir::REPORT;

/// Where the files of a run on other hosts are fetched to for its last report.
const REPORT_FILES: &str = "report-files.d";

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// SIGINT, SIGTERM, SIGHUP (the terminal closed) and SIGCHLD as [`Wake`] messages,
/// until the handle is closed.
fn forward_signals(wakes: Sender<Wake>) -> Result<signal_hook::iterator::Handle, RunError> {
    use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGCHLD])
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
    let done = reset(run_dir, plan.keep_runs)?;
    for line in &done {
        let _ = writeln!(out, "{line}");
    }
    if plan.scenario.reset_only {
        if done.is_empty() {
            let _ = writeln!(out, "{}", nothing_to_reset(run_dir));
        }
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
/// `RUN_DIR/soakcheck-runs/` (see [`crate::rundir::kept`]), removing the oldest green kept runs
/// beyond `keep`. Deletes nothing else. Says what it did (nothing, for a fresh run
/// dir: [`nothing_to_reset`] says so where a person asked for a reset).
pub fn reset(run_dir: &Path, keep: usize) -> Result<Vec<String>, RunError> {
    let mut done = super::record::kill_recorded(run_dir).map_err(RunError::Setup)?;
    done.extend(detach_layers(run_dir));
    let kept = crate::rundir::kept::keep_previous(run_dir, keep)
        .map_err(|e| RunError::Setup(e.to_string()))?;
    done.extend(kept);
    Ok(done)
}

/// What a reset that found nothing says (`soakcheck reset`, `run ... reset-only`; a run
/// in a fresh run dir says nothing).
pub fn nothing_to_reset(run_dir: &Path) -> String {
    format!(
        "{}: no recorded process and no run's files: nothing to reset",
        run_dir.display()
    )
}

/// The `soakcheck fs` layers a killed run left: their mounts detached, their own
/// folders removed from the sink's and the workers' directories.
fn detach_layers(run_dir: &Path) -> Vec<String> {
    let dir = crate::rundir::RunDir(run_dir);
    let mut done = crate::fs::detach_left_under(&dir.fs_mounts());
    // The mount points, once detached: empty folders (rmdir takes nothing else).
    for point in std::fs::read_dir(dir.fs_mounts())
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(point.path());
    }
    let _ = std::fs::remove_dir(dir.fs_mounts());
    let states = std::fs::read_dir(dir.state())
        .into_iter()
        .flatten()
        .flatten();
    let backings = std::iter::once(dir.sink_dir()).chain(states.map(|e| e.path()));
    for backing in backings {
        if crate::fs::remove_own_folder(&backing) {
            done.push(format!(
                "{}: removed the filesystem layer's folder",
                backing.display()
            ));
        }
    }
    done
}

/// Writes the run's header and opens events.jsonl.
fn open_events(plan: &RunPlan, out: &mut dyn Write) -> Result<std::fs::File, RunError> {
    let events_path = crate::rundir::RunDir(&plan.preset.run_dir).events();
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
            utc_offset_s: crate::rundir::events::local_utc_offset(),
            cwd: std::env::current_dir()
                .ok()
                .map(|d| d.display().to_string()),
            replayed: plan.replayed.as_ref().map(|p| p.display().to_string()),
        },
    };
    writeln!(events, "{}", header.to_line())
        .map_err(|e| RunError::Setup(format!("{}: {e}", events_path.display())))?;
    // The original's line, which its scripts parse, then one for a person.
    let start_ms = unix_ms();
    let _ = writeln!(
        out,
        "Start time: {start_ms}\nStarted at {}",
        crate::duration::local_time(start_ms as f64 / 1000.0)
    );
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
        let started_unix = sup.started_unix();
        let mut findings = std::mem::take(&mut sup.findings);
        // The control channel closes with the supervisor: every checker finishes.
        drop(sup);
        let checked = join_checks(handles);
        let late = late_findings(&check_rx, duration_s(started));
        let soaked = soaked.inspect_err(|_| {
            // A run that failed says so in its record: no later reader takes it for a pass
            // (nor what its checks said as it failed for findings).
            record_end_line(&mut events, "error", duration_s(started), fault_count);
        });
        if soaked.is_ok() {
            record_late_findings(&mut events, &late, started_unix);
        }
        findings.extend(late);
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

/// The findings of the checks' final pass, after the soak, into events.jsonl (before its
/// end line), as the soak's own are.
fn record_late_findings(events: &mut std::fs::File, late: &[Finding], started_unix: f64) {
    for f in late {
        let line = EventLine::Finding {
            finding: f.clone(),
            at: f.elapsed_s,
            time: started_unix + f.elapsed_s,
        };
        let _ = writeln!(events, "{}", line.to_line());
    }
}

/// The run's last line of events.jsonl: its verdict.
fn record_end(summary: &RunSummary, mut events: std::fs::File) {
    let (d, n) = (summary.duration_s, summary.fault_count);
    record_end_line(&mut events, summary.verdict, d, n);
}

fn record_end_line(events: &mut std::fs::File, verdict: &str, duration_s: f64, faults: u64) {
    let end = EventLine::End {
        end: RunEnd {
            verdict: verdict.to_string(),
            time: crate::duration::unix_now(),
            duration_s,
            fault_count: faults,
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
                    crate::rundir::RunDir(&plan.preset.run_dir)
                        .events()
                        .display()
                )),
                RunFailure::Driver(d) => RunError::Driver(d),
            });
        }
    };
    sup.end_progress_checks();
    // Findings that arrived with the one that ended the soak.
    while let Ok(event) = checks.try_recv() {
        if let CheckEvent::Finding(f) = event {
            sup.record_finding(f);
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
    let duration_s = sup.started.elapsed().as_secs_f64();
    let end_ms = unix_ms();
    let _ = writeln!(
        sup.out(),
        "\nEnd time: {end_ms}\nDuration: {}\nEnded at {} after {}",
        (duration_s * 1000.0) as u64,
        crate::duration::local_time(end_ms as f64 / 1000.0),
        crate::duration::human_duration(duration_s)
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
