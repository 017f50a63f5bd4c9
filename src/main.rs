//! The `soakcheck` binary: parses the command line, validates it into a plan, calls the
//! library, and maps the outcome to an exit status. Exit statuses (also in README.md):
//! 0 = every check passed, 1 = a violation was found, 2 = could not check (bad input, a
//! missing or unreadable file, bad usage).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use soakcheck::bench::{
    bench_demo, bench_verify, bench_watch, BenchDemoPlan, BenchDemoReport, BenchVerifyPlan,
    BenchVerifyReport, BenchWatchPlan, BenchWatchReport,
};
use soakcheck::choice::Choice;
use soakcheck::demo::cluster::{run_cluster, ClusterPlan};
use soakcheck::demo::feed::{run_feed, FeedConfig};
use soakcheck::demo::sink::{run_sink, SinkConfig};
use soakcheck::demo::worker::{run_worker, InjectKind};
use soakcheck::driver::preset::PresetKind;
use soakcheck::driver::run::{run as run_soak, OnViolation};
use soakcheck::driver::scenario::Scenario;
use soakcheck::formats::input::input_path;
use soakcheck::formats::mapped::IoMode;
use soakcheck::gen::inputs::{generate_inputs, DataSource};
use soakcheck::gen::sink::{generate_sink, FaultKind, GenSinkPlan};
use soakcheck::outcome::{Format, Outcome, EXIT_ERROR};
use soakcheck::plans;
use soakcheck::verify::{parse_key, select_inputs, verify, KeySelection, Report, Semantics};
use soakcheck::watch::{run_watch_controlled, ProgressStyle, SinkScope, Until};

#[derive(Parser)]
#[command(
    name = "soakcheck",
    version,
    about = "Proves a stream processor kept its exactly-once promise while it is crashed on purpose"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify a saved sink directory: each key's committed output must be its input, in order.
    Verify(VerifyArgs),
    /// Verify a live sink directory continuously, with sender-log progress checks;
    /// stop at the first violation.
    Watch(WatchArgs),
    /// The soak driver: start the system under test, crash, pause, grow and shrink it in
    /// loops, check everything in-process, and freeze the world at the first finding.
    Run(RunArgs),
    /// Stop everything a previous run started and delete its state (like reset.sh).
    Reset(ResetArgs),
    /// A TCP fault proxy: forwards each link and partitions, resets, delays, throttles or
    /// slices it on request (loopback HTTP control, JSON).
    Proxy(ProxyArgs),
    /// A post-mortem page of a run directory, a post-mortem bundle or a sink directory:
    /// the verdict, a fault timeline, the violation in context and the logs around it.
    Report(ReportArgs),
    /// Generate input files or a sink directory.
    #[command(subcommand)]
    Gen(GenCommand),
    /// Measure throughput.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The embedded system under test: sink, passthrough workers and feeds.
    #[command(subcommand)]
    Demo(DemoCommand),
}

