//! `soakcheck gen`: input files and sink directories.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use soakcheck::formats::input::input_path;
use soakcheck::gen::inputs::{generate_inputs, DataSource};
use soakcheck::gen::sink::{generate_sink, FaultKind, GenSinkPlan};
use soakcheck::verify::{parse_key, select_inputs};

use super::{choice, key_selection, keys_or_default, InputArgs};

#[derive(Subcommand)]
pub enum GenCommand {
    /// Input files in the original layout: the key, then `od -x` lines of N bytes.
    Inputs(GenInputsArgs),
    /// A sink directory in the real format, with rollbacks, crashes, a leaving worker,
    /// uncommitted tails and a torn txnlog line (and optionally one injected fault).
    Sink(GenSinkArgs),
}

#[derive(Args)]
pub struct GenInputsArgs {
    /// Keys, comma-separated. Default: $MULTIPLE_KEYS_LIST, else A..J.
    #[arg(long, value_name = "A,B,C")]
    pub keys: Option<String>,
    /// Binary bytes per key before the `od -x` layout (4,000,000 gives 12,368,938-byte files).
    #[arg(long, value_name = "N", default_value_t = 4_000_000)]
    pub bytes: u64,
    /// Where to write input-file.K.txt.
    #[arg(long, value_name = "DIR", default_value = "/tmp")]
    pub dir: PathBuf,
    /// Seed of the pseudo-random data.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Take the data from the first N bytes of FILE instead (the same for every key).
    #[arg(long, value_name = "FILE")]
    pub source: Option<PathBuf>,
}

#[derive(Args)]
pub struct GenSinkArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The sink directory to create (must be absent or empty).
    #[arg(long, value_name = "DIR")]
    pub sink_dir: PathBuf,
    /// Number of workers (initializer, worker1, ...).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub workers: usize,
    /// Inject one fault into the committed output of --key.
    #[arg(long, value_parser = choice::<FaultKind>(), requires = "key")]
    pub fault: Option<FaultKind>,
    /// The key that gets the fault.
    #[arg(long, value_name = "K", requires = "fault")]
    pub key: Option<String>,
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// The mean number of consecutive lines of one key in a worker's output (real sinks
    /// interleave their keys every line or two).
    #[arg(long, value_name = "LINES", default_value_t = soakcheck::gen::sink::REALISTIC_INTERLEAVE)]
    pub interleave: f64,
    /// The mean bytes per commit (default: about 7,000 commits for 10 keys of the original
    /// inputs, about 18 KB each; a slow soak with one-second checkpoints commits a few KB).
    #[arg(long, value_name = "BYTES")]
    pub commit_bytes: Option<u64>,
}

pub fn run_gen_inputs(args: GenInputsArgs) -> anyhow::Result<()> {
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

pub fn run_gen_sink(args: GenSinkArgs) -> anyhow::Result<()> {
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
        commit_bytes: args.commit_bytes,
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

pub fn run(command: GenCommand) -> ExitCode {
    super::exit(match command {
        GenCommand::Inputs(args) => run_gen_inputs(args),
        GenCommand::Sink(args) => run_gen_sink(args),
    })
}
