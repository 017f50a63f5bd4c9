//! `soakcheck report`: the post-mortem page, written or served.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use soakcheck::outcome::EXIT_ERROR;
use soakcheck::plans;
use soakcheck::verify::Semantics;

use super::choice;

#[derive(Args)]
pub struct ReportArgs {
    /// A run directory, a post-mortem .tar.gz bundle, or a sink directory (with --input-dir).
    pub path: PathBuf,
    /// Where the page goes: `-` is standard output (default: PATH/report.html; ./NAME.html for a bundle NAME.tar.gz, so a run's own report.html is never replaced).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Directory of the input files (default: the run directory).
    #[arg(long, value_name = "DIR")]
    pub input_dir: Option<PathBuf>,
    /// Key K's input file (repeatable).
    #[arg(long = "input", value_name = "K=PATH")]
    pub inputs: Vec<String>,
    /// Keys to check, comma-separated (default: the run's, else every input file's).
    #[arg(long, value_name = "A,B,C")]
    pub keys: Option<String>,
    /// Each key's committed output must be its whole input, not just a prefix.
    #[arg(long)]
    pub expect_complete: bool,
    #[arg(long, value_parser = choice::<Semantics>(), default_value_t = Semantics::ExactlyOnce)]
    pub semantics: Semantics,
    /// Serve the page at PORT or HOST:PORT (127.0.0.1 when only a port is given),
    /// re-rendered as the files grow, until Ctrl-C; nothing is written.
    #[arg(long, value_name = "ADDR", value_parser = soakcheck::report::serve::parse_addr)]
    pub serve: Option<std::net::SocketAddr>,
    /// The most a post-mortem bundle may unpack to, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = soakcheck::report::UNPACK_LIMIT, value_parser = plans::positive_bytes)]
    pub unpack_limit: u64,
}

pub fn run_report(args: ReportArgs) -> ExitCode {
    let result = (|| -> anyhow::Result<i32> {
        let env = std::env::var("MULTIPLE_KEYS_LIST").ok();
        let plan = soakcheck::report::ReportPlan {
            source: args.path,
            unpack_limit: args.unpack_limit,
            input_dir: args.input_dir,
            output: args.output.map(|o| {
                if o.as_os_str() == "-" {
                    "/dev/stdout".into()
                } else {
                    o
                }
            }),
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
        let said = format!(
            "report: {} ({} bytes, verdict {})",
            out.display(),
            written.bytes,
            written.verdict.as_str()
        );
        // A page written to standard output (`-o -`), a pipe or a terminal keeps standard
        // output its own.
        match std::fs::metadata(&out) {
            Ok(m) if m.is_file() && out != std::path::Path::new("/dev/stdout") => {
                println!("{said}")
            }
            _ => eprintln!("{said}"),
        }
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
