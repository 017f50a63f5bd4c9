//! The run record, `RUN_DIR/soakcheck-run.json`: how a run reached its hosts and every
//! process group it started there, each with its leader's start time. `soakcheck reset`
//! and the next run read it to find exactly that run's processes, on every host, even
//! after the run itself was killed; a reused pid is never taken for one of them.
//!
//! How it works: [`Recorder`] wraps the run's driver and rewrites the record (atomically)
//! after every start, from the driver's own [`ProcessDriver::placement`]. Reading it
//! back, [`driver_for_record`] rebuilds a driver that reaches the same hosts the same
//! way (the ssh arguments and connection sockets), and [`ProcessDriver::recorded`] asks
//! each host whether a recorded group is still the one the run started, and kills it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::Sender;

use super::Wake;
use super::{
    driver_for_record, Component, DriverError, DriverRecord, Fetched, LaunchSpec, Placement,
    ProcessDriver, RecordedAct,
};

/// The record's file name in the run dir.
pub use crate::rundir::RECORD;

/// What a run leaves for `reset`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    #[serde(default)]
    pub driver: DriverRecord,
    pub processes: Vec<Placement>,
}

/// The record as earlier versions wrote it too (a bare list of local processes).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OnDisk {
    Now(RunRecord),
    Before(Vec<Placement>),
}

pub fn record_path(run_dir: &Path) -> PathBuf {
    run_dir.join(RECORD)
}

/// The record of `run_dir` (an empty one when there is none); an error names why it
/// cannot be read.
pub fn read(run_dir: &Path) -> Result<RunRecord, String> {
    match std::fs::read(record_path(run_dir)) {
        Ok(bytes) => match serde_json::from_slice(&bytes).map_err(|e| e.to_string())? {
            OnDisk::Now(record) => Ok(record),
            OnDisk::Before(processes) => Ok(RunRecord {
                driver: DriverRecord::default(),
                processes,
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RunRecord::default()),
        Err(e) => Err(e.to_string()),
    }
}

/// Each recorded group that is still the one the run started, asked (or, with
/// [`RecordedAct::Kill`], killed) through the driver that reaches its host: this
/// machine's for the supervisor and local components, the recorded driver's for the
/// others. An error for a host that cannot be asked names it.
pub fn sweep(
    run_dir: &Path,
    record: &RunRecord,
    act: RecordedAct,
) -> Vec<Result<Placement, String>> {
    let mut local = super::local::LocalDriver::new();
    let mut remote = record
        .processes
        .iter()
        .any(|p| p.host.is_some())
        .then(|| driver_for_record(&record.driver, run_dir));
    let mut found = Vec::new();
    for p in &record.processes {
        let driver: &mut dyn ProcessDriver = match (&p.host, remote.as_deref_mut()) {
            (Some(_), Some(d)) => d,
            _ => &mut local,
        };
        match driver.recorded(p, act) {
            Ok(true) => found.push(Ok(p.clone())),
            Ok(false) => {}
            Err(e) => found.push(Err(format!("{} ({}): {e}", p.component, where_(p)))),
        }
    }
    found
}

/// Where a recorded group is, for a person.
pub fn where_(p: &Placement) -> String {
    match &p.host {
        Some(host) => format!("{host} pgid {}", p.pid),
        None => format!("pid {}", p.pid),
    }
}

/// Refuses a run dir where a live run is recorded, or whose record cannot be read (it
/// may list live processes), or whose hosts cannot be asked: only `soakcheck reset`
/// kills, and nothing overwrites a live run's files.
pub fn refuse_live_run(run_dir: &Path) -> Result<(), String> {
    let path = record_path(run_dir);
    let record = read(run_dir).map_err(|e| {
        format!(
            "{}: unreadable ({e}); it may list live processes: check for them, then remove it",
            path.display()
        )
    })?;
    let live: Vec<String> = sweep(run_dir, &record, RecordedAct::Check)
        .into_iter()
        .map(|found| match found {
            Ok(p) => format!("{} ({})", p.component, where_(&p)),
            Err(e) => format!("{e} (could not be asked)"),
        })
        .collect();
    if live.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}: a live run is recorded here: {}; stop it, or kill it with `soakcheck reset --run-dir {}`",
        path.display(),
        live.join(", "),
        run_dir.display()
    ))
}

