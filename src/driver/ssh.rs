//! The ssh driver: components on other hosts, driven from this one as Jepsen's control
//! node drives its nodes.
//!
//! How it works:
//! - **Connections.** Every call reuses one connection per host (OpenSSH's
//!   `ControlMaster=auto` with `ControlPersist`), in `BatchMode` with a `ConnectTimeout`,
//!   after the scenario's own `ssh` arguments (port, key, options).
//! - **Start.** One round trip: `setsid` starts a small shell in a session and process
//!   group of its own, detached from ssh, which writes its pid (the group id) to a pid
//!   file, runs the component with its log, and writes the exit status to an exit file.
//!   The call returns the group id once the pid file exists.
//! - **Kill, pause, resume, stop.** One round trip each, by process group: `kill -KILL`,
//!   `-STOP`, `-CONT`, and for a stop `-CONT`, `-TERM`, the grace period, `-KILL`. Actions
//!   go through an agent per host, a shell kept open over ssh (a new session per action
//!   costs a session setup, about 90 ms on loopback; a line on an open channel, well
//!   under a millisecond).
//! - **Liveness.** No ssh per tick: one long-lived monitor session per host runs a shell
//!   loop there that reports each component whose group leader is gone (`exit NAME PGID
//!   STATUS`). Its reports update the driver's state and wake the supervisor
//!   ([`Wake::ChildExited`]). A monitor that dies is reported as every component on its
//!   host being lost, never as all being well.
//!
//! Paths (the run dir, the binaries) are the same on every host, as on a shared file
//! system or identical images. The driver's own files are under
//! `RUN_DIR/.soakcheck-ssh/HOST/`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;

use super::command::shell_quote;
use super::hosts::Hosts;
use super::supervisor::Wake;
use super::{Component, DriverError, Fetched, LaunchSpec, ProcessDriver};

/// What the driver knows of one component.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Remote {
    /// Running as this process group on its host.
    Running { pgid: u32 },
    /// Exited by itself with this status (-1: killed by a signal or unknown).
    Exited { pgid: u32, status: i32 },
}

/// A shell kept open on a host (`ssh HOST exec sh`): each action is one line written and
/// its output read back, one round trip on an open channel, where a new ssh session
/// per action costs a session setup (about 90 ms on loopback here).
struct Agent {
    child: Child,
    stdin: std::process::ChildStdin,
    /// The agent's output lines, read on a thread of their own so an action can time out.
    lines: crossbeam_channel::Receiver<String>,
}

/// Ends an action's output, with its exit status after it.
const DONE: &str = "__soakcheck_done";

/// The longest an action may take on its host (a stop's grace period included): past it
/// the agent is taken for hung and the action fails, instead of the run waiting forever.
const ACTION_TIMEOUT: Duration = Duration::from_secs(30);

