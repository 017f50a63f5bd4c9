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
//!   ([`Wake::ChildExited`]). A monitor whose connection drops is started again; the
//!   exits it missed are reported by the new one (their pid files are still there).
//! - **Signals.** Every ssh process runs in a process group of its own, so a Ctrl-C at
//!   the terminal (which signals the terminal's whole foreground group) reaches only
//!   soakcheck, which then stops every component through connections that are still
//!   there. An action whose agent is gone is sent again through a new one (a start only
//!   when it never reached the host), and a stop that fails keeps the component known,
//!   so it is never forgotten while it runs.
//! - **The end.** [`SshDriver::survivors`] asks every host which of the run's groups
//!   still exist, so the run says everything is stopped only when it is; dropping the
//!   driver closes the shared connections (`ssh -O exit`), not left for `ControlPersist`.
//!
//! Paths (the run dir, the binaries) are the same on every host, as on a shared file
//! system or identical images. The driver's own files are under
//! `RUN_DIR/.soakcheck-ssh/HOST/`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;

use super::command::shell_quote;
use super::hosts::Hosts;
use super::Wake;
use super::{
    Component, DriverError, DriverRecord, Fetched, LaunchSpec, Placement, ProcessDriver,
    RecordedAct,
};

/// What the driver knows of one component.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Remote {
    /// Running as this process group on its host (its leader started at `start_time`,
    /// field 22 of its `/proc/PID/stat` there, 0 when unknown).
    Running { pgid: u32, start_time: u64 },
    /// Exited by itself with this status (-1: killed by a signal or unknown).
    Exited { pgid: u32, status: i32 },
}

impl Remote {
    fn pgid(&self) -> u32 {
        match self {
            Remote::Running { pgid, .. } | Remote::Exited { pgid, .. } => *pgid,
        }
    }
}

/// Whether an action may be sent again through a new agent when its agent is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    /// Signals by group: doing it twice is doing it once.
    Always,
    /// A start: only when it never reached the host (the write to the agent failed).
    IfNotSent,
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

/// Why an agent gave no answer.
#[derive(Debug)]
enum AgentFailure {
    /// The script could not be written: it never reached the host.
    NotSent(std::io::Error),
    /// It was sent, but no answer came (the connection closed, or the time ran out).
    NoAnswer(std::io::Error),
}

impl std::fmt::Display for AgentFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentFailure::NotSent(e) => write!(f, "not sent: {e}"),
            AgentFailure::NoAnswer(e) => write!(f, "no answer: {e}"),
        }
    }
}

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
    fn run(&mut self, script: &str, timeout: Duration) -> Result<(i32, String), AgentFailure> {
        use std::io::Write;
        if let Ok(Some(status)) = self.child.try_wait() {
            let gone = std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                format!("its ssh ended ({status})"),
            );
            return Err(AgentFailure::NotSent(gone));
        }
        writeln!(
            self.stdin,
            "sh -c {} < /dev/null 2>&1; echo \"{DONE} $?\"",
            shell_quote(script)
        )
        .and_then(|()| self.stdin.flush())
        .map_err(AgentFailure::NotSent)?;
        let deadline = std::time::Instant::now() + timeout;
        let mut out = String::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    return Err(AgentFailure::NoAnswer(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {timeout:?}"),
                    )))
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(AgentFailure::NoAnswer(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed",
                    )))
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
    /// Every group the run started, by host (crashed ones too), for the last check that
    /// none is left.
    groups: BTreeMap<String, BTreeSet<(u32, String)>>,
}

/// How every ssh call is made: the scenario's arguments, the user, and the directory of
/// the shared connections' sockets.
#[derive(Debug, Clone)]
struct Ssh {
    args: Vec<String>,
    user: Option<String>,
    control_dir: PathBuf,
}

impl Ssh {
    fn destination(&self, host: &str) -> String {
        match &self.user {
            Some(user) => format!("{user}@{host}"),
            None => host.to_string(),
        }
    }

