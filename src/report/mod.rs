//! `soakcheck report`: a post-mortem a person reads at a glance. One self-contained HTML
//! page per run directory, post-mortem bundle or bare sink directory: the verdict, a
//! fault timeline beside commits, committed bytes per key and each sender's acks, the
//! violation in context, and the component logs around the first finding.
//!
//! How it works: [`locate`] finds the files ([`RunFiles`]; a bundle is unpacked into a
//! temporary directory first). [`collect`] verifies the sink directory with the one
//! checker core ([`crate::verify::verify_observed`]), which also samples each key's
//! committed bytes as it is fed ([`series::KeySampler`]), and reads the series of
//! [`series`] from events.jsonl, the txnlogs and the logs into a [`PostMortem`].
//! [`page::render`] turns that into HTML with inline SVG charts ([`chart`]); every text
//! taken from a file is escaped by the template. [`serve`] serves it live.

pub mod chart;
pub mod page;
pub mod series;
pub mod serve;

pub mod violation;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::formats::mapped::IoMode;
use crate::rundir::events::EventsError;
use crate::rundir::step::Action;
use crate::verify::{
    select_inputs, verify_observed, KeySelection, Report, Semantics, VerifyError, VerifyPlan,
};
use series::{CommitBuckets, KeyQuery, KeySampler, Timeline};

/// Why no page could be made (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {detail}")]
    Source { path: PathBuf, detail: String },
    #[error("{path}: cannot unpack the bundle: {source}")]
    Bundle {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Hostile { path: PathBuf, detail: String },
    #[error(transparent)]
    Events(#[from] EventsError),
    #[error("{path}: cannot write the report: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where a run's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFiles {
    /// What the page is about, for its title.
    pub label: String,
    pub sink_dir: PathBuf,
    pub input_dir: PathBuf,
    /// The run's events.jsonl, when there is one.
    pub events: Option<PathBuf>,
    /// Where the component logs are (`wallaroo.N`, `sender.out.K`, rotated `.gz`).
    pub log_dir: Option<PathBuf>,
}

impl RunFiles {
    /// A run directory as `soakcheck run` leaves it (and as a bundle unpacks).
    pub fn run_dir(dir: &Path) -> RunFiles {
        let events = crate::rundir::RunDir(dir).events();
        RunFiles {
            label: dir.display().to_string(),
            sink_dir: dir.join(crate::formats::sinkdir::SINK_OUT),
            input_dir: dir.to_path_buf(),
            // Whatever it is: one that cannot be read is a note on the page.
            events: std::fs::symlink_metadata(&events).is_ok().then_some(events),
            log_dir: Some(dir.to_path_buf()),
        }
    }
}

/// What `soakcheck report` was asked for.
#[derive(Debug, Clone)]
pub struct ReportPlan {
    pub source: PathBuf,
    /// The most a bundle may unpack to.
    pub unpack_limit: u64,
    pub input_dir: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub keys: KeySelection,
    pub semantics: Semantics,
    pub expect_complete: bool,
}

/// `./NAME.html` for the bundle `DIR/NAME.tar.gz` (or `.tgz`).
fn bundle_page(bundle: &Path) -> PathBuf {
    let name = bundle
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".tar.gz")
        .or_else(|| name.strip_suffix(".tgz"))
        .unwrap_or(&name);
    PathBuf::from(format!("{stem}.html"))
}

