//! The layer driven over a pipe, for a run whose components are on other hosts: `soakcheck
//! fs MOUNT --backing DIR --control-stdin` reads one command per line on stdin and
//! answers each with one JSON line on stdout. A run starts it on the component's host
//! through its driver (an ssh session per layer) and drives it with [`PipedLayer`].
//!
//! The protocol ([`serve_piped`] is the layer's side):
//! - once mounted, before any command: `{"mounted": "/the/mount"}`;
//! - `lose-unsynced`, `checkpoint`, `unsynced`, `fault {FaultRequest as JSON}` and
//!   `clear-faults`, as the HTTP control's calls; each answered `{"ok": VALUE}` (the
//!   same JSON as the HTTP answer) or `{"error": "why"}` once its effect is complete;
//! - the end of stdin (or SIGINT, SIGTERM, SIGHUP) stops the layer as a shutdown does:
//!   everything made durable, unmounted, its folder removed; then `{"stopped":
//!   UNSYNCED}`.
//!
//! Why stdin: when the run ends in any way, SIGKILL included, its end of the pipe closes
//! and the ssh session with it, so the layer on the other host unmounts by itself and
//! nothing is left there.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::{json, Value};

use super::faults::FaultRequest;
use super::layer::{Lost, Unsynced};
use super::{FsConfig, FsError, Mounted};

/// The longest a command may take (a power cut of a large journal included).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest the layer may take to mount, or to stop once its stdin is closed.
const START_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest command line taken (a fault request is a few hundred bytes).
const MAX_LINE: usize = 64 * 1024;

/// What the layer's side waits on: a command line, or the end (stdin closed, a signal).
enum Input {
    Line(String),
    End,
}

/// Serves the pipe protocol on `input` and `output` until `input` ends or SIGINT or
/// SIGTERM arrives; returns what the stop made durable.
pub fn serve_piped(
    cfg: &FsConfig,
    input: impl Read + Send + 'static,
    mut output: impl Write,
) -> Result<Unsynced, FsError> {
    let mut signals = super::stop_signals(cfg)?;
    let mounted = Mounted::start(cfg)?;
    let (tx, inputs) = crossbeam_channel::unbounded();
    let on_signal = tx.clone();
    let signal_handle = signals.handle();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            let _ = on_signal.send(Input::End);
        }
    });
    std::thread::spawn(move || {
        let mut input = BufReader::new(input);
        let mut line = Vec::new();
        // Bytes, not text: a line that is not UTF-8 is answered, not taken for the end.
        while input.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line).into_owned();
            let _ = tx.send(Input::Line(text));
            line.clear();
        }
        let _ = tx.send(Input::End);
    });
    let _ = answer_line(&mut output, json!({ "mounted": mounted.mount() }));
    while let Ok(Input::Line(line)) = inputs.recv() {
        let answer = match command(&mounted, line.trim()) {
            Ok(value) => json!({ "ok": value }),
            Err(why) => json!({ "error": why }),
        };
        // A closed stdout is the driver gone; its stdin ends next.
        let _ = answer_line(&mut output, answer);
    }
    signal_handle.close();
    let was = mounted.stop()?;
    let _ = answer_line(&mut output, json!({ "stopped": was }));
    Ok(was)
}

fn answer_line(output: &mut impl Write, value: Value) -> std::io::Result<()> {
    writeln!(output, "{value}")?;
    output.flush()
}

/// One command's effect, and its answer's value.
fn command(mounted: &Mounted, line: &str) -> Result<Value, String> {
    if line.len() > MAX_LINE {
        return Err(format!(
            "a command line of {} bytes: at most {MAX_LINE}",
            line.len()
        ));
    }
    let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
    if name != "fault" && !rest.trim().is_empty() {
        return Err(format!("{name} takes nothing after it, not {rest:?}"));
    }
    match name {
        "lose-unsynced" => Ok(json!(mounted.lose_unsynced().map_err(|e| e.to_string())?)),
        "checkpoint" => Ok(json!(mounted.checkpoint().map_err(|e| e.to_string())?)),
        "unsynced" => Ok(json!(mounted.unsynced())),
        "fault" => {
            let fault: FaultRequest = serde_json::from_str(rest)
                .map_err(|e| format!("fault: {e} (expected a JSON fault request)"))?;
            mounted.add_fault(&fault)?;
            Ok(json!({ "added": fault }))
        }
        "clear-faults" => {
            mounted.clear_faults();
            Ok(json!({ "faults": 0 }))
        }
        other => Err(format!(
            "unknown command {other:?}: expected lose-unsynced, checkpoint, unsynced, \
             fault JSON or clear-faults"
        )),
    }
}

