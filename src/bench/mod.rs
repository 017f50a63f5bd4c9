//! `soakcheck bench`: throughput, measured side by side in one run, as ratios (figures
//! are never checked by timed tests; these and the criterion bench in `benches/` are
//! where speed is proven). One module per bench: [`verify`] (verify against `cmp` and
//! the read floor), [`demo`] (the demo's committed throughput, direct and through the
//! proxy), [`watch`] (watch's latency and cost per MB), [`proxy`] (one connection
//! through the fault proxy).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub mod demo;
pub mod proxy;
pub mod verify;
pub mod watch;

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
