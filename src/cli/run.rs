//! `soakcheck run` and `soakcheck reset`: the soak driver and its reset.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use soakcheck::demo::worker::InjectKind;
use soakcheck::driver::preset::PresetKind;
use soakcheck::driver::run::{run as run_soak, OnViolation};
use soakcheck::driver::scenario::Scenario;
use soakcheck::plans;
use soakcheck::watch::ProgressStyle;

use super::{choice, conclude, format};

#[derive(Args)]
pub struct RunArgs {
    /// Workers in the initial cluster (1..=9); a scenario file may give them instead.
    #[arg(required_unless_present = "scenario")]
    pub num_workers: Option<String>,
    /// The original master-crasher arguments: crash-sink, crash-source, crashN, crashN.slow,
    /// grow, shrink, grow-and-shrink, pause, no-ack-progress, no-registry-progress,
    /// no-sanity, no-clean-old-gzip-files, reset-only, run_customX; and soakcheck's
    /// network faults (net-sink, net-source, net-control), clock faults (clock-sink,
    /// clockN), power cuts (power-sink, powerN, power-all) and disk errors (disk-sink,
    /// diskN).
    pub args: Vec<String>,
    /// A TOML scenario file (workers, args, seed, timings, command templates, steps).
    #[arg(long, value_name = "FILE.toml")]
    pub scenario: Option<PathBuf>,
    /// The system under test.
    #[arg(long, value_parser = choice::<PresetKind>(), default_value_t = PresetKind::Demo)]
    pub preset: PresetKind,
    /// Input bytes per key (demo preset; 4,000,000 gives the original 12,368,938-byte files).
    #[arg(long, value_name = "N", default_value_t = 4_000_000)]
    pub bytes_per_key: u64,
    /// Bytes per second per sender (demo preset).
    #[arg(long, default_value_t = 66_000)]
    pub rate: u64,
    /// Keys (default $MULTIPLE_KEYS_LIST, else A..J).
    #[arg(long, value_name = "A,B,C")]
    pub keys: Option<String>,
    /// The seed of every random choice (printed at start); default: from the clock.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Repeat the fault schedule of a previous run's events.jsonl.
    #[arg(long, value_name = "events.jsonl")]
    pub replay: Option<PathBuf>,
    /// Where inputs, logs, the sink directory and state go (the original used /tmp).
    #[arg(long, value_name = "DIR", default_value = "/tmp")]
    pub run_dir: PathBuf,
    /// What to do at the first finding.
    #[arg(long, value_parser = choice::<OnViolation>(), default_value_t = OnViolation::Freeze)]
    pub on_violation: OnViolation,
    /// Stop with success after this long (default: at EOF of every sender).
    #[arg(long, value_parser = soakcheck::duration::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Multiply every chaos timing (0.25 = four times as many faults).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// How often the demo workers checkpoint (and so how often the sink commits).
    #[arg(long, value_parser = soakcheck::duration::parse_duration, default_value = "1s")]
    pub checkpoint_interval: std::time::Duration,
    /// A sender with no new ack for this long (outside the recovery window after a
    /// fault) is the finding ack-timeout.
    #[arg(long, value_parser = soakcheck::duration::parse_duration, default_value = "180s")]
    pub ack_timeout: std::time::Duration,
    /// Serve the live report at PORT or HOST:PORT (127.0.0.1 when only a port is given)
    /// while the soak runs; it re-renders from the run directory as it grows.
    #[arg(long, value_name = "ADDR", value_parser = soakcheck::report::serve::parse_addr)]
    pub serve: Option<std::net::SocketAddr>,
    /// The demo ports: source WALLAROO_IN_BASE (+1 control, +3 external, +100 sink);
    /// default from the WALLAROO_* variables, else 7100.
    #[arg(long)]
    pub port_base: Option<u16>,
    /// Use the scenario file's command templates instead of local processes.
    #[arg(long)]
    pub command_driver: bool,
    /// Earlier runs that ended green (or were stopped) kept in RUN_DIR/soakcheck-runs;
    /// runs that found something are always kept (`reset --purge` deletes them).
    #[arg(long, value_name = "N", default_value_t = soakcheck::rundir::kept::DEFAULT_KEEP)]
    pub keep_runs: usize,
    /// Make one demo worker inject a fault into key --inject-key's output, or the demo
    /// sink skip its fsyncs (skip-fsync), for testing the checks.
    #[arg(long, value_parser = choice::<InjectKind>())]
    pub inject: Option<InjectKind>,
    /// The injected fault strikes after this many lines of its key.
    #[arg(long, value_name = "LINES", default_value_t = 100)]
    pub inject_after: u64,
    /// The key the injected fault strikes (every kind but skip-fsync needs one).
    #[arg(long, value_name = "K")]
    pub inject_key: Option<String>,
    /// Print the summary as JSON (no progress characters).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ResetArgs {
    /// The run directory of the run to reset.
    #[arg(long, value_name = "DIR", default_value = "/tmp")]
    pub run_dir: PathBuf,
    /// Earlier runs that ended green (or were stopped) kept in RUN_DIR/soakcheck-runs.
    #[arg(long, value_name = "N", default_value_t = soakcheck::rundir::kept::DEFAULT_KEEP)]
    pub keep_runs: usize,
    /// Then delete every kept run in RUN_DIR/soakcheck-runs (the one just kept too).
    #[arg(long)]
    pub purge: bool,
}

