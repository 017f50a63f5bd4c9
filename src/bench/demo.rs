//! `soakcheck bench demo`: committed throughput of the embedded demo, unthrottled, and
//! with `--proxy` the same through the fault proxy's clear links, or with `--fs` with
//! every directory through a `soakcheck fs` layer, side by side with direct runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// `soakcheck bench demo`: committed throughput of the embedded demo, unthrottled.
#[derive(Debug, Clone)]
pub struct BenchDemoPlan {
    pub keys: usize,
    pub workers: usize,
    pub bytes_per_key: u64,
    pub checkpoint_interval: Duration,
    pub exe: PathBuf,
    pub dir: Option<PathBuf>,
    /// What to measure beside the direct runs, if anything.
    pub compare: Option<Beside>,
    /// With `compare`: pairs of runs (direct, then the other) whose medians are reported.
    pub runs: usize,
}

/// What a bench of the demo measures beside its direct runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beside {
    /// Every link through the fault proxy (no fault applied).
    Proxy,
    /// The sink's and every worker's directory through a `soakcheck fs` layer (no fault).
    Fs,
}

/// The same bench through the fault proxy or the filesystem layer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProxiedDemo {
    pub committed_mb_per_s: f64,
    /// Over direct.
    pub ratio: f64,
    pub verified: bool,
}

/// The target of `bench demo --proxy`: the proxied throughput over the direct one.
pub const PROXIED_TARGET: f64 = 0.8;

/// The target of `bench demo --fs`: the throughput through the layers over direct.
pub const FS_TARGET: f64 = 0.6;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub through_fs: Option<ProxiedDemo>,
    /// Runs of each kind the figures are medians of.
    pub runs: usize,
}

pub fn bench_demo(
    plan: &BenchDemoPlan,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchDemoReport, BenchError> {
    let Some(beside) = plan.compare else {
        return demo_once(plan, "", None, None, progress);
    };
    // Every run feeds the same inputs: generated once.
    let (root, _guard) = bench_root(plan, "inputs")?;
    let inputs = root.join("in");
    crate::demo::cluster::cluster_inputs(&cluster_plan(plan, None, &root), &inputs, progress)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    // Direct and proxied alternate, so both see the same machine; medians.
    let mut direct = Vec::new();
    let mut proxied = Vec::new();
    let (what, suffix) = match beside {
        Beside::Proxy => ("every link through the fault proxy", "proxied"),
        Beside::Fs => ("every directory through a filesystem layer", "fs"),
    };
    for run in 0..plan.runs.max(1) {
        progress(&format!(
            "run {} of {}: direct, then {what}",
            run + 1,
            plan.runs.max(1)
        ));
        let name = format!("run{}", run + 1);
        direct.push(demo_once(plan, &name, None, Some(&inputs), progress)?);
        let name = format!("run{}-{suffix}", run + 1);
        proxied.push(demo_once(
            plan,
            &name,
            Some(beside),
            Some(&inputs),
            progress,
        )?);
    }
    let median = |v: &mut Vec<BenchDemoReport>| {
        v.sort_by(|a, b| a.committed_mb_per_s.total_cmp(&b.committed_mb_per_s));
        v[v.len() / 2].clone()
    };
    let verified = proxied.iter().all(|r| r.verified);
    let mut report = median(&mut direct);
    report.verified = direct.iter().all(|r| r.verified);
    let through = median(&mut proxied);
    let compared = Some(ProxiedDemo {
        committed_mb_per_s: through.committed_mb_per_s,
        ratio: through.committed_mb_per_s / report.committed_mb_per_s,
        verified,
    });
    match beside {
        Beside::Proxy => report.proxied = compared,
        Beside::Fs => report.through_fs = compared,
    }
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

/// The demo cluster of `plan` in `root`, direct or `beside` it.
fn cluster_plan(
    plan: &BenchDemoPlan,
    beside: Option<Beside>,
    root: &Path,
) -> crate::demo::cluster::ClusterPlan {
    use crate::demo::cluster::Files;
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
        proxied: beside == Some(Beside::Proxy),
        files: match beside {
            Some(Beside::Fs) => Files::ThroughFs,
            _ => Files::Direct,
        },
        given_inputs: None,
    }
}

/// One run of the demo cluster in the bench's directory `name`, direct or `beside` it,
/// on `inputs` when given (else its own, generated).
fn demo_once(
    plan: &BenchDemoPlan,
    name: &str,
    beside: Option<Beside>,
    inputs: Option<&Path>,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchDemoReport, BenchError> {
    use crate::demo::cluster::run_cluster;
    let (root, _guard) = bench_root(plan, name)?;
    let cluster = crate::demo::cluster::ClusterPlan {
        given_inputs: inputs.map(Path::to_path_buf),
        ..cluster_plan(plan, beside, &root)
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
        through_fs: None,
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
        }) + &self.through_fs.as_ref().map_or(String::new(), |p| {
            format!(
                "  through soakcheck fs (the sink's and every worker's directory, no fault): {:.1} MB/s committed, {:.2}x direct (target >= {FS_TARGET}x; medians of {} runs each, alternating); verify: {}\n",
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
            through_fs: None,
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
