//! `soakcheck demo cluster`: generates inputs, starts the sink, the workers and one feed
//! per key (key i goes to worker i mod N) as separate processes of this binary, waits for
//! every feed to finish, stops everything, and verifies the sink directory with
//! `--expect-complete`. Every child runs in its own process group behind a kill-on-drop
//! guard; Ctrl-C (or SIGTERM) stops them all.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::demo::worker::InjectKind;
use crate::formats::input::input_path;
use crate::gen::inputs::{generate_inputs, DataSource};
use crate::topology::worker_name;
use crate::topology::{Component, Hosts, Injection, PickedPorts, ProxyPorts, Topology};
use crate::verify::{verify, KeyInput, Report, VerifyPlan};
use crate::wire::external::query_cluster_status;

pub use crate::process::ChildGuard;

/// A free TCP port on 127.0.0.1, below the kernel's ephemeral range (32768 and up), so
/// the outgoing connections of other processes cannot take it between this check and
/// the server's bind. Successive calls in a process return different ports.
pub fn free_port() -> std::io::Result<u16> {
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = (LOW + (start + offset.wrapping_mul(37)) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Generates the inputs of `plan` (its keys, bytes per key and seed) in `dir`.
pub fn cluster_inputs(
    plan: &ClusterPlan,
    dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<(), ClusterError> {
    progress(&format!(
        "generating {} inputs of {} bytes in {}",
        plan.keys.len(),
        plan.bytes_per_key,
        dir.display()
    ));
    generate_inputs(
        &plan.keys,
        plan.bytes_per_key,
        dir,
        &DataSource::Seeded(plan.seed),
    )
    .map(drop)
    .map_err(|e| ClusterError::Setup(e.to_string()))
}

#[derive(Debug, Clone)]
pub struct ClusterPlan {
    pub exe: PathBuf,
    pub workers: usize,
    pub keys: Vec<u8>,
    pub bytes_per_key: u64,
    pub rate: u64,
    pub dir: PathBuf,
    pub checkpoint_interval: Duration,
    pub inject: Option<(InjectKind, u64, u8)>,
    pub seed: u64,
    /// Give up waiting for the feeds after this long.
    pub timeout: Duration,
    /// Every link through the fault proxy (no fault applied): what it costs.
    pub proxied: bool,
    /// The sink's and the workers' directories through `soakcheck fs` layers (no fault
    /// applied): what `bench demo --fs` measures.
    pub files: Files,
    /// Inputs generated before, for these keys, bytes and seed (a bench's repeated
    /// runs); None generates them in `dir/in`.
    pub given_inputs: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Setup(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("stopped by a signal before the feeds finished")]
    Interrupted,
    #[error("the feeds did not finish within {0:?}; logs are in {1}")]
    Timeout(Duration, PathBuf),
    #[error("{0} exited with {1}; its log is {2}")]
    ChildFailed(String, String, PathBuf),
    #[error(transparent)]
    Verify(#[from] crate::verify::VerifyError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// The addresses of one worker.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerPorts {
    pub source: u16,
    pub external: u16,
    /// The initializer's control port (the same for every worker of a cluster).
    pub control: u16,
}

/// A command running `argv` (a [`Topology`] command line).
fn command(argv: Vec<String>) -> Command {
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]);
    c
}

/// One worker's ports as a port plan: worker `n` has `ports`, the sink `sink_port`.
fn one_worker_ports(n: usize, ports: WorkerPorts, sink_port: u16) -> PickedPorts {
    let mut workers = vec![(0, 0); n + 1];
    workers[n] = (ports.source, ports.external);
    PickedPorts {
        sink: sink_port,
        control: ports.control,
        workers,
    }
}

/// The topology of a lone process (the tests start them one by one).
fn lone<'a>(exe: &'a Path, ports: &'a PickedPorts, hosts: &'a Hosts) -> Topology<'a> {
    Topology {
        exe,
        workers: 1,
        keys: &[],
        rate: 0,
        checkpoint_interval_ms: 1000,
        sink_dir: PathBuf::new(),
        state_dir: PathBuf::new(),
        input_dir: PathBuf::new(),
        ports,
        hosts,
        run_id: None,
        inject: None,
        proxy: None,
        fs: None,
    }
}