pub fn run_reset(args: &ResetArgs) -> anyhow::Result<()> {
    let done = soakcheck::driver::run::reset(&args.run_dir, args.keep_runs)?;
    for line in &done {
        println!("{line}");
    }
    if done.is_empty() {
        println!(
            "{}",
            soakcheck::driver::run::nothing_to_reset(&args.run_dir)
        );
    }
    if args.purge {
        for line in soakcheck::rundir::kept::purge(&args.run_dir) {
            println!("{line}");
        }
    }
    Ok(())
}

pub fn run_run_command(args: RunArgs) -> ExitCode {
    let json = args.json;
    let result = (|| -> anyhow::Result<soakcheck::driver::run::RunSummary> {
        let scenario = Scenario::parse(
            args.num_workers.as_deref().unwrap_or(""),
            &args.args,
            args.scenario.as_deref(),
        )?;
        let mut driver =
            soakcheck::driver::make_driver(&scenario, args.command_driver, &args.run_dir)?;
        let driver_kind = match args.command_driver {
            true => soakcheck::driver::hosts::DriverKind::Command,
            false => scenario.driver.kind,
        };
        let progress = match (json, std::io::stdout().is_terminal()) {
            (true, _) => ProgressStyle::Quiet,
            (false, true) => ProgressStyle::StatusLine,
            (false, false) => ProgressStyle::Terse,
        };
        let plan = plans::run_plan(plans::RunRequest {
            scenario,
            preset: args.preset,
            seed: args.seed,
            keys: args.keys,
            port_base: args.port_base,
            run_dir: args.run_dir,
            rate: args.rate,
            checkpoint_interval: args.checkpoint_interval,
            inject: args
                .inject
                .map(|kind| (kind, args.inject_after, args.inject_key.clone())),
            exe: std::env::current_exe().context("locating the soakcheck binary")?,
            env: std::env::vars().collect(),
            time_scale: args.time_scale,
            driver: driver_kind,
            on_violation: args.on_violation,
            duration: args.duration,
            replay: args.replay,
            bytes_per_key: args.bytes_per_key,
            progress,
            ack_timeout: args.ack_timeout,
            serve: args.serve,
            keep_runs: args.keep_runs,
        })?;
        // With --json the progress goes to stderr and the summary alone to stdout.
        let mut out: Box<dyn Write> = if json {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        };
        Ok(run_soak(&plan, driver.as_mut(), &mut out)?)
    })();
    conclude(result, format(json), &mut std::io::stdout(), None)
}