    /// An ssh command to `host` running `script` with `sh -c`, in a process group of
    /// its own (a terminal's Ctrl-C must not end it under the run's feet).
    fn command(&self, host: &str, script: &str) -> Command {
        let _ = std::fs::create_dir_all(&self.control_dir);
        let mut cmd = Command::new("ssh");
        cmd.args(&self.args)
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
            // A host that stops answering ends the connection within about 6 s, so no
            // action waits on it forever.
            .args(["-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3"])
            .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=60"])
            .arg("-o")
            .arg(format!("ControlPath={}/%C", self.control_dir.display()))
            .arg(self.destination(host))
            .arg(format!("sh -c {}", shell_quote(script)))
            .stdin(Stdio::null())
            .process_group(0);
        cmd
    }

    /// Closes the shared connection to `host`, if there is one.
    fn close(&self, host: &str) {
        let _ = Command::new("ssh")
            .args(&self.args)
            .arg("-o")
            .arg(format!("ControlPath={}/%C", self.control_dir.display()))
            .args(["-O", "exit"])
            .arg(self.destination(host))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .status();
    }
}

pub struct SshDriver {
    ssh: Ssh,
    hosts: Hosts,
    run_dir: PathBuf,
    state: Arc<Mutex<State>>,
    agents: Mutex<BTreeMap<String, Agent>>,
    /// The monitor session of each host (replaced by its thread when it drops).
    monitors: Arc<Mutex<BTreeMap<String, Child>>>,
    wakes: Option<Sender<Wake>>,
    /// Set when the driver goes: monitors that end are not started again.
    closing: Arc<AtomicBool>,
    /// Hosts reached (for closing their connections).
    reached: Mutex<BTreeSet<String>>,
}

/// The shell loop a monitor runs on its host: every 100 ms, each pid file whose group
/// leader is gone is reported with its exit status and removed. When its stdin ends (the
/// driver, or its ssh connection, is gone) it kills its own process group, so no loop
/// outlives the run; the components are in sessions of their own. (The watcher of stdin
/// reads it through fd 3: a background job's own stdin is /dev/null.)
const MONITOR: &str = r#"cd "$1" || exit 3
exec 3<&0
(cat <&3 > /dev/null; kill 0) &
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

/// A shell function printing the start time (field 22 of `/proc/PID/stat`) of its
/// argument, or nothing when it is gone.
const START_TIME: &str = "st() { sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f20; }";

/// A new directory for a driver's ControlMaster sockets, its own even beside another
/// driver of this process (a run and the check for a live run each have theirs). The
/// driver removes it when dropped, and the run record names it for `reset`.
fn control_dir() -> PathBuf {
    tempfile::Builder::new()
        .prefix("soakcheck-ssh-")
        .tempdir()
        .map(|d| d.keep())
        .unwrap_or_else(|_| {
            std::env::temp_dir().join(format!("soakcheck-ssh-{}", std::process::id()))
        })
}

impl SshDriver {
    /// `ssh_args` go before the destination of every call (`-p`, `-i`, `-o ...`).
    pub fn new(ssh_args: Vec<String>, user: Option<String>, hosts: Hosts, run_dir: &Path) -> Self {
        let control_dir = control_dir();
        Self::with(
            Ssh {
                args: ssh_args,
                user,
                control_dir,
            },
            hosts,
            run_dir,
        )
    }

    /// A driver that reaches a recorded run's hosts again, from its record: the same ssh
    /// arguments, over connections of its own (the recorded run's shared connections are
    /// never used: that run may still be alive; [`close_recorded_connections`] ends them
    /// for `reset`).
    pub fn reconnect(record: &DriverRecord, run_dir: &Path) -> Self {
        let control_dir = control_dir();
        Self::with(
            Ssh {
                args: record.ssh.clone(),
                user: record.user.clone(),
                control_dir,
            },
            Hosts::default(),
            run_dir,
        )
    }

    fn with(ssh: Ssh, hosts: Hosts, run_dir: &Path) -> Self {
        SshDriver {
            ssh,
            hosts,
            run_dir: run_dir.to_path_buf(),
            state: Arc::default(),
            agents: Mutex::default(),
            monitors: Arc::default(),
            wakes: None,
            closing: Arc::default(),
            reached: Mutex::default(),
        }
    }