/// The files of `plan.source`, where the page goes, and the temporary directory a
/// bundle was unpacked into (removed when dropped, or on SIGINT or SIGTERM).
///
/// A bundle's page goes to `./<bundle name>.html` (`postmortem-1796528083.html`).
pub fn locate(plan: &ReportPlan) -> Result<(RunFiles, PathBuf, Option<Unpacked>), ReportError> {
    let source = &plan.source;
    let bad = |detail: &str| ReportError::Source {
        path: source.clone(),
        detail: detail.to_string(),
    };
    let meta = std::fs::metadata(source).map_err(|e| bad(&e.to_string()))?;
    let name = source.to_string_lossy();
    if meta.is_file() && (name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
        let dir = unpack(source, plan.unpack_limit)?;
        let run_dir = dir.run_dir();
        if !run_dir.join(crate::formats::sinkdir::SINK_OUT).is_dir() {
            return Err(ReportError::Hostile {
                path: source.clone(),
                detail: "holds no run: a post-mortem bundle is one top folder with the run's sink-out/, logs, events.jsonl and inputs".into(),
            });
        }
        let mut files = RunFiles::run_dir(&run_dir);
        files.label = source.display().to_string();
        // Named for the bundle, so that a report made where a run's own report.html is
        // (its run dir, say) never replaces that evidence.
        let out = plan.output.clone().unwrap_or_else(|| bundle_page(source));
        return Ok((files, out, Some(dir)));
    }
    if !meta.is_dir() {
        return Err(bad(
            "is neither a directory nor a .tar.gz bundle; expected a run directory, a post-mortem bundle or a sink directory",
        ));
    }
    let out = plan
        .output
        .clone()
        .unwrap_or_else(|| crate::rundir::RunDir(source).report());
    if source.join(crate::formats::sinkdir::SINK_OUT).is_dir() {
        let mut files = RunFiles::run_dir(source);
        if let Some(dir) = &plan.input_dir {
            files.input_dir = dir.clone();
        }
        return Ok((files, out, None));
    }
    let input_dir = plan.input_dir.clone().ok_or_else(|| {
        bad("has no sink-out directory, so it is taken as a bare sink directory, which needs --input-dir")
    })?;
    let files = RunFiles {
        label: source.display().to_string(),
        sink_dir: source.clone(),
        input_dir,
        events: None,
        log_dir: None,
    };
    Ok((files, out, None))
}

/// The most a bundle may unpack to by default (`report --unpack-limit`).
pub const UNPACK_LIMIT: u64 = 8 << 30;

/// A bundle unpacked into a temporary directory: removed when dropped, and on SIGINT,
/// SIGTERM or SIGHUP while it exists (a thread takes the signal, removes it, and exits), so an
/// interrupted report leaves nothing behind.
pub struct Unpacked {
    // Dropped first: the signal thread stops before the directory goes.
    _on_signal: RemoveOnSignal,
    dir: tempfile::TempDir,
}

impl Unpacked {
    /// The run dir in it: the bundle's one top folder, or (older bundles) its root.
    pub fn run_dir(&self) -> PathBuf {
        let root = self.dir.path();
        let entries: Vec<PathBuf> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        match &entries[..] {
            [only] if only.join(crate::formats::sinkdir::SINK_OUT).is_dir() => only.clone(),
            _ => root.to_path_buf(),
        }
    }
}

/// Removes a directory and exits when SIGINT, SIGTERM or SIGHUP arrives, until dropped.
struct RemoveOnSignal {
    handle: Option<signal_hook::iterator::Handle>,
}

impl RemoveOnSignal {
    /// The signals, taken before the directory exists: one that arrives between its
    /// making and the watch would otherwise kill the process and leave it.
    fn signals() -> std::io::Result<signal_hook::iterator::Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
    }

    /// Watches `signals` (from [`RemoveOnSignal::signals`]; one already pending counts).
    fn new(mut signals: signal_hook::iterator::Signals, dir: &Path) -> RemoveOnSignal {
        let handle = signals.handle();
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let _ = std::fs::remove_dir_all(&dir);
                std::process::exit(128 + signal);
            }
        });
        RemoveOnSignal {
            handle: Some(handle),
        }
    }
}

impl Drop for RemoveOnSignal {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.close();
        }
    }
}

