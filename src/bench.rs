//! `soakcheck bench verify`: measures verify against `cmp` of the same number of bytes,
//! side by side in one run, and reports the ratio (figures are never checked by timed
//! tests; this and the criterion bench in `benches/` are where speed is proven).
//!
//! It generates inputs and a sink directory in a temporary directory, writes two
//! identical files as long as the committed output, warms the page cache, then times
//! alternately `cmp A B` and `soakcheck verify --expect-complete` as child processes, and
//! reports medians.

use std::path::{Path, PathBuf};
use std::process::Command;
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

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchVerifyReport {
    pub keys: usize,
    pub bytes_per_key: u64,
    pub committed_bytes: u64,
    pub commits: u64,
    pub cmp_median_s: f64,
    pub verify_median_s: f64,
    pub verify_mb_per_s: f64,
    pub cmp_mb_per_s: f64,
    /// verify time / cmp time: the target is at most 1.5.
    pub ratio_to_cmp: f64,
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
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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
    let (root, _guard) = match &plan.dir {
        Some(d) => (d.clone(), None),
        None => {
            let d = std::env::temp_dir().join(format!("soakcheck-bench-{}", std::process::id()));
            (d.clone(), Some(TempDir(d)))
        }
    };
    let input_dir = root.join("in");
    let sink_dir = root.join("sink-out");
    let keys: Vec<u8> = (b'A'..).take(plan.keys).collect();
    progress(&format!(
        "generating {} inputs of {} bytes in {}",
        plan.keys,
        plan.bytes_per_key,
        root.display()
    ));
    generate_inputs(
        &keys,
        plan.bytes_per_key,
        &input_dir,
        &DataSource::Seeded(1),
    )
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
        inputs,
        sink_dir: sink_dir.clone(),
        workers: plan.workers,
        fault: None,
        seed: 1,
    })
    .map_err(|e| BenchError::Setup(e.to_string()))?;
    // Two identical files as long as the committed output, for cmp.
    progress("writing the cmp files");
    let a = root.join("cmp-a");
    let b = root.join("cmp-b");
    write_cmp_file(&sink_dir, &a, summary.committed_bytes)?;
    std::fs::copy(&a, &b).map_err(io("copying the cmp file"))?;
    warm(&[&root])?;
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
    // One untimed run of each, then alternate so both see the same machine state.
    time_child(verify_cmd(), "soakcheck verify", true)?;
    time_child(cmp_cmd(), "cmp", true)?;
    let (mut cmp_times, mut verify_times) = (Vec::new(), Vec::new());
    for run in 0..plan.runs.max(1) {
        progress(&format!("run {}/{}", run + 1, plan.runs.max(1)));
        cmp_times.push(time_child(cmp_cmd(), "cmp", true)?);
        verify_times.push(time_child(verify_cmd(), "soakcheck verify", true)?);
    }
    let (cmp_s, verify_s) = (median(cmp_times), median(verify_times));
    let mb = summary.committed_bytes as f64 / 1e6;
    Ok(BenchVerifyReport {
        keys: plan.keys,
        bytes_per_key: plan.bytes_per_key,
        committed_bytes: summary.committed_bytes,
        commits: summary.commits,
        cmp_median_s: cmp_s,
        verify_median_s: verify_s,
        verify_mb_per_s: mb / verify_s,
        cmp_mb_per_s: mb / cmp_s,
        ratio_to_cmp: verify_s / cmp_s,
    })
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

/// Reads every file under the given directories once so all runs see a hot page cache.
fn warm(dirs: &[&Path]) -> Result<(), BenchError> {
    for dir in dirs {
        for e in std::fs::read_dir(dir)
            .map_err(io("warming the cache"))?
            .filter_map(Result::ok)
        {
            let path = e.path();
            if path.is_dir() {
                warm(&[&path])?;
            } else {
                let mut f = std::fs::File::open(&path).map_err(io("warming the cache"))?;
                std::io::copy(&mut f, &mut std::io::sink()).map_err(io("warming the cache"))?;
            }
        }
    }
    Ok(())
}

impl BenchVerifyReport {
    pub fn to_human(&self) -> String {
        format!(
            "bench verify: {} keys x {} bytes -> {:.1} MB committed in {} commits\n  \
             cmp of the same bytes:  median {:.3} s  {:>7.0} MB/s\n  \
             soakcheck verify:       median {:.3} s  {:>7.0} MB/s\n  \
             ratio verify / cmp:     {:.2}x (target <= 1.5x)\n",
            self.keys,
            self.bytes_per_key,
            self.committed_bytes as f64 / 1e6,
            self.commits,
            self.cmp_median_s,
            self.cmp_mb_per_s,
            self.verify_median_s,
            self.verify_mb_per_s,
            self.ratio_to_cmp
        )
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
}

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
}

pub fn bench_demo(
    plan: &BenchDemoPlan,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchDemoReport, BenchError> {
    use crate::demo::cluster::{run_cluster, ClusterPlan};
    let (root, _guard) = match &plan.dir {
        Some(d) => (d.clone(), None),
        None => {
            let d =
                std::env::temp_dir().join(format!("soakcheck-bench-demo-{}", std::process::id()));
            (d.clone(), Some(TempDir(d)))
        }
    };
    let cluster = ClusterPlan {
        exe: plan.exe.clone(),
        workers: plan.workers,
        keys: (b'A'..).take(plan.keys).collect(),
        bytes_per_key: plan.bytes_per_key,
        rate: 0,
        dir: root,
        checkpoint_interval: plan.checkpoint_interval,
        inject: None,
        seed: 1,
        timeout: Duration::from_secs(600),
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let outcome =
        run_cluster(&cluster, &stop, progress).map_err(|e| BenchError::Setup(e.to_string()))?;
    let feeding = outcome.feeding.as_secs_f64();
    Ok(BenchDemoReport {
        keys: plan.keys,
        workers: plan.workers,
        committed_bytes: outcome.report.sink.committed_bytes,
        commits: outcome.report.sink.commits,
        feeding_s: feeding,
        committed_mb_per_s: outcome.report.sink.committed_bytes as f64 / 1e6 / feeding,
        verified: outcome.report.verdict == crate::verify::Verdict::Ok,
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
        )
    }
}