    /// An ssh command to `host` running `script` with `sh -c`.
    pub fn command(&self, host: &str, script: &str) -> Command {
        self.reached
            .lock()
            .expect("reached")
            .insert(host.to_string());
        self.ssh.command(host, script)
    }

    /// Runs `script` on `host` through that host's agent; returns its output. An agent
    /// that is gone is replaced, and the script sent again as `resend` allows.
    fn call_on(
        &self,
        host: &str,
        action: &'static str,
        who: &str,
        script: &str,
        resend: Resend,
    ) -> Result<String, DriverError> {
        let failed = |detail: String| DriverError::Action {
            action,
            component: who.to_string(),
            detail,
        };
        let mut agents = self.agents.lock().expect("agents");
        for attempt in 0..2 {
            if !agents.contains_key(host) {
                let agent = Agent::start(self.command(host, "exec sh"))
                    .map_err(|e| failed(format!("starting the agent on {host}: {e}")))?;
                agents.insert(host.to_string(), agent);
            }
            let agent = agents.get_mut(host).expect("inserted");
            match agent.run(script, ACTION_TIMEOUT) {
                Ok((0, out)) => return Ok(out),
                Ok((status, out)) => {
                    return Err(failed(format!(
                        "on {host}: exit status {status} ({})",
                        out.trim()
                    )))
                }
                Err(e) => {
                    // The connection is gone or hung: the next try starts a new agent.
                    agents.remove(host);
                    let again = match e {
                        AgentFailure::NotSent(_) => true,
                        AgentFailure::NoAnswer(_) => resend == Resend::Always,
                    };
                    if attempt == 0 && again {
                        continue;
                    }
                    return Err(failed(format!("on {host}: the agent is gone ({e})")));
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    fn call(
        &self,
        action: &'static str,
        c: &Component,
        script: &str,
        resend: Resend,
    ) -> Result<String, DriverError> {
        self.call_on(self.hosts.of(c), action, &c.name(), script, resend)
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
            Remote::Running { pgid, .. } => Some(*pgid),
            Remote::Exited { .. } => None,
        }
    }

    /// Sends `signal` to the component's process group in one round trip.
    fn signal(&self, action: &'static str, c: &Component, signal: &str) -> Result<(), DriverError> {
        let Some(pgid) = self.pgid(c) else {
            return Err(self.failed(action, c, "not running".into()));
        };
        self.call(
            action,
            c,
            &format!("kill -{signal} -{pgid}"),
            Resend::Always,
        )
        .map(|_| ())
    }

    /// Starts the host's monitor session once; a thread reads its reports and starts it
    /// again when its connection drops, until the driver goes.
    fn ensure_monitor(&mut self, host: &str) -> Result<(), DriverError> {
        if self.monitors.lock().expect("monitors").contains_key(host) {
            return Ok(());
        }
        let monitor = Monitor {
            ssh: self.ssh.clone(),
            host: host.to_string(),
            dir: self.files_dir(host).display().to_string(),
            state: Arc::clone(&self.state),
            monitors: Arc::clone(&self.monitors),
            closing: Arc::clone(&self.closing),
            wakes: self.wakes.clone(),
        };
        self.reached
            .lock()
            .expect("reached")
            .insert(host.to_string());
        let lines = monitor.start()?;
        std::thread::spawn(move || monitor.follow(lines));
        Ok(())
    }
}

/// One host's monitor: its session, and what its reader thread needs to apply its
/// reports and to start it again.
struct Monitor {
    ssh: Ssh,
    host: String,
    dir: String,
    state: Arc<Mutex<State>>,
    monitors: Arc<Mutex<BTreeMap<String, Child>>>,
    closing: Arc<AtomicBool>,
    wakes: Option<Sender<Wake>>,
}

type Lines = std::io::Lines<BufReader<std::process::ChildStdout>>;

impl Monitor {
    /// Starts the session and waits for its `ready`; returns its report lines.
    fn start(&self) -> Result<Lines, DriverError> {
        let script = format!(
            "mkdir -p {dir} && exec sh -c {} monitor {dir}",
            shell_quote(MONITOR),
            dir = shell_quote(&self.dir)
        );
        let mut child = self
            .ssh
            .command(&self.host, &script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| DriverError::Start {
                component: format!("the monitor of {}", self.host),
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
                    component: self.host.clone(),
                    detail: format!("the monitor did not start: {other:?}"),
                });
            }
        }
        if let Some(mut old) = self
            .monitors
            .lock()
            .expect("monitors")
            .insert(self.host.clone(), child)
        {
            let _ = old.kill();
            let _ = old.wait();
        }
        Ok(lines)
    }

    /// Applies the reports; when the session ends before the driver does, starts it
    /// again (a second later, until it starts or the driver goes).
    fn follow(self, mut lines: Lines) {
        loop {
            for line in lines.by_ref().map_while(Result::ok) {
                record_exit(&self.state, &line);
                if let Some(w) = &self.wakes {
                    let _ = w.send(Wake::ChildExited);
                }
            }
            lines = loop {
                if self.closing.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
                if let Ok(fresh) = self.start() {
                    break fresh;
                }
            };
        }
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
    let Some(c) = crate::topology::Component::parse(name) else {
        return;
    };
    let mut state = state.lock().expect("state");
    // Only the run of the component that is current: an old group's exit after a
    // restart is old news.
    if matches!(state.components.get(&c), Some(Remote::Running { pgid: p, .. }) if *p == pgid) {
        state.components.insert(c, Remote::Exited { pgid, status });
    }
}

/// The start script: a session of its own (`setsid`), the pid file, the component with
/// its environment and log, the exit file; answers `PGID START_TIME` once the pid file
/// is written.
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
        "{START_TIME}; mkdir -p {d} && rm -f {pid} {exit} && mkdir -p \"$(dirname {log})\" && \
         (setsid sh -c {inner} > /dev/null 2>&1 < /dev/null &) && \
         i=0; while [ ! -s {pid} ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; \
         read g < {pid}; echo \"$g $(st $g)\"",
        d = quote(dir),
        inner = quote(&inner),
    )
}

