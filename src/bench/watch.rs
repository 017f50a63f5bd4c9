//! `soakcheck bench watch`: latency and cost per MB of watch while a writer appends
//! commits to a sink directory.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::formats::input::input_path;
use crate::gen::inputs::{generate_inputs, DataSource};

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