/// A layer served by `soakcheck fs --control-stdin` in a child process (on this
/// machine, or through ssh on another), driven over its stdin and stdout.
pub struct PipedLayer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// What it wrote to stderr, once it has ended: the error says why it failed.
    stderr: Receiver<String>,
    label: String,
}

impl PipedLayer {
    /// Starts `command` (which runs `soakcheck fs ... --control-stdin`) and waits until
    /// the layer is mounted; `label` names it in errors (`the sink's layer on HOST`).
    pub fn start(mut command: Command, label: &str) -> Result<PipedLayer, String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {label}: {e}"))?;
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let (tx, lines) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (tell, stderr) = crossbeam_channel::bounded(1);
        let mut from = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = from.read_to_string(&mut text);
            let _ = tell.send(text);
        });
        let mut layer = PipedLayer {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            label: label.to_string(),
        };
        layer.expect("mounted", START_STOP_TIMEOUT)?;
        Ok(layer)
    }

    /// Waits for the answer line holding `key`; its value.
    fn expect(&mut self, key: &str, timeout: Duration) -> Result<Value, String> {
        let line = match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("{}: no answer in {timeout:?}", self.label))
            }
            Err(RecvTimeoutError::Disconnected) => return Err(self.ended()),
        };
        let mut value: Value = serde_json::from_str(&line)
            .map_err(|e| format!("{}: {e} in its answer {line:?}", self.label))?;
        if let Some(why) = value.get("error").and_then(Value::as_str) {
            return Err(format!("{}: {why}", self.label));
        }
        value
            .get_mut(key)
            .map(Value::take)
            .ok_or_else(|| format!("{}: expected {key:?} in its answer {line:?}", self.label))
    }

    /// Why the layer is gone: its exit status and the end of its stderr.
    fn ended(&mut self) -> String {
        let status = self
            .child
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        // Its stderr closes with it (ssh's, once the session is gone).
        let stderr = self
            .stderr
            .recv_timeout(Duration::from_secs(2))
            .unwrap_or_default();
        format!("{} ended ({status}): {}", self.label, stderr.trim())
    }

    /// Why the layer is gone, if it is (its process, or its ssh session, ended).
    pub fn gone(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(_)) => Some(self.ended()),
            Ok(None) => None,
            Err(e) => Some(format!("{}: {e}", self.label)),
        }
    }

    /// Whether it still answers (within `timeout`): a layer killed on its host is found
    /// here before its ssh client has noticed.
    pub fn answers(&mut self, timeout: Duration) -> Result<(), String> {
        self.call_within("unsynced", timeout).map(drop)
    }

    /// Sends one command and waits for its answer's value.
    fn call(&mut self, line: &str) -> Result<Value, String> {
        self.call_within(line, CALL_TIMEOUT)
    }

    fn call_within(&mut self, line: &str, timeout: Duration) -> Result<Value, String> {
        let sent = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|_| stdin.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        if sent.is_err() {
            return Err(self.ended());
        }
        self.expect("ok", timeout)
    }

    /// The power cut: what was never fsynced is taken back.
    pub fn lose_unsynced(&mut self) -> Result<Lost, String> {
        let value = self.call("lose-unsynced")?;
        serde_json::from_value(value).map_err(|e| format!("{}: {e}", self.label))
    }

    /// Adds a disk fault; an error says what is wrong with it.
    pub fn add_fault(&mut self, fault: &FaultRequest) -> Result<(), String> {
        let json = serde_json::to_string(fault).expect("a fault serializes");
        self.call(&format!("fault {json}")).map(drop)
    }

    /// Removes every disk fault.
    pub fn clear_faults(&mut self) -> Result<(), String> {
        self.call("clear-faults").map(drop)
    }

    /// Closes its stdin: the layer makes everything durable and unmounts; returns what
    /// was not durable.
    pub fn stop(mut self) -> Result<Unsynced, String> {
        self.stdin = None;
        let value = self.expect("stopped", START_STOP_TIMEOUT)?;
        let _ = self.child.wait();
        serde_json::from_value(value).map_err(|e| format!("{}: {e}", self.label))
    }
}

impl Drop for PipedLayer {
    /// A layer dropped without [`PipedLayer::stop`] is still stopped: its stdin closes,
    /// and it is killed if it has not ended in [`START_STOP_TIMEOUT`].
    fn drop(&mut self) {
        if self.stdin.take().is_none() && self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        loop {
            match self.lines.recv_timeout(START_STOP_TIMEOUT) {
                Ok(_) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    break;
                }
            }
        }
        let _ = self.child.wait();
    }
}