/// The stop script of a group: SIGCONT (a paused group cannot end), SIGTERM, the grace
/// period, SIGKILL; then it waits (up to 2 s) for the group to be gone, and fails when it
/// is not.
fn stop_script(pgid: u32, grace: Duration) -> String {
    let tenths = grace.as_millis().div_ceil(100);
    format!(
        "kill -CONT -{pgid} 2>/dev/null; kill -TERM -{pgid} 2>/dev/null; i=0; \
         while kill -0 -{pgid} 2>/dev/null && [ $i -lt {tenths} ]; do sleep 0.1; i=$((i+1)); done; \
         kill -KILL -{pgid} 2>/dev/null; i=0; \
         while kill -0 -{pgid} 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done; \
         if kill -0 -{pgid} 2>/dev/null; then echo \"group {pgid} is still there after SIGKILL\"; exit 1; fi"
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
        let script = start_script(&dir, &c.name(), spec);
        let out = self.call("start", c, &script, Resend::IfNotSent)?;
        let mut words = out.split_whitespace();
        let pgid: u32 = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| self.failed("start", c, format!("no process group id in {out:?}")))?;
        let start_time = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let mut state = self.state.lock().expect("state");
        state
            .components
            .insert(c.clone(), Remote::Running { pgid, start_time });
        state
            .groups
            .entry(host)
            .or_default()
            .insert((pgid, c.name()));
        Ok(())
    }

    fn kill(&mut self, c: &Component) -> Result<(), DriverError> {
        let Some(pgid) = self.pgid(c) else {
            return Err(self.failed("kill", c, "not running".into()));
        };
        // A group that ended on its own since the monitor last looked is as good as
        // killed; any other failure is not.
        let script = format!("kill -KILL -{pgid} 2>/dev/null || ! kill -0 -{pgid} 2>/dev/null");
        self.call("kill", c, &script, Resend::Always)?;
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

    /// Stops the component's group, even one whose leader has exited (what it started
    /// may still be there). A stop that fails keeps the component known.
    fn stop(&mut self, c: &Component, grace: Duration) -> Result<(), DriverError> {
        let known = self.state.lock().expect("state").components.get(c).cloned();
        let Some(remote) = known else {
            return Ok(());
        };
        self.call(
            "stop",
            c,
            &stop_script(remote.pgid(), grace),
            Resend::Always,
        )?;
        self.state.lock().expect("state").components.remove(c);
        Ok(())
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

    fn placement(&self, c: &Component) -> Option<Placement> {
        let state = self.state.lock().expect("state");
        let Some(Remote::Running { pgid, start_time }) = state.components.get(c) else {
            return None;
        };
        Some(Placement {
            component: c.name(),
            host: Some(self.hosts.of(c).to_string()),
            pid: *pgid,
            start_time: *start_time,
        })
    }

    fn describe(&self) -> DriverRecord {
        DriverRecord {
            kind: super::hosts::DriverKind::Ssh,
            ssh: self.ssh.args.clone(),
            user: self.ssh.user.clone(),
            control_dir: Some(self.ssh.control_dir.clone()),
        }
    }

    fn recorded(&mut self, p: &Placement, act: RecordedAct) -> Result<bool, DriverError> {
        let host = p.host.as_deref().unwrap_or(super::hosts::DEFAULT_HOST);
        let kill = match act {
            RecordedAct::Check => String::new(),
            RecordedAct::Kill => format!("kill -KILL -{0} 2>/dev/null; ", p.pid),
        };
        let script = format!(
            "{START_TIME}; if [ \"$(st {pid})\" = {start} ]; then {kill}echo alive; else echo gone; fi",
            pid = p.pid,
            start = p.start_time
        );
        let out = self.call_on(host, "reset", &p.component, &script, Resend::Always)?;
        Ok(out.trim() == "alive")
    }

    /// Asks every host the run reached which of the run's groups still exist.
    fn survivors(&mut self) -> Vec<String> {
        let groups = self.state.lock().expect("state").groups.clone();
        let mut left = Vec::new();
        for (host, groups) in groups {
            let checks: Vec<String> = groups
                .iter()
                .map(|(pgid, name)| {
                    format!(
                        "kill -0 -{pgid} 2>/dev/null && echo {}",
                        shell_quote(&format!("{name} (pgid {pgid})"))
                    )
                })
                .collect();
            let script = format!("{}; true", checks.join("; "));
            match self.call_on(&host, "check", &host, &script, Resend::Always) {
                Ok(out) => left.extend(out.lines().map(|l| format!("{l} on {host}"))),
                Err(e) => left.push(format!("every group on {host} is unknown: {e}")),
            }
        }
        left
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

/// `reset`: closes the shared connections a recorded run left to `hosts` (a run that was
/// killed leaves them for `ControlPersist`), and removes their sockets' directory.
pub fn close_recorded_connections(record: &DriverRecord, hosts: &[String]) {
    let Some(control_dir) = &record.control_dir else {
        return;
    };
    let ssh = Ssh {
        args: record.ssh.clone(),
        user: record.user.clone(),
        control_dir: control_dir.clone(),
    };
    for host in hosts {
        ssh.close(host);
    }
    let _ = std::fs::remove_dir_all(control_dir);
}

impl Drop for SshDriver {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        self.agents.lock().expect("agents").clear();
        for (_, mut monitor) in std::mem::take(&mut *self.monitors.lock().expect("monitors")) {
            let _ = monitor.kill();
            let _ = monitor.wait();
        }
        // Close the shared connections now, not ControlPersist's minute later.
        let reached = std::mem::take(&mut *self.reached.lock().expect("reached"));
        for host in reached.iter().chain(self.hosts.all().iter()) {
            self.ssh.close(host);
        }
        let _ = std::fs::remove_dir_all(&self.ssh.control_dir);
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
        assert!(
            matches!(&e, AgentFailure::NoAnswer(io) if io.kind() == std::io::ErrorKind::TimedOut),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        let mut fresh = Agent::start(Command::new("sh")).unwrap();
        assert_eq!(
            fresh.run("printf 'a\\nb\\n'", ACTION_TIMEOUT).unwrap(),
            (0, "a\nb\n".into())
        );
        // An agent whose ssh has ended: the script is never sent, so it may be sent
        // again through a new agent, even a start.
        fresh.run("exit 0; exec true", ACTION_TIMEOUT).ok();
        let _ = fresh.child.kill();
        let _ = fresh.child.wait();
        let gone = fresh.run("echo hi", ACTION_TIMEOUT).unwrap_err();
        assert!(matches!(gone, AgentFailure::NotSent(_)), "{gone}");
    }

    /// A process id no process has now.
    fn unused_pid() -> u32 {
        (900_000..4_000_000u32)
            .find(|&p| {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), None)
                    == Err(nix::errno::Errno::ESRCH)
            })
            .unwrap()
    }

    /// The monitor, run by a local `sh` as its host would: it stays up while its input
    /// is open (it used to end at once, its watcher reading a background job's
    /// /dev/null), reports a group whose leader is gone with its exit status, and ends
    /// when its input closes.
    #[test]
    fn the_monitor_reports_exits_and_lives_until_its_input_closes() {
        let dir = tempfile::tempdir().unwrap();
        let mut monitor = Command::new("sh")
            .args(["-c", MONITOR, "monitor"])
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(monitor.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            monitor.try_wait().unwrap().is_none(),
            "the monitor ended on its own"
        );
        let pgid = unused_pid();
        std::fs::write(dir.path().join("sink.exit"), "7\n").unwrap();
        std::fs::write(dir.path().join("sink.pid"), format!("{pgid}\n")).unwrap();
        assert_eq!(
            lines.next().unwrap().unwrap(),
            format!("exit sink {pgid} 7")
        );
        drop(monitor.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while monitor.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the monitor outlived its input"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The stop script ends a group that ignores SIGTERM (SIGKILL after the grace
    /// period), a paused one too, and says so only once the group is gone.
    #[test]
    fn the_stop_script_ends_a_stubborn_paused_group() {
        let mut stubborn = Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 100 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = stubborn.id();
        std::thread::sleep(Duration::from_millis(100));
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid as i32),
            nix::sys::signal::Signal::SIGSTOP,
        );
        let reaper = std::thread::spawn(move || stubborn.wait());
        let out = Command::new("sh")
            .args(["-c", &stop_script(pgid, Duration::from_millis(200))])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        reaper.join().unwrap().unwrap();
        assert_eq!(
            nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid as i32), None),
            Err(nix::errno::Errno::ESRCH)
        );
    }

    #[test]
    fn only_the_current_group_exit_counts() {
        let state = Mutex::new(State::default());
        state.lock().unwrap().components.insert(
            Component::Worker(1),
            Remote::Running {
                pgid: 20,
                start_time: 5,
            },
        );
        record_exit(&state, "exit worker1 19 -1");
        assert_eq!(
            state.lock().unwrap().components[&Component::Worker(1)],
            Remote::Running {
                pgid: 20,
                start_time: 5
            }
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
                "echo \"it's $GREETING\"; sleep 0.5; exit 3".into(),
            ],
            env: vec![("GREETING".into(), "hello there".into())],
            log: dir.path().join("logs/c.log"),
        };
        let out = Command::new("sh")
            .args(["-c", &start_script(&files, "sink", &spec)])
            .output()
            .unwrap();
        let answer = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut words = answer.split_whitespace();
        let pgid: u32 = words.next().unwrap().parse().unwrap();
        let start_time: u64 = words.next().unwrap().parse().unwrap();
        assert!(pgid > 1);
        assert_eq!(
            Some(start_time),
            crate::process::proc_start_time(pgid),
            "the leader's start time comes back with its group"
        );
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
