//! `soakcheck bench verify`: measures verify against `cmp` of the same number of bytes,
//! side by side in one run, and reports the ratio (figures are never checked by timed
//! tests; this and the criterion bench in `benches/` are where speed is proven).
//!
//! It generates inputs and, for each interleaving (a mean run of 1.5 lines per key, as
//! real sinks write, and 46), a sink directory in a temporary directory; writes two
//! identical files as long as the committed output; warms the page cache; then times in
//! turn `cmp A B`, `cat` of every output and input (the floor: each byte read once) and
//! `soakcheck verify --expect-complete` as child processes, and reports medians and
//! ratios, all from the same run.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::formats::input::input_path;
use crate::gen::inputs::{generate_inputs, DataSource};
use crate::gen::sink::{generate_sink, GenSinkPlan};
use crate::verify::KeyInput;

#[derive(Debug, Clone)]
pub struct BenchVerifyPlan {
    pub keys: usize,
    pub bytes_per_key: u64,
    pub workers: usize,
    pub runs: usize,
    /// Where to put the data; a temporary directory (removed afterwards) when None.
    pub dir: Option<PathBuf>,
    /// The soakcheck binary to time.
    pub exe: PathBuf,
}

/// The interleavings `bench verify` measures: real sinks' (1.5 lines a run) and long
/// runs (46 lines).
pub const BENCH_INTERLEAVES: [f64; 2] = [1.5, 46.0];

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchVerifyReport {
    pub keys: usize,
    pub bytes_per_key: u64,
    pub cases: Vec<InterleaveCase>,
}

/// One interleaving's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InterleaveCase {
    /// The mean run of consecutive lines per key asked for, and measured in the
    /// generated outputs.
    pub interleave: f64,
    pub measured_mean_run: f64,
    pub committed_bytes: u64,
    pub commits: u64,
    pub cmp_median_s: f64,
    /// `cat` of every output and input file to /dev/null: each byte read once.
    pub cat_median_s: f64,
    pub verify_median_s: f64,
    pub verify_mb_per_s: f64,
    pub cmp_mb_per_s: f64,
    /// verify time / cmp time.
    pub ratio_to_cmp: f64,
    /// verify time / cat time.
    pub ratio_to_cat: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("bench setup: {0}")]
    Setup(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0} failed: {1}")]
    Child(String, String),
}