impl Agent {
    fn start(mut command: Command) -> std::io::Result<Agent> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let (tx, lines) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Agent {
            child,
            stdin,
            lines,
        })
    }

    /// Runs `script` in a shell of its own (so nothing it does can break the agent or
    /// read its input); returns its exit status and its output (stderr included).
    fn run(&mut self, script: &str, timeout: Duration) -> std::io::Result<(i32, String)> {
        use std::io::Write;
        writeln!(
            self.stdin,
            "sh -c {} < /dev/null 2>&1; echo \"{DONE} $?\"",
            shell_quote(script)
        )?;
        self.stdin.flush()?;
        let deadline = std::time::Instant::now() + timeout;
        let mut out = String::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {timeout:?}"),
                    ))
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed",
                    ))
                }
            };
            if let Some(status) = line.strip_prefix(DONE) {
                return Ok((status.trim().parse().unwrap_or(-1), out));
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The driver's state, shared with the monitors' reader threads.
#[derive(Default)]
struct State {
    components: BTreeMap<Component, Remote>,
}

pub struct SshDriver {
    ssh_args: Vec<String>,
    user: Option<String>,
    hosts: Hosts,
    run_dir: PathBuf,
    control_dir: PathBuf,
    state: Arc<Mutex<State>>,
    agents: Mutex<BTreeMap<String, Agent>>,
    monitors: BTreeMap<String, Child>,
    wakes: Option<Sender<Wake>>,
}

/// The shell loop a monitor runs on its host: every 100 ms, each pid file whose group
/// leader is gone is reported with its exit status and removed. When its stdin ends (the
/// driver, or its ssh connection, is gone) it kills its own process group, so no loop
/// outlives the run; the components are in sessions of their own.
const MONITOR: &str = r#"cd "$1" || exit 3
(cat > /dev/null; kill 0) &
echo ready
while :; do
  for p in *.pid; do
    [ -e "$p" ] || continue
    read pgid < "$p" || continue
    if ! kill -0 "$pgid" 2>/dev/null; then
      n=${p%.pid}
      s=-1
      [ -s "$n.exit" ] && read s < "$n.exit"
      rm -f "$p"
      echo "exit $n $pgid $s"
    fi
  done
  sleep 0.1
done"#;

impl SshDriver {
    /// `ssh_args` go before the destination of every call (`-p`, `-i`, `-o ...`).
    pub fn new(ssh_args: Vec<String>, user: Option<String>, hosts: Hosts, run_dir: &Path) -> Self {
        let control_dir =
            std::env::temp_dir().join(format!("soakcheck-ssh-{}", std::process::id()));
        SshDriver {
            ssh_args,
            user,
            hosts,
            run_dir: run_dir.to_path_buf(),
            control_dir,
            state: Arc::default(),
            agents: Mutex::default(),
            monitors: BTreeMap::new(),
            wakes: None,
        }
    }

    fn destination(&self, host: &str) -> String {
        match &self.user {
            Some(user) => format!("{user}@{host}"),
            None => host.to_string(),
        }
    }

    /// An ssh command to `host` running `script` with `sh -c`.
    pub fn command(&self, host: &str, script: &str) -> Command {
        let _ = std::fs::create_dir_all(&self.control_dir);
        let mut cmd = Command::new("ssh");
        cmd.args(&self.ssh_args)
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
            // A host that stops answering ends the connection within about 6 s, so no
            // action waits on it forever.
            .args(["-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3"])
            .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=60"])
            .arg("-o")
            .arg(format!("ControlPath={}/%C", self.control_dir.display()))
            .arg(self.destination(host))
            .arg(format!("sh -c {}", shell_quote(script)))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `script` on the host of `c` through that host's agent; returns its output.
    fn call(
        &self,
        action: &'static str,
        c: &Component,
        script: &str,
    ) -> Result<String, DriverError> {
        let host = self.hosts.of(c);
        let mut agents = self.agents.lock().expect("agents");
        if !agents.contains_key(host) {
            let agent = Agent::start(self.command(host, "exec sh")).map_err(|e| {
                self.failed(action, c, format!("starting the agent on {host}: {e}"))
            })?;
            agents.insert(host.to_string(), agent);
        }
        let agent = agents.get_mut(host).expect("inserted");
        match agent.run(script, ACTION_TIMEOUT) {
            Ok((0, out)) => Ok(out),
            Ok((status, out)) => Err(self.failed(
                action,
                c,
                format!("on {host}: exit status {status} ({})", out.trim()),
            )),
            Err(e) => {
                // The connection is gone or hung: the next call starts a new agent.
                agents.remove(host);
                Err(self.failed(action, c, format!("on {host}: the agent is gone ({e})")))
            }
        }
    }

    fn failed(&self, action: &'static str, c: &Component, detail: String) -> DriverError {
        DriverError::Action {
            action,
            component: c.name(),
            detail,
        }
    }

    /// Where the driver keeps pid and exit files on `host`.
    fn files_dir(&self, host: &str) -> PathBuf {
        self.run_dir.join(".soakcheck-ssh").join(host)
    }

    fn pgid(&self, c: &Component) -> Option<u32> {
        match self.state.lock().expect("state").components.get(c)? {
            Remote::Running { pgid } => Some(*pgid),
            Remote::Exited { .. } => None,
        }
    }

    /// Sends `signal` to the component's process group in one round trip.
    fn signal(&self, action: &'static str, c: &Component, signal: &str) -> Result<(), DriverError> {
        let Some(pgid) = self.pgid(c) else {
            return Err(self.failed(action, c, "not running".into()));
        };
        self.call(action, c, &format!("kill -{signal} -{pgid}"))
            .map(|_| ())
    }

    /// Starts the host's monitor session once.
    fn ensure_monitor(&mut self, host: &str) -> Result<(), DriverError> {
        if self.monitors.contains_key(host) {
            return Ok(());
        }
        let dir = self.files_dir(host).display().to_string();
        let script = format!(
            "mkdir -p {dir} && exec sh -c {} monitor {dir}",
            shell_quote(MONITOR),
            dir = shell_quote(&dir)
        );
        let mut child = self
            .command(host, &script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| DriverError::Start {
                component: format!("the monitor of {host}"),
                source,
            })?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        match lines.next() {
            Some(Ok(line)) if line == "ready" => {}
            other => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DriverError::Action {
                    action: "monitor",
                    component: host.to_string(),
                    detail: format!("the monitor did not start: {other:?}"),
                });
            }
        }
        let state = Arc::clone(&self.state);
        let wakes = self.wakes.clone();
        let host_name = host.to_string();
        let hosts = self.hosts.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                record_exit(&state, &line);
                if let Some(w) = &wakes {
                    let _ = w.send(Wake::ChildExited);
                }
            }
            // The monitor is gone: nothing on its host can be vouched for.
            let mut state = state.lock().expect("state");
            for (c, remote) in state.components.iter_mut() {
                if let (Remote::Running { pgid }, true) = (&*remote, hosts.of(c) == host_name) {
                    *remote = Remote::Exited {
                        pgid: *pgid,
                        status: -1,
                    };
                }
            }
            drop(state);
            if let Some(w) = &wakes {
                let _ = w.send(Wake::ChildExited);
            }
        });
        self.monitors.insert(host.to_string(), child);
        Ok(())
    }
}

