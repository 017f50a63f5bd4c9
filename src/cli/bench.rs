//! `soakcheck bench`: throughput, as ratios measured side by side.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use soakcheck::bench::demo::{bench_demo, BenchDemoPlan, BenchDemoReport};
use soakcheck::bench::verify::{bench_verify, BenchVerifyPlan, BenchVerifyReport};
use soakcheck::bench::watch::{bench_watch, BenchWatchPlan, BenchWatchReport};
use soakcheck::plans;

use super::{conclude, format};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Time verify against `cmp` of the same number of bytes.
    Verify(BenchVerifyArgs),
    /// Committed throughput of the embedded demo (sink, workers, unthrottled feeds).
    Demo(BenchDemoArgs),
    /// Latency and cost per MB of watch while a writer appends commits.
    Watch(BenchWatchArgs),
    /// One connection's throughput through a clear fault-proxy link, against direct.
    Proxy(BenchProxyArgs),
}

#[derive(Args)]
pub struct BenchProxyArgs {
    /// Bytes per transfer.
    #[arg(long, value_name = "N", default_value_t = 1_000_000_000, value_parser = plans::positive_bytes)]
    pub bytes: u64,
    /// Transfers of each kind (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchWatchArgs {
    #[arg(long, default_value_t = 10, value_parser = plans::key_count)]
    pub keys: usize,
    #[arg(long, default_value_t = 3, value_parser = plans::worker_count)]
    pub workers: usize,
    /// Committed bytes to append in all (default 1 GB).
    #[arg(long, value_name = "N", default_value_t = 1_000_000_000, value_parser = plans::positive_bytes)]
    pub total_bytes: u64,
    #[arg(long, value_name = "N", default_value_t = 65_536, value_parser = plans::positive_bytes)]
    pub commit_bytes: u64,
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchDemoArgs {
    #[arg(long, default_value_t = 10, value_parser = plans::key_count)]
    pub keys: usize,
    #[arg(long, default_value_t = 3, value_parser = plans::worker_count)]
    pub workers: usize,
    /// Binary bytes per key [default: 4000000; with --proxy or --fs 40000000].
    #[arg(long, value_name = "N", value_parser = plans::positive_bytes)]
    pub bytes_per_key: Option<u64>,
    /// [default: 1s; with --proxy or --fs 200ms].
    #[arg(long, value_parser = soakcheck::duration::parse_duration)]
    pub checkpoint_interval: Option<std::time::Duration>,
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Also run every link through the fault proxy (no fault applied) and report the
    /// proxied throughput as a ratio to the direct one.
    #[arg(long)]
    pub proxy: bool,
    /// Also run with the sink's and every worker's directory through a `soakcheck fs`
    /// layer (no fault applied; needs /dev/fuse and root) and report that throughput as
    /// a ratio to the direct one.
    #[arg(long, conflicts_with = "proxy")]
    pub fs: bool,
    /// With --proxy or --fs: pairs of runs (direct, then the other); medians are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchVerifyArgs {
    /// Number of keys (A, B, ...).
    #[arg(long, default_value_t = 10, value_parser = plans::key_count)]
    pub keys: usize,
    #[arg(long, value_name = "N", default_value_t = 4_000_000, value_parser = plans::positive_bytes)]
    pub bytes_per_key: u64,
    #[arg(long, default_value_t = 3, value_parser = plans::worker_count)]
    pub workers: usize,
    /// Timed runs of each command (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// Keep the generated data here instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

pub fn run_bench_verify(args: &BenchVerifyArgs) -> anyhow::Result<BenchVerifyReport> {
    let exe = std::env::current_exe().context("locating the soakcheck binary")?;
    let plan = BenchVerifyPlan {
        keys: args.keys,
        bytes_per_key: args.bytes_per_key,
        workers: args.workers,
        runs: args.runs,
        dir: args.dir.clone(),
        exe,
    };
    Ok(bench_verify(&plan, &mut |msg| eprintln!("bench: {msg}"))?)
}

pub fn run_bench_demo(args: &BenchDemoArgs) -> anyhow::Result<BenchDemoReport> {
    let (bytes_per_key, checkpoint_interval) =
        soakcheck::bench::demo::demo_defaults(args.proxy || args.fs);
    let plan = BenchDemoPlan {
        keys: args.keys,
        workers: args.workers,
        bytes_per_key: args.bytes_per_key.unwrap_or(bytes_per_key),
        checkpoint_interval: args.checkpoint_interval.unwrap_or(checkpoint_interval),
        exe: std::env::current_exe().context("locating the soakcheck binary")?,
        dir: args.dir.clone(),
        compare: if args.proxy {
            Some(soakcheck::bench::demo::Beside::Proxy)
        } else if args.fs {
            Some(soakcheck::bench::demo::Beside::Fs)
        } else {
            None
        },
        runs: args.runs,
    };
    Ok(bench_demo(&plan, &mut |m| eprintln!("bench: {m}"))?)
}

pub fn run_bench_watch(args: &BenchWatchArgs) -> anyhow::Result<BenchWatchReport> {
    let plan = BenchWatchPlan {
        keys: args.keys,
        workers: args.workers,
        total_bytes: args.total_bytes,
        commit_bytes: args.commit_bytes,
        dir: args.dir.clone(),
    };
    Ok(bench_watch(&plan, &mut |m| eprintln!("bench: {m}"))?)
}

pub fn run(command: BenchCommand) -> ExitCode {
    let out = &mut std::io::stdout();
    match command {
        BenchCommand::Verify(args) => {
            conclude(run_bench_verify(&args), format(args.json), out, None)
        }
        BenchCommand::Demo(args) => conclude(run_bench_demo(&args), format(args.json), out, None),
        BenchCommand::Proxy(args) => conclude(run_bench_proxy(&args), format(args.json), out, None),
        BenchCommand::Watch(args) => conclude(run_bench_watch(&args), format(args.json), out, None),
    }
}

fn run_bench_proxy(
    args: &BenchProxyArgs,
) -> anyhow::Result<soakcheck::bench::proxy::BenchProxyReport> {
    let plan = soakcheck::bench::proxy::BenchProxyPlan {
        bytes: args.bytes,
        runs: args.runs,
    };
    Ok(soakcheck::bench::proxy::bench_proxy(&plan)?)
}
