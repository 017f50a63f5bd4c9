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

/// The commit sizes it measures besides (at real sinks' interleaving): a slow soak's
/// one-second checkpoints commit a few KB each, a fast one's tens of KB.
pub const BENCH_COMMIT_BYTES: [u64; 3] = [4096, 16384, 65536];

/// What a generated sink directory looks like: how its keys interleave, and how much a
/// commit commits (None: the generator's default, about 18 KB at the standard size).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Shape {
    pub interleave: f64,
    pub commit_bytes: Option<u64>,
}

impl Shape {
    /// Every shape `bench verify` measures: each interleaving at the default commit
    /// size, then each commit size at real sinks' interleaving.
    pub fn all() -> Vec<Shape> {
        let interleaves = BENCH_INTERLEAVES.map(|interleave| Shape {
            interleave,
            commit_bytes: None,
        });
        let commits = BENCH_COMMIT_BYTES.map(|bytes| Shape {
            interleave: crate::gen::sink::REALISTIC_INTERLEAVE,
            commit_bytes: Some(bytes),
        });
        interleaves.into_iter().chain(commits).collect()
    }

    fn name(&self) -> String {
        match self.commit_bytes {
            Some(bytes) => format!("{}-{bytes}", self.interleave),
            None => format!("{}", self.interleave),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchVerifyReport {
    pub keys: usize,
    pub bytes_per_key: u64,
    pub cases: Vec<InterleaveCase>,
}

/// One shape's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InterleaveCase {
    /// The mean run of consecutive lines per key asked for, and measured in the
    /// generated outputs.
    pub interleave: f64,
    /// The mean commit size asked for (null: the generator's default).
    pub commit_bytes: Option<u64>,
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
    /// The most `ratio_to_cmp` may be.
    pub cmp_target: f64,
    /// The most `ratio_to_cat` may be (null: no target for this shape).
    pub floor_target: Option<f64>,
}

/// The targets of a shape, against `cmp` and against the floor: issue 22's hold at every
/// commit size, the older ones by interleave.
fn targets(shape: &Shape) -> (f64, Option<f64>) {
    match shape.commit_bytes {
        Some(_) => (0.8, Some(1.5)),
        None if shape.interleave < 2.0 => (1.0, None),
        None => (0.75, None),
    }
}

/// Generates `keys` inputs of `bytes_per_key` and a sink directory from `workers`
/// workers under `root` (`in/`, `sink-out/`); returns the plan that verifies it
/// completely and the generator's summary. Shared by `bench verify` and the criterion bench.
pub fn generate_fixture(
    root: &Path,
    keys: usize,
    bytes_per_key: u64,
    workers: usize,
    shape: Shape,
) -> Result<(crate::verify::VerifyPlan, crate::gen::sink::GenSinkSummary), BenchError> {
    let input_dir = root.join("in");
    let sink_dir = root.join(format!("sink-out-{}", shape.name()));
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
        interleave: shape.interleave,
        commit_bytes: shape.commit_bytes,
    })
    .map_err(|e| BenchError::Setup(e.to_string()))?;
    Ok((
        crate::verify::VerifyPlan::complete(sink_dir, inputs),
        summary,
    ))
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
    let cases = Shape::all()
        .into_iter()
        .map(|shape| bench_shape(plan, &root, shape, progress))
        .collect::<Result<_, _>>()?;
    Ok(BenchVerifyReport {
        keys: plan.keys,
        bytes_per_key: plan.bytes_per_key,
        cases,
    })
}

/// Generates one shape's sink (the inputs are shared) and times cmp, cat and verify on
/// it in turn.
fn bench_shape(
    plan: &BenchVerifyPlan,
    root: &Path,
    shape: Shape,
    progress: &mut dyn FnMut(&str),
) -> Result<InterleaveCase, BenchError> {
    let interleave = shape.interleave;
    progress(&format!(
        "generating {} inputs of {} bytes and a sink of shape {} in {}",
        plan.keys,
        plan.bytes_per_key,
        shape.name(),
        root.display()
    ));
    let (fixture, summary) =
        generate_fixture(root, plan.keys, plan.bytes_per_key, plan.workers, shape)?;
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
            "shape {}: run {}/{}",
            shape.name(),
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
    let (cmp_target, floor_target) = targets(&shape);
    Ok(InterleaveCase {
        interleave,
        commit_bytes: shape.commit_bytes,
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
        cmp_target,
        floor_target,
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
            let missed = |ratio: f64, target: f64| if ratio > target { ", MISSED" } else { "" };
            let cmp_target = c.cmp_target;
            let cmp_missed = missed(c.ratio_to_cmp, cmp_target);
            let floor = c.floor_target.map_or(String::new(), |t| {
                format!(" (target <= {t}x{})", missed(c.ratio_to_cat, t))
            });
            let asked = c
                .commit_bytes
                .map_or(String::new(), |b| format!(", commits of about {b} bytes"));
            text += &format!(
                "  runs of {} lines per key (measured {:.2}){asked}: {:.1} MB committed in {} commits (mean {:.0} bytes)\n    \
                 cmp of the same bytes:        median {:.3} s  {:>7.0} MB/s\n    \
                 cat of outputs and inputs:    median {:.3} s  (the floor: every byte read(2) once into a buffer)\n    \
                 soakcheck verify:             median {:.3} s  {:>7.0} MB/s\n    \
                 ratio verify / cmp:           {:.2}x (target <= {cmp_target}x{cmp_missed})\n    \
                 ratio verify / cat (floor):   {:.2}x{floor}\n",
                c.interleave,
                c.measured_mean_run,
                c.committed_bytes as f64 / 1e6,
                c.commits,
                c.committed_bytes as f64 / c.commits.max(1) as f64,
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
