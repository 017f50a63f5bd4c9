//! `soakcheck watch`: check a live sink directory as commits land.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use soakcheck::formats::mapped::IoMode;
use soakcheck::plans;
use soakcheck::verify::Semantics;
use soakcheck::watch::{run_watch_controlled, ProgressStyle, SinkScope, Until};

use super::{choice, conclude, format, key_selection, InputArgs};

#[derive(Args)]
pub struct WatchArgs {
    /// The sink directory (default /tmp/sink-out).
    #[arg(long, value_name = "DIR", default_value = "/tmp/sink-out")]
    pub sink_dir: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    #[arg(long, value_parser = choice::<Semantics>(), default_value_t = Semantics::ExactlyOnce)]
    pub semantics: Semantics,
    /// Key K's sender log (repeatable); else DIR/sender.out.K for --sender-log-dir.
    #[arg(long = "sender-log", value_name = "K=PATH")]
    pub sender_logs: Vec<String>,
    #[arg(long, value_name = "DIR", default_value = "/tmp")]
    pub sender_log_dir: PathBuf,
    /// The sink's log (default SINK_DIR/stdout-stderr).
    #[arg(long, value_name = "PATH")]
    pub sink_log: Option<PathBuf>,
    /// Every sender log must show a new `acked ... is_open=True` line within this window.
    #[arg(long, value_parser = soakcheck::duration::parse_duration, default_value = "180s")]
    pub ack_timeout: std::time::Duration,
    /// Once a sender log has N `added Stream` lines, one of its last N must be open.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub registry_window: usize,
    #[arg(long, value_parser = choice::<Until>(), default_value_t = Until::Eof)]
    pub until: Until,
    /// Give up (exit 1, a `stalled` finding) when --until is not reached in time.
    #[arg(long, value_parser = soakcheck::duration::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Append one JSON object per line for every commit batch, finding and state change
    /// (`-`: to stdout, and the report to stderr; `run` reads remote checkers this way).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Read control lines on stdin: `fault SECONDS` (progress checks do not judge for that
    /// long), `finish`; end of input finishes too (the controlling `run` is gone).
    #[arg(long)]
    pub control_stdin: bool,
    /// Check only the sender logs (the sink is checked on its own host): `--until eof` is
    /// reached when they are all at their end.
    #[arg(long)]
    pub senders_only: bool,
    /// Read no sender log (the senders are checked on their own hosts).
    #[arg(long, conflicts_with = "sender_logs")]
    pub no_sender_logs: bool,
    /// Run once through `sh -c` at the first finding, with SOAKCHECK_FINDING set to its JSON.
    #[arg(long, value_name = "CMD")]
    pub on_violation: Option<String>,
    /// Poll every DUR instead of using inotify (for file systems without it).
    #[arg(long, value_parser = soakcheck::duration::parse_duration)]
    pub poll: Option<std::time::Duration>,
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_parser = choice::<IoMode>(), default_value_t = IoMode::Mmap, hide = true)]
    pub io: IoMode,
    /// Take the whole plan as JSON instead of the flags above: the JSON itself, or a
    /// FILE holding it (`run` hands its checkers on other hosts their part of its own
    /// plan this way).
    #[arg(long, value_name = "JSON|FILE")]
    pub plan: Option<String>,
}

/// `--control-stdin`: control lines from stdin as messages; end of input finishes.
pub fn read_control_stdin() -> crossbeam_channel::Receiver<soakcheck::watch::Control> {
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

pub fn run_watch_command(args: WatchArgs) -> ExitCode {
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
        let stop = super::stop_flag();
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
pub fn watch_plan_of(args: &WatchArgs) -> anyhow::Result<soakcheck::watch::WatchPlan> {
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