/// Applies a monitor's `exit NAME PGID STATUS` line.
fn record_exit(state: &Mutex<State>, line: &str) {
    let mut words = line.split_whitespace();
    let (Some("exit"), Some(name), Some(pgid), Some(status)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return;
    };
    let (Ok(pgid), Ok(status)) = (pgid.parse::<u32>(), status.parse::<i32>()) else {
        return;
    };
    let Some(c) = super::scenario::parse_component(name) else {
        return;
    };
    let mut state = state.lock().expect("state");
    // Only the run of the component that is current: an old group's exit after a
    // restart is old news.
    if state.components.get(&c) == Some(&Remote::Running { pgid }) {
        state.components.insert(c, Remote::Exited { pgid, status });
    }
}

/// The start script: a session of its own (`setsid`), the pid file, the component with
/// its environment and log, the exit file; returns the group id once the pid file is
/// written.
fn start_script(dir: &str, name: &str, spec: &LaunchSpec) -> String {
    let quote = |s: &str| shell_quote(s);
    let env: Vec<String> = spec
        .env
        .iter()
        .map(|(k, v)| quote(&format!("{k}={v}")))
        .collect();
    let argv: Vec<String> = spec.argv.iter().map(|a| quote(a)).collect();
    let log = quote(&spec.log.display().to_string());
    let (pid, exit) = (
        quote(&format!("{dir}/{name}.pid")),
        quote(&format!("{dir}/{name}.exit")),
    );
    let inner = format!(
        "echo $$ > {pid}.new && mv {pid}.new {pid}; env {} {} >> {log} 2>&1 < /dev/null; echo $? > {exit}",
        env.join(" "),
        argv.join(" ")
    );
    format!(
        "mkdir -p {d} && rm -f {pid} {exit} && mkdir -p \"$(dirname {log})\" && \
         (setsid sh -c {inner} > /dev/null 2>&1 < /dev/null &) && \
         i=0; while [ ! -s {pid} ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; cat {pid}",
        d = quote(dir),
        inner = quote(&inner),
    )
}