#[derive(Subcommand)]
enum DemoCommand {
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
struct DemoSinkArgs {
    /// Output path prefix: files are OUT_PREFIX.<worker> and OUT_PREFIX.<worker>.txnlog.
    out_prefix: PathBuf,
    /// Abort-rule path prefix: rules for a worker are read from ABORT_PREFIX.<worker>.
    abort_prefix: PathBuf,
    port: u16,
    /// The address to listen on (the sink's host).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The run this component belongs to: it travels in the HELLO cookie and control
    /// messages, and peers of another run are refused (`run` sets it).
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
}

#[derive(Args)]
struct DemoWorkerArgs {
    /// initializer, or workerN.
    #[arg(long)]
    name: String,
    /// Workers in the initial cluster (for the membership the initializer reports).
    #[arg(long, default_value_t = 1)]
    worker_count: usize,
    /// Connector source base port (+10 per worker number).
    #[arg(long, env = "WALLAROO_IN_BASE", default_value_t = 7100)]
    in_base: u16,
    /// External channel base port (+10 per worker number).
    #[arg(long, env = "WALLAROO_MY_EXTERNAL_BASE", default_value_t = 7103)]
    external_base: u16,
    /// The sink's port.
    #[arg(long, env = "WALLAROO_OUT_PORT", default_value_t = 7200)]
    sink_port: u16,
    /// The initializer's control port (workers register there).
    #[arg(long, env = "WALLAROO_CONTROL_BASE", default_value_t = 7101)]
    control_base: u16,
    /// Override the initializer's control port.
    #[arg(long)]
    control_port: Option<u16>,
    /// Join a running cluster as a new member (grow).
    #[arg(long)]
    join: bool,
    /// Override the connector source port.
    #[arg(long)]
    source_port: Option<u16>,
    /// Override the external channel port.
    #[arg(long)]
    external_port: Option<u16>,
    /// The address this worker listens on (its host).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The sink's host.
    #[arg(long, default_value = "127.0.0.1")]
    sink_host: String,
    /// The initializer's host (its control channel).
    #[arg(long, default_value = "127.0.0.1")]
    control_host: String,
    /// Where the durable checkpoint decision lives (default /tmp/soakcheck-state/<name>).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    #[arg(long, value_parser = soakcheck::duration::parse_duration, default_value = "1s")]
    checkpoint_interval: std::time::Duration,
    /// Inject one fault into the committed output (for testing checkers).
    #[arg(long, value_parser = choice::<InjectKind>(), requires = "inject_after")]
    inject: Option<InjectKind>,
    /// Inject at the line after this many lines (of --inject-key, if given).
    #[arg(long, value_name = "LINES")]
    inject_after: Option<u64>,
    #[arg(long, value_name = "K")]
    inject_key: Option<String>,
    /// The run this component belongs to: it travels in the HELLO cookie and control
    /// messages, and peers of another run are refused (`run` sets it).
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
}

#[derive(Args)]
struct DemoFeedArgs {
    /// The input file; its path as given is the stream name.
    input_file: PathBuf,
    /// Bytes per second (default 150 as the original; 0 = unlimited).
    bytes_per_sec: Option<String>,
    #[arg(long, default_value = "127.0.0.1:7100")]
    connect: String,
    /// At end of file, keep polling for appended lines instead of ending the stream.
    #[arg(long)]
    follow: bool,
    /// The run this component belongs to: it travels in the HELLO cookie and control
    /// messages, and peers of another run are refused (`run` sets it).
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
}

#[derive(Args)]
struct DemoClusterArgs {
    #[arg(long, default_value_t = 3)]
    workers: usize,
    #[arg(long, value_name = "A,B,C", default_value = "A,B,C")]
    keys: String,
    #[arg(long, value_name = "N", default_value_t = 400_000)]
    bytes_per_key: u64,
    /// Bytes per second per feed (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Working directory (default: a new directory under /tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, value_parser = soakcheck::duration::parse_duration, default_value = "1s")]
    checkpoint_interval: std::time::Duration,
    #[arg(long, value_parser = choice::<InjectKind>(), requires = "inject_key")]
    inject: Option<InjectKind>,
    #[arg(long, value_name = "LINES", default_value_t = 100)]
    inject_after: u64,
    #[arg(long, value_name = "K")]
    inject_key: Option<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Give up if the feeds have not finished after this long.
    #[arg(long, value_parser = soakcheck::duration::parse_duration, default_value = "10m")]
    timeout: std::time::Duration,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InputArgs {
    /// Directory of the input files: key K's input is DIR/input-file.K.txt.
    #[arg(long, value_name = "DIR", default_value = "/tmp")]
    input_dir: PathBuf,
    /// Key K's input file (repeatable; overrides --input-dir for that key).
    #[arg(long = "input", value_name = "K=PATH")]
    inputs: Vec<String>,
    /// Keys to check, comma-separated. Default: $MULTIPLE_KEYS_LIST (space-separated), else
    /// every input-file.*.txt in --input-dir.
    #[arg(long, value_name = "A,B,C")]
    keys: Option<String>,
}

#[derive(Args)]
struct VerifyArgs {
    /// The sink directory (output.<worker> and output.<worker>.txnlog files).
    #[arg(long, value_name = "DIR")]
    sink_dir: Option<PathBuf>,
    #[command(flatten)]
    input: InputArgs,
    /// Each key's committed output must be its whole input, not just a prefix.
    #[arg(long)]
    expect_complete: bool,
    /// What the system promises.
    #[arg(long, value_parser = choice::<Semantics>(), default_value_t = Semantics::ExactlyOnce)]
    semantics: Semantics,
    /// A plain newline-delimited output file with no txnlog, treated as fully committed
    /// (repeatable). Without --sink-dir, only these are read.
    #[arg(long, value_name = "FILE")]
    plain_output: Vec<PathBuf>,
    /// Print exactly one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// How files are read (both give the same verdict; mmap is faster).
    #[arg(long, value_parser = choice::<IoMode>(), default_value_t = IoMode::Mmap, hide = true)]
    io: IoMode,
}

#[derive(Args)]
struct ProxyArgs {
    /// A link: NAME,LISTEN,UPSTREAM (such as worker1->sink,127.0.0.1:7300,127.0.0.1:7200);
    /// repeatable.
    #[arg(long = "link", value_name = "NAME,LISTEN,UPSTREAM", required = true, value_parser = soakcheck::proxy::parse_link)]
    links: Vec<soakcheck::proxy::LinkSpec>,
    /// Serve the control interface at PORT or HOST:PORT (127.0.0.1 when only a port is
    /// given): GET /links, POST /links/NAME {"fault": ..., "direction": ...}.
    #[arg(long, value_name = "ADDR", value_parser = soakcheck::report::serve::parse_addr)]
    control: Option<std::net::SocketAddr>,
    /// Let --control listen on an address other hosts reach (anyone who reaches it can
    /// partition every link; without this flag only a loopback address is taken).
    #[arg(long)]
    allow_remote_control: bool,
    /// The seed of the delay jitter and the slice sizes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
struct ReportArgs {
    /// A run directory, a post-mortem .tar.gz bundle, or a sink directory (with --input-dir).
    path: PathBuf,
    /// Where the page goes (default: PATH/report.html; ./report.html for a bundle).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Directory of the input files (default: the run directory).
    #[arg(long, value_name = "DIR")]
    input_dir: Option<PathBuf>,
    /// Key K's input file (repeatable).
    #[arg(long = "input", value_name = "K=PATH")]
    inputs: Vec<String>,
    /// Keys to check, comma-separated (default: the run's, else every input file's).
    #[arg(long, value_name = "A,B,C")]
    keys: Option<String>,
    /// Each key's committed output must be its whole input, not just a prefix.
    #[arg(long)]
    expect_complete: bool,
    #[arg(long, value_parser = choice::<Semantics>(), default_value_t = Semantics::ExactlyOnce)]
    semantics: Semantics,
    /// Serve the page at PORT or HOST:PORT (127.0.0.1 when only a port is given),
    /// re-rendered as the files grow, until Ctrl-C; nothing is written.
    #[arg(long, value_name = "ADDR", value_parser = soakcheck::report::serve::parse_addr)]
    serve: Option<std::net::SocketAddr>,
    /// The most a post-mortem bundle may unpack to, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = soakcheck::report::UNPACK_LIMIT, value_parser = plans::positive_bytes)]
    unpack_limit: u64,
}

#[derive(Args)]
struct WatchArgs {
    /// The sink directory (default /tmp/sink-out).
    #[arg(long, value_name = "DIR", default_value = "/tmp/sink-out")]
    sink_dir: PathBuf,
    #[command(flatten)]
    input: InputArgs,
    #[arg(long, value_parser = choice::<Semantics>(), default_value_t = Semantics::ExactlyOnce)]
    semantics: Semantics,
    /// Key K's sender log (repeatable); else DIR/sender.out.K for --sender-log-dir.
    #[arg(long = "sender-log", value_name = "K=PATH")]
    sender_logs: Vec<String>,
    #[arg(long, value_name = "DIR", default_value = "/tmp")]
    sender_log_dir: PathBuf,
    /// The sink's log (default SINK_DIR/stdout-stderr).
    #[arg(long, value_name = "PATH")]
    sink_log: Option<PathBuf>,
    /// Every sender log must show a new `acked ... is_open=True` line within this window.
    #[arg(long, value_parser = soakcheck::duration::parse_duration, default_value = "180s")]
    ack_timeout: std::time::Duration,
    /// Once a sender log has N `added Stream` lines, one of its last N must be open.
    #[arg(long, value_name = "N", default_value_t = 20)]
    registry_window: usize,
    #[arg(long, value_parser = choice::<Until>(), default_value_t = Until::Eof)]
    until: Until,
    /// Give up (exit 1, a `stalled` finding) when --until is not reached in time.
    #[arg(long, value_parser = soakcheck::duration::parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Append one JSON object per line for every commit batch, finding and state change
    /// (`-`: to stdout, and the report to stderr; `run` reads remote checkers this way).
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Read control lines on stdin: `fault SECONDS` (progress checks do not judge for that
    /// long), `finish`; end of input finishes too (the controlling `run` is gone).
    #[arg(long)]
    control_stdin: bool,
    /// Check only the sender logs (the sink is checked on its own host): `--until eof` is
    /// reached when they are all at their end.
    #[arg(long)]
    senders_only: bool,
    /// Read no sender log (the senders are checked on their own hosts).
    #[arg(long, conflicts_with = "sender_logs")]
    no_sender_logs: bool,
    /// Run once through `sh -c` at the first finding, with SOAKCHECK_FINDING set to its JSON.
    #[arg(long, value_name = "CMD")]
    on_violation: Option<String>,
    /// Poll every DUR instead of using inotify (for file systems without it).
    #[arg(long, value_parser = soakcheck::duration::parse_duration)]
    poll: Option<std::time::Duration>,
    #[arg(long)]
    json: bool,
    #[arg(long, value_parser = choice::<IoMode>(), default_value_t = IoMode::Mmap, hide = true)]
    io: IoMode,
    /// Take the whole plan as JSON instead of the flags above: the JSON itself, or a
    /// FILE holding it (`run` hands its checkers on other hosts their part of its own
    /// plan this way).
    #[arg(long, value_name = "JSON|FILE")]
    plan: Option<String>,
}

#[derive(Args)]
struct RunArgs {
    /// Workers in the initial cluster (1..=9).
    #[arg(default_value = "")]
    num_workers: String,
    /// The original master-crasher arguments: crash-sink, crash-source, crashN, crashN.slow,
    /// grow, shrink, grow-and-shrink, pause, no-ack-progress, no-registry-progress,
    /// no-sanity, no-clean-old-gzip-files, reset-only, run_customX.
    args: Vec<String>,
    /// A TOML scenario file (workers, args, seed, timings, command templates, steps).
    #[arg(long, value_name = "FILE.toml")]
    scenario: Option<PathBuf>,
    #[arg(long, value_parser = choice::<PresetKind>(), default_value_t = PresetKind::Demo)]
    preset: PresetKind,
    /// Input bytes per key (demo preset; 4,000,000 gives the original 12,368,938-byte files).
    #[arg(long, value_name = "N", default_value_t = 4_000_000)]
    bytes_per_key: u64,
    /// Bytes per second per sender (demo preset).
    #[arg(long, default_value_t = 66_000)]
    rate: u64,
    /// Keys (default $MULTIPLE_KEYS_LIST, else A..J).
    #[arg(long, value_name = "A,B,C")]
    keys: Option<String>,
    /// The seed of every random choice (printed at start); default: from the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// Repeat the fault schedule of a previous run's events.jsonl.
    #[arg(long, value_name = "events.jsonl")]
    replay: Option<PathBuf>,
    /// Where inputs, logs, the sink directory and state go (the original used /tmp).
    #[arg(long, value_name = "DIR", default_value = "/tmp")]
    run_dir: PathBuf,
    #[arg(long, value_parser = choice::<OnViolation>(), default_value_t = OnViolation::Freeze)]
    on_violation: OnViolation,
    /// Stop with success after this long (default: at EOF of every sender).
    #[arg(long, value_parser = soakcheck::duration::parse_duration)]
    duration: Option<std::time::Duration>,
    /// Multiply every chaos timing (0.25 = four times as many faults).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    #[arg(long, value_parser = soakcheck::duration::parse_duration, default_value = "1s")]
    checkpoint_interval: std::time::Duration,
    #[arg(long, value_parser = soakcheck::duration::parse_duration, default_value = "180s")]
    ack_timeout: std::time::Duration,
    /// Serve the live report at PORT or HOST:PORT (127.0.0.1 when only a port is given)
    /// while the soak runs; it re-renders from the run directory as it grows.
    #[arg(long, value_name = "ADDR", value_parser = soakcheck::report::serve::parse_addr)]
    serve: Option<std::net::SocketAddr>,
    /// The demo ports: source WALLAROO_IN_BASE (+1 control, +3 external, +100 sink);
    /// default from the WALLAROO_* variables, else 7100.
    #[arg(long)]
    port_base: Option<u16>,
    /// Use the scenario file's command templates instead of local processes.
    #[arg(long)]
    command_driver: bool,
    /// Earlier runs that ended green (or were stopped) kept in RUN_DIR/soakcheck-runs;
    /// runs that found something are always kept (`reset --purge` deletes them).
    #[arg(long, value_name = "N", default_value_t = soakcheck::driver::kept::DEFAULT_KEEP)]
    keep_runs: usize,
    /// Make one demo worker inject a fault (for testing the checks).
    #[arg(long, value_parser = choice::<InjectKind>(), requires = "inject_key")]
    inject: Option<InjectKind>,
    #[arg(long, value_name = "LINES", default_value_t = 100)]
    inject_after: u64,
    #[arg(long, value_name = "K")]
    inject_key: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ResetArgs {
    #[arg(long, value_name = "DIR", default_value = "/tmp")]
    run_dir: PathBuf,
    /// Earlier runs that ended green (or were stopped) kept in RUN_DIR/soakcheck-runs.
    #[arg(long, value_name = "N", default_value_t = soakcheck::driver::kept::DEFAULT_KEEP)]
    keep_runs: usize,
    /// Then delete every kept run in RUN_DIR/soakcheck-runs (the one just kept too).
    #[arg(long)]
    purge: bool,
}

#[derive(Subcommand)]
enum GenCommand {
    /// Input files in the original layout: the key, then `od -x` lines of N bytes.
    Inputs(GenInputsArgs),
    /// A sink directory in the real format, with rollbacks, crashes, a leaving worker,
    /// uncommitted tails and a torn txnlog line (and optionally one injected fault).
    Sink(GenSinkArgs),
}

#[derive(Args)]
struct GenInputsArgs {
    /// Keys, comma-separated. Default: $MULTIPLE_KEYS_LIST, else A..J.
    #[arg(long, value_name = "A,B,C")]
    keys: Option<String>,
    /// Binary bytes per key before the `od -x` layout (4,000,000 gives 12,368,938-byte files).
    #[arg(long, value_name = "N", default_value_t = 4_000_000)]
    bytes: u64,
    /// Where to write input-file.K.txt.
    #[arg(long, value_name = "DIR", default_value = "/tmp")]
    dir: PathBuf,
    /// Seed of the pseudo-random data.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Take the data from the first N bytes of FILE instead (the same for every key).
    #[arg(long, value_name = "FILE")]
    source: Option<PathBuf>,
}

#[derive(Args)]
struct GenSinkArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The sink directory to create (must be absent or empty).
    #[arg(long, value_name = "DIR")]
    sink_dir: PathBuf,
    /// Number of workers (initializer, worker1, ...).
    #[arg(long, value_name = "N", default_value_t = 3)]
    workers: usize,
    /// Inject one fault into the committed output of --key.
    #[arg(long, value_parser = choice::<FaultKind>(), requires = "key")]
    fault: Option<FaultKind>,
    /// The key that gets the fault.
    #[arg(long, value_name = "K", requires = "fault")]
    key: Option<String>,
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// The mean number of consecutive lines of one key in a worker's output (real sinks
    /// interleave their keys every line or two).
    #[arg(long, value_name = "LINES", default_value_t = soakcheck::gen::sink::REALISTIC_INTERLEAVE)]
    interleave: f64,
}

#[derive(Subcommand)]
enum BenchCommand {
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
struct BenchProxyArgs {
    /// Bytes per transfer.
    #[arg(long, value_name = "N", default_value_t = 1_000_000_000, value_parser = plans::positive_bytes)]
    bytes: u64,
    /// Transfers of each kind (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BenchWatchArgs {
    #[arg(long, default_value_t = 10, value_parser = plans::key_count)]
    keys: usize,
    #[arg(long, default_value_t = 3, value_parser = plans::worker_count)]
    workers: usize,
    /// Committed bytes to append in all (default 1 GB).
    #[arg(long, value_name = "N", default_value_t = 1_000_000_000, value_parser = plans::positive_bytes)]
    total_bytes: u64,
    #[arg(long, value_name = "N", default_value_t = 65_536, value_parser = plans::positive_bytes)]
    commit_bytes: u64,
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BenchDemoArgs {
    #[arg(long, default_value_t = 10, value_parser = plans::key_count)]
    keys: usize,
    #[arg(long, default_value_t = 3, value_parser = plans::worker_count)]
    workers: usize,
    /// Binary bytes per key [default: 4000000; with --proxy 40000000].
    #[arg(long, value_name = "N", value_parser = plans::positive_bytes)]
    bytes_per_key: Option<u64>,
    /// [default: 1s; with --proxy 200ms].
    #[arg(long, value_parser = soakcheck::duration::parse_duration)]
    checkpoint_interval: Option<std::time::Duration>,
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Also run every link through the fault proxy (no fault applied) and report the
    /// proxied throughput as a ratio to the direct one.
    #[arg(long)]
    proxy: bool,
    /// With --proxy: pairs of runs (direct, then proxied); medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BenchVerifyArgs {
    /// Number of keys (A, B, ...).
    #[arg(long, default_value_t = 10, value_parser = plans::key_count)]
    keys: usize,
    #[arg(long, value_name = "N", default_value_t = 4_000_000, value_parser = plans::positive_bytes)]
    bytes_per_key: u64,
    #[arg(long, default_value_t = 3, value_parser = plans::worker_count)]
    workers: usize,
    /// Timed runs of each command (the median is reported).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Keep the generated data here instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Verify(args) => return run_verify(args),
        Command::Watch(args) => return run_watch_command(args),
        Command::Run(args) => return run_run_command(args),
        Command::Reset(args) => run_reset(&args),
        Command::Report(args) => return run_report(args),
        Command::Proxy(args) => run_proxy(args),
        Command::Gen(GenCommand::Inputs(args)) => run_gen_inputs(args),
        Command::Gen(GenCommand::Sink(args)) => run_gen_sink(args),
        Command::Bench(BenchCommand::Verify(args)) => {
            let out = &mut std::io::stdout();
            return conclude(run_bench_verify(&args), format(args.json), out, None);
        }
        Command::Bench(BenchCommand::Demo(args)) => {
            let out = &mut std::io::stdout();
            return conclude(run_bench_demo(&args), format(args.json), out, None);
        }
        Command::Bench(BenchCommand::Proxy(args)) => {
            let plan = soakcheck::proxy::bench::BenchProxyPlan {
                bytes: args.bytes,
                runs: args.runs,
            };
            let report = soakcheck::proxy::bench::bench_proxy(&plan).map_err(anyhow::Error::from);
            return conclude(report, format(args.json), &mut std::io::stdout(), None);
        }
        Command::Bench(BenchCommand::Watch(args)) => {
            let out = &mut std::io::stdout();
            return conclude(run_bench_watch(&args), format(args.json), out, None);
        }
        Command::Demo(DemoCommand::Sink(args)) => run_demo_sink(args),
        Command::Demo(DemoCommand::Worker(args)) => run_demo_worker(args),
        Command::Demo(DemoCommand::Feed(args)) => return run_demo_feed(args),
        Command::Demo(DemoCommand::Cluster(args)) => return run_demo_cluster(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soakcheck: error: {}", soakcheck::error_text(e.as_ref()));
            ExitCode::from(EXIT_ERROR as u8)
        }
    }
}

/// The keys and inputs `--keys`, `--input` and `MULTIPLE_KEYS_LIST` name.
fn key_selection(args: &InputArgs) -> Result<KeySelection, plans::PlanError> {
    let env = std::env::var("MULTIPLE_KEYS_LIST").ok();
    plans::key_selection(args.keys.as_deref(), &args.inputs, env)
}

/// `--keys` (or `MULTIPLE_KEYS_LIST`, or the original ten).
fn keys_or_default(keys: Option<&str>) -> Result<Vec<u8>, plans::PlanError> {
    plans::keys_or_default(keys, std::env::var("MULTIPLE_KEYS_LIST").ok())
}

fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Human text (colored on a terminal) or JSON.
fn format(json: bool) -> Format {
    if json {
        Format::Json
    } else {
        Format::Human { color: use_color() }
    }
}

/// Shows an outcome on `out`, or its error on stderr (and, with `--json`, a JSON error
/// document of `semantics` on `out`), and returns the exit status: the one place where
/// outcomes become text and exit statuses.
fn conclude<O: Outcome>(
    result: anyhow::Result<O>,
    format: Format,
    out: &mut dyn Write,
    semantics: Option<Semantics>,
) -> ExitCode {
    match result {
        Ok(outcome) => {
            let _ = out.write_all(outcome.render(format).as_bytes());
            ExitCode::from(outcome.exit_code() as u8)
        }
        Err(e) => {
            let message = soakcheck::error_text(e.as_ref());
            eprintln!("soakcheck: error: {message}");
            if let (Format::Json, Some(semantics)) = (format, semantics) {
                let _ = writeln!(out, "{}", Report::error(semantics, message).to_json());
            }
            ExitCode::from(EXIT_ERROR as u8)
        }
    }
}

fn run_verify(args: VerifyArgs) -> ExitCode {
    let semantics = args.semantics;
    let result = (|| -> anyhow::Result<Report> {
        let plan = plans::verify_plan(
            &key_selection(&args.input)?,
            &args.input.input_dir,
            args.sink_dir,
            args.plain_output,
            args.expect_complete,
            semantics,
            args.io,
        )?;
        Ok(verify(&plan)?)
    })();
    conclude(
        result,
        format(args.json),
        &mut std::io::stdout(),
        Some(semantics),
    )
}

fn run_reset(args: &ResetArgs) -> anyhow::Result<()> {
    for line in soakcheck::driver::run::reset(&args.run_dir, args.keep_runs)? {
        println!("{line}");
    }
    if args.purge {
        for line in soakcheck::driver::kept::purge(&args.run_dir) {
            println!("{line}");
        }
    }
    Ok(())
}

fn run_proxy(args: ProxyArgs) -> anyhow::Result<()> {
    let control = args
        .control
        .map(|addr| plans::control_addr(addr, args.allow_remote_control))
        .transpose()?;
    let proxy = std::sync::Arc::new(soakcheck::proxy::Proxy::start(args.links, args.seed)?);
    for l in proxy.status() {
        println!("link {}: {} -> {}", l.name, l.listen, l.upstream);
    }
    if let Some(addr) = control {
        let bound = soakcheck::proxy::control::serve(std::sync::Arc::clone(&proxy), addr)
            .with_context(|| format!("the control interface on {addr}"))?;
        println!("control: http://{bound}/links (Ctrl-C to stop)");
    }
    soakcheck::report::serve::wait_for_interrupt()?;
    Ok(())
}

fn run_report(args: ReportArgs) -> ExitCode {
    let result = (|| -> anyhow::Result<i32> {
        let env = std::env::var("MULTIPLE_KEYS_LIST").ok();
        let plan = soakcheck::report::ReportPlan {
            source: args.path,
            unpack_limit: args.unpack_limit,
            input_dir: args.input_dir,
            output: args.output,
            keys: plans::key_selection(args.keys.as_deref(), &args.inputs, env)?,
            semantics: args.semantics,
            expect_complete: args.expect_complete,
        };
        let (files, out, _unpacked) = soakcheck::report::locate(&plan)?;
        if let Some(addr) = args.serve {
            let label = files.label.clone();
            let server = soakcheck::report::serve::Server::start(addr, files, plan)
                .with_context(|| format!("serving on {addr}"))?;
            println!(
                "serving the report of {label} at http://{}/ (Ctrl-C to stop)",
                server.addr()
            );
            soakcheck::report::serve::wait_for_interrupt()?;
            return Ok(0);
        }
        let written = soakcheck::report::write_report(&files, &plan, &out)?;
        if let Some(why) = &written.error {
            eprintln!("soakcheck: error: {why}");
        }
        println!(
            "report: {} ({} bytes, verdict {})",
            out.display(),
            written.bytes,
            written.verdict.as_str()
        );
        Ok(written.verdict.exit_code())
    })();
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("soakcheck: error: {}", soakcheck::error_text(e.as_ref()));
            ExitCode::from(EXIT_ERROR as u8)
        }
    }
}

fn run_gen_inputs(args: GenInputsArgs) -> anyhow::Result<()> {
    let keys = keys_or_default(args.keys.as_deref())?;
    let source = match args.source {
        Some(path) => DataSource::File(path),
        None => DataSource::Seeded(args.seed),
    };
    for path in generate_inputs(&keys, args.bytes, &args.dir, &source)? {
        println!("{}", path.display());
    }
    Ok(())
}

fn run_gen_sink(args: GenSinkArgs) -> anyhow::Result<()> {
    let inputs = select_inputs(&key_selection(&args.input)?, &args.input.input_dir)?;
    let fault = match (args.fault, args.key) {
        (Some(kind), Some(key)) => Some((kind, parse_key(&key).map_err(anyhow::Error::msg)?)),
        _ => None,
    };
    let plan = GenSinkPlan {
        inputs,
        sink_dir: args.sink_dir,
        workers: args.workers,
        fault,
        seed: args.seed,
        interleave: args.interleave,
    };
    let summary = generate_sink(&plan)?;
    println!(
        "wrote {} with {} commits, {} committed bytes",
        plan.sink_dir.display(),
        summary.commits,
        summary.committed_bytes
    );
    if let Some((key, offset)) = summary.fault_at {
        let path = plan
            .inputs
            .iter()
            .find(|k| k.key == key)
            .map_or_else(|| input_path(&plan.sink_dir, key), |k| k.path.clone());
        println!(
            "injected {:?} into key {} at input offset {offset} of {}",
            args.fault.expect("fault"),
            key as char,
            path.display()
        );
    }
    Ok(())
}

fn run_bench_verify(args: &BenchVerifyArgs) -> anyhow::Result<BenchVerifyReport> {
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

fn run_demo_sink(args: DemoSinkArgs) -> anyhow::Result<()> {
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
    })
    .with_context(|| format!("sink on port {}", args.port))
}

fn run_demo_worker(args: DemoWorkerArgs) -> anyhow::Result<()> {
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

fn run_demo_feed(args: DemoFeedArgs) -> ExitCode {
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

fn run_demo_cluster(args: DemoClusterArgs) -> ExitCode {
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
        let dir = match args.dir {
            Some(d) => d,
            None => {
                let d =
                    std::env::temp_dir().join(format!("soakcheck-cluster-{}", std::process::id()));
                std::fs::create_dir_all(&d)?;
                d
            }
        };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let stop = std::sync::Arc::clone(&stop);
            let _ =
                ctrlc::set_handler(move || stop.store(true, std::sync::atomic::Ordering::SeqCst));
        }
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
            given_inputs: None,
        };
        Ok(run_cluster(&plan, &stop, &mut |m| eprintln!("cluster: {m}"))?.report)
    })();
    conclude(result, format(args.json), &mut std::io::stdout(), None)
}

