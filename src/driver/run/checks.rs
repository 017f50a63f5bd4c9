//! Where the checks run and how: in-process beside the supervisor when the sink's files
//! are here, else `soakcheck watch --plan JSON --events -` on the sink's host, whose
//! events come back typed; either way one [`WatchPlan`] and one checker core.

use super::*;

/// `watch`'s checks on their own thread, as events, through watch's own loop (quiet
/// about progress during the recovery window after each fault) until `control` closes.
/// Returns what they verified.
pub(super) fn local_checks(
    watch_plan: &WatchPlan,
    inputs: &[FileBytes],
    events: Sender<CheckEvent>,
    control: Receiver<Control>,
) -> Result<CheckTotals, RunError> {
    let mut watcher = Watcher::new(watch_plan, inputs)?;
    let mut reported = 0;
    let mut completed = false;
    let mut next_status = Instant::now();
    // Only the control channel ends these checks: signals are the supervisor's.
    let never = std::sync::atomic::AtomicBool::new(false);
    watch_loop(
        &mut watcher,
        &never,
        Some(&control),
        &mut |watcher, outcome, progress| {
            if !progress.is_empty() {
                let _ = events.send(CheckEvent::Progress(progress));
            }
            let now = Instant::now();
            if now >= next_status {
                let _ = events.send(CheckEvent::Status(watcher.status_line(now)));
                next_status = now + Duration::from_millis(250);
            }
            for f in &watcher.findings()[reported..] {
                let _ = events.send(CheckEvent::Finding(f.clone()));
            }
            reported = watcher.findings().len();
            let acked = watcher.take_acks();
            if !acked.is_empty() {
                let _ = events.send(CheckEvent::Acked(acked));
            }
            if outcome == StepOutcome::Succeeded && !completed {
                completed = true;
                let _ = events.send(CheckEvent::Complete);
            }
            LoopFlow::Continue
        },
    )?;
    Ok(final_totals(watcher, reported, &events))
}

/// What the checks verified, once they end: the final pass's findings go to `events`
/// (`reported` were sent live).
fn final_totals(watcher: Watcher<'_>, reported: usize, events: &Sender<CheckEvent>) -> CheckTotals {
    // A power cut may have taken back commits verified before it: they were verified.
    let (commits_before, bytes_before) = watcher.verified_before_cut();
    let commits = (watcher.core.log.commits.len() as u64).max(commits_before);
    let outcome: WatchOutcome = match watcher.finish() {
        Ok(outcome) => outcome,
        // Nothing could be verified now: the run's summary says so from the totals.
        Err(_) => {
            return CheckTotals {
                commits: commits_before,
                bytes_verified: bytes_before,
                ..CheckTotals::default()
            }
        }
    };
    // What the final full pass found after the soak stopped reading events: the run
    // collects it from the channel once the checks are joined.
    for f in &outcome.findings[reported..] {
        let _ = events.send(CheckEvent::Finding(f.clone()));
    }
    let bytes_verified: u64 = outcome.report.keys.iter().map(|k| k.verified_bytes).sum();
    CheckTotals {
        commits,
        bytes_verified: bytes_verified.max(bytes_before),
        unverified: crate::watch::unverified_keys(&outcome.report),
        undetermined: crate::watch::undetermined_keys(&outcome.report),
    }
}

/// One checker on another host: where it runs, and its command line, which carries
/// what it checks (its part of the run's one watch plan, as `watch --plan JSON`).
pub(super) struct RemoteChecker {
    /// A component on its host (the driver runs the command there).
    pub(super) on: Component,
    pub(super) label: String,
    pub(super) argv: Vec<String>,
}