/// The sink's command line (from the one topology: see [`crate::topology`]).
pub fn sink_command(exe: &Path, sink_dir: &Path, port: u16) -> Command {
    let ports = one_worker_ports(0, WorkerPorts::default(), port);
    let hosts = Hosts::default();
    let t = Topology {
        sink_dir: sink_dir.to_path_buf(),
        ..lone(exe, &ports, &hosts)
    };
    command(t.argv(&Component::Sink, false))
}

/// Worker `n`'s command line, of a cluster of `workers`.
pub fn worker_command(
    exe: &Path,
    n: usize,
    workers: usize,
    ports: WorkerPorts,
    sink_port: u16,
    state_dir: &Path,
    interval: Duration,
) -> Command {
    let picked = one_worker_ports(n, ports, sink_port);
    let hosts = Hosts::default();
    let t = Topology {
        workers,
        checkpoint_interval_ms: interval.as_millis() as u64,
        state_dir: state_dir.to_path_buf(),
        ..lone(exe, &picked, &hosts)
    };
    command(t.argv(&Component::Worker(n), false))
}

/// The feed of `key` (its input in `input_dir`) at `rate` to a worker's source `port`.
pub fn feed_command(exe: &Path, input_dir: &Path, key: u8, rate: u64, port: u16) -> Command {
    let ports = one_worker_ports(
        0,
        WorkerPorts {
            source: port,
            ..Default::default()
        },
        0,
    );
    let hosts = Hosts::default();
    let keys = [key as char];
    let t = Topology {
        keys: &keys,
        rate,
        input_dir: input_dir.to_path_buf(),
        ..lone(exe, &ports, &hosts)
    };
    command(t.argv(&Component::Sender(key as char), false))
}

/// Waits until every worker's external channel says it is processing messages.
pub fn wait_ready(ports: &[WorkerPorts], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    ports.iter().all(|p| {
        let addr = SocketAddr::from(([127, 0, 0, 1], p.external)).to_string();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = query_cluster_status(&addr, Duration::from_millis(500)) {
                if status.processing_messages {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    })
}

/// The verification of a cluster run and how long the feeds took.
#[derive(Debug, Clone)]
pub struct ClusterOutcome {
    pub report: Report,
    /// From the first feed started to the last feed finished.
    pub feeding: Duration,
}

/// Runs the whole cluster to the end of its inputs and verifies the result.
pub fn run_cluster(
    plan: &ClusterPlan,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&str),
) -> Result<ClusterOutcome, ClusterError> {
    if plan.workers == 0 || plan.workers > 9 {
        return Err(ClusterError::Setup(format!(
            "--workers must be 1..=9, not {}",
            plan.workers
        )));
    }
    let sink_dir = plan.dir.join(crate::formats::sinkdir::SINK_OUT);
    let state_dir = plan.dir.join("state");
    for d in [&sink_dir, &state_dir] {
        empty_dir(d)?;
    }
    let input_dir = match &plan.given_inputs {
        Some(dir) => dir.clone(),
        None => {
            let dir = plan.dir.join("in");
            cluster_inputs(plan, &dir, progress)?;
            dir
        }
    };
    let keys: Vec<char> = plan.keys.iter().map(|&k| k as char).collect();
    let (ports, picked) = pick_ports(plan.workers)?;
    let proxy_ports = plan
        .proxied
        .then(|| proxy_ports(plan.workers, keys.len()))
        .transpose()?;
    let inject = plan.inject.map(|(kind, after_lines, key)| Injection {
        kind: crate::choice::Choice::name(kind).to_string(),
        after_lines,
        key: Some(key as char),
    });
    let hosts = Hosts::default();
    let (layers, fs) = mount_layers(plan, &sink_dir, &state_dir)?;
    let topology = Topology {
        exe: &plan.exe,
        workers: plan.workers,
        keys: &keys,
        rate: plan.rate,
        checkpoint_interval_ms: plan.checkpoint_interval.as_millis() as u64,
        sink_dir: sink_dir.clone(),
        state_dir: state_dir.clone(),
        input_dir: input_dir.clone(),
        ports: &picked,
        hosts: &hosts,
        run_id: None,
        inject: inject.as_ref(),
        proxy: proxy_ports.as_ref(),
        fs: fs.as_ref(),
    };
    let _proxy = match proxy_ports {
        Some(_) => {
            let links = crate::proxy::LinkSpec::resolve_all(topology.links(plan.workers))
                .map_err(io("the proxy's links"))?;
            let proxy = crate::proxy::Proxy::start(links, plan.seed)
                .map_err(|e| ClusterError::Setup(e.to_string()))?;
            Some(proxy)
        }
        None => None,
    };
    let mut running = start_cluster(plan, &topology, &ports, progress)?;
    let feeding = feed_to_the_end(plan, &topology, &mut running, stop, progress)?;
    for c in running.iter_mut().rev() {
        c.stop(Duration::from_secs(2));
    }
    for layer in layers {
        layer
            .stop()
            .map_err(|e| ClusterError::Setup(e.to_string()))?;
    }
    let inputs = (plan.keys.iter())
        .map(|&key| KeyInput {
            key,
            path: input_path(&input_dir, key),
        })
        .collect();
    let verify_plan = VerifyPlan::complete(sink_dir, inputs);
    Ok(ClusterOutcome {
        report: verify(&verify_plan)?,
        feeding,
    })
}

/// Where a cluster's components keep their files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Files {
    /// In their directories.
    #[default]
    Direct,
    /// Through a `soakcheck fs` layer each (mounted at `DIR/fs/<component>`).
    ThroughFs,
}

