//! `soakcheck demo`: the embedded system under test.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use soakcheck::demo::cluster::{run_cluster, ClusterPlan};
use soakcheck::demo::feed::{run_feed, FeedConfig};
use soakcheck::demo::sink::{run_sink, SinkConfig};
use soakcheck::demo::worker::{run_worker, InjectKind};
use soakcheck::plans;
use soakcheck::verify::{parse_key, Verdict};

use super::{choice, conclude, format, keys_or_default};

#[derive(Subcommand)]
pub enum DemoCommand {
    /// The connector sink with 2PC (arguments as the original aloc_sink's).
    Sink(DemoSinkArgs),
    /// A passthrough worker.
    Worker(DemoWorkerArgs),
    /// An at-least-once line feed (arguments as the original at_least_once_line_file_feed's).
    Feed(DemoFeedArgs),
    /// Generate inputs, run a sink, workers and feeds to the end, then verify.
    Cluster(DemoClusterArgs),
}

#[derive(Args)]
pub struct DemoSinkArgs {
    /// Output path prefix: files are OUT_PREFIX.<worker> and OUT_PREFIX.<worker>.txnlog.
    pub out_prefix: PathBuf,
    /// Abort-rule path prefix: rules for a worker are read from ABORT_PREFIX.<worker>.
    pub abort_prefix: PathBuf,
    pub port: u16,
    /// The address to listen on (the sink's host).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The run this component belongs to: it travels in the HELLO cookie and control
    /// messages, and peers of another run are refused (`run` sets it).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// A planted bug: never fsync the output or the txnlog, so commits are acknowledged
    /// before they are durable (a crash cannot show it; a power cut can).
    #[arg(long)]
    pub skip_fsync: bool,
}

#[derive(Args)]
pub struct DemoWorkerArgs {
    /// initializer, or workerN.
    #[arg(long)]
    pub name: String,
    /// Workers in the initial cluster (for the membership the initializer reports).
    #[arg(long, default_value_t = 1)]
    pub worker_count: usize,
    /// Connector source base port (+10 per worker number).
    #[arg(long, env = "WALLAROO_IN_BASE", default_value_t = 7100)]
    pub in_base: u16,
    /// External channel base port (+10 per worker number).
    #[arg(long, env = "WALLAROO_MY_EXTERNAL_BASE", default_value_t = 7103)]
    pub external_base: u16,
    /// The sink's port.
    #[arg(long, env = "WALLAROO_OUT_PORT", default_value_t = 7200)]
    pub sink_port: u16,
    /// The initializer's control port (workers register there).
    #[arg(long, env = "WALLAROO_CONTROL_BASE", default_value_t = 7101)]
    pub control_base: u16,
    /// Override the initializer's control port.
    #[arg(long)]
    pub control_port: Option<u16>,
    /// Join a running cluster as a new member (grow).
    #[arg(long)]
    pub join: bool,
    /// Override the connector source port.
    #[arg(long)]
    pub source_port: Option<u16>,
    /// Override the external channel port.
    #[arg(long)]
    pub external_port: Option<u16>,
    /// The address this worker listens on (its host).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The sink's host.
    #[arg(long, default_value = "127.0.0.1")]
    pub sink_host: String,
    /// The initializer's host (its control channel).
    #[arg(long, default_value = "127.0.0.1")]
    pub control_host: String,
    /// Where the durable checkpoint decision lives (default /tmp/soakcheck-state/<name>).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    #[arg(long, value_parser = soakcheck::duration::parse_duration, default_value = "1s")]
    pub checkpoint_interval: std::time::Duration,
    /// Inject one fault into the committed output (for testing checkers).
    #[arg(long, value_parser = choice::<InjectKind>(), requires = "inject_after")]
    pub inject: Option<InjectKind>,
    /// Inject at the line after this many lines (of --inject-key, if given).
    #[arg(long, value_name = "LINES")]
    pub inject_after: Option<u64>,
    #[arg(long, value_name = "K")]
    pub inject_key: Option<String>,
    /// The run this component belongs to: it travels in the HELLO cookie and control
    /// messages, and peers of another run are refused (`run` sets it).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
}

#[derive(Args)]
pub struct DemoFeedArgs {
    /// The input file; its path as given is the stream name.
    pub input_file: PathBuf,
    /// Bytes per second (default 150 as the original; 0 = unlimited).
    pub bytes_per_sec: Option<String>,
    #[arg(long, default_value = "127.0.0.1:7100")]
    pub connect: String,
    /// At end of file, keep polling for appended lines instead of ending the stream.
    #[arg(long)]
    pub follow: bool,
    /// The run this component belongs to: it travels in the HELLO cookie and control
    /// messages, and peers of another run are refused (`run` sets it).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
}

