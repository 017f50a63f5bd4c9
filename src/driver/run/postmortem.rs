//! The frozen world, for a person: what was paused where, the files of the run fetched
//! from its hosts, the report, and a post-mortem bundle that unpacks into one folder.

use super::*;

/// The FROZEN message: the time, the findings, what the freeze did to each component
/// (and what it could not do), and the post-mortem bundle.
pub(super) fn report_freeze(
    sup: &mut Supervisor<'_>,
    plan: &RunPlan,
    results: &[FreezeResult],
) -> Option<String> {
    let run_dir = &plan.preset.run_dir;
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let paused = results.iter().filter(|r| r.outcome.is_ok()).count();
    let mut text = format!(
        "\nFROZEN at {} (Unix {now_s:.3}): {paused} of {} components paused (SIGSTOP to each process group).\n",
        crate::duration::local_time(now_s),
        results.len()
    );
    for f in &sup.findings {
        text += &format!("  finding: {}: {}\n", f.kind_name(), f.detail);
    }
    for r in results {
        let at = r.location.clone().unwrap_or_else(|| "-".into());
        match &r.outcome {
            Ok(()) => text += &format!("  {:<12} paused   {at}\n", r.component.name()),
            Err(e) => text += &format!("  {:<12} NOT paused: {e}   {at}\n", r.component.name()),
        }
    }
    text += "  inspect: gdb -p PID   resume one: kill -CONT -PID\n";
    text += &format!(
        "  files: {0}/sink-out, {0}/wallaroo.N, {0}/sender.out.K, {0}/events.jsonl\n",
        run_dir.display()
    );
    let stamp = unix_ms() / 1000;
    let bundle = run_dir.join(format!("postmortem-{stamp}.tar.gz"));
    let mut postmortem = None;
    let (files, notes) = gather_files(
        sup.driver,
        plan,
        &run_dir.join(format!("postmortem-{stamp}.d")),
    );
    for note in notes {
        text += &format!("  post-mortem: {note}\n");
    }
    let report = match write_run_report(plan, &files) {
        Ok(path) => {
            text += &format!("  report: {}\n", path.display());
            Some(path)
        }
        Err(e) => {
            text += &format!("  report failed: {e}\n");
            None
        }
    };
    match write_postmortem(
        &bundle,
        &files,
        run_dir,
        &plan.preset.keys,
        report.as_deref(),
    ) {
        Ok(()) => {
            let top = bundle_top(&bundle);
            text += &format!(
                "  post-mortem bundle: {} (it unpacks into {top}/: `soakcheck report` it, or `tar xzf` it and `soakcheck verify --sink-dir {top}/sink-out --input-dir {top}`)\n",
                bundle.display()
            );
            postmortem = Some(bundle.display().to_string());
        }
        Err(e) => text += &format!("  post-mortem bundle {} failed: {e}\n", bundle.display()),
    }
    text += "  press Ctrl-C (or send SIGTERM) to kill everything and exit.\n";
    let out = sup.out();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    postmortem
}

/// Where the sink directory and the component logs are: the run dir when the driver
/// runs everything here, else `staging`, where they are fetched from their hosts through
/// the driver. Also returns what could not be fetched.
pub(super) fn gather_files(
    driver: &mut dyn ProcessDriver,
    plan: &RunPlan,
    staging: &Path,
) -> (PathBuf, Vec<String>) {
    let p = &plan.preset;
    let mut notes = Vec::new();
    match driver.fetch(
        &Component::Sink,
        &p.run_dir.join(crate::formats::sinkdir::SINK_OUT),
        staging,
    ) {
        Ok(Fetched::AlreadyLocal) => return (p.run_dir.clone(), notes),
        Ok(Fetched::Copied) => {}
        Err(e) => notes.push(e.to_string()),
    }
    let components = (0..crate::driver::preset::MAX_WORKERS)
        .map(Component::Worker)
        .chain(p.keys.iter().map(|&k| Component::Sender(k)));
    for c in components {
        let log = p.log_path(&c);
        if let Err(e) = driver.fetch(&c, &log, staging) {
            if matches!(c, Component::Sender(_)) || c == Component::Worker(0) {
                notes.push(e.to_string());
            }
        }
    }
    (staging.to_path_buf(), notes)
}

/// `postmortem-<time>.tar.gz`: the sink directory, txnlogs, logs, events and inputs, so
/// `soakcheck verify` (or `report`) can be run again elsewhere. Everything is under one
/// top folder named as the bundle (`postmortem-<time>/`), so unpacking it never
/// scatters files into the current directory.
pub(super) fn write_postmortem(
    bundle: &Path,
    files: &Path,
    run_dir: &Path,
    keys: &[char],
    report: Option<&Path>,
) -> std::io::Result<()> {
    let top = bundle_top(bundle);
    let file = std::fs::File::create(bundle)?;
    let enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(enc);
    append_sink_dir(
        &mut tar,
        &top,
        &files.join(crate::formats::sinkdir::SINK_OUT),
    )?;
    // What power cuts took back: the evidence of a power-loss finding.
    let cuts = files.join(crate::rundir::POWER_CUTS);
    if cuts.is_dir() {
        tar.append_dir_all(format!("{top}/{}", crate::rundir::POWER_CUTS), cuts)?;
    }
    let logs = std::fs::read_dir(files)?.flatten();
    // The events are the control node's (already among the logs when they are local).
    let events = std::fs::read_dir(run_dir)?
        .flatten()
        .filter(|e| files != run_dir && e.file_name() == "events.jsonl");
    for entry in logs.chain(events) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted = name.starts_with("wallaroo.")
            || name.starts_with("sender.out.")
            || name == "events.jsonl";
        if wanted && entry.path().is_file() {
            tar.append_path_with_name(entry.path(), format!("{top}/{name}"))?;
        }
    }
    for k in keys {
        let name = format!("input-file.{k}.txt");
        if run_dir.join(&name).exists() {
            tar.append_path_with_name(run_dir.join(&name), format!("{top}/{name}"))?;
        }
    }
    if let Some(report) = report {
        tar.append_path_with_name(report, format!("{top}/{REPORT}"))?;
    }
    tar.into_inner()?.finish()?;
    Ok(())
}

/// The sink directory, without a filesystem layer's own folder (its lock and trash).
fn append_sink_dir<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    top: &str,
    sink: &Path,
) -> std::io::Result<()> {
    let at = format!("{top}/{}", crate::formats::sinkdir::SINK_OUT);
    tar.append_dir(&at, sink)?;
    for entry in std::fs::read_dir(sink)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == crate::fs::layer::HIDDEN {
            continue;
        }
        match entry.path().is_dir() {
            true => tar.append_dir_all(format!("{at}/{name}"), entry.path())?,
            false => tar.append_path_with_name(entry.path(), format!("{at}/{name}"))?,
        }
    }
    Ok(())
}

/// The one top folder of a bundle: its file name without `.tar.gz`.
pub(super) fn bundle_top(bundle: &Path) -> String {
    let name = bundle
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    name.strip_suffix(".tar.gz").unwrap_or(&name).to_string()
}
