//! `soakcheck run`: the soak driver. It starts the system under test, runs the original
//! master-crasher's crash/restart, pause and grow/shrink loops from one seeded RNG, runs
//! `watch`'s checks in-process, and freezes the world on the first finding.
//!
//! - [`ProcessDriver`] is how components are started, crashed, paused and stopped:
//!   [`local::LocalDriver`] (each component in its own process group, SIGKILL for
//!   crashes, SIGSTOP/SIGCONT for pauses, kill-on-drop) and [`command::CommandDriver`]
//!   (shell templates per action, for ssh, docker or kubectl).
//! - [`preset`] builds the command lines: the embedded demo, or the original Wallaroo
//!   system exactly as its start scripts ran it.
//! - [`scenario`] reads the original arguments (`crash0 crash-sink grow ...`) or a TOML
//!   scenario file; [`run`] is the supervisor loop.

pub mod command;
pub mod hosts;
pub mod local;
pub mod marks;
pub mod pages;
pub mod preset;
pub mod readiness;
pub mod record;
pub mod run;
pub mod scenario;
pub mod ssh;
pub mod supervisor;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::topology::Component;

/// How to start a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// stdout and stderr are appended here.
    pub log: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("starting {component}: {source}")]
    Start {
        component: String,
        source: std::io::Error,
    },
    #[error("{action} {component}: {detail}")]
    Action {
        action: &'static str,
        component: String,
        detail: String,
    },
}

/// Starts, crashes, pauses, resumes and stops components. No method has a default:
/// a wrapper such as [`record::Recorder`] must forward each one, and a forgotten forward
/// is a compile error rather than a silent default.
pub trait ProcessDriver {
    fn start(&mut self, component: &Component, spec: &LaunchSpec) -> Result<(), DriverError>;
    /// A crash: SIGKILL (or the kill template).
    fn kill(&mut self, component: &Component) -> Result<(), DriverError>;
    fn pause(&mut self, component: &Component) -> Result<(), DriverError>;
    fn resume(&mut self, component: &Component) -> Result<(), DriverError>;
    fn is_alive(&mut self, component: &Component) -> bool;
    /// The exit code once the component has exited by itself (reaped); None while alive.
    fn exited(&mut self, component: &Component) -> Option<i32>;
    /// SIGCONT, SIGTERM, `grace`, SIGKILL (or the stop template).
    fn stop(&mut self, component: &Component, grace: Duration) -> Result<(), DriverError>;
    /// The components started and not stopped since (crashed ones included until their
    /// exit is known).
    fn started(&self) -> Vec<Component>;
    /// Where a component runs, for a person: `pid 123`, `127.0.0.3 pgid 123`.
    fn locate(&self, component: &Component) -> Option<String>;
    /// Where a running component's process group is, for the run record, so `reset`
    /// finds it after the run is gone (None: the driver cannot say).
    fn placement(&self, component: &Component) -> Option<Placement>;
    /// How to reach this driver's hosts again (for the run record).
    fn describe(&self) -> DriverRecord;
    /// `reset`: whether the recorded group is still that group (its leader's start time
    /// matches) and alive; with [`RecordedAct::Kill`] it is killed (SIGKILL to the group).
    fn recorded(&mut self, placement: &Placement, act: RecordedAct) -> Result<bool, DriverError>;
    /// The final word of a stop: the groups of this run still alive on any host (each
    /// named with where it is). Empty when every group the run started is gone.
    fn survivors(&mut self) -> Vec<String>;
    /// A command that runs `argv` on the host of `on` (None: on this machine, as a
    /// child, is the same place).
    fn remote_command(&self, on: &Component, argv: &[String]) -> Option<std::process::Command>;
    /// Exits seen by the driver itself (not by SIGCHLD) wake the supervisor here.
    fn watch_exits(&mut self, wakes: crossbeam_channel::Sender<Wake>);
    /// Brings `remote` (a file or directory on the host of `host_of`) into the directory
    /// `local`, under its own name.
    fn fetch(
        &mut self,
        host_of: &Component,
        remote: &std::path::Path,
        local: &std::path::Path,
    ) -> Result<Fetched, DriverError>;
}

/// The driver a scenario asks for (`[driver] kind`; `--command-driver` forces the
/// command templates).
pub fn make_driver(
    scenario: &scenario::Scenario,
    force_command: bool,
    run_dir: &std::path::Path,
) -> Result<Box<dyn ProcessDriver>, scenario::ScenarioError> {
    let kind = if force_command {
        hosts::DriverKind::Command
    } else {
        scenario.driver.kind
    };
    Ok(match kind {
        hosts::DriverKind::Local => Box::new(local::LocalDriver::new()),
        hosts::DriverKind::Ssh => Box::new(ssh::SshDriver::new(
            scenario.driver.ssh.clone(),
            scenario.driver.user.clone(),
            scenario.hosts.clone(),
            run_dir,
        )),
        hosts::DriverKind::Command => {
            let templates =
                scenario
                    .commands
                    .clone()
                    .ok_or_else(|| scenario::ScenarioError::File {
                        path: "scenario".into(),
                        detail:
                            "the command driver needs a [commands] table (or [driver.commands])"
                                .into(),
                    })?;
            Box::new(command::CommandDriver::new(
                templates,
                scenario.hosts.clone(),
            ))
        }
    })
}

/// A signal or a child's exit, as a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// SIGINT or SIGTERM.
    Interrupt,
    /// Some child exited (SIGCHLD, or the remote driver's monitor): ask the driver which.
    ChildExited,
}

/// The name the supervisor records itself under, so a second run in the same run dir
/// sees a live run before any component is up.
pub const SUPERVISOR: &str = "soakcheck-run";

/// Where a component's process group is: what the run record keeps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Placement {
    pub component: String,
    /// The host, when it is not this machine's local driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The group's id (its leader's pid).
    pub pid: u32,
    /// Field 22 of the leader's `/proc/PID/stat`, so a reused pid is never taken for it.
    pub start_time: u64,
}

/// What [`ProcessDriver::recorded`] does with a recorded group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedAct {
    /// Only say whether it is still alive.
    Check,
    /// SIGKILL it if it is.
    Kill,
}

/// How a run reached its hosts, kept in the run record so `reset` can reach them again
/// after the run is gone.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DriverRecord {
    pub kind: hosts::DriverKind,
    /// `ssh`: the arguments of every call, the user, and where the shared connections'
    /// sockets are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_dir: Option<PathBuf>,
}

/// The driver that reaches a recorded run's hosts again (`reset`, and a new run's
/// check for a live one).
pub fn driver_for_record(
    record: &DriverRecord,
    run_dir: &std::path::Path,
) -> Box<dyn ProcessDriver> {
    match record.kind {
        hosts::DriverKind::Ssh => Box::new(ssh::SshDriver::reconnect(record, run_dir)),
        _ => Box::new(local::LocalDriver::new()),
    }
}

/// What [`ProcessDriver::fetch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// The component runs here: its files are where they are.
    AlreadyLocal,
    /// Copied from its host.
    Copied,
}
