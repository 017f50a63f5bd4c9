//! The local process driver: every component in its own process group (so a crash kills
//! the component and its children, and Ctrl-C at the terminal reaches only soakcheck),
//! SIGKILL for crashes, SIGSTOP/SIGCONT for pauses, reaping, and kill-on-drop so no
//! process outlives the driver. On a restart after a crash, the component's log is
//! renamed to `.<epoch>` and gzipped in the background, keeping the last five.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;

pub use crate::process::ChildGuard;

use super::{Component, DriverError, LaunchSpec, ProcessDriver};

/// How many rotated logs are kept per component.
pub const KEEP_ROTATED_LOGS: usize = 5;

/// Renames `log` to `log.<epoch>` and gzips it in the background, deleting all but the
/// newest [`KEEP_ROTATED_LOGS`] rotated copies.
pub fn rotate_log(log: &Path) {
    if !log.exists() {
        return;
    }
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let rotated = PathBuf::from(format!("{}.{epoch}", log.display()));
    if std::fs::rename(log, &rotated).is_err() {
        return;
    }
    let log = log.to_path_buf();
    std::thread::spawn(move || {
        let gz = PathBuf::from(format!("{}.gz", rotated.display()));
        let done = (|| -> std::io::Result<()> {
            let mut input = std::fs::File::open(&rotated)?;
            let out = std::fs::File::create(&gz)?;
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
            std::io::copy(&mut input, &mut enc)?;
            enc.finish()?;
            std::fs::remove_file(&rotated)
        })();
        if done.is_err() {
            let _ = std::fs::remove_file(&gz);
        }
        prune_rotated(&log);
    });
}

/// The log a rotated copy's name belongs to, and when it was rotated:
/// `wallaroo.1.1795919257219.gz` (or without `.gz`, while it is being gzipped) is
/// `wallaroo.1` at 1795919257219 ms. None for a name that is not `BASE.DIGITS[.gz]`.
pub fn rotation_of(name: &str) -> Option<(&str, u128)> {
    let plain = name.strip_suffix(".gz").unwrap_or(name);
    let (base, epoch) = plain.rsplit_once('.')?;
    if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, epoch.parse().ok()?))
}

/// Deletes the oldest rotated copies of `log` beyond [`KEEP_ROTATED_LOGS`].
pub fn prune_rotated(log: &Path) {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name()) else {
        return;
    };
    let name = name.to_string_lossy();
    let mut rotated: Vec<(u128, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let (base, epoch) = rotation_of(&n)?;
            (base == name).then(|| (epoch, e.path()))
        })
        .collect();
    rotated.sort();
    let excess = rotated.len().saturating_sub(KEEP_ROTATED_LOGS);
    for (_, path) in rotated.into_iter().take(excess) {
        let _ = std::fs::remove_file(path);
    }
}

/// Runs components as local child processes.
#[derive(Default)]
pub struct LocalDriver {
    children: BTreeMap<Component, ChildGuard>,
    /// Components that were crashed: their log is rotated at the next start.
    crashed: std::collections::BTreeSet<Component>,
}

impl LocalDriver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Signals the component's process group; an error when it has none (never a claim
    /// of an action that did not happen).
    fn signal(
        &self,
        action: &'static str,
        component: &Component,
        signal: Signal,
    ) -> Result<(), DriverError> {
        let child = self
            .children
            .get(component)
            .ok_or_else(|| not_running(action, component))?;
        child.signal(signal);
        Ok(())
    }
}

fn not_running(action: &'static str, component: &Component) -> DriverError {
    DriverError::Action {
        action,
        component: component.name(),
        detail: "not running".into(),
    }
}

impl ProcessDriver for LocalDriver {
    fn start(&mut self, component: &Component, spec: &LaunchSpec) -> Result<(), DriverError> {
        if self.crashed.remove(component) {
            rotate_log(&spec.log);
        }
        let Some((program, args)) = spec.argv.split_first() else {
            return Err(DriverError::Start {
                component: component.name(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "its command line is empty",
                ),
            });
        };
        let mut command = Command::new(program);
        command.args(args);
        for (k, v) in &spec.env {
            command.env(k, v);
        }
        let guard = ChildGuard::spawn(&component.name(), command, &spec.log).map_err(|source| {
            DriverError::Start {
                component: component.name(),
                source,
            }
        })?;
        if let Some(mut old) = self.children.insert(component.clone(), guard) {
            old.kill();
        }
        Ok(())
    }

