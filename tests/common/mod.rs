//! Helpers shared by the end-to-end tests of `run` (local and over ssh).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One test of a binary at a time: runs share the machine's two cores and its ports.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// `verify --keys A,B,C --expect-complete` of run dir `dir`: must pass.
pub fn assert_complete(dir: &Path) {
    let verify = Command::new(exe())
        .args([
            "verify",
            "--keys",
            "A,B,C",
            "--expect-complete",
            "--sink-dir",
        ])
        .arg(dir.join("sink-out"))
        .arg("--input-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// `run EXTRA...` in `dir` on keys A, B, C, free ports and 200 ms checkpoints.
pub fn run_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec!["run".into()];
    v.extend(extra.iter().map(|s| s.to_string()));
    v.extend([
        "--run-dir".into(),
        dir.display().to_string(),
        "--keys".into(),
        "A,B,C".into(),
        "--port-base".into(),
        free_base().to_string(),
        "--checkpoint-interval".into(),
        "200ms".into(),
    ]);
    v
}

pub fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("soakcheck")
}

/// The violation of key number `key` (of A, B, C) as `verify --json` sees the sink
/// directory of run dir `dir`: its kind and its commit's txnlog time.
pub fn violation(dir: &Path, key: usize) -> (String, f64) {
    let out = Command::new(exe())
        .args(["verify", "--keys", "A,B,C", "--json", "--sink-dir"])
        .arg(dir.join("sink-out"))
        .arg("--input-dir")
        .arg(dir)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &doc["keys"][key]["violation"];
    let kind = v["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("no violation: {doc}"));
    (kind.to_string(), v["commit"]["time"].as_f64().unwrap())
}

/// A spawned `soakcheck run` that never outlives its test, even one that fails: on drop
/// SIGTERM (run then stops everything it started), SIGKILL if it lingers, and
/// `soakcheck reset` of its run directory for anything left.
pub struct RunGuard {
    pub child: std::process::Child,
    dir: std::path::PathBuf,
}

impl RunGuard {
    pub fn spawn(args: &[String], dir: &Path, stdout: Stdio) -> RunGuard {
        Self::spawn_with(args, dir, stdout, Stdio::null())
    }

    pub fn spawn_with(args: &[String], dir: &Path, stdout: Stdio, stderr: Stdio) -> RunGuard {
        let child = Command::new(exe())
            .args(args)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap();
        RunGuard {
            child,
            dir: dir.to_path_buf(),
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal);
    }

    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = Command::new(exe())
            .arg("reset")
            .arg("--run-dir")
            .arg(&self.dir)
            .output();
    }
}

/// A free port below the kernel's ephemeral range (32768 up), for a test's server: a
/// port of that range could be taken at random by a client connection.
pub fn free_port() -> u16 {
    soakcheck::demo::cluster::free_port().unwrap()
}

/// A port base whose demo ports (source, control, external per worker, sink) are free.
pub fn free_base() -> u16 {
    let start = 20_000 + (std::process::id() % 40) as u16 * 200;
    for base in (start..30_000).step_by(200) {
        // Every port a run checks: each worker's source and external, control, sink.
        let mut ports: Vec<u16> = (0..10u16).flat_map(|n| [10 * n, 10 * n + 3]).collect();
        ports.extend([1, 100]);
        if ports
            .iter()
            .all(|o| std::net::TcpListener::bind(("127.0.0.1", base + o)).is_ok())
        {
            return base;
        }
    }
    panic!("no free port range");
}

/// Writes `text` to `path` (its directories made) as an executable: stand-ins for the
/// programs a preset starts.
pub fn executable(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Whether `chattr` is here to make a file immutable; in CI it must be (scripts/test
/// installs e2fsprogs), elsewhere a test without it says it skipped.
pub fn chattr_available() -> bool {
    if Path::new("/usr/bin/chattr").exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "/usr/bin/chattr is missing: scripts/test installs e2fsprogs"
    );
    eprintln!("SKIPPED: chattr is missing (apt-get install e2fsprogs)");
    false
}

/// `soakcheck ARGS...` to its end (at most 2 minutes), without the caller's
/// `MULTIPLE_KEYS_LIST`.
pub fn soakcheck(args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("soakcheck")
        .unwrap()
        .env_remove("MULTIPLE_KEYS_LIST")
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap()
}

/// A command's stdout then stderr, for an assertion's message.
pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether Debian's libfaketime is here for clock faults; in CI it must be (scripts/test
/// installs it), elsewhere a test without it says it skipped.
pub fn libfaketime_available() -> bool {
    let lib = soakcheck::driver::supervisor::clock::LIBFAKETIME;
    if Path::new(lib).is_file() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{lib} is missing: scripts/test installs libfaketime"
    );
    eprintln!("SKIPPED: no {lib} (apt-get install faketime libfaketime)");
    false
}

/// Whether a FUSE mount can be made here (/dev/fuse, and root to mount without
/// fusermount); in CI it must be, elsewhere a test without it says it skipped.
pub fn fuse_available() -> bool {
    let root = effective_uid() == 0;
    if Path::new("/dev/fuse").exists() && root {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "no FUSE here (/dev/fuse present: {}, root: {root}): the fs tests need both",
        Path::new("/dev/fuse").exists()
    );
    eprintln!("SKIPPED: no /dev/fuse, or not root");
    false
}

