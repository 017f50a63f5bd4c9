//! Issue 9: `run` drives components on three hosts through OpenSSH, for real. A private
//! `sshd` listens on a free port of 127.0.0.2, 127.0.0.3 and 127.0.0.4 with its own host
//! key and an authorized key in a temp dir; the sink runs on .2, the workers on .3, the
//! senders on .4, and the checks run on the sink's host through ssh.
//!
//! It checks that a crash soak with network faults on the sink links ends green, that `--inject duplicate` freezes every
//! component within 2 s (each process in state T), and that Ctrl-C leaves no process
//! behind. Without `sshd` it fails under `CI=true` (scripts/test installs it).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{exe, serial};
use serde_json::Value;

const SSHD: &str = "/usr/sbin/sshd";
const HOSTS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

/// Whether the test can run here; under CI it must.
fn have_sshd() -> bool {
    let present = Path::new(SSHD).exists();
    if !present {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{SSHD} is missing: scripts/test installs openssh-server"
        );
        eprintln!("SKIPPED: {SSHD} is missing (install openssh-server)");
    }
    present
}

/// A port free on every test host, below the kernel's ephemeral range (32768 up), where
/// a client connection could take it at random.
fn free_port(offsets: &[u16]) -> u16 {
    let start = 26_000 + (std::process::id() % 30) as u16 * 200;
    for base in (start..32_400).chain(20_000..start).step_by(200) {
        let free = offsets.iter().all(|o| {
            HOSTS
                .iter()
                .chain(&["127.0.0.1"])
                .all(|h| std::net::TcpListener::bind((*h, base + o)).is_ok())
        });
        if free {
            return base;
        }
    }
    panic!("no free port range");
}