    fn kill(&mut self, component: &Component) -> Result<(), DriverError> {
        let mut child = self
            .children
            .remove(component)
            .ok_or_else(|| not_running("kill", component))?;
        child.kill();
        self.crashed.insert(component.clone());
        Ok(())
    }

    fn pause(&mut self, component: &Component) -> Result<(), DriverError> {
        self.signal("pause", component, Signal::SIGSTOP)
    }

    fn resume(&mut self, component: &Component) -> Result<(), DriverError> {
        self.signal("resume", component, Signal::SIGCONT)
    }

    fn is_alive(&mut self, component: &Component) -> bool {
        self.children
            .get_mut(component)
            .is_some_and(|c| c.try_wait().is_none())
    }

    fn exited(&mut self, component: &Component) -> Option<i32> {
        let status = self.children.get_mut(component)?.try_wait()?;
        self.children.remove(component);
        Some(status.code().unwrap_or(-1))
    }

    fn stop(&mut self, component: &Component, grace: Duration) -> Result<(), DriverError> {
        if let Some(mut child) = self.children.remove(component) {
            child.signal(Signal::SIGCONT);
            child.stop(grace);
        }
        Ok(())
    }

    fn started(&self) -> Vec<Component> {
        self.children.keys().cloned().collect()
    }

    fn locate(&self, component: &Component) -> Option<String> {
        let pid = self.children.get(component)?.pid()?;
        Some(format!("pid {pid}"))
    }

    fn placement(&self, component: &Component) -> Option<super::Placement> {
        let pid = self.children.get(component)?.pid()?;
        Some(super::Placement {
            component: component.name(),
            host: None,
            pid,
            start_time: crate::process::proc_start_time(pid)?,
        })
    }

    fn recorded(
        &mut self,
        placement: &super::Placement,
        act: super::RecordedAct,
    ) -> Result<bool, DriverError> {
        if crate::process::proc_start_time(placement.pid) != Some(placement.start_time) {
            return Ok(false);
        }
        if act == super::RecordedAct::Kill {
            let pid = nix::unistd::Pid::from_raw(placement.pid as i32);
            // Components lead their own groups; the supervisor is in its caller's.
            if placement.component != crate::driver::SUPERVISOR {
                let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
            }
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        }
        Ok(true)
    }

    fn survivors(&mut self) -> Vec<String> {
        self.children
            .iter_mut()
            .filter_map(|(c, g)| g.try_wait().is_none().then_some((c, g)))
            .map(|(c, g)| format!("{} (pid {})", c.name(), g.pid().unwrap_or(0)))
            .collect()
    }

    fn describe(&self) -> super::DriverRecord {
        super::DriverRecord::default()
    }

    /// Every component is a child on this machine.
    fn remote_command(&self, _on: &Component, _argv: &[String]) -> Option<Command> {
        None
    }

    /// Exits arrive as SIGCHLD.
    fn watch_exits(&mut self, _wakes: crossbeam_channel::Sender<super::Wake>) {}

    fn fetch(
        &mut self,
        _host_of: &Component,
        _remote: &Path,
        _local: &Path,
    ) -> Result<super::Fetched, DriverError> {
        Ok(super::Fetched::AlreadyLocal)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn an_empty_command_line_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let spec = LaunchSpec {
            argv: vec![],
            env: vec![],
            log: dir.path().join("log"),
        };
        let e = LocalDriver::new()
            .start(&Component::Sink, &spec)
            .unwrap_err();
        assert!(e.to_string().contains("its command line is empty"), "{e}");
    }

    #[test]
    fn rotated_logs_are_gzipped_and_only_five_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("wallaroo.1");
        for i in 0..7u128 {
            std::fs::write(
                dir.path().join(format!("wallaroo.1.{}.gz", 1000 + i)),
                b"old",
            )
            .unwrap();
        }
        std::fs::write(&log, b"the current log\n").unwrap();
        rotate_log(&log);
        assert!(!log.exists());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            let newest_gzipped = names
                .iter()
                .any(|n| n.ends_with(".gz") && !n.contains(".100"));
            if names.len() == KEEP_ROTATED_LOGS && newest_gzipped {
                assert!(
                    !names.iter().any(|n| n == "wallaroo.1.1000.gz"),
                    "the oldest went first: {names:?}"
                );
                let gz = names.iter().find(|n| !n.contains(".100")).unwrap();
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut flate2::read::GzDecoder::new(
                        std::fs::File::open(dir.path().join(gz)).unwrap(),
                    ),
                    &mut text,
                )
                .unwrap();
                assert_eq!(text, "the current log\n");
                break;
            }
            assert!(Instant::now() < deadline, "{names:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