impl ProcessDriver for SshDriver {
    fn remote_command(&self, on: &Component, argv: &[String]) -> Option<Command> {
        let words: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
        Some(self.command(self.hosts.of(on), &format!("exec {}", words.join(" "))))
    }

    fn watch_exits(&mut self, wakes: Sender<Wake>) {
        self.wakes = Some(wakes);
    }

    fn start(&mut self, c: &Component, spec: &LaunchSpec) -> Result<(), DriverError> {
        if spec.argv.is_empty() {
            return Err(self.failed("start", c, "its command line is empty".into()));
        }
        let host = self.hosts.of(c).to_string();
        self.ensure_monitor(&host)?;
        let dir = self.files_dir(&host).display().to_string();
        let out = self.call("start", c, &start_script(&dir, &c.name(), spec))?;
        let pgid: u32 = out
            .trim()
            .parse()
            .map_err(|_| self.failed("start", c, format!("no process group id in {out:?}")))?;
        self.state
            .lock()
            .expect("state")
            .components
            .insert(c.clone(), Remote::Running { pgid });
        Ok(())
    }

    fn kill(&mut self, c: &Component) -> Result<(), DriverError> {
        let Some(pgid) = self.pgid(c) else {
            return Err(self.failed("kill", c, "not running".into()));
        };
        // A group that ended on its own since the monitor last looked is as good as
        // killed; any other failure is not.
        let script = format!("kill -KILL -{pgid} 2>/dev/null || ! kill -0 -{pgid} 2>/dev/null");
        self.call("kill", c, &script)?;
        self.state.lock().expect("state").components.remove(c);
        Ok(())
    }

    fn pause(&mut self, c: &Component) -> Result<(), DriverError> {
        self.signal("pause", c, "STOP")
    }

    fn resume(&mut self, c: &Component) -> Result<(), DriverError> {
        self.signal("resume", c, "CONT")
    }

    fn is_alive(&mut self, c: &Component) -> bool {
        self.pgid(c).is_some()
    }

    fn exited(&mut self, c: &Component) -> Option<i32> {
        let mut state = self.state.lock().expect("state");
        let Some(Remote::Exited { status, .. }) = state.components.get(c).cloned() else {
            return None;
        };
        state.components.remove(c);
        Some(status)
    }

    fn stop(&mut self, c: &Component, grace: Duration) -> Result<(), DriverError> {
        let Some(pgid) = self.pgid(c) else {
            self.state.lock().expect("state").components.remove(c);
            return Ok(());
        };
        let tenths = grace.as_millis().div_ceil(100);
        let script = format!(
            "kill -CONT -{pgid} 2>/dev/null; kill -TERM -{pgid} 2>/dev/null; i=0; \
             while kill -0 -{pgid} 2>/dev/null && [ $i -lt {tenths} ]; do sleep 0.1; i=$((i+1)); done; \
             kill -KILL -{pgid} 2>/dev/null; true"
        );
        let result = self.call("stop", c, &script).map(|_| ());
        self.state.lock().expect("state").components.remove(c);
        result
    }

    fn started(&self) -> Vec<Component> {
        self.state
            .lock()
            .expect("state")
            .components
            .keys()
            .cloned()
            .collect()
    }

    fn locate(&self, c: &Component) -> Option<String> {
        let pgid = self.pgid(c)?;
        Some(format!("{} pgid {pgid}", self.hosts.of(c)))
    }

    fn pids(&self) -> Vec<(Component, u32)> {
        Vec::new()
    }