/// A private sshd, killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sshd {
    fn start() -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, kind) in [("host_key", "ed25519"), ("client_key", "ed25519")] {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-N", "", "-f"])
                .arg(d.join(name))
                .status()
                .unwrap()
                .success();
            assert!(ok, "ssh-keygen");
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let port = free_port(&[0]);
        let listen: String = HOSTS
            .iter()
            .map(|h| format!("ListenAddress {h}:{port}\n"))
            .collect();
        let config = format!(
            "{listen}HostKey {0}/host_key\nAuthorizedKeysFile {0}/authorized_keys\n\
             PidFile {0}/sshd.pid\nStrictModes no\nPermitRootLogin yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             MaxSessions 100\nMaxStartups 100:30:200\nLogLevel ERROR\n",
            d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        // Privilege separation needs its directory (root only).
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let mut sshd = Sshd {
            child,
            port,
            key: d.join("client_key"),
            _dir: dir,
        };
        sshd.wait_ready();
        sshd
    }

    fn ssh_args(&self) -> Vec<String> {
        [
            "-p",
            &self.port.to_string(),
            "-i",
            &self.key.display().to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Ready when a command runs on every host (an observable signal, not a sleep).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for host in HOSTS {
            loop {
                let ok = Command::new("ssh")
                    .args(self.ssh_args())
                    .args(["-o", "BatchMode=yes", host, "true"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap()
                    .success();
                if ok {
                    break;
                }
                assert!(
                    self.child.try_wait().unwrap().is_none(),
                    "sshd exited: {}",
                    std::fs::read_to_string(self._dir.path().join("sshd.log")).unwrap_or_default()
                );
                assert!(Instant::now() < deadline, "sshd not ready on {host}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The scenario file of the three-host layout (as examples/ssh-three-hosts.toml).
    fn scenario(&self, dir: &Path) -> PathBuf {
        let ssh: Vec<String> = self.ssh_args().iter().map(|a| format!("{a:?}")).collect();
        let text = format!(
            "[driver]\nkind = \"ssh\"\nssh = [{}]\n\n[hosts]\nsink = \"127.0.0.2\"\n\
             \"sender-*\" = \"127.0.0.4\"\n\"*\" = \"127.0.0.3\"\n",
            ssh.join(", ")
        );
        let path = dir.join("ssh.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every process whose command line names `run_dir` (what a run started, wherever).
fn processes_of(run_dir: &Path) -> Vec<(u32, String)> {
    let needle = run_dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && pid != std::process::id() {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Kills what a failed test left (by process group), so no test leaves processes.
struct Leftovers(PathBuf);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for (pid, _) in processes_of(&self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // A layer killed with them leaves its mount dead: detach it.
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        for point in mounts.lines().filter_map(|l| l.split(' ').nth(1)) {
            if Path::new(point).starts_with(&self.0) {
                let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// A private sshd and a run dir whose leftovers are killed, or None where there is no
/// sshd (outside CI only).
/// [`setup`], for a test that mounts filesystem layers too (None without `/dev/fuse`,
/// which fails under `CI=true`).
fn setup_with_fuse() -> Option<(Sshd, tempfile::TempDir, Leftovers)> {
    if !common::fuse_available() {
        return None;
    }
    setup()
}

fn setup() -> Option<(Sshd, tempfile::TempDir, Leftovers)> {
    if !have_sshd() {
        return None;
    }
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let leftovers = Leftovers(dir.path().to_path_buf());
    Some((sshd, dir, leftovers))
}

fn run_args(sshd: &Sshd, dir: &Path, extra: &[&str]) -> Vec<String> {
    // Every port a run checks: each worker slot's source and external, control, sink.
    let mut offsets: Vec<u16> = (0..10u16).flat_map(|n| [10 * n, 10 * n + 3]).collect();
    offsets.extend([1, 100]);
    let base = free_port(&offsets);
    let mut v: Vec<String> = vec!["run".into()];
    v.extend(extra.iter().map(|s| s.to_string()));
    v.extend([
        "--run-dir".into(),
        dir.display().to_string(),
        "--scenario".into(),
        sshd.scenario(dir).display().to_string(),
        "--keys".into(),
        "A,B,C".into(),
        "--port-base".into(),
        base.to_string(),
        "--checkpoint-interval".into(),
        "200ms".into(),
    ]);
    v
}

#[test]
fn a_crash_soak_through_ssh_ends_green() {
    let _serial = serial();
    let Some((sshd, dir, _leftovers)) = setup() else {
        return;
    };
    let args = run_args(
        &sshd,
        dir.path(),
        &[
            "3",
            "crash-sink",
            "crash1",
            "crash-source",
            "net-sink",
            "clock-sink",
            "--bytes-per-key",
            "60000",
            "--rate",
            "30000",
            "--time-scale",
            "0.25",
            "--seed",
            "5",
            "--json",
        ],
    );
    let out = Command::new(exe()).args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{stderr}"));
    assert_eq!(out.status.code(), Some(0), "{summary}\n{stderr}");
    assert_eq!(summary["verdict"], "ok");
    let crashes = &summary["faults"]["crash"];
    for c in ["sink", "worker1"] {
        assert!(
            crashes[c].as_u64().unwrap_or(0) >= 1,
            "{c} never crashed: {summary}"
        );
    }
    // The workers on .3 reached the sink on .2 through the proxy on this machine.
    let network: u64 = ["partition", "reset", "delay", "bandwidth"]
        .iter()
        .flat_map(|kind| summary["faults"][kind].as_object().into_iter().flatten())
        .filter(|(link, _)| link.ends_with("->sink"))
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum();
    assert!(network >= 1, "no network fault on a sink link: {summary}");
    // The sink's clock, on its host, was faulted through the driver (its offset file
    // written there over ssh), and healed.
    let clock: u64 = ["clock-step", "clock-strobe", "clock-rate"]
        .iter()
        .map(|kind| summary["faults"][kind]["sink"].as_u64().unwrap_or(0))
        .sum();
    assert!(clock >= 1, "no clock fault of the sink: {summary}");
    let offset = std::fs::read_to_string(dir.path().join("soakcheck-clock/sink")).unwrap();
    assert!(offset.ends_with('\n'), "{offset:?}");
    // libfaketime's pairs of the sink's processes (named by their pids, not the groups
    // the driver knows) are gone from its host.
    let leftover = common::dead_faketime_pairs(std::time::UNIX_EPOCH);
    assert!(leftover.is_empty(), "libfaketime left {leftover:?}");
    // The checks ran on the sink's host and verified every input.
    let inputs: u64 = ["A", "B", "C"]
        .iter()
        .map(|k| {
            let path = dir.path().join(format!("input-file.{k}.txt"));
            std::fs::metadata(path).unwrap().len()
        })
        .sum();
    assert_eq!(
        summary["bytes_verified"].as_u64().unwrap(),
        inputs,
        "{summary}"
    );
    assert!(
        processes_of(dir.path()).is_empty(),
        "{:?}",
        processes_of(dir.path())
    );
    // The components ran on their hosts: the sink bound .2, the workers .3.
    let log = std::fs::read_to_string(dir.path().join("wallaroo.1")).unwrap_or_default();
    assert!(!log.is_empty());
    common::assert_complete(dir.path());
}

/// The group ids the FROZEN message lists (`HOST pgid N`), read until its last line.
fn frozen_groups(lines: &mut impl Iterator<Item = String>) -> (Vec<u32>, String) {
    let mut groups = Vec::new();
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    for line in lines.by_ref() {
        text += &line;
        text.push('\n');
        if let Some(g) = line
            .split(" pgid ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse::<u32>().ok())
        {
            groups.push(g);
        }
        if line.contains("press Ctrl-C") {
            break;
        }
        assert!(Instant::now() < deadline, "no freeze:\n{text}");
    }
    (groups, text)
}

/// The state letters of every process in group `pgid`.
fn group_states(pgid: u32) -> Vec<(u32, char)> {
    let mut states = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) {
            states.push((pid, fields[0].chars().next().unwrap_or('?')));
        }
    }
    states
}

/// The ssh connections of a run (its ControlMaster processes, named by their socket
/// directory `control_dir`).
fn masters_of(control_dir: &str) -> Vec<(u32, String)> {
    processes_with(&format!("{control_dir}/"))
}

/// The socket directory of the ssh connections the run in `dir` recorded.
fn control_dir_of(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("soakcheck-run.json")).unwrap();
    let record: Value = serde_json::from_str(&text).unwrap();
    let control_dir = record["driver"]["control_dir"].as_str();
    control_dir
        .unwrap_or_else(|| panic!("no control_dir recorded: {text}"))
        .to_string()
}

/// Every process whose command line holds `needle` (this test's own excepted).
fn processes_with(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && pid != std::process::id() {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Waits (up to 10 s) until no process of the run in `dir` and none of its ssh
/// connections are left, on any host.
fn assert_nothing_left(dir: &Path, control_dir: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_of(dir).is_empty() || !masters_of(control_dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left behind: {:?} {:?}",
            processes_of(dir),
            masters_of(control_dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `soakcheck run ARGS` in a process group of its own, as a shell runs a command at a
/// terminal (a Ctrl-C there signals the whole group).
fn spawn_in_own_group(args: &[String]) -> Child {
    use std::os::unix::process::CommandExt;
    Command::new(exe())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
}

#[test]
fn an_injected_fault_freezes_every_remote_component_and_ctrl_c_leaves_nothing() {
    let _serial = serial();
    let Some((sshd, dir, _leftovers)) = setup() else {
        return;
    };
    let args = run_args(
        &sshd,
        dir.path(),
        &[
            "2",
            "--bytes-per-key",
            "200000",
            "--rate",
            "20000",
            "--inject",
            "duplicate",
            "--inject-after",
            "200",
            "--inject-key",
            "B",
        ],
    );
    let mut run = spawn_in_own_group(&args);
    let mut lines = BufReader::new(run.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let (groups, text) = frozen_groups(&mut lines);
    let frozen_at: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("FROZEN at "))
        .and_then(|r| r.split("(Unix ").nth(1))
        .and_then(|r| r.split(')').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no FROZEN line:\n{text}"));
    assert!(text.contains("6 of 6 components paused"), "{text}");
    assert_eq!(groups.len(), 6, "sink, 2 workers, 3 senders:\n{text}");
    for g in &groups {
        let states = group_states(*g);
        assert!(!states.is_empty(), "group {g} has no process");
        for (pid, state) in states {
            assert_eq!(state, 'T', "pid {pid} of group {g} is {state}:\n{text}");
        }
    }
    // The post-mortem bundle, fetched from the hosts through the driver.
    let bundle = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("post-mortem bundle: "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no bundle:\n{text}"))
        .to_string();
    let listing = Command::new("tar").args(["tzf", &bundle]).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for want in [
        "sink-out/output.initializer.txnlog",
        "wallaroo.0",
        "sender.out.A",
        "events.jsonl",
        "input-file.B.txt",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(want)),
            "{want} not in the bundle:\n{listing}"
        );
    }
    // Within 2 s of the bad commit (its txnlog time).
    let (kind, committed) = common::violation(dir.path(), 1);
    assert_eq!(kind, "duplicate");
    assert!(
        frozen_at - committed < 2.0,
        "frozen {:.3} s after the commit",
        frozen_at - committed
    );
    // Ctrl-C at a terminal (to the whole process group): everything stops, here and on
    // every host, and the ssh connections (up while frozen) close.
    let control_dir = control_dir_of(dir.path());
    assert!(
        !masters_of(&control_dir).is_empty(),
        "no ssh connection of the run in {control_dir}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(-(run.id() as i32)),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert_nothing_left(dir.path(), &control_dir);
}

/// Issue 17.3: a soak of three workers frozen on `--inject duplicate` with a crash loop
/// running, stopped by a SIGTERM to its whole process group (the test above sends a
/// Ctrl-C, to a soak of two workers),
/// leaves no process on any host, and closes its ssh connections. Before, the ssh
/// agents shared soakcheck's group and died with it: the first component stopped on
/// each host stayed there, stopped, holding its ports.
#[test]
fn a_frozen_soak_with_a_crash_loop_stops_everything_on_every_host() {
    let _serial = serial();
    let Some((sshd, dir, _leftovers)) = setup() else {
        return;
    };
    for signal in [nix::sys::signal::Signal::SIGTERM] {
        let run_dir = dir.path().join(format!("{signal}"));
        std::fs::create_dir_all(&run_dir).unwrap();
        let _more = Leftovers(run_dir.clone());
        let args = run_args(
            &sshd,
            &run_dir,
            &[
                "3",
                "crash1",
                "--bytes-per-key",
                "200000",
                "--rate",
                "20000",
                "--time-scale",
                "0.25",
                "--inject",
                "duplicate",
                "--inject-after",
                "200",
                "--inject-key",
                "B",
            ],
        );
        let mut run = spawn_in_own_group(&args);
        let mut lines = BufReader::new(run.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok);
        let (groups, text) = frozen_groups(&mut lines);
        let counts = text
            .lines()
            .find_map(|l| {
                l.split(": ")
                    .nth(1)?
                    .strip_suffix(" components paused (SIGSTOP to each process group).")
            })
            .unwrap_or_else(|| panic!("{text}"))
            .to_string();
        let (paused, of) = counts.split_once(" of ").unwrap();
        assert_eq!(paused, of, "{text}");
        assert_eq!(groups.len().to_string(), of, "{text}");
        for g in &groups {
            assert!(
                group_states(*g).iter().all(|(_, state)| *state == 'T'),
                "{g}: {text}"
            );
        }
        // Each host's monitor is alive through the run.
        for host in HOSTS {
            let monitor = format!(".soakcheck-ssh/{host} ");
            assert!(
                processes_of(&run_dir)
                    .iter()
                    .any(|(_, c)| c.contains(&monitor)),
                "no monitor on {host}: {:?}",
                processes_of(&run_dir)
            );
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(-(run.id() as i32)), signal).unwrap();
        let rest: Vec<String> = lines.collect();
        let status = run.wait().unwrap();
        assert_eq!(status.code(), Some(1), "{signal}: {}", rest.join("\n"));
        assert!(
            rest.iter()
                .any(|l| l == "stopped: no process group of this run is left, on any host"),
            "{signal}: {}",
            rest.join("\n")
        );
        assert_nothing_left(&run_dir, &control_dir_of(&run_dir));
    }
}

/// Issue 17.3: after a run was SIGKILLed (its components left running on their hosts),
/// `soakcheck reset` reaches every host the run recorded, through the ssh driver it
/// used, kills exactly the recorded groups, and closes the run's ssh connections.
#[test]
fn reset_after_a_killed_run_reaches_every_host() {
    let _serial = serial();
    let Some((sshd, dir, _leftovers)) = setup() else {
        return;
    };
    let args = run_args(
        &sshd,
        dir.path(),
        &[
            "3",
            "crash1",
            "power-sink",
            "--bytes-per-key",
            "2000000",
            "--rate",
            "20000",
        ],
    );
    let mut run = spawn_in_own_group(&args);
    // Every component is recorded (sink, three workers, three senders, the supervisor).
    let record = dir.path().join("soakcheck-run.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        let recorded: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let n = recorded["processes"].as_array().map_or(0, Vec::len);
        if n == 8 {
            break;
        }
        assert!(Instant::now() < deadline, "not all recorded: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let control_dir = control_dir_of(dir.path());
    run.kill().unwrap();
    run.wait().unwrap();
    let orphans = processes_of(dir.path());
    assert!(
        orphans.iter().any(|(_, c)| c.contains("demo sink")),
        "the killed run's sink is left: {orphans:?}"
    );
    let out = Command::new(exe())
        .args(["reset", "--run-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for host in HOSTS {
        assert!(said.contains(&format!("({host} pgid ")), "{host}: {said}");
    }
    assert_nothing_left(dir.path(), &control_dir);
    // The sink's layer, on its host, unmounted itself when the killed run's end of its
    // ssh session closed.
    let d = dir.path().display().to_string();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(&d), "a mount is left under {d}:\n{mounts}");
}

/// Issue 9.4: the checks run where the data is: the sink's on its host, the senders'
/// logs on theirs. If a checker dies, the run says so (`checker-lost`, exit 1) instead of
/// passing on without checks.
#[test]
fn a_lost_remote_checker_is_a_finding() {
    let _serial = serial();
    let Some((sshd, dir, _leftovers)) = setup() else {
        return;
    };
    let args = run_args(
        &sshd,
        dir.path(),
        &[
            "2",
            "--bytes-per-key",
            "2000000",
            "--rate",
            "20000",
            "--on-violation",
            "kill",
            "--json",
        ],
    );
    let run = Command::new(exe())
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkers = || -> Vec<(u32, String)> {
        processes_of(dir.path())
            .into_iter()
            .filter(|(_, cmd)| cmd.contains(" watch --plan "))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while checkers().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "not two checkers: {:?}",
            checkers()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Each checker's command line carries its part of the run's plan, as JSON.
    let all = checkers();
    let sink_checker = all
        .iter()
        .find(|(_, c)| c.contains(r#""sink":"here""#))
        .unwrap();
    assert!(!sink_checker.1.contains("sender.out."), "{all:?}");
    let (pid, cmd) = all
        .iter()
        .find(|(_, c)| c.contains(r#""sink":"elsewhere""#))
        .unwrap()
        .clone();
    assert!(
        cmd.contains("sender.out.A") && cmd.contains(r#""sink_log":null"#),
        "{cmd}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = run.wait_with_output().unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{summary}");
    assert_eq!(summary["verdict"], "violation");
    assert_eq!(summary["findings"][0]["kind"], "checker-lost", "{summary}");
    assert!(
        summary["findings"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("127.0.0.4"),
        "{summary}"
    );
}

/// Issue 17.4: checkers on other hosts run the one plan the in-process checks run, so a
/// scenario's `no-ack-progress` holds there too: a sender paused well past
/// `--ack-timeout` is no finding. (The checkers' command lines used to leave the
/// scenario's `no-*` switches out, so the sink host's checker called it `ack-timeout`.)
#[test]
fn a_remote_soak_keeps_the_scenarios_checks_switched_off() {
    let _serial = serial();
    let Some((sshd, dir, _leftovers)) = setup() else {
        return;
    };
    let args = run_args(
        &sshd,
        dir.path(),
        &[
            "2",
            "no-ack-progress",
            "--bytes-per-key",
            "60000",
            "--rate",
            "30000",
            "--ack-timeout",
            "2s",
            "--on-violation",
            "kill",
            "--json",
        ],
    );
    // A sender paused for 10 s: past the recovery window (5 s) and the ack timeout.
    let scenario = dir.path().join("ssh.toml");
    let mut text = std::fs::read_to_string(&scenario).unwrap();
    text += "\n[[steps]]\nat = 1.0\naction = \"pause\"\ncomponent = \"sender-A\"\n\
             [[steps]]\nat = 11.0\naction = \"resume\"\ncomponent = \"sender-A\"\n";
    std::fs::write(&scenario, text).unwrap();
    let out = Command::new(exe()).args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{stderr}"));
    assert_eq!(out.status.code(), Some(0), "{summary}\n{stderr}");
    assert_eq!(summary["findings"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["faults"]["pause"]["sender-A"], 1, "{summary}");
    common::assert_complete(dir.path());
}

/// The name of `pid`'s parent process.
fn parent_name(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let ppid = after.split(' ').nth(1).unwrap_or("0");
    let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap_or_default();
    comm.trim().to_string()
}

/// Issue 20: power cuts of components on other hosts go through a filesystem layer on
/// each component's own host, started through the driver (`soakcheck fs
/// --control-stdin` in an ssh session there). The soak ends green at EOF, each cut says
/// what it took back, and no layer or mount is left on any host.
#[test]
fn power_cuts_of_remote_components_go_through_layers_on_their_hosts() {
    let _serial = serial();
    let Some((sshd, dir, _leftovers)) = setup_with_fuse() else {
        return;
    };
    let args = run_args(
        &sshd,
        dir.path(),
        &[
            "2",
            "power-sink",
            "power1",
            "crash-source",
            "--bytes-per-key",
            "250000",
            "--rate",
            "30000",
            "--time-scale",
            "0.25",
            "--seed",
            "20",
            "--json",
        ],
    );
    let run = spawn_in_own_group(&args);
    let d = dir.path().display().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let layers = loop {
        let found: Vec<_> = processes_with("--control-stdin")
            .into_iter()
            .filter(|(_, c)| c.starts_with(&format!("{} fs {d}/", exe().display())))
            .collect();
        if found.len() == 2 {
            break found;
        }
        assert!(Instant::now() < deadline, "the layers: {found:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    for (pid, cmdline) in &layers {
        let parent = parent_name(*pid);
        assert!(parent.starts_with("sshd"), "{cmdline} runs under {parent}");
    }
    let out = run.wait_with_output().unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(0), "{summary}");
    for c in ["sink", "worker1"] {
        let cuts = summary["faults"]["power-loss"][c].as_u64().unwrap_or(0);
        assert!(cuts >= 1, "{c} never lost power: {summary}");
    }
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let cuts: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("\"power-loss\""))
        .collect();
    assert!(
        cuts.iter().all(|l| l.contains("\"lost_bytes\":")),
        "{cuts:?}"
    );
    common::assert_complete(dir.path());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(&d), "a mount is left under {d}:\n{mounts}");
    assert!(
        processes_of(dir.path()).is_empty(),
        "{:?}",
        processes_of(dir.path())
    );
}

/// A layer lost mid-run (killed on its host) ends the run as soakcheck's own failure,
/// exit 2, named as such: never a finding against the system, whose files then fail
/// under it. The run's record ends with the verdict `error`.
#[test]
fn a_lost_remote_layer_ends_the_run_as_an_error_not_a_finding() {
    let _serial = serial();
    let Some((sshd, dir, _leftovers)) = setup_with_fuse() else {
        return;
    };
    let args = run_args(
        &sshd,
        dir.path(),
        &[
            "2",
            "power-sink",
            "--bytes-per-key",
            "2000000",
            "--rate",
            "20000",
        ],
    );
    let mut run = Command::new(exe())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let d = dir.path().display().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let layer = loop {
        let found = processes_with("--control-stdin")
            .into_iter()
            .find(|(_, c)| c.starts_with(&format!("{} fs {d}/", exe().display())));
        // Once the sink has committed, the soak is under way.
        let committed = std::fs::metadata(dir.path().join("sink-out/output.initializer.txnlog"))
            .is_ok_and(|m| m.len() > 0);
        if let (Some(l), true) = (&found, committed) {
            break l.0;
        }
        assert!(Instant::now() < deadline, "no layer or no commit");
        std::thread::sleep(Duration::from_millis(50));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(layer as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(run.wait().unwrap().code(), Some(2), "{stderr}");
    assert!(stderr.contains("the filesystem layer is gone"), "{stderr}");
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert!(!events.contains("{\"finding\""), "{events}");
    assert!(
        events.trim_end().ends_with("}}") && events.contains("\"verdict\":\"error\""),
        "{events}"
    );
}