/// Unpacks a post-mortem bundle into a new temporary directory. A bundle holds only
/// files and directories, inside its directory, and at most `limit` bytes: a link (which
/// could put a file of this machine, or another directory, into the page), a device or
/// a FIFO, and a bundle that would unpack to more, are refused naming the entry.
fn unpack(bundle: &Path, limit: u64) -> Result<Unpacked, ReportError> {
    let err = |source| ReportError::Bundle {
        path: bundle.to_path_buf(),
        source,
    };
    let hostile = |detail: String| ReportError::Hostile {
        path: bundle.to_path_buf(),
        detail,
    };
    let signals = RemoveOnSignal::signals().map_err(err)?;
    let dir = tempfile::Builder::new()
        .prefix("soakcheck-report-")
        .tempdir()
        .map_err(err)?;
    let unpacked = Unpacked {
        _on_signal: RemoveOnSignal::new(signals, dir.path()),
        dir,
    };
    let file = crate::formats::regular::open_regular(bundle).map_err(err)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut total = 0u64;
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let name = entry.path().map_err(err)?.display().to_string();
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(hostile(format!(
                "entry {name:?} is a {kind:?}: a post-mortem bundle holds only files and directories"
            )));
        }
        total = total.saturating_add(entry.size());
        if total > limit {
            return Err(hostile(format!(
                "unpacks to more than {limit} bytes (at entry {name:?}); a larger bundle needs --unpack-limit"
            )));
        }
        // `unpack_in` refuses an entry that would land outside the directory.
        if !entry.unpack_in(unpacked.dir.path()).map_err(err)? {
            return Err(hostile(format!(
                "entry {name:?} would land outside the bundle's directory"
            )));
        }
    }
    Ok(unpacked)
}

/// The page's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageVerdict {
    Ok,
    Violation,
    /// The sink directory could not be checked (what `verify` exits 2 for).
    Error,
    /// No key failed, but a key's order rests on timestamps that go back (exit 2).
    Undetermined,
}

impl PageVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            PageVerdict::Ok => "ok",
            PageVerdict::Violation => "violation",
            PageVerdict::Error => "error",
            PageVerdict::Undetermined => "undetermined",
        }
    }

    /// The exit status: as `verify`'s.
    pub fn exit_code(self) -> i32 {
        match self {
            PageVerdict::Ok => 0,
            PageVerdict::Violation => 1,
            PageVerdict::Error | PageVerdict::Undetermined => 2,
        }
    }
}

/// A fault and how long the system took to commit again after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    pub time: f64,
    pub action: Action,
    pub component: String,
    /// Seconds from the fault to the next commit that involves the component: one in
    /// a worker's own output file, one with a line of a sender's key, any for the sink.
    pub after_s: Option<f64>,
}

/// One component log's lines around the first finding (or its alarms, in a green run).
#[derive(Debug, Clone, PartialEq)]
pub struct LogExcerpt {
    pub component: String,
    pub file: String,
    pub excerpt: series::Excerpt,
}

/// Everything the page shows.
pub struct PostMortem {
    pub files: RunFiles,
    pub verdict: PageVerdict,
    pub report: Option<Report>,
    /// Why the sink directory could not be checked.
    pub error: Option<String>,
    pub timeline: Timeline,
    pub commits: Option<CommitBuckets>,
    /// Per key: (time, committed bytes of that key).
    pub key_bytes: Vec<(String, Vec<(f64, u64)>)>,
    /// Per sender: (time, acked offset).
    pub acks: Vec<(String, Vec<(f64, u64)>)>,
    pub violations: Vec<violation::ViolationView>,
    pub recoveries: Vec<Recovery>,
    /// Faults by kind, then component.
    pub fault_counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// The first finding's wall time: the log excerpts are around it.
    pub first_finding: Option<f64>,
    pub logs: Vec<LogExcerpt>,
    /// Things the reader should know about the page itself.
    pub notes: Vec<String>,
    pub utc_offset_s: i32,
}

/// Seconds either side of the first finding that the log excerpts cover.
pub const LOG_WINDOW_S: f64 = 10.0;

