//! Process-group supervision, shared by `run`'s local driver and `demo cluster`: a
//! child in a process group of its own (so a crash kills it and its children, and Ctrl-C
//! at the terminal reaches only soakcheck), signalled as a group, stopped with SIGTERM,
//! a grace period, then SIGKILL, and killed when its guard is dropped, so no child
//! outlives its owner even when the owner fails.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot.
pub fn proc_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// A child process in its own process group, killed (the whole group) when dropped.
pub struct ChildGuard {
    pub name: String,
    child: Option<Child>,
}

impl ChildGuard {
    /// Starts `command` in a new process group with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> std::io::Result<ChildGuard> {
        use std::os::unix::process::CommandExt;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", log.display())))?;
        command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        Ok(ChildGuard {
            name: name.to_string(),
            child: Some(command.spawn()?),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends a signal to the child's whole process group.
    pub fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid() {
            let _ = killpg(Pid::from_raw(pid as i32), signal);
        }
    }

    /// The exit status if the child has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGKILL the group and reap (a crash, as in `kill -9`).
    pub fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// SIGTERM, a grace period, then SIGKILL to the whole group. The group is killed
    /// even when its leader ended within the grace period: what it started in its group
    /// goes too. The leader is reaped last, so until then its pid (the group's id)
    /// cannot be reused and the SIGKILL reaches only this group.
    pub fn stop(&mut self, grace: Duration) {
        self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !self.leader_exited() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }

    /// Whether the leader has exited, without reaping it (`waitid` with `WNOWAIT`).
    fn leader_exited(&self) -> bool {
        use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
        let Some(pid) = self.pid() else {
            return true;
        };
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        !matches!(
            waitid(Id::Pid(Pid::from_raw(pid as i32)), flags),
            Ok(WaitStatus::StillAlive)
        )
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
    }
}
