//! The layout of a run directory, in one place: where `run` (and `demo cluster`) put a
//! run's sink output, logs, events, record, page, worker state and kept earlier runs,
//! and where `verify`, `watch`, `report` and `reset` find them.
//!
//! ```text
//! RUN_DIR/sink-out/            the sink's output.<worker> and .txnlog files, and its log
//! RUN_DIR/wallaroo.N           worker N's log (0 = the initializer)
//! RUN_DIR/sender.out.K         sender K's log
//! RUN_DIR/input-file.K.txt     key K's input
//! RUN_DIR/events.jsonl         the run's timeline (header, faults, findings, end)
//! RUN_DIR/soakcheck-run.json   the run record: every process group, on every host
//! RUN_DIR/report.html          the post-mortem page
//! RUN_DIR/soakcheck-state/     the demo workers' durable state
//! RUN_DIR/soakcheck-runs/      earlier runs, kept
//! RUN_DIR/soakcheck-clock/     each clocked component's libfaketime offset (on its host)
//! RUN_DIR/soakcheck-fs/C       where component C's files are seen through its
//!                              `soakcheck fs` layer (power and disk faults), during a run
//! RUN_DIR/soakcheck-power-cuts/C/cut-N/
//!                              what component C's power cut N took back (on its host)
//! ```

use std::path::{Path, PathBuf};

use crate::formats::sinkdir::SINK_OUT;

pub mod events;
pub mod kept;
pub mod step;

pub const EVENTS: &str = "events.jsonl";
pub const RECORD: &str = "soakcheck-run.json";
pub const REPORT: &str = "report.html";
pub const STATE: &str = "soakcheck-state";
pub const KEPT: &str = "soakcheck-runs";
/// Each clocked component's libfaketime offset file (clock faults).
pub const CLOCK: &str = "soakcheck-clock";
/// The mounts of the `soakcheck fs` layers (power and disk faults).
pub const FS: &str = "soakcheck-fs";
/// What each power cut took back, per component (power faults).
pub const POWER_CUTS: &str = "soakcheck-power-cuts";
/// The sink's log, in its sink directory.
pub const SINK_LOG: &str = "stdout-stderr";

/// A run directory.
#[derive(Debug, Clone, Copy)]
pub struct RunDir<'a>(pub &'a Path);

impl RunDir<'_> {
    pub fn sink_dir(self) -> PathBuf {
        self.0.join(SINK_OUT)
    }
    /// Where the `soakcheck fs` layers are mounted, one folder per component.
    pub fn fs_mounts(self) -> PathBuf {
        self.0.join(FS)
    }
    /// What the power cuts took back, one folder per component.
    pub fn power_cuts_dir(self) -> PathBuf {
        self.0.join(POWER_CUTS)
    }
    pub fn sink_log(self) -> PathBuf {
        self.sink_dir().join(SINK_LOG)
    }
    /// Worker N's log (0 = the initializer).
    pub fn worker_log(self, n: usize) -> PathBuf {
        self.0.join(format!("wallaroo.{n}"))
    }
    pub fn sender_log(self, key: char) -> PathBuf {
        self.0.join(format!("sender.out.{key}"))
    }
    pub fn input(self, key: u8) -> PathBuf {
        crate::formats::input::input_path(self.0, key)
    }
    pub fn events(self) -> PathBuf {
        self.0.join(EVENTS)
    }
    pub fn record(self) -> PathBuf {
        self.0.join(RECORD)
    }
    pub fn report(self) -> PathBuf {
        self.0.join(REPORT)
    }
    pub fn state(self) -> PathBuf {
        self.0.join(STATE)
    }
    pub fn kept(self) -> PathBuf {
        self.0.join(KEPT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_the_original_harness_s() {
        let d = RunDir(Path::new("/r"));
        assert_eq!(d.sink_log(), Path::new("/r/sink-out/stdout-stderr"));
        assert_eq!(d.worker_log(0), Path::new("/r/wallaroo.0"));
        assert_eq!(d.sender_log('B'), Path::new("/r/sender.out.B"));
        assert_eq!(d.input(b'C'), Path::new("/r/input-file.C.txt"));
        assert_eq!(d.events(), Path::new("/r/events.jsonl"));
        assert_eq!(d.kept(), Path::new("/r/soakcheck-runs"));
    }
}
