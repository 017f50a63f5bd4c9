//! The `soakcheck` binary: parses the command line and hands each subcommand to its
//! module in `cli/` (its arguments and its handler), which validates it into a plan,
//! calls the library, and maps the outcome to an exit status. Exit statuses (also in
//! README.md): 0 = every check passed, 1 = a violation was found, 2 = could not check
//! (bad input, a missing or unreadable file, bad usage).

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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
    Verify(cli::verify::VerifyArgs),
    /// Verify a live sink directory continuously, with sender-log progress checks;
    /// stop at the first violation.
    Watch(cli::watch::WatchArgs),
    /// The soak driver: start the system under test, crash, pause, grow and shrink it in
    /// loops, check everything in-process, and freeze the world at the first finding.
    #[command(after_long_help = soakcheck::driver::marks::help())]
    Run(cli::run::RunArgs),
    /// Stop everything a previous run started (on every host) and keep its evidence in
    /// RUN_DIR/soakcheck-runs/, deleting nothing (like reset.sh, which deleted it).
    Reset(cli::run::ResetArgs),
    /// A TCP fault proxy: forwards each link and partitions, resets, delays, throttles or
    /// slices it on request (loopback HTTP control, JSON).
    Proxy(cli::proxy::ProxyArgs),
    /// A FUSE filesystem over a directory that forgets what was never fsynced when told
    /// to cut the power, and injects disk errors (loopback HTTP control, JSON, or
    /// commands on stdin).
    Fs(cli::fs::FsArgs),
    /// A post-mortem page of a run directory, a post-mortem bundle or a sink directory:
    /// the verdict, a fault timeline, the violation in context and the logs around it.
    Report(cli::report::ReportArgs),
    /// Generate input files or a sink directory.
    #[command(subcommand)]
    Gen(cli::gen::GenCommand),
    /// Measure throughput.
    #[command(subcommand)]
    Bench(cli::bench::BenchCommand),
    /// The embedded system under test: sink, passthrough workers and feeds.
    #[command(subcommand)]
    Demo(cli::demo::DemoCommand),
    /// Write a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(cli::docs::CompletionsArgs),
    /// Write the man page (roff) to stdout, or every command's page into --dir.
    Man(cli::docs::ManArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Verify(args) => cli::verify::run_verify(args),
        Command::Watch(args) => cli::watch::run_watch_command(args),
        Command::Run(args) => cli::run::run_run_command(args),
        Command::Reset(args) => cli::exit(cli::run::run_reset(&args)),
        Command::Report(args) => cli::report::run_report(args),
        Command::Proxy(args) => cli::exit(cli::proxy::run_proxy(args)),
        Command::Fs(args) => cli::exit(cli::fs::run_fs(args)),
        Command::Gen(command) => cli::gen::run(command),
        Command::Bench(command) => cli::bench::run(command),
        Command::Demo(command) => cli::demo::run(command),
        Command::Completions(args) => cli::exit(cli::docs::completions(args, Cli::command())),
        Command::Man(args) => cli::exit(cli::docs::man(args, Cli::command())),
    }
}