    fn fetch(
        &mut self,
        host_of: &Component,
        remote: &Path,
        local: &Path,
    ) -> Result<Fetched, DriverError> {
        std::fs::create_dir_all(local).map_err(|e| self.failed("fetch", host_of, e.to_string()))?;
        let host = self.hosts.of(host_of).to_string();
        let (Some(parent), Some(name)) = (remote.parent(), remote.file_name()) else {
            return Err(self.failed(
                "fetch",
                host_of,
                format!("{}: no file name", remote.display()),
            ));
        };
        let script = format!(
            "tar -C {} -cf - {}",
            shell_quote(&parent.display().to_string()),
            shell_quote(&name.to_string_lossy())
        );
        let mut reader = self
            .command(&host, &script)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| self.failed("fetch", host_of, e.to_string()))?;
        let stdout = reader.stdout.take().expect("piped");
        let unpacked = tar::Archive::new(stdout).unpack(local);
        let status = reader
            .wait()
            .map_err(|e| self.failed("fetch", host_of, e.to_string()))?;
        match unpacked {
            Ok(()) if status.success() => Ok(Fetched::Copied),
            Ok(()) => Err(self.failed("fetch", host_of, format!("ssh to {host}: {status}"))),
            Err(e) => Err(self.failed("fetch", host_of, e.to_string())),
        }
    }
}

impl Drop for SshDriver {
    fn drop(&mut self) {
        self.agents.lock().expect("agents").clear();
        for (_, mut monitor) in std::mem::take(&mut self.monitors) {
            let _ = monitor.kill();
            let _ = monitor.wait();
        }
        // Close the shared connections.
        for host in self
            .hosts
            .all()
            .into_iter()
            .chain([super::hosts::DEFAULT_HOST.to_string()])
        {
            let _ = Command::new("ssh")
                .args(&self.ssh_args)
                .arg("-o")
                .arg(format!("ControlPath={}/%C", self.control_dir.display()))
                .args(["-O", "exit"])
                .arg(self.destination(&host))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.control_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent protocol over a local `sh`: output and status come back, a script that
    /// hangs times out instead of blocking the run, and the agent goes on afterwards.
    #[test]
    fn an_agent_answers_and_times_out() {
        let mut agent = Agent::start(Command::new("sh")).unwrap();
        assert_eq!(
            agent.run("echo hi; exit 3", ACTION_TIMEOUT).unwrap(),
            (3, "hi\n".into())
        );
        let started = std::time::Instant::now();
        let e = agent
            .run("sleep 5", Duration::from_millis(200))
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2));
        let mut fresh = Agent::start(Command::new("sh")).unwrap();
        assert_eq!(
            fresh.run("printf 'a\\nb\\n'", ACTION_TIMEOUT).unwrap(),
            (0, "a\nb\n".into())
        );
    }

    #[test]
    fn only_the_current_group_exit_counts() {
        let state = Mutex::new(State::default());
        state
            .lock()
            .unwrap()
            .components
            .insert(Component::Worker(1), Remote::Running { pgid: 20 });
        record_exit(&state, "exit worker1 19 -1");
        assert_eq!(
            state.lock().unwrap().components[&Component::Worker(1)],
            Remote::Running { pgid: 20 }
        );
        record_exit(&state, "exit worker1 20 2");
        assert_eq!(
            state.lock().unwrap().components[&Component::Worker(1)],
            Remote::Exited {
                pgid: 20,
                status: 2
            }
        );
    }

    /// The start script runs as written by a local `sh` too: it starts the component in
    /// a group of its own and answers with the group id.
    #[test]
    fn the_start_script_detaches_and_answers_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("files").display().to_string();
        let spec = LaunchSpec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo \"it's $GREETING\"; exit 3".into(),
            ],
            env: vec![("GREETING".into(), "hello there".into())],
            log: dir.path().join("logs/c.log"),
        };
        let out = Command::new("sh")
            .args(["-c", &start_script(&files, "sink", &spec)])
            .output()
            .unwrap();
        let pgid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(pgid > 1);
        let exit = dir.path().join("files/sink.exit");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !exit.exists() || std::fs::read_to_string(&exit).unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(std::fs::read_to_string(&exit).unwrap().trim(), "3");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("logs/c.log")).unwrap(),
            "it's hello there\n"
        );
    }
}