fn run_bench_demo(args: &BenchDemoArgs) -> anyhow::Result<BenchDemoReport> {
    let (bytes_per_key, checkpoint_interval) = soakcheck::bench::demo_defaults(args.proxy);
    let plan = BenchDemoPlan {
        keys: args.keys,
        workers: args.workers,
        bytes_per_key: args.bytes_per_key.unwrap_or(bytes_per_key),
        checkpoint_interval: args.checkpoint_interval.unwrap_or(checkpoint_interval),
        exe: std::env::current_exe().context("locating the soakcheck binary")?,
        dir: args.dir.clone(),
        proxy: args.proxy,
        runs: args.runs,
    };
    Ok(bench_demo(&plan, &mut |m| eprintln!("bench: {m}"))?)
}

/// `--control-stdin`: control lines from stdin as messages; end of input finishes.
fn read_control_stdin() -> crossbeam_channel::Receiver<soakcheck::watch::Control> {
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if let Some(c) = soakcheck::watch::Control::parse(&line) {
                let _ = tx.send(c);
            }
        }
        let _ = tx.send(soakcheck::watch::Control::Finish);
    });
    rx
}

fn run_watch_command(args: WatchArgs) -> ExitCode {
    let semantics = args.semantics;
    let plan_events = args
        .plan
        .as_deref()
        .and_then(|p| plans::read_watch_plan(p).ok())
        .and_then(|p| p.events);
    let events_on_stdout =
        args.events.as_deref().or(plan_events.as_deref()) == Some(std::path::Path::new("-"));
    let result = (|| -> anyhow::Result<soakcheck::watch::WatchOutcome> {
        let plan = match &args.plan {
            Some(plan) => plans::read_watch_plan(plan)?,
            None => watch_plan_of(&args)?,
        };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let stop = std::sync::Arc::clone(&stop);
            let _ =
                ctrlc::set_handler(move || stop.store(true, std::sync::atomic::Ordering::SeqCst));
        }
        let control = args.control_stdin.then(read_control_stdin);
        let mut progress_out = std::io::stderr();
        Ok(run_watch_controlled(
            &plan,
            &stop,
            control.as_ref(),
            &mut progress_out,
        )?)
    })();
    if !args.json {
        // End the progress line.
        eprintln!();
    }
    // With the events on stdout, the report goes to stderr.
    let mut out: Box<dyn Write> = if events_on_stdout {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    conclude(result, format(args.json), &mut out, Some(semantics))
}

