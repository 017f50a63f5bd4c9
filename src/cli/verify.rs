//! `soakcheck verify`: check a saved sink directory offline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use soakcheck::formats::mapped::IoMode;
use soakcheck::plans;
use soakcheck::verify::{verify, Report, Semantics};

use super::{choice, conclude, format, key_selection, InputArgs};

#[derive(Args)]
pub struct VerifyArgs {
    /// The sink directory (output.<worker> and output.<worker>.txnlog files).
    #[arg(long, value_name = "DIR")]
    pub sink_dir: Option<PathBuf>,
    #[command(flatten)]
    pub input: InputArgs,
    /// Each key's committed output must be its whole input, not just a prefix.
    #[arg(long)]
    pub expect_complete: bool,
    /// What the system promises.
    #[arg(long, value_parser = choice::<Semantics>(), default_value_t = Semantics::ExactlyOnce)]
    pub semantics: Semantics,
    /// A plain newline-delimited output file with no txnlog, treated as fully committed
    /// (repeatable). Without --sink-dir, only these are read.
    #[arg(long, value_name = "FILE")]
    pub plain_output: Vec<PathBuf>,
    /// Print exactly one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// How files are read (both give the same verdict; mmap is faster).
    #[arg(long, value_parser = choice::<IoMode>(), default_value_t = IoMode::Mmap, hide = true)]
    pub io: IoMode,
}

pub fn run_verify(args: VerifyArgs) -> ExitCode {
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