/// The checkers a run needs on other hosts: one on the sink's host (the sink directory,
/// the sink log, and the senders on that host), and one on every other host with
/// senders, for their logs only. Each runs its part of `w`, the plan the in-process
/// checks run, sent whole as JSON: the checks a scenario switches off (`no-sanity`,
/// `no-ack-progress`, `no-registry-progress`) and every limit are the same wherever
/// they run.
pub(super) fn remote_checkers(plan: &RunPlan, w: &WatchPlan) -> Vec<RemoteChecker> {
    let p = &plan.preset;
    let sink_host = p.host(&Component::Sink).to_string();
    let mut by_host: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for &k in &p.keys {
        by_host
            .entry(p.host(&Component::Sender(k)).to_string())
            .or_default()
            .push(k as u8);
    }
    let all: Vec<u8> = p.keys.iter().map(|&k| k as u8).collect();
    let argv = |keys: &[u8], senders: &[u8], sink| {
        let part = w.for_checker(keys, senders, sink);
        vec![
            p.exe.display().to_string(),
            "watch".to_string(),
            "--plan".to_string(),
            serde_json::to_string(&part).expect("a plan serializes"),
            "--control-stdin".to_string(),
        ]
    };
    let here = by_host.get(&sink_host).map_or(&[][..], |v| &v[..]);
    let mut checkers = vec![RemoteChecker {
        on: Component::Sink,
        label: format!("{sink_host} (the sink's host)"),
        argv: argv(&all, here, crate::watch::SinkScope::Here),
    }];
    for (host, keys) in by_host.iter().filter(|(h, _)| **h != sink_host) {
        checkers.push(RemoteChecker {
            on: Component::Sender(keys[0] as char),
            label: format!("{host} (senders {})", String::from_utf8_lossy(keys)),
            argv: argv(keys, keys, crate::watch::SinkScope::Elsewhere),
        });
    }
    checkers
}

/// Every control message to each of `n` checkers; their channels close when `control`
/// does.
pub(super) fn fan_out(control: Receiver<Control>, n: usize) -> Vec<Receiver<Control>> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..n).map(|_| crossbeam_channel::unbounded()).unzip();
    std::thread::spawn(move || {
        for message in control.iter() {
            for s in &senders {
                let _ = s.send(message);
            }
        }
    });
    receivers
}