/// The watch plan `watch`'s flags make.
fn watch_plan_of(args: &WatchArgs) -> anyhow::Result<soakcheck::watch::WatchPlan> {
    let verify = plans::verify_plan(
        &key_selection(&args.input)?,
        &args.input.input_dir,
        Some(args.sink_dir.clone()),
        vec![],
        false,
        args.semantics,
        args.io,
    )?;
    let progress = if std::io::stderr().is_terminal() {
        ProgressStyle::StatusLine
    } else {
        ProgressStyle::Terse
    };
    let request = plans::WatchRequest {
        sender_logs: match (args.no_sender_logs, args.sender_logs.is_empty()) {
            (true, _) => plans::SenderLogs::NoneHere,
            (false, true) => plans::SenderLogs::InDir(args.sender_log_dir.clone()),
            (false, false) => plans::SenderLogs::Given(args.sender_logs.clone()),
        },
        sink_log: args.sink_log.clone(),
        ack_timeout: args.ack_timeout,
        registry_window: args.registry_window,
        until: args.until,
        timeout: args.timeout,
        events: args.events.clone(),
        on_violation: args.on_violation.clone(),
        poll: args.poll,
        progress,
        sink: if args.senders_only {
            SinkScope::Elsewhere
        } else {
            SinkScope::Here
        },
    };
    Ok(plans::watch_plan(verify, request)?)
}