/// `reset`'s first half: kills every recorded group that is still the one the run
/// started, on every host, through the driver that reaches it; then removes the record
/// and the driver's files. An unreadable record is an error (the processes it lists may
/// be alive and writing): nothing is killed, and the caller moves nothing.
pub fn kill_recorded(run_dir: &Path) -> Result<Vec<String>, String> {
    let path = record_path(run_dir);
    let record = read(run_dir).map_err(|e| {
        format!(
            "{}: unreadable ({e}): its processes may still be alive and writing, so nothing \
             was killed and nothing moved; check for leftover components by hand, then \
             remove it",
            path.display()
        )
    })?;
    let mut done: Vec<String> = sweep(run_dir, &record, RecordedAct::Kill)
        .into_iter()
        .map(|found| match found {
            Ok(p) => format!("killed {} ({})", p.component, where_(&p)),
            Err(e) => format!("NOT killed: {e}"),
        })
        .collect();
    if record.driver.kind == super::hosts::DriverKind::Ssh {
        let mut hosts: Vec<String> = record
            .processes
            .iter()
            .filter_map(|p| p.host.clone())
            .collect();
        hosts.sort();
        hosts.dedup();
        super::ssh::close_recorded_connections(&record.driver, &hosts);
    }
    if done.iter().all(|line| !line.starts_with("NOT")) {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir_all(run_dir.join(".soakcheck-ssh"));
    } else {
        done.push(format!(
            "{} is kept: it lists what could not be killed",
            path.display()
        ));
    }
    Ok(done)
}

/// A driver that records every component it starts (where its group is, with its
/// leader's start time) in the run dir, so `soakcheck reset` and a second run find
/// exactly this run's processes.
pub struct Recorder<'d> {
    inner: &'d mut dyn ProcessDriver,
    run_dir: PathBuf,
    record: RunRecord,
}

impl<'d> Recorder<'d> {
    /// Records the supervisor itself at once, so a second run sees this one before any
    /// component is up.
    pub fn new(inner: &'d mut dyn ProcessDriver, run_dir: &Path) -> Self {
        let mut recorder = Recorder {
            record: RunRecord {
                driver: inner.describe(),
                processes: Vec::new(),
            },
            inner,
            run_dir: run_dir.to_path_buf(),
        };
        let me = std::process::id();
        if let Some(start_time) = crate::process::proc_start_time(me) {
            recorder.note(Placement {
                component: super::SUPERVISOR.to_string(),
                host: None,
                pid: me,
                start_time,
            });
        }
        recorder
    }

    fn note(&mut self, placement: Placement) {
        self.record
            .processes
            .retain(|p| p.component != placement.component);
        self.record.processes.push(placement);
        let _ = crate::gen::write_atomically(&record_path(&self.run_dir), |out| {
            out.write_all(&serde_json::to_vec(&self.record).expect("serializes"))
        });
    }
}

impl ProcessDriver for Recorder<'_> {
    fn start(&mut self, c: &Component, spec: &LaunchSpec) -> Result<(), DriverError> {
        self.inner.start(c, spec)?;
        if let Some(placement) = self.inner.placement(c) {
            self.note(placement);
        }
        Ok(())
    }
    fn kill(&mut self, c: &Component) -> Result<(), DriverError> {
        self.inner.kill(c)
    }
    fn pause(&mut self, c: &Component) -> Result<(), DriverError> {
        self.inner.pause(c)
    }
    fn resume(&mut self, c: &Component) -> Result<(), DriverError> {
        self.inner.resume(c)
    }
    fn is_alive(&mut self, c: &Component) -> bool {
        self.inner.is_alive(c)
    }
    fn exited(&mut self, c: &Component) -> Option<i32> {
        self.inner.exited(c)
    }
    fn stop(&mut self, c: &Component, grace: Duration) -> Result<(), DriverError> {
        self.inner.stop(c, grace)
    }
    fn started(&self) -> Vec<Component> {
        self.inner.started()
    }
    fn locate(&self, c: &Component) -> Option<String> {
        self.inner.locate(c)
    }
    fn placement(&self, c: &Component) -> Option<Placement> {
        self.inner.placement(c)
    }
    fn describe(&self) -> DriverRecord {
        self.inner.describe()
    }
    fn recorded(&mut self, p: &Placement, act: RecordedAct) -> Result<bool, DriverError> {
        self.inner.recorded(p, act)
    }
    fn survivors(&mut self) -> Vec<String> {
        self.inner.survivors()
    }
    fn watch_exits(&mut self, wakes: Sender<Wake>) {
        self.inner.watch_exits(wakes)
    }
    fn remote_command(&self, on: &Component, argv: &[String]) -> Option<std::process::Command> {
        self.inner.remote_command(on, argv)
    }
    fn fetch(
        &mut self,
        c: &Component,
        remote: &Path,
        local: &Path,
    ) -> Result<Fetched, DriverError> {
        self.inner.fetch(c, remote, local)
    }
}