/// With [`Files::ThroughFs`], a layer over the sink's directory and each worker's state
/// directory, and where they are mounted.
fn mount_layers(
    plan: &ClusterPlan,
    sink_dir: &Path,
    state_dir: &Path,
) -> Result<(Vec<crate::fs::Mounted>, Option<crate::topology::FsMounts>), ClusterError> {
    if plan.files == Files::Direct {
        return Ok((Vec::new(), None));
    }
    let root = plan.dir.join("fs");
    let mut components = vec![Component::Sink];
    components.extend((0..plan.workers).map(Component::Worker));
    let mut layers = Vec::new();
    for c in &components {
        let backing = match c {
            Component::Worker(n) => state_dir.join(crate::topology::worker_name(*n)),
            _ => sink_dir.to_path_buf(),
        };
        std::fs::create_dir_all(&backing).map_err(io(backing.display().to_string()))?;
        let cfg = crate::fs::FsConfig {
            mount: root.join(c.name()),
            backing,
            control: None,
            seed: plan.seed,
            keep_lost: None,
        };
        layers
            .push(crate::fs::Mounted::start(&cfg).map_err(|e| ClusterError::Setup(e.to_string()))?);
    }
    Ok((layers, Some(crate::topology::FsMounts { root, components })))
}

/// Makes `dir`, which must be new or empty.
fn empty_dir(dir: &Path) -> Result<(), ClusterError> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(io(dir.display().to_string()))?
            .next()
            .is_some()
    {
        return Err(ClusterError::Setup(format!(
            "{} is not empty; use a new --dir",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(io(dir.display().to_string()))
}

/// Free ports for the sink, the control channel and every worker.
fn pick_ports(workers: usize) -> Result<(Vec<WorkerPorts>, PickedPorts), ClusterError> {
    let sink_port = free_port().map_err(io("finding a free port"))?;
    let control = free_port().map_err(io("finding a free port"))?;
    let ports: Vec<WorkerPorts> = (0..workers)
        .map(|_| {
            Ok(WorkerPorts {
                source: free_port()?,
                external: free_port()?,
                control,
            })
        })
        .collect::<std::io::Result<_>>()
        .map_err(io("finding free ports"))?;
    let picked = PickedPorts {
        sink: sink_port,
        control,
        workers: ports.iter().map(|p| (p.source, p.external)).collect(),
    };
    Ok((ports, picked))
}

/// Free ports for the fault proxy's links.
fn proxy_ports(workers: usize, keys: usize) -> Result<ProxyPorts, ClusterError> {
    let pick = |n: usize| {
        (0..n)
            .map(|_| free_port())
            .collect::<std::io::Result<Vec<u16>>>()
            .map_err(io("finding free ports"))
    };
    Ok(ProxyPorts {
        host: crate::topology::DEFAULT_HOST.to_string(),
        sink: pick(workers)?,
        control: pick(workers)?,
        senders: pick(keys)?,
        initializer_source: None,
    })
}

/// Starts the sink and the workers, and waits until the workers are ready.
fn start_cluster(
    plan: &ClusterPlan,
    topology: &Topology<'_>,
    ports: &[WorkerPorts],
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<ChildGuard>, ClusterError> {
    let mut children = Vec::new();
    let sink_log = topology.sink_dir.join(crate::rundir::SINK_LOG);
    let sink = command(topology.argv(&Component::Sink, false));
    children.push(ChildGuard::spawn("sink", sink, &sink_log).map_err(io("starting the sink"))?);
    for n in 0..plan.workers {
        let cmd = command(topology.argv(&Component::Worker(n), false));
        let log = crate::rundir::RunDir(&plan.dir).worker_log(n);
        children
            .push(ChildGuard::spawn(&worker_name(n), cmd, &log).map_err(io("starting a worker"))?);
    }
    progress(&format!(
        "sink on port {}, {} workers; waiting until they are ready",
        topology.ports.sink(),
        plan.workers
    ));
    if !wait_ready(ports, Duration::from_secs(15)) {
        return Err(ClusterError::Setup(format!(
            "workers not ready within 15 s; logs are in {}",
            plan.dir.display()
        )));
    }
    Ok(children)
}

/// Starts a feed per key and waits until every one has finished; any component that
/// exits first is an error naming its log. Returns how long the feeding took.
fn feed_to_the_end(
    plan: &ClusterPlan,
    topology: &Topology<'_>,
    running: &mut [ChildGuard],
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&str),
) -> Result<Duration, ClusterError> {
    let feeding_started = Instant::now();
    let mut feeds = Vec::new();
    for &key in topology.keys {
        let log = crate::rundir::RunDir(&plan.dir).sender_log(key);
        let cmd = command(topology.argv(&Component::Sender(key), false));
        feeds.push(
            ChildGuard::spawn(&format!("feed {key}"), cmd, &log).map_err(io("starting a feed"))?,
        );
    }
    progress(&format!(
        "{} feeds started; waiting for them to finish",
        feeds.len()
    ));
    let deadline = Instant::now() + plan.timeout;
    let mut done = vec![false; feeds.len()];
    while !done.iter().all(|d| *d) {
        if stop.load(Ordering::SeqCst) {
            return Err(ClusterError::Interrupted);
        }
        if Instant::now() > deadline {
            return Err(ClusterError::Timeout(plan.timeout, plan.dir.clone()));
        }
        for (i, f) in feeds.iter_mut().enumerate() {
            if let (false, Some(status)) = (done[i], f.try_wait()) {
                if !status.success() {
                    let log = crate::rundir::RunDir(&plan.dir).sender_log(plan.keys[i] as char);
                    return Err(ClusterError::ChildFailed(
                        f.name.clone(),
                        status.to_string(),
                        log,
                    ));
                }
                done[i] = true;
            }
        }
        for c in running.iter_mut() {
            if let Some(status) = c.try_wait() {
                let log = component_log(plan, topology, &c.name);
                return Err(ClusterError::ChildFailed(
                    c.name.clone(),
                    status.to_string(),
                    log,
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let feeding = feeding_started.elapsed();
    progress(&format!(
        "every feed finished after {feeding:.2?}; stopping the cluster"
    ));
    Ok(feeding)
}

/// The log of the sink or of a worker, by its name.
fn component_log(plan: &ClusterPlan, topology: &Topology<'_>, name: &str) -> PathBuf {
    if name == "sink" {
        topology.sink_dir.join(crate::rundir::SINK_LOG)
    } else {
        let n = crate::topology::worker_number(name).unwrap_or(0);
        crate::rundir::RunDir(&plan.dir).worker_log(n)
    }
}