fn run_bench_watch(args: &BenchWatchArgs) -> anyhow::Result<BenchWatchReport> {
    let plan = BenchWatchPlan {
        keys: args.keys,
        workers: args.workers,
        total_bytes: args.total_bytes,
        commit_bytes: args.commit_bytes,
        dir: args.dir.clone(),
    };
    Ok(bench_watch(&plan, &mut |m| eprintln!("bench: {m}"))?)
}

fn run_run_command(args: RunArgs) -> ExitCode {
    let json = args.json;
    let result = (|| -> anyhow::Result<soakcheck::driver::run::RunSummary> {
        let scenario = Scenario::parse(&args.num_workers, &args.args, args.scenario.as_deref())?;
        let mut driver =
            soakcheck::driver::make_driver(&scenario, args.command_driver, &args.run_dir)?;
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
                .zip(args.inject_key)
                .map(|(kind, key)| (kind, args.inject_after, key)),
            exe: std::env::current_exe().context("locating the soakcheck binary")?,
            env: std::env::vars().collect(),
            time_scale: args.time_scale,
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

/// A flag's parser for a library [`Choice`]: its names are the possible values, each
/// with its help.
fn choice<T: Choice + Clone + Send + Sync>() -> impl clap::builder::TypedValueParser<Value = T> {
    let values = T::CHOICES
        .iter()
        .map(|(_, name, help)| clap::builder::PossibleValue::new(*name).help(*help));
    clap::builder::TypedValueParser::map(
        clap::builder::PossibleValuesParser::new(values),
        |name: String| T::from_name(&name).expect("clap accepts only the listed names"),
    )
}
