//! The `soakcheck` binary: parses the command line, validates it into a plan, calls the
//! library, and maps the outcome to an exit status. Exit statuses (also in README.md):
//! 0 = every check passed, 1 = a violation was found, 2 = could not check (bad input, a
//! missing or unreadable file, bad usage).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use soakcheck::bench::{bench_verify, BenchVerifyPlan};
use soakcheck::formats::input::input_path;
use soakcheck::formats::mapped::IoMode;
use soakcheck::gen::inputs::{generate_inputs, DataSource};
use soakcheck::gen::sink::{generate_sink, FaultKind, GenSinkPlan};
use soakcheck::verify::{
    parse_key, select_inputs, verify, KeySelection, Report, Semantics, VerifyPlan,
};

const EXIT_ERROR: u8 = 2;

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
    /// Generate input files or a sink directory.
    #[command(subcommand)]
    Gen(GenCommand),
    /// Measure throughput.
    #[command(subcommand)]
    Bench(BenchCommand),
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
    #[arg(long, value_enum, default_value_t = Semantics::ExactlyOnce)]
    semantics: Semantics,
    /// A plain newline-delimited output file with no txnlog, treated as fully committed
    /// (repeatable). Without --sink-dir, only these are read.
    #[arg(long, value_name = "FILE")]
    plain_output: Vec<PathBuf>,
    /// Print exactly one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// How files are read (both give the same verdict; mmap is faster).
    #[arg(long, value_enum, default_value_t = IoMode::Mmap, hide = true)]
    io: IoMode,
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
    #[arg(long, value_enum, requires = "key")]
    fault: Option<FaultKind>,
    /// The key that gets the fault.
    #[arg(long, value_name = "K", requires = "fault")]
    key: Option<String>,
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time verify against `cmp` of the same number of bytes.
    Verify(BenchVerifyArgs),
}

#[derive(Args)]
struct BenchVerifyArgs {
    /// Number of keys (A, B, ...).
    #[arg(long, default_value_t = 10)]
    keys: usize,
    #[arg(long, value_name = "N", default_value_t = 4_000_000)]
    bytes_per_key: u64,
    #[arg(long, default_value_t = 3)]
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
        Command::Gen(GenCommand::Inputs(args)) => run_gen_inputs(args),
        Command::Gen(GenCommand::Sink(args)) => run_gen_sink(args),
        Command::Bench(BenchCommand::Verify(args)) => run_bench_verify(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soakcheck: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn key_selection(args: &InputArgs) -> anyhow::Result<KeySelection> {
    let overrides = args
        .inputs
        .iter()
        .map(|spec| {
            let (key, path) = spec
                .split_once('=')
                .with_context(|| format!("--input {spec:?}: expected K=PATH"))?;
            let key = parse_key(key).map_err(|e| anyhow::anyhow!("--input {spec:?}: {e}"))?;
            Ok((key, PathBuf::from(path)))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(KeySelection {
        keys: args.keys.clone(),
        env_keys: std::env::var("MULTIPLE_KEYS_LIST").ok(),
        overrides,
    })
}

fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn run_verify(args: VerifyArgs) -> ExitCode {
    let semantics = args.semantics;
    let json = args.json;
    let plan = (|| -> anyhow::Result<VerifyPlan> {
        let inputs = select_inputs(&key_selection(&args.input)?, &args.input.input_dir)?;
        // Without --sink-dir, only --plain-output files are read (if any were given).
        let sink_dir = match (args.sink_dir, args.plain_output.is_empty()) {
            (Some(dir), _) => Some(dir),
            (None, true) => Some(PathBuf::from("/tmp/sink-out")),
            (None, false) => None,
        };
        Ok(VerifyPlan {
            sink_dir,
            plain_outputs: args.plain_output,
            inputs,
            expect_complete: args.expect_complete,
            semantics,
            io: args.io,
        })
    })();
    let report = plan.and_then(|plan| verify(&plan).map_err(anyhow::Error::from));
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            let message = format!("{e:#}");
            eprintln!("soakcheck: error: {message}");
            if json {
                println!("{}", Report::error(semantics, message).to_json());
            }
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let text = if json {
        report.to_json() + "\n"
    } else {
        report.to_human(use_color())
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::from(report.verdict.exit_code() as u8)
}

fn keys_or_default(keys: Option<String>) -> anyhow::Result<Vec<u8>> {
    let (text, sep) = match keys {
        Some(k) => (k, ','),
        None => match std::env::var("MULTIPLE_KEYS_LIST") {
            Ok(k) if !k.trim().is_empty() => (k, ' '),
            _ => ("A,B,C,D,E,F,G,H,I,J".to_string(), ','),
        },
    };
    let keys: Vec<u8> = text
        .split(sep)
        .filter(|k| !k.trim().is_empty())
        .map(|k| parse_key(k.trim()).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    if keys.is_empty() {
        bail!("no keys given");
    }
    Ok(keys)
}

fn run_gen_inputs(args: GenInputsArgs) -> anyhow::Result<()> {
    let keys = keys_or_default(args.keys)?;
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

fn run_bench_verify(args: BenchVerifyArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the soakcheck binary")?;
    let plan = BenchVerifyPlan {
        keys: args.keys,
        bytes_per_key: args.bytes_per_key,
        workers: args.workers,
        runs: args.runs,
        dir: args.dir,
        exe,
    };
    let report = bench_verify(&plan, &mut |msg| eprintln!("bench: {msg}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_human());
    }
    Ok(())
}