/// The checks run by `soakcheck watch --events -` on another host (through the
/// driver): its findings and completion become [`CheckEvent`]s exactly as the in-process
/// checks' do, faults are passed to it as control lines, and closing the control channel
/// finishes it. If it dies or its connection drops before its summary, that is a
/// `checker-lost` finding, never a silent pass.
#[allow(clippy::too_many_arguments)]
pub(super) fn remote_checks(
    mut command: std::process::Command,
    label: String,
    stderr_log: PathBuf,
    events: Sender<CheckEvent>,
    control: Receiver<Control>,
    incomplete: &std::sync::atomic::AtomicUsize,
) -> Result<CheckTotals, RunError> {
    use std::io::BufRead;
    let log = std::fs::File::create(&stderr_log)
        .map_err(|e| RunError::Setup(format!("{}: {e}", stderr_log.display())))?;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| RunError::Setup(format!("starting the checker on {label}: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || {
        for message in control.iter() {
            let line = match message {
                Control::Fault { quiet_for } => format!("fault {}", quiet_for.as_secs_f64()),
                Control::PowerCut => "power-cut".to_string(),
                Control::Finish => break,
            };
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
        let _ = writeln!(stdin, "finish");
    });
    let mut totals = CheckTotals::default();
    let mut summary = false;
    let stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    for line in stdout.lines().map_while(Result::ok) {
        let Some(event) = WatchEvent::from_line(&line) else {
            continue;
        };
        match event {
            WatchEvent::Finding { finding, .. } => {
                let _ = events.send(CheckEvent::Finding(finding));
            }
            WatchEvent::Acked { acked, .. } => {
                let _ = events.send(CheckEvent::Acked(acked));
            }
            WatchEvent::State {
                state: WatchState::UntilReached,
                ..
            } => {
                // The run is complete when every checker is.
                let before = incomplete.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                if before == 1 {
                    let _ = events.send(CheckEvent::Complete);
                }
            }
            WatchEvent::Summary {
                commits,
                verified_bytes,
                unverified_keys,
                undetermined_keys,
                ..
            } => {
                summary = true;
                totals.commits = commits;
                totals.bytes_verified = verified_bytes;
                totals.unverified = unverified_keys;
                totals.undetermined = undetermined_keys;
            }
            WatchEvent::State { .. } | WatchEvent::Commits { .. } => {}
        }
    }
    let status = child
        .wait()
        .map(|s| s.to_string())
        .unwrap_or_else(|e| e.to_string());
    if !summary {
        let _ = events.send(CheckEvent::Lost(format!(
            "the checker on {label} ended without a verdict ({status}); its stderr is in {}",
            stderr_log.display()
        )));
    }
    let _ = writer.join();
    Ok(totals)
}

/// The checks' plan for a run: the run's sink dir, inputs and logs.
pub(super) fn watch_plan(plan: &RunPlan) -> WatchPlan {
    let p = &plan.preset;
    WatchPlan {
        verify: VerifyPlan {
            sink_dir: Some(p.run_dir.join(crate::formats::sinkdir::SINK_OUT)),
            plain_outputs: vec![],
            inputs: p
                .keys
                .iter()
                .map(|&k| KeyInput {
                    key: k as u8,
                    path: p.input_path(k),
                })
                .collect(),
            expect_complete: false,
            semantics: Semantics::ExactlyOnce,
            io: IoMode::Mmap,
        },
        sender_logs: p
            .keys
            .iter()
            .map(|&k| (k as u8, p.log_path(&Component::Sender(k))))
            .collect(),
        sink_log: Some(p.log_path(&Component::Sink)),
        ack_timeout: plan.ack_timeout,
        registry_window: 20,
        until: Until::Eof,
        timeout: None,
        events: None,
        on_violation: None,
        poll: None,
        progress: if plan.progress == ProgressStyle::Terse {
            ProgressStyle::Terse
        } else {
            ProgressStyle::Quiet
        },
        checks: crate::watch::Checks {
            power_cuts: plan.scenario.power_faults(),
            ..plan.scenario.checks
        },
    }
}

/// Where the run's checks go: in-process, or on other hosts through the driver.
pub(super) enum CheckSites {
    Local(Vec<FileBytes>),
    Remote(Vec<(RemoteChecker, std::process::Command)>),
}

impl CheckSites {
    /// With a driver for other hosts, the checks run where the data is: the sink's on
    /// its host, each sender host's on that host.
    pub(super) fn choose(
        plan: &RunPlan,
        w: &WatchPlan,
        driver: &dyn ProcessDriver,
    ) -> Result<CheckSites, RunError> {
        let remote: Vec<_> = remote_checkers(plan, w)
            .into_iter()
            .filter_map(|c| {
                let command = driver.remote_command(&c.on, &c.argv)?;
                Some((c, command))
            })
            .collect();
        Ok(if remote.is_empty() {
            CheckSites::Local(open_inputs(&w.verify)?)
        } else {
            CheckSites::Remote(remote)
        })
    }

    /// Starts every checker on `scope`: their events go to `events`; each gets every
    /// control message.
    pub(super) fn spawn<'scope>(
        self,
        scope: &'scope std::thread::Scope<'scope, '_>,
        w: &'scope WatchPlan,
        run_dir: &'scope Path,
        events: Sender<CheckEvent>,
        control: Receiver<Control>,
    ) -> Vec<std::thread::ScopedJoinHandle<'scope, Result<CheckTotals, RunError>>> {
        match self {
            CheckSites::Local(inputs) => {
                vec![scope.spawn(move || local_checks(w, &inputs, events, control))]
            }
            CheckSites::Remote(remote) => {
                // The run is complete when every checker is.
                let incomplete =
                    std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(remote.len()));
                let controls = fan_out(control, remote.len());
                remote
                    .into_iter()
                    .zip(controls)
                    .enumerate()
                    .map(|(i, ((checker, command), control))| {
                        let log = run_dir.join(format!("checker-{i}.stderr"));
                        let (events, incomplete) = (events.clone(), incomplete.clone());
                        scope.spawn(move || {
                            let label = checker.label;
                            remote_checks(command, label, log, events, control, &incomplete)
                        })
                    })
                    .collect()
            }
        }
    }
}

/// Waits for every checker; the sum of what they verified.
pub(super) fn join_checks(
    handles: Vec<std::thread::ScopedJoinHandle<'_, Result<CheckTotals, RunError>>>,
) -> Result<CheckTotals, RunError> {
    let mut sum = CheckTotals::default();
    let mut first_error = None;
    for handle in handles {
        match handle.join().expect("a checks thread does not panic") {
            Ok(t) => {
                sum.commits += t.commits;
                sum.bytes_verified += t.bytes_verified;
                sum.unverified.extend(t.unverified);
                sum.undetermined.extend(t.undetermined);
            }
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    first_error.map_or(Ok(sum), Err)
}