#[derive(Args)]
pub struct DemoClusterArgs {
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    #[arg(long, value_name = "A,B,C", default_value = "A,B,C")]
    pub keys: String,
    #[arg(long, value_name = "N", default_value_t = 400_000)]
    pub bytes_per_key: u64,
    /// Bytes per second per feed (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Working directory (default: a new one under $TMPDIR, else /tmp, removed after a pass).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long, value_parser = soakcheck::duration::parse_duration, default_value = "1s")]
    pub checkpoint_interval: std::time::Duration,
    #[arg(long, value_parser = choice::<InjectKind>(), requires = "inject_key")]
    pub inject: Option<InjectKind>,
    #[arg(long, value_name = "LINES", default_value_t = 100)]
    pub inject_after: u64,
    #[arg(long, value_name = "K")]
    pub inject_key: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Give up if the feeds have not finished after this long.
    #[arg(long, value_parser = soakcheck::duration::parse_duration, default_value = "10m")]
    pub timeout: std::time::Duration,
    #[arg(long)]
    pub json: bool,
}

pub fn run_demo_sink(args: DemoSinkArgs) -> anyhow::Result<()> {
    let phase1_sleep = plans::phase1_sleep(std::env::var("ALOC_SINK_PHASE1_SLEEP").ok().as_deref());
    if let Some(dir) = args
        .out_prefix
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    run_sink(SinkConfig {
        out_prefix: args.out_prefix,
        abort_prefix: args.abort_prefix,
        port: args.port,
        host: args.host,
        phase1_sleep,
        run_id: args.run_id,
        durability: if args.skip_fsync {
            soakcheck::demo::sink::Durability::SkipFsync
        } else {
            soakcheck::demo::sink::Durability::Fsync
        },
    })
    .with_context(|| format!("sink on port {}", args.port))
}

pub fn run_demo_worker(args: DemoWorkerArgs) -> anyhow::Result<()> {
    let config = plans::worker_config(plans::WorkerRequest {
        name: args.name,
        worker_count: args.worker_count,
        in_base: args.in_base,
        external_base: args.external_base,
        sink_port: args.sink_port,
        control_base: args.control_base,
        control_port: args.control_port,
        source_port: args.source_port,
        external_port: args.external_port,
        host: args.host,
        sink_host: args.sink_host,
        control_host: args.control_host,
        join: args.join,
        state_dir: args.state_dir,
        checkpoint_interval: args.checkpoint_interval,
        inject: args
            .inject
            .zip(args.inject_after)
            .map(|(kind, after)| (kind, after, args.inject_key)),
        run_id: args.run_id,
    })?;
    run_worker(config)?;
    Ok(())
}

pub fn run_demo_feed(args: DemoFeedArgs) -> ExitCode {
    let rate = plans::feed_rate(args.bytes_per_sec.as_deref());
    let code = run_feed(FeedConfig {
        input: args.input_file,
        rate,
        connect: args.connect,
        follow: args.follow,
        run_id: args.run_id,
    });
    ExitCode::from(code as u8)
}

pub fn run_demo_cluster(args: DemoClusterArgs) -> ExitCode {
    let result = (|| -> anyhow::Result<soakcheck::verify::Report> {
        let keys = keys_or_default(Some(&args.keys))?;
        let inject = match (args.inject, &args.inject_key) {
            (Some(kind), Some(k)) => Some((
                kind,
                args.inject_after,
                parse_key(k).map_err(anyhow::Error::msg)?,
            )),
            _ => None,
        };
        // Without --dir the run's files go to a temporary directory of its own, removed
        // after a pass and kept (and named) otherwise: its logs and sink output are then
        // the evidence.
        let (dir, temp) = match args.dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("soakcheck-cluster-")
                    .tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let stop = super::stop_flag();
        let plan = ClusterPlan {
            exe: std::env::current_exe().context("locating the soakcheck binary")?,
            workers: args.workers,
            keys,
            bytes_per_key: args.bytes_per_key,
            rate: args.rate,
            dir,
            checkpoint_interval: args.checkpoint_interval,
            inject,
            seed: args.seed,
            timeout: args.timeout,
            proxied: false,
            files: soakcheck::demo::cluster::Files::Direct,
            given_inputs: None,
        };
        let outcome = run_cluster(&plan, &stop, &mut |m| eprintln!("cluster: {m}"));
        let passed = matches!(&outcome, Ok(o) if o.report.verdict == Verdict::Ok);
        if let Some(temp) = temp.filter(|_| !passed) {
            eprintln!(
                "cluster: its inputs, logs and sink output are kept in {}",
                temp.keep().display()
            );
        }
        Ok(outcome?.report)
    })();
    conclude(result, format(args.json), &mut std::io::stdout(), None)
}

pub fn run(command: DemoCommand) -> ExitCode {
    match command {
        DemoCommand::Sink(args) => super::exit(run_demo_sink(args)),
        DemoCommand::Worker(args) => super::exit(run_demo_worker(args)),
        DemoCommand::Feed(args) => run_demo_feed(args),
        DemoCommand::Cluster(args) => run_demo_cluster(args),
    }
}
