//! The command line, one module per subcommand (its arguments and its handler), and
//! what they share: the input selection flags, output format and the one place where
//! outcomes become text and exit statuses.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use soakcheck::choice::Choice;
use soakcheck::outcome::{Format, Outcome, EXIT_ERROR};
use soakcheck::plans;
use soakcheck::verify::{KeySelection, Report, Semantics};

pub mod bench;
pub mod demo;
pub mod docs;
pub mod fs;
pub mod gen;
pub mod proxy;
pub mod report;
pub mod run;
pub mod verify;
pub mod watch;

#[derive(Args)]
pub struct InputArgs {
    /// Directory of the input files: key K's input is DIR/input-file.K.txt.
    #[arg(long, value_name = "DIR", default_value = "/tmp")]
    pub input_dir: PathBuf,
    /// Key K's input file (repeatable; overrides --input-dir for that key).
    #[arg(long = "input", value_name = "K=PATH")]
    pub inputs: Vec<String>,
    /// Keys to check, comma-separated. Default: $MULTIPLE_KEYS_LIST (space-separated), else
    /// every input-file.*.txt in --input-dir.
    #[arg(long, value_name = "A,B,C")]
    pub keys: Option<String>,
}

/// The keys and inputs `--keys`, `--input` and `MULTIPLE_KEYS_LIST` name.
pub fn key_selection(args: &InputArgs) -> Result<KeySelection, plans::PlanError> {
    let env = std::env::var("MULTIPLE_KEYS_LIST").ok();
    plans::key_selection(args.keys.as_deref(), &args.inputs, env)
}

/// `--keys` (or `MULTIPLE_KEYS_LIST`, or the original ten).
pub fn keys_or_default(keys: Option<&str>) -> Result<Vec<u8>, plans::PlanError> {
    plans::keys_or_default(keys, std::env::var("MULTIPLE_KEYS_LIST").ok())
}

pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Human text (colored on a terminal) or JSON.
pub fn format(json: bool) -> Format {
    if json {
        Format::Json
    } else {
        Format::Human { color: use_color() }
    }
}

/// Shows an outcome on `out`, or its error on stderr (and, with `--json`, a JSON error
/// document of `semantics` on `out`), and returns the exit status: the one place where
/// outcomes become text and exit statuses.
pub fn conclude<O: Outcome>(
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

/// A flag's parser for a library [`Choice`]: its names are the possible values, each
/// with its help.
pub fn choice<T: Choice + Clone + Send + Sync>() -> impl clap::builder::TypedValueParser<Value = T>
{
    let values = T::CHOICES
        .iter()
        .map(|(value, help)| clap::builder::PossibleValue::new(value.name()).help(*help));
    clap::builder::TypedValueParser::map(
        clap::builder::PossibleValuesParser::new(values),
        |name: String| T::from_name(&name).expect("clap accepts only the listed names"),
    )
}

/// A flag that SIGINT, SIGTERM or SIGHUP raises, for loops that end cleanly on it.
pub fn stop_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        // Without the handler the signal's default still stops the process.
        let _ = signal_hook::flag::register(signal, std::sync::Arc::clone(&stop));
    }
    stop
}

/// The exit status of a handler that prints its own output: 0, or its error on stderr
/// and 2.
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soakcheck: error: {}", soakcheck::error_text(e.as_ref()));
            ExitCode::from(EXIT_ERROR as u8)
        }
    }
}
