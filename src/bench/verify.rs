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

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{io, median, root_or_temp, time_child, BenchError};
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