/// Reads and checks everything of `files` into a [`PostMortem`].
pub fn collect(files: &RunFiles, plan: &ReportPlan) -> Result<PostMortem, ReportError> {
    let noted = match &files.events {
        Some(path) => match crate::rundir::events::read_events_text(path) {
            Ok(text) => crate::rundir::events::parse_events_noting(path, &text),
            Err(e) => crate::rundir::events::NotedEvents {
                notes: vec![format!(
                    "{e}: the page shows no fault or finding of the run"
                )],
                ..Default::default()
            },
        },
        None => Default::default(),
    };
    let (events, event_notes) = (noted.events, noted.notes);
    let mut timeline = Timeline::from_events(&events, None);
    // Logs are stamped in local time: the run's offset, else (no header) this machine's.
    let utc_offset_s = timeline
        .header
        .as_ref()
        .map_or_else(crate::rundir::events::local_utc_offset, |h| h.utc_offset_s);
    let mut pm = PostMortem {
        files: files.clone(),
        verdict: PageVerdict::Ok,
        report: None,
        error: None,
        timeline: Timeline::default(),
        commits: None,
        key_bytes: Vec::new(),
        acks: Vec::new(),
        violations: Vec::new(),
        recoveries: Vec::new(),
        fault_counts: BTreeMap::new(),
        first_finding: None,
        logs: Vec::new(),
        notes: event_notes,
        utc_offset_s,
    };
    match check(files, plan, &timeline) {
        Ok(checked) => {
            if timeline.placed_from_origin && timeline.header.is_none() {
                // Older events.jsonl files have no wall time: place them from the
                // first commit, which follows the soak's start closely.
                let origin = checked.verified.log.commits.first().map(|c| c.time);
                timeline = Timeline::from_events(&events, origin);
                pm.notes.push("events.jsonl has no wall times (an older soakcheck wrote it): its steps are placed from the first commit, so they are approximate".into());
            }
            absorb(&mut pm, checked, &timeline);
        }
        Err(e) => {
            pm.verdict = PageVerdict::Error;
            pm.error = Some(crate::error_text(&e));
        }
    }
    // A finding the run recorded is a violation, even where the directory no longer
    // shows it (a power cut took the committed data back) or cannot be checked now.
    let ended = |verdict: &str| timeline.end.as_ref().is_some_and(|e| e.verdict == verdict);
    if !timeline.findings.is_empty() {
        pm.verdict = PageVerdict::Violation;
    } else if ended("violation") || noted.unreadable_findings > 0 {
        // Its finding lines could not be read (of a kind this soakcheck does not know,
        // a field missing), but the record says it found something: never a pass.
        pm.verdict = PageVerdict::Violation;
        pm.notes.insert(
            0,
            "the run recorded a finding that this page cannot read from events.jsonl (see the notes on its lines): the verdict is violation".into(),
        );
    } else if ended("error") {
        // The run itself failed: what its directory holds is no pass.
        pm.verdict = PageVerdict::Error;
        pm.error
            .get_or_insert_with(|| "the run ended in an error (see its output)".into());
    }
    pm.first_finding = first_finding(&timeline, pm.report.as_ref());
    pm.fault_counts = fault_counts(&timeline);
    pm.timeline = timeline;
    read_logs(&mut pm);
    Ok(pm)
}

/// What the checker gave.
struct Checked {
    verified: crate::verify::Verified,
    sampler: KeySampler,
    /// (key, input path) in plan order.
    keys: Vec<(u8, PathBuf)>,
    /// Which sampler query each sender fault asked (index into `timeline.steps`).
    queries: Vec<(usize, usize)>,
    /// The commits per time bucket (the sampler samples at each bucket's last commit).
    commits: Option<CommitBuckets>,
}

