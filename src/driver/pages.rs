//! The pages of a run (the live page during the soak and the post-mortem page at its
//! end) as the driver asks for them. The report layer, above the driver, makes them:
//! `plans` hands an implementation in with the run's plan, so the driver never imports
//! the report.

use std::net::SocketAddr;
use std::path::Path;

/// Makes a run's pages.
pub trait RunPages: std::fmt::Debug + Send + Sync {
    /// Serves the live page of the run in `run_dir` at `addr` until the returned page
    /// is dropped.
    fn serve(&self, addr: SocketAddr, run_dir: &Path) -> Result<LivePage, String>;
    /// Writes `out`, the page of the run in `run_dir`, reading its sink output and logs
    /// from `files` (the run dir, or where they were fetched to from other hosts).
    fn write(&self, run_dir: &Path, files: &Path, out: &Path) -> Result<(), String>;
}

/// A live page being served: it stops when dropped.
pub struct LivePage {
    /// Where it listens (port 0 resolved).
    pub addr: SocketAddr,
    pub server: Box<dyn Send>,
}