/// The effective uid, from /proc (nix's `user` feature is not enabled).
fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"));
    uid.and_then(|u| u.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(u32::MAX)
}

/// `soakcheck fs` mounted for a test, its control port known; on drop it is stopped
/// (SIGTERM) and, should it leave its mount, the mount is detached.
pub struct FsMount {
    child: std::process::Child,
    pub mount: PathBuf,
    pub port: u16,
}

impl FsMount {
    pub fn start(mount: &Path, backing: &Path) -> FsMount {
        use std::io::BufRead;
        let port = free_port();
        let mut child = Command::new(exe())
            .arg("fs")
            .arg(mount)
            .arg("--backing")
            .arg(backing)
            .args(["--control", &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mounted = FsMount {
            child,
            mount: mount.to_path_buf(),
            port,
        };
        // Ready once it says where its control listens.
        for line in lines.by_ref() {
            if line.unwrap().starts_with("control:") {
                std::thread::spawn(move || lines.for_each(drop));
                return mounted;
            }
        }
        panic!("soakcheck fs ended before it was ready");
    }

    /// An HTTP call on the control interface: the status and the body.
    pub fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        http(self.port, method, path, body)
    }

    /// Stops it as a user would (SIGTERM), returning its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        self.child.wait().unwrap()
    }
}

impl Drop for FsMount {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if mounted(&self.mount) {
            let _ = nix::mount::umount2(&self.mount, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Whether `path` is a mount point (in /proc/mounts).
pub fn mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = path.display().to_string();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(path.as_str()))
}

/// One HTTP/1.1 request to 127.0.0.1:`port`: the status and the body.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// A file made immutable (`chattr +i`: no write, rename or unlink succeeds, even as
/// root), made mutable again on drop so a failed test leaves a removable directory.
pub struct Immutable(PathBuf);

impl Immutable {
    pub fn make(path: &Path) -> Immutable {
        let made = Command::new("chattr").arg("+i").arg(path).status().unwrap();
        assert!(made.success(), "chattr +i {}", path.display());
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// Writes a bash script.
pub fn script(path: &Path, body: &str) {
    executable(path, &format!("#!/bin/bash\n{body}\n"));
}

/// Which sink the wallaroo preset starts.
pub enum Sink {
    /// The demo's sink, on the original's command line.
    StandIn,
    /// The original Python `aloc_sink` itself (read in place; it needs
    /// `PYTHONPATH=../shared/original/machida/lib`).
    Original,
}

/// Stand-ins for Wallaroo's programs under `top`, at the paths the wallaroo preset
/// starts: each takes the original's command line and runs the demo's equivalent, so
/// the preset's command lines (and where they point) are what is tested. The worker
/// reads `--in`, `--out`, `--control`, `--join`, `--external` and `--name` as
/// passthrough does; the sender connects only to 127.0.0.1:IN_BASE, as the original.
pub fn wallaroo_stand_ins(top: &Path, state: &Path, in_base: u16, sink: Sink) {
    let soakcheck = exe().display().to_string();
    let sink_dir = top.join("testing/correctness/tests/aloc_sink");
    match sink {
        Sink::StandIn => script(
            &sink_dir.join("aloc_sink"),
            &format!("exec {soakcheck} demo sink \"$1\" \"$2\" \"$3\""),
        ),
        Sink::Original => {
            std::fs::create_dir_all(sink_dir.parent().unwrap()).unwrap();
            let original = Path::new("../shared/original/testing/correctness/tests/aloc_sink");
            std::os::unix::fs::symlink(original.canonicalize().unwrap(), &sink_dir).unwrap();
        }
    }
    script(
        &top.join("testing/correctness/scripts/effectively-once/at_least_once_line_file_feed"),
        &format!("exec {soakcheck} demo feed \"$1\" \"$2\" --connect 127.0.0.1:{in_base}"),
    );
    let passthrough = r#"name=initializer; join=(); args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --in) v=${2#*@}; args+=(--host "${v%%:*}"); v=${v#*:}; args+=(--source-port "${v%%:*}"); shift 2;;
    --out) args+=(--sink-host "${2%:*}" --sink-port "${2##*:}"); shift 2;;
    --control) control=$2; shift 2;;
    --join) control=$2; join=(--join); shift 2;;
    --external) args+=(--external-port "${2##*:}"); shift 2;;
    --name) name=$2; shift 2;;
    --worker-count) args+=(--worker-count "$2"); shift 2;;
    --metrics|--data|--my-control|--my-data|--parallelism|--key-by|--step|--source|--sink) shift 2;;
    *) shift;;
  esac
done
exec SOAKCHECK demo worker --name "$name" --control-host "${control%:*}" --control-port "${control##*:}" \
  --state-dir STATE/"$name" --checkpoint-interval 200ms "${join[@]}" "${args[@]}""#;
    script(
        &top.join("passthrough"),
        &passthrough
            .replace("SOAKCHECK", &soakcheck)
            .replace("STATE", &state.display().to_string()),
    );
}

/// libfaketime's shared-memory pairs in /dev/shm made since `since` whose process is
/// gone (a pair is named by the pid that made it): what a soak must not leave.
pub fn dead_faketime_pairs(since: std::time::SystemTime) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("faketime"))
        .filter(|n| {
            let pid = n.rsplit('_').next().unwrap_or("");
            !Path::new(&format!("/proc/{pid}")).exists()
        })
        .collect()
}