/// Verifies the sink directory, sampling each key's committed bytes per time bucket and
/// asking, for each sender fault, when the sender's key was next committed.
fn check(files: &RunFiles, plan: &ReportPlan, timeline: &Timeline) -> Result<Checked, VerifyError> {
    let mut selection = plan.keys.clone();
    if selection.keys.is_none() {
        if let Some(h) = &timeline.header {
            selection.keys = Some(
                h.keys
                    .chars()
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
    }
    let inputs = select_inputs(&selection, &files.input_dir)?;
    let vplan = VerifyPlan {
        sink_dir: Some(files.sink_dir.clone()),
        plain_outputs: Vec::new(),
        inputs: inputs.clone(),
        expect_complete: plan.expect_complete,
        semantics: plan.semantics,
        io: IoMode::default(),
    };
    let mut asked = Vec::new();
    let mut buckets = None;
    let (verified, sampler) = verify_observed(&vplan, |log| {
        buckets = CommitBuckets::of(log);
        let samples = buckets
            .as_ref()
            .map(|b| b.last_commit.iter().flatten().copied().collect())
            .unwrap_or_default();
        let mut queries = Vec::new();
        let stamps = Stamps::of(log);
        for (i, step) in timeline.steps.iter().enumerate() {
            let key = step
                .component
                .strip_prefix("sender-")
                .and_then(|k| k.bytes().next());
            let Some(key) = key.and_then(|k| inputs.iter().position(|x| x.key == k)) else {
                continue;
            };
            if step.action.is_fault() {
                let from = stamps.first_after(step.time);
                asked.push((i, queries.len()));
                queries.push(KeyQuery { from, key });
            }
        }
        KeySampler::new(samples, queries)
    })?;
    Ok(Checked {
        verified,
        sampler,
        keys: inputs.into_iter().map(|k| (k.key, k.path)).collect(),
        queries: asked,
        commits: buckets,
    })
}

/// Takes the checker's results into the page.
fn absorb(pm: &mut PostMortem, checked: Checked, timeline: &Timeline) {
    let Checked {
        verified,
        sampler,
        keys,
        queries,
        commits,
    } = checked;
    let log = &verified.log;
    pm.commits = commits;
    pm.key_bytes = keys
        .iter()
        .enumerate()
        .map(|(i, (k, _))| {
            let points = sampler
                .samples
                .iter()
                .map(|(c, bytes)| (log.commits[*c].time, bytes[i]))
                .collect();
            ((*k as char).to_string(), points)
        })
        .collect();
    pm.recoveries = recoveries(log, timeline, &sampler, &queries);
    pm.violations = violation::views(&verified, &keys);
    match verified.report.verdict {
        crate::verify::Verdict::Violation => pm.verdict = PageVerdict::Violation,
        crate::verify::Verdict::Undetermined => pm.verdict = PageVerdict::Undetermined,
        _ => {}
    }
    pm.report = Some(verified.report);
}

/// The commits' stamps in commit order, as their running highest: stamps mostly rise in
/// commit order, but not where the sink's clock stepped back, and this never falls.
struct Stamps(Vec<f64>);

impl Stamps {
    fn of(log: &crate::verify::CommitLog) -> Stamps {
        let mut highest = f64::NEG_INFINITY;
        Stamps(
            log.commits
                .iter()
                .map(|c| {
                    highest = highest.max(c.time);
                    highest
                })
                .collect(),
        )
    }

    /// The first commit (in commit order) once the stamps have passed `time`.
    fn first_after(&self, time: f64) -> usize {
        self.0.partition_point(|&t| t <= time)
    }
}

/// Each fault's recovery: the next commit after it that involves its component.
fn recoveries(
    log: &crate::verify::CommitLog,
    timeline: &Timeline,
    sampler: &KeySampler,
    queries: &[(usize, usize)],
) -> Vec<Recovery> {
    let file_of = |component: &str| log.files.iter().position(|f| f.name == component);
    let stamps = Stamps::of(log);
    timeline
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.action.is_fault())
        .map(|(i, s)| {
            let from = stamps.first_after(s.time);
            let next = if s.component.starts_with("sender-") {
                queries
                    .iter()
                    .find(|(step, _)| *step == i)
                    .and_then(|(_, q)| sampler.answers[*q])
            } else if let Some(file) = file_of(&s.component) {
                (from..log.commits.len()).find(|&c| log.commits[c].file == file)
            } else {
                (from < log.commits.len()).then_some(from)
            };
            Recovery {
                time: s.time,
                action: s.action,
                component: s.component.clone(),
                // The sink's stamps may lag the soak's clock (its clock stepped back):
                // never a negative recovery.
                after_s: next.map(|c| (log.commits[c].time - s.time).max(0.0)),
            }
        })
        .collect()
}

/// Faults by kind, then component.
fn fault_counts(timeline: &Timeline) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for s in timeline.steps.iter().filter(|s| s.action.is_fault()) {
        *counts
            .entry(s.action.as_str().to_string())
            .or_default()
            .entry(s.component.clone())
            .or_default() += 1;
    }
    counts
}

/// The first finding's wall time: the run's first finding event, else the earliest
/// commit that carried a violation.
fn first_finding(timeline: &Timeline, report: Option<&Report>) -> Option<f64> {
    let from_events = timeline.findings.iter().map(|(t, _)| *t).reduce(f64::min);
    let from_commits = report
        .into_iter()
        .flat_map(|r| &r.keys)
        .filter_map(|k| k.violation.as_ref()?.commit.as_ref().map(|c| c.time))
        .reduce(f64::min);
    from_events.or(from_commits)
}