/// Removes a temporary directory when dropped.
/// `dir`, or a new temporary directory named from `prefix` (removed when the guard
/// drops).
fn root_or_temp(
    dir: Option<&Path>,
    prefix: &str,
) -> Result<(PathBuf, Option<tempfile::TempDir>), BenchError> {
    match dir {
        Some(d) => Ok((d.to_path_buf(), None)),
        None => {
            let t = tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .map_err(io("making a temporary directory"))?;
            Ok((t.path().to_path_buf(), Some(t)))
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

fn time_child(
    mut command: Command,
    name: &str,
    expect_success: bool,
) -> Result<Duration, BenchError> {
    let start = Instant::now();
    let out = command.output().map_err(io(format!("running {name}")))?;
    let elapsed = start.elapsed();
    if expect_success && !out.status.success() {
        return Err(BenchError::Child(
            name.into(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(elapsed)
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64()
}

/// Generates `keys` inputs of `bytes_per_key` and a sink directory from `workers`
/// workers under `root` (`in/`, `sink-out/`); returns the plan that verifies it
/// completely and the generator's summary. Shared by `bench verify` and the criterion bench.
pub fn generate_fixture(
    root: &Path,
    keys: usize,
    bytes_per_key: u64,
    workers: usize,
    interleave: f64,
) -> Result<(crate::verify::VerifyPlan, crate::gen::sink::GenSinkSummary), BenchError> {
    let input_dir = root.join("in");
    let sink_dir = root.join(format!("sink-out-{interleave}"));
    let keys: Vec<u8> = (b'A'..).take(keys).collect();
    generate_inputs(&keys, bytes_per_key, &input_dir, &DataSource::Seeded(1))
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let _ = std::fs::remove_dir_all(&sink_dir);
    let inputs: Vec<KeyInput> = keys
        .iter()
        .map(|&key| KeyInput {
            key,
            path: input_path(&input_dir, key),
        })
        .collect();
    let summary = generate_sink(&GenSinkPlan {
        inputs: inputs.clone(),
        sink_dir: sink_dir.clone(),
        workers,
        fault: None,
        seed: 1,
        interleave,
    })
    .map_err(|e| BenchError::Setup(e.to_string()))?;
    let plan = crate::verify::VerifyPlan {
        sink_dir: Some(sink_dir),
        plain_outputs: Vec::new(),
        inputs,
        expect_complete: true,
        semantics: crate::verify::Semantics::ExactlyOnce,
        io: crate::formats::mapped::IoMode::Mmap,
    };
    Ok((plan, summary))
}

pub fn bench_verify(
    plan: &BenchVerifyPlan,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchVerifyReport, BenchError> {
    if plan.keys == 0 || plan.keys > 26 {
        return Err(BenchError::Setup(format!(
            "--keys must be 1..=26, not {}",
            plan.keys
        )));
    }
    let (root, _guard) = root_or_temp(plan.dir.as_deref(), "soakcheck-bench-")?;
    let cases = BENCH_INTERLEAVES
        .iter()
        .map(|&interleave| bench_interleave(plan, &root, interleave, progress))
        .collect::<Result<_, _>>()?;
    Ok(BenchVerifyReport {
        keys: plan.keys,
        bytes_per_key: plan.bytes_per_key,
        cases,
    })
}

/// Generates one interleaving's sink (the inputs are shared) and times cmp, cat and
/// verify on it in turn.
fn bench_interleave(
    plan: &BenchVerifyPlan,
    root: &Path,
    interleave: f64,
    progress: &mut dyn FnMut(&str),
) -> Result<InterleaveCase, BenchError> {
    progress(&format!(
        "generating {} inputs of {} bytes and a sink with runs of {interleave} lines in {}",
        plan.keys,
        plan.bytes_per_key,
        root.display()
    ));
    let (fixture, summary) = generate_fixture(
        root,
        plan.keys,
        plan.bytes_per_key,
        plan.workers,
        interleave,
    )?;
    let (input_dir, sink_dir) = (
        root.join("in"),
        fixture.sink_dir.clone().expect("a sink dir"),
    );
    // Two identical files as long as the committed output, for cmp.
    progress("writing the cmp files");
    let a = root.join("cmp-a");
    let b = root.join("cmp-b");
    write_cmp_file(&sink_dir, &a, summary.committed_bytes)?;
    std::fs::copy(&a, &b).map_err(io("copying the cmp file"))?;
    warm(&[&input_dir, &sink_dir, &a, &b])?;
    let verify_cmd = || {
        let mut c = Command::new(&plan.exe);
        c.arg("verify")
            .arg("--sink-dir")
            .arg(&sink_dir)
            .arg("--input-dir")
            .arg(&input_dir)
            .arg("--expect-complete");
        c
    };
    let cmp_cmd = || {
        let mut c = Command::new("cmp");
        c.arg(&a).arg(&b);
        c
    };
    let every_file: Vec<PathBuf> = [&sink_dir, &input_dir]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .collect();
    let cat_cmd = || {
        let mut c = Command::new("cat");
        c.args(&every_file).stdout(std::process::Stdio::null());
        c
    };
    // One untimed run of each, then alternate so all see the same machine state.
    time_child(verify_cmd(), "soakcheck verify", true)?;
    time_child(cmp_cmd(), "cmp", true)?;
    time_child(cat_cmd(), "cat", true)?;
    let (mut cmp_times, mut cat_times, mut verify_times) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..plan.runs.max(1) {
        progress(&format!(
            "interleave {interleave}: run {}/{}",
            run + 1,
            plan.runs.max(1)
        ));
        cmp_times.push(time_child(cmp_cmd(), "cmp", true)?);
        cat_times.push(time_child(cat_cmd(), "cat", true)?);
        verify_times.push(time_child(verify_cmd(), "soakcheck verify", true)?);
    }
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    let (cmp_s, cat_s, verify_s) = (median(cmp_times), median(cat_times), median(verify_times));
    let mb = summary.committed_bytes as f64 / 1e6;
    Ok(InterleaveCase {
        interleave,
        measured_mean_run: measured_mean_run(&sink_dir)?,
        committed_bytes: summary.committed_bytes,
        commits: summary.commits,
        cmp_median_s: cmp_s,
        cat_median_s: cat_s,
        verify_median_s: verify_s,
        verify_mb_per_s: mb / verify_s,
        cmp_mb_per_s: mb / cmp_s,
        ratio_to_cmp: verify_s / cmp_s,
        ratio_to_cat: verify_s / cat_s,
    })
}

/// The mean run of lines per key over every output file of `sink_dir`, weighted by size.
fn measured_mean_run(sink_dir: &Path) -> Result<f64, BenchError> {
    let (mut weighted, mut total) = (0.0, 0.0);
    for e in std::fs::read_dir(sink_dir)
        .map_err(io("listing the sink"))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".txnlog") {
            continue;
        }
        let bytes = std::fs::read(e.path()).map_err(io("reading the sink"))?;
        weighted += crate::gen::sink::mean_run(&bytes) * bytes.len() as f64;
        total += bytes.len() as f64;
    }
    Ok(if total > 0.0 { weighted / total } else { 0.0 })
}

fn write_cmp_file(sink_dir: &Path, path: &Path, len: u64) -> Result<(), BenchError> {
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(path).map_err(io("creating the cmp file"))?);
    let mut left = len;
    let mut entries: Vec<_> = std::fs::read_dir(sink_dir)
        .map_err(io("listing the sink"))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if left == 0 {
            break;
        }
        let mut f = std::fs::File::open(e.path()).map_err(io("reading the sink"))?;
        left -= std::io::copy(&mut std::io::Read::take(&mut f, left), &mut out)
            .map_err(io("writing the cmp file"))?;
    }
    // Pad with zeros if the sink files were shorter (they never are for a generated sink).
    std::io::copy(&mut std::io::Read::take(std::io::repeat(0), left), &mut out)
        .map_err(io("writing the cmp file"))?;
    std::io::Write::flush(&mut out).map_err(io("writing the cmp file"))
}

/// Reads every given file, and every file under the given directories, once so all
/// runs see a hot page cache.
fn warm(paths: &[&Path]) -> Result<(), BenchError> {
    for path in paths {
        if path.is_dir() {
            for e in std::fs::read_dir(path)
                .map_err(io("warming the cache"))?
                .filter_map(Result::ok)
            {
                warm(&[&e.path()])?;
            }
        } else {
            let mut f = std::fs::File::open(path).map_err(io("warming the cache"))?;
            std::io::copy(&mut f, &mut std::io::sink()).map_err(io("warming the cache"))?;
        }
    }
    Ok(())
}

impl BenchVerifyReport {
    pub fn to_human(&self) -> String {
        let mut text = format!(
            "bench verify: {} keys x {} bytes (medians of runs side by side)\n",
            self.keys, self.bytes_per_key
        );
        for c in &self.cases {
            let target = if c.interleave < 2.0 { "1.0" } else { "0.75" };
            text += &format!(
                "  runs of {} lines per key (measured {:.2}): {:.1} MB committed in {} commits\n    \
                 cmp of the same bytes:        median {:.3} s  {:>7.0} MB/s\n    \
                 cat of outputs and inputs:    median {:.3} s\n    \
                 soakcheck verify:             median {:.3} s  {:>7.0} MB/s\n    \
                 ratio verify / cmp:           {:.2}x (target <= {target}x)\n    \
                 ratio verify / cat (floor):   {:.2}x\n",
                c.interleave,
                c.measured_mean_run,
                c.committed_bytes as f64 / 1e6,
                c.commits,
                c.cmp_median_s,
                c.cmp_mb_per_s,
                c.cat_median_s,
                c.verify_median_s,
                c.verify_mb_per_s,
                c.ratio_to_cmp,
                c.ratio_to_cat
            );
        }
        text
    }
}

/// `soakcheck bench demo`: committed throughput of the embedded demo, unthrottled.
#[derive(Debug, Clone)]
pub struct BenchDemoPlan {
    pub keys: usize,
    pub workers: usize,
    pub bytes_per_key: u64,
    pub checkpoint_interval: Duration,
    pub exe: PathBuf,
    pub dir: Option<PathBuf>,
    /// Also through the fault proxy, side by side.
    pub proxy: bool,
    /// With `proxy`: pairs of runs (direct, proxied) whose medians are reported.
    pub runs: usize,
}

/// The same bench with every link through the fault proxy (no fault applied).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProxiedDemo {
    pub committed_mb_per_s: f64,
    /// Proxied over direct.
    pub ratio: f64,
    pub verified: bool,
}

/// The target of `bench demo --proxy`: the proxied throughput over the direct one.
pub const PROXIED_TARGET: f64 = 0.8;

/// `bench demo`'s bytes per key and checkpoint interval when not given. The feeding
/// time ends with the commit of the last line, so it is rounded up to a whole
/// checkpoint: the plain bench (a throughput floor) takes 4 MB and the default 1 s,
/// but `--proxy` compares two figures and needs many commits per run to resolve 0.8x,
/// so it takes 40 MB and 200 ms (the interval the end-to-end tests use).
pub fn demo_defaults(proxy: bool) -> (u64, Duration) {
    match proxy {
        false => (4_000_000, Duration::from_secs(1)),
        true => (40_000_000, Duration::from_millis(200)),
    }
}

/// Fewer commits per run than this and a run's feeding time is mostly rounding.
const RESOLVING_COMMITS: u64 = 20;

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchDemoReport {
    pub keys: usize,
    pub workers: usize,
    pub committed_bytes: u64,
    pub commits: u64,
    /// From the first feed started to the last feed's final ack.
    pub feeding_s: f64,
    pub committed_mb_per_s: f64,
    pub verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxied: Option<ProxiedDemo>,
    /// Runs of each kind the figures are medians of.
    pub runs: usize,
}

pub fn bench_demo(
    plan: &BenchDemoPlan,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchDemoReport, BenchError> {
    if !plan.proxy {
        return demo_once(plan, "", false, None, progress);
    }
    // Every run feeds the same inputs: generated once.
    let (root, _guard) = bench_root(plan, "inputs")?;
    let inputs = root.join("in");
    crate::demo::cluster::cluster_inputs(&cluster_plan(plan, false, &root), &inputs, progress)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    // Direct and proxied alternate, so both see the same machine; medians.
    let mut direct = Vec::new();
    let mut proxied = Vec::new();
    for run in 0..plan.runs.max(1) {
        progress(&format!(
            "run {} of {}: direct, then every link through the fault proxy",
            run + 1,
            plan.runs.max(1)
        ));
        let name = format!("run{}", run + 1);
        direct.push(demo_once(plan, &name, false, Some(&inputs), progress)?);
        let name = format!("run{}-proxied", run + 1);
        proxied.push(demo_once(plan, &name, true, Some(&inputs), progress)?);
    }
    let median = |v: &mut Vec<BenchDemoReport>| {
        v.sort_by(|a, b| a.committed_mb_per_s.total_cmp(&b.committed_mb_per_s));
        v[v.len() / 2].clone()
    };
    let verified = proxied.iter().all(|r| r.verified);
    let mut report = median(&mut direct);
    report.verified = direct.iter().all(|r| r.verified);
    let through = median(&mut proxied);
    report.proxied = Some(ProxiedDemo {
        committed_mb_per_s: through.committed_mb_per_s,
        ratio: through.committed_mb_per_s / report.committed_mb_per_s,
        verified,
    });
    report.runs = plan.runs.max(1);
    Ok(report)
}

/// A directory for one of the bench's runs: `DIR/NAME` with `--dir` (kept; `DIR`
/// itself for an empty name), else a temporary one (removed when the guard drops).
fn bench_root(
    plan: &BenchDemoPlan,
    name: &str,
) -> Result<(PathBuf, Option<tempfile::TempDir>), BenchError> {
    let dir = plan.dir.as_ref().map(|d| d.join(name));
    root_or_temp(dir.as_deref(), &format!("soakcheck-bench-demo-{name}-"))
}

/// The demo cluster of `plan` in `root`, direct or `proxied`.
fn cluster_plan(
    plan: &BenchDemoPlan,
    proxied: bool,
    root: &Path,
) -> crate::demo::cluster::ClusterPlan {
    crate::demo::cluster::ClusterPlan {
        exe: plan.exe.clone(),
        workers: plan.workers,
        keys: (b'A'..).take(plan.keys).collect(),
        bytes_per_key: plan.bytes_per_key,
        rate: 0,
        dir: root.to_path_buf(),
        checkpoint_interval: plan.checkpoint_interval,
        inject: None,
        seed: 1,
        timeout: Duration::from_secs(600),
        proxied,
        given_inputs: None,
    }
}

/// One run of the demo cluster in the bench's directory `name`, direct or `proxied`, on
/// `inputs` when given (else its own, generated).
fn demo_once(
    plan: &BenchDemoPlan,
    name: &str,
    proxied: bool,
    inputs: Option<&Path>,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchDemoReport, BenchError> {
    use crate::demo::cluster::run_cluster;
    let (root, _guard) = bench_root(plan, name)?;
    let cluster = crate::demo::cluster::ClusterPlan {
        given_inputs: inputs.map(Path::to_path_buf),
        ..cluster_plan(plan, proxied, &root)
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let outcome =
        run_cluster(&cluster, &stop, progress).map_err(|e| BenchError::Setup(e.to_string()))?;
    let feeding = outcome.feeding.as_secs_f64();
    Ok(BenchDemoReport {
        keys: plan.keys,
        workers: plan.workers,
        committed_bytes: outcome
            .report
            .sink
            .committed_bytes
            .min(u128::from(u64::MAX)) as u64,
        commits: outcome.report.sink.commits,
        feeding_s: feeding,
        committed_mb_per_s: outcome.report.sink.committed_bytes as f64 / 1e6 / feeding,
        verified: outcome.report.verdict == crate::verify::Verdict::Ok,
        proxied: None,
        runs: 1,
    })
}

impl BenchDemoReport {
    pub fn to_human(&self) -> String {
        format!(
            "bench demo: {} workers, {} unthrottled feeds -> {:.1} MB committed in {} commits\n  \
             feeding took {:.2} s: {:.1} MB/s committed (target >= 20 MB/s); verify --expect-complete: {}\n",
            self.workers,
            self.keys,
            self.committed_bytes as f64 / 1e6,
            self.commits,
            self.feeding_s,
            self.committed_mb_per_s,
            if self.verified { "pass" } else { "FAIL" }
        ) + &self.proxied.as_ref().map_or(String::new(), |p| {
            format!(
                "  through the fault proxy (every link, no fault): {:.1} MB/s committed, {:.2}x direct (target >= {PROXIED_TARGET}x; medians of {} runs each, alternating); verify: {}\n",
                p.committed_mb_per_s,
                p.ratio,
                self.runs,
                if p.verified { "pass" } else { "FAIL" }
            ) + &self.coarse_note()
        })
    }

    /// A warning when the runs were too short for the ratio to mean much.
    fn coarse_note(&self) -> String {
        if self.commits >= RESOLVING_COMMITS {
            return String::new();
        }
        format!(
            "  note: only {} commits per run, and each run's time is rounded up to a whole checkpoint: the ratio is coarse (use a larger --bytes-per-key or a shorter --checkpoint-interval)\n",
            self.commits
        )
    }
}

/// `soakcheck bench watch`: latency and cost per MB of watch while a writer appends
/// commits to a sink directory.
#[derive(Debug, Clone)]
pub struct BenchWatchPlan {
    pub keys: usize,
    pub workers: usize,
    /// Committed bytes to append in all.
    pub total_bytes: u64,
    /// Bytes per commit (about).
    pub commit_bytes: u64,
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchWatchReport {
    pub committed_bytes: u64,
    pub commits: u64,
    pub latency_median_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// Watcher CPU per MB over the first and the last 100 MB.
    pub cpu_ms_per_mb_first: f64,
    pub cpu_ms_per_mb_last: f64,
    pub verified: bool,
    pub wall_s: f64,
}

fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

pub fn bench_watch(
    plan: &BenchWatchPlan,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchWatchReport, BenchError> {
    let (root, _guard) = root_or_temp(plan.dir.as_deref(), "soakcheck-bench-watch-")?;
    let input_dir = root.join("in");
    let sink_dir = root.join(crate::formats::sinkdir::SINK_OUT);
    let _ = std::fs::remove_dir_all(&sink_dir);
    std::fs::create_dir_all(&sink_dir).map_err(io("creating the sink dir"))?;
    let keys: Vec<u8> = (b'A'..).take(plan.keys).collect();
    // od -x turns 16 bytes into one 49- or 50-byte line.
    let raw = plan.total_bytes / plan.keys as u64 * 16 / 50;
    progress(&format!("generating {} inputs of {raw} bytes", plan.keys));
    generate_inputs(&keys, raw, &input_dir, &DataSource::Seeded(3))
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let inputs: Vec<Vec<u8>> = keys
        .iter()
        .map(|&k| std::fs::read(input_path(&input_dir, k)))
        .collect::<std::io::Result<_>>()
        .map_err(io("reading inputs"))?;
    let total: u64 = inputs.iter().map(|i| i.len() as u64).sum();
    let written: Written = Arc::default();
    let writer = {
        let writer = CommitWriter {
            inputs: inputs.clone(),
            written: Arc::clone(&written),
            sink_dir: sink_dir.clone(),
            workers: plan.workers,
            commit_bytes: plan.commit_bytes,
        };
        std::thread::spawn(move || writer.run())
    };
    progress(&format!(
        "appending {:.0} MB of commits while watching",
        total as f64 / 1e6
    ));
    let watched = watch_commits(&keys, &inputs, &sink_dir, &written, total)?;
    let commits = writer
        .join()
        .map_err(|_| BenchError::Setup("writer panicked".into()))?
        .map_err(io("writing the sink"))?;
    Ok(watched.report(commits))
}

/// When each commit's `2-ok` was written: (worker name, end offset) -> time.
type Written = Arc<Mutex<HashMap<(String, u64), Instant>>>;

/// The bench's writer: each worker commits interleaved runs of its keys' lines, as
/// fast as it can, noting when each commit was written.
struct CommitWriter {
    inputs: Vec<Vec<u8>>,
    written: Written,
    sink_dir: PathBuf,
    workers: usize,
    commit_bytes: u64,
}

impl CommitWriter {
    /// Writes every input; returns how many commits it made.
    fn run(self) -> std::io::Result<u64> {
        let mut next = vec![0usize; self.inputs.len()];
        let mut outs = Vec::new();
        for w in 0..self.workers {
            let name = crate::topology::worker_name(w);
            let out = std::fs::File::create(self.sink_dir.join(format!("output.{name}")))?;
            let log = std::fs::File::create(self.sink_dir.join(format!("output.{name}.txnlog")))?;
            outs.push((name, out, log, 0u64));
        }
        let mut cid = 0u64;
        let mut commits = 0u64;
        loop {
            let mut any = false;
            cid += 1;
            for (w, (name, out, log, len)) in outs.iter_mut().enumerate() {
                let chunk = self.chunk(w, &mut next);
                if chunk.is_empty() {
                    continue;
                }
                any = true;
                let start = *len;
                out.write_all(&chunk)?;
                *len += chunk.len() as u64;
                let records = commit_records(name, cid, start, *len);
                self.written
                    .lock()
                    .expect("lock")
                    .insert((name.clone(), *len), Instant::now());
                log.write_all(records.as_bytes())?;
                commits += 1;
            }
            if !any {
                return Ok(commits);
            }
        }
    }

    /// Worker `w`'s next commit: runs of up to 32 lines of each of its keys in turn,
    /// up to the commit size.
    fn chunk(&self, w: usize, next: &mut [usize]) -> Vec<u8> {
        let mut chunk = Vec::with_capacity(self.commit_bytes as usize + 64);
        while (chunk.len() as u64) < self.commit_bytes {
            let mut moved = false;
            for k in (0..self.inputs.len()).filter(|k| k % self.workers == w) {
                let rest = &self.inputs[k][next[k]..];
                if rest.is_empty() {
                    continue;
                }
                let mut end = 0;
                for _ in 0..32 {
                    match memchr::memchr(b'\n', &rest[end..]) {
                        Some(n) => end += n + 1,
                        None => {
                            end = rest.len();
                            break;
                        }
                    }
                }
                chunk.extend_from_slice(&rest[..end]);
                next[k] += end;
                moved = true;
            }
            if !moved {
                break;
            }
        }
        chunk
    }
}

/// The `1-ok` and `2-ok` records of worker `name`'s commit `cid` of `start..end`,
/// stamped now.
fn commit_records(name: &str, cid: u64, start: u64, end: u64) -> String {
    use crate::formats::txnlog::{format_record, Record, WhereRange};
    let txn_id = format!("Passthrough-w-{name}-id-1:c_id={cid}");
    let t = crate::duration::unix_now();
    let where_list = vec![WhereRange {
        stream_id: 1,
        start,
        end,
    }];
    let mut records = format_record(
        t,
        &Record::Phase1Commit {
            txn_id: txn_id.clone(),
            where_list,
        },
    );
    records += &format_record(
        t + 1e-6,
        &Record::Phase2Commit {
            txn_id,
            offset: end,
        },
    );
    records
}

/// What the watcher measured.
struct Watched {
    latencies: Vec<Duration>,
    verified: u64,
    cpu_start: Duration,
    cpu_end: Duration,
    cpu_at_100mb: Option<(Duration, u64)>,
    cpu_at_last: Option<(Duration, u64)>,
    complete: bool,
    wall_s: f64,
}

/// The watcher: the same core as `soakcheck watch`, woken by inotify, until every
/// byte is verified (or a key fails).
fn watch_commits(
    keys: &[u8],
    inputs: &[Vec<u8>],
    sink_dir: &Path,
    written: &Written,
    total: u64,
) -> Result<Watched, BenchError> {
    use crate::verify::{Checker, Semantics};
    use crate::watch::WatchCore;
    let keyed: Vec<(u8, &[u8])> = keys.iter().zip(inputs).map(|(&k, i)| (k, &i[..])).collect();
    let mut core = WatchCore::new(sink_dir, Checker::new(Semantics::ExactlyOnce, &keyed));
    let (tx, rx) = mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
        if !matches!(e.map(|e| e.kind), Ok(notify::EventKind::Access(_))) {
            let _ = tx.send(());
        }
    })
    .map_err(|e| BenchError::Setup(e.to_string()))?;
    notify::Watcher::watch(&mut watcher, sink_dir, notify::RecursiveMode::NonRecursive)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let started = Instant::now();
    let mut w = Watched {
        latencies: Vec::new(),
        verified: 0,
        cpu_start: thread_cpu(),
        cpu_end: Duration::ZERO,
        cpu_at_100mb: None,
        cpu_at_last: None,
        complete: false,
        wall_s: 0.0,
    };
    let last_mark = total.saturating_sub(100_000_000);
    while w.verified < total {
        let before = core.log.commits.len();
        let (_, bytes) = core.pass().map_err(|e| BenchError::Setup(e.to_string()))?;
        w.note_latencies(&core.log, before, written);
        w.verified += bytes;
        if w.cpu_at_100mb.is_none() && w.verified >= 100_000_000 {
            w.cpu_at_100mb = Some((thread_cpu(), w.verified));
        }
        if w.cpu_at_last.is_none() && w.verified >= last_mark {
            w.cpu_at_last = Some((thread_cpu(), w.verified));
        }
        if core
            .checker
            .cursors()
            .iter()
            .any(|c| c.mismatch().is_some())
        {
            break;
        }
        if w.verified < total {
            let wait = if core.sink.has_pending() {
                Duration::from_millis(1)
            } else {
                Duration::from_millis(50)
            };
            let _ = rx.recv_timeout(wait);
            while rx.try_recv().is_ok() {}
        }
    }
    w.cpu_end = thread_cpu();
    w.complete = core.complete();
    w.wall_s = started.elapsed().as_secs_f64();
    Ok(w)
}

impl Watched {
    /// How long each commit released since `before` took from its write to here.
    fn note_latencies(&mut self, log: &crate::verify::CommitLog, before: usize, written: &Written) {
        let now = Instant::now();
        let written = written.lock().expect("lock");
        for c in &log.commits[before..] {
            let name = &log.files[c.file].name;
            let worker = name.strip_prefix("output.").unwrap_or(name).to_string();
            if let Some(t) = written.get(&(worker, c.end)) {
                self.latencies.push(now.duration_since(*t));
            }
        }
    }

    fn report(mut self, commits: u64) -> BenchWatchReport {
        self.latencies.sort();
        let pct = |p: f64| {
            self.latencies
                .get(((self.latencies.len() as f64 - 1.0) * p) as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        let (first_cpu, first_bytes) = self.cpu_at_100mb.unwrap_or((self.cpu_end, self.verified));
        let (last_cpu, last_bytes) = self.cpu_at_last.unwrap_or((self.cpu_start, 0));
        BenchWatchReport {
            committed_bytes: self.verified,
            commits,
            latency_median_ms: pct(0.5),
            latency_p99_ms: pct(0.99),
            latency_max_ms: pct(1.0),
            cpu_ms_per_mb_first: (first_cpu - self.cpu_start).as_secs_f64() * 1e3
                / (first_bytes as f64 / 1e6),
            cpu_ms_per_mb_last: (self.cpu_end - last_cpu).as_secs_f64() * 1e3
                / ((self.verified - last_bytes).max(1) as f64 / 1e6),
            verified: self.complete,
            wall_s: self.wall_s,
        }
    }
}

impl BenchWatchReport {
    pub fn to_human(&self) -> String {
        format!(
            "bench watch: {:.0} MB in {} commits appended while watching ({:.1} s)\n  \
             latency from 2-ok write to verified: median {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 <= 50 ms)\n  \
             watcher CPU per MB: first 100 MB {:.3} ms, last 100 MB {:.3} ms (ratio {:.2}, target <= 1.2)\n  \
             every key complete and clean: {}\n",
            self.committed_bytes as f64 / 1e6,
            self.commits,
            self.wall_s,
            self.latency_median_ms,
            self.latency_p99_ms,
            self.latency_max_ms,
            self.cpu_ms_per_mb_first,
            self.cpu_ms_per_mb_last,
            self.cpu_ms_per_mb_last / self.cpu_ms_per_mb_first,
            if self.verified { "yes" } else { "NO" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_report(commits: u64) -> BenchDemoReport {
        BenchDemoReport {
            keys: 10,
            workers: 3,
            committed_bytes: 123_700_000,
            commits,
            feeding_s: 1.07,
            committed_mb_per_s: 115.8,
            verified: true,
            proxied: Some(ProxiedDemo {
                committed_mb_per_s: 116.0,
                ratio: 1.0,
                verified: true,
            }),
            runs: 5,
        }
    }

    /// A ratio of runs that are mostly rounding to whole checkpoints says so; the
    /// `--proxy` defaults give runs long enough not to.
    #[test]
    fn a_proxied_bench_of_few_commits_says_its_ratio_is_coarse() {
        let coarse = demo_report(3).to_human();
        assert!(coarse.contains("note: only 3 commits per run"), "{coarse}");
        assert!(!demo_report(250).to_human().contains("note:"));
        let (bytes, interval) = demo_defaults(true);
        assert!(bytes >= 10 * demo_defaults(false).0 && interval < Duration::from_secs(1));
    }
}