/// The sender acks and the log excerpts, from every component log.
fn read_logs(pm: &mut PostMortem) {
    let mut dirs: Vec<&Path> = vec![&pm.files.sink_dir];
    if let Some(d) = &pm.files.log_dir {
        dirs.insert(0, d);
    }
    let window = pm
        .first_finding
        .map(|t| (t - LOG_WINDOW_S, t + LOG_WINDOW_S));
    let mut acks: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
    for file in series::discover_logs(&dirs) {
        let bytes = match series::read_log(&file.path) {
            Ok(b) => b,
            Err(e) => {
                pm.notes
                    .push(format!("{}: cannot read: {e}", file.path.display()));
                continue;
            }
        };
        if let Some(key) = file.component.strip_prefix("sender-") {
            acks.entry(key.to_string())
                .or_default()
                .extend(series::acked_offsets(&bytes, pm.utc_offset_s));
        }
        let excerpt = match window {
            Some(w) => series::excerpt(&bytes, w, false, pm.utc_offset_s),
            None => series::excerpt(&bytes, (f64::MIN, f64::MAX), true, pm.utc_offset_s),
        };
        if !excerpt.lines.is_empty() {
            pm.logs.push(LogExcerpt {
                component: file.component.clone(),
                file: file.path.display().to_string(),
                excerpt,
            });
        }
    }
    // What the run recorded covers the whole run; the logs, only what rotation left.
    for (time, key, offset) in &pm.timeline.acks {
        acks.entry(key.clone()).or_default().push((*time, *offset));
    }
    pm.acks = acks
        .into_iter()
        .map(|(k, mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (k, series::downsample(&points))
        })
        .collect();
}

/// What [`write_report`] made.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub verdict: PageVerdict,
    pub bytes: usize,
    /// Why the sink directory could not be checked (the page says it too).
    pub error: Option<String>,
}

/// Collects, renders and writes the page of `files` to `out` (through a temporary file
/// renamed into place, so a reader never sees half a page; a device or FIFO at `out` is
/// written into, never replaced).
pub fn write_report(
    files: &RunFiles,
    plan: &ReportPlan,
    out: &Path,
) -> Result<Written, ReportError> {
    let pm = collect(files, plan)?;
    let html = page::render(&pm, page::Refresh::Static);
    crate::gen::write_atomically(out, |w| w.write_all(html.as_bytes())).map_err(|source| {
        ReportError::Write {
            path: out.to_path_buf(),
            source,
        }
    })?;
    Ok(Written {
        verdict: pm.verdict,
        bytes: html.len(),
        error: pm.error,
    })
}

/// The report of a run directory `soakcheck run` is writing (exactly-once, every key of
/// the run, inputs in the run dir).
/// The pages of a run, as `run` asks for them.
#[derive(Debug)]
pub struct Pages;

impl crate::driver::pages::RunPages for Pages {
    fn serve(
        &self,
        addr: std::net::SocketAddr,
        run_dir: &Path,
    ) -> Result<crate::driver::pages::LivePage, String> {
        let server = serve::Server::start(addr, RunFiles::run_dir(run_dir), run_dir_plan(run_dir))
            .map_err(|e| e.to_string())?;
        Ok(crate::driver::pages::LivePage {
            addr: server.addr(),
            server: Box::new(server),
        })
    }

    fn write(&self, run_dir: &Path, files: &Path, out: &Path) -> Result<(), String> {
        let mut run_files = RunFiles::run_dir(run_dir);
        if files != run_dir {
            run_files.sink_dir = files.join(crate::formats::sinkdir::SINK_OUT);
            run_files.log_dir = Some(files.to_path_buf());
        }
        write_report(&run_files, &run_dir_plan(run_dir), out)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

pub fn run_dir_plan(run_dir: &Path) -> ReportPlan {
    ReportPlan {
        source: run_dir.to_path_buf(),
        unpack_limit: UNPACK_LIMIT,
        input_dir: None,
        output: None,
        keys: KeySelection::default(),
        semantics: Semantics::ExactlyOnce,
        expect_complete: false,
    }
}
