//! From what a user typed to what the library runs: `K=PATH` specs, key lists (with the
//! `MULTIPLE_KEYS_LIST` fallback and duplicates refused), the original's default paths,
//! the numeric limits of the flags, and the verify and watch plans. The binary only
//! declares its flags and calls these, so every rule here is tested without it.

use std::path::{Path, PathBuf};

use crate::verify::{parse_key, select_inputs, KeySelection, Semantics, VerifyPlan};
use crate::watch::{Checks, ProgressStyle, SinkScope, Until, WatchPlan};

/// The original harness's run dir, input dir and sender log dir.
pub const DEFAULT_DIR: &str = "/tmp";
/// The original sink directory.
pub const DEFAULT_SINK_DIR: &str = "/tmp/sink-out";
/// The keys of a run when none are named (the original's ten).
pub const DEFAULT_KEYS: &str = "A,B,C,D,E,F,G,H,I,J";

/// What is wrong with a command line's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{flag} {spec:?}: expected K=PATH")]
    NotKeyPath { flag: &'static str, spec: String },
    #[error("{flag} {spec:?}: {detail}")]
    BadKey {
        flag: &'static str,
        spec: String,
        detail: String,
    },
    #[error("no keys given")]
    NoKeys,
    #[error("--inject needs --inject-key K: the key whose output the worker breaks (only skip-fsync, the sink's bug, has none)")]
    InjectKeyMissing,
    #[error("--inject skip-fsync takes no --inject-key: the sink skips its fsyncs for every key")]
    InjectKeyUnused,
    #[error("key {0:?} is given twice")]
    DuplicateKey(char),
    #[error("{0}")]
    Inputs(String),
    #[error("network faults: {0}")]
    Network(String),
    #[error("--plan {from}: {detail}")]
    WatchPlan { from: String, detail: String },
    #[error("--control {addr}: not a loopback address, so anyone who reaches it could {power}; use 127.0.0.1, or add --allow-remote-control")]
    RemoteControl {
        addr: std::net::SocketAddr,
        /// What the control can do (`fault every link`, `cut the power`).
        power: &'static str,
    },
}

/// A control address (the proxy's, the filesystem layer's): a loopback one, or any
/// with `allow_remote`; `power` says what its control can do.
pub fn control_addr(
    addr: std::net::SocketAddr,
    allow_remote: bool,
    power: &'static str,
) -> Result<std::net::SocketAddr, PlanError> {
    if addr.ip().is_loopback() || allow_remote {
        Ok(addr)
    } else {
        Err(PlanError::RemoteControl { addr, power })
    }
}

/// Parses `K=PATH` (`flag` names it in errors).
pub fn key_path(flag: &'static str, spec: &str) -> Result<(u8, PathBuf), PlanError> {
    let (key, path) = spec.split_once('=').ok_or_else(|| PlanError::NotKeyPath {
        flag,
        spec: spec.to_string(),
    })?;
    let key = parse_key(key).map_err(|detail| PlanError::BadKey {
        flag,
        spec: spec.to_string(),
        detail,
    })?;
    Ok((key, PathBuf::from(path)))
}

/// The keys named by `--keys` and `--input K=PATH`, with `MULTIPLE_KEYS_LIST` (`env`) as
/// the original's fallback.
pub fn key_selection(
    keys: Option<&str>,
    inputs: &[String],
    env: Option<String>,
) -> Result<KeySelection, PlanError> {
    let overrides = inputs
        .iter()
        .map(|spec| key_path("--input", spec))
        .collect::<Result<_, _>>()?;
    Ok(KeySelection {
        keys: keys.map(str::to_string),
        env_keys: env,
        overrides,
    })
}

/// A list of keys: `keys` (comma-separated), else `env` (`MULTIPLE_KEYS_LIST`,
/// space-separated), else [`DEFAULT_KEYS`]. Each key once.
pub fn keys_or_default(keys: Option<&str>, env: Option<String>) -> Result<Vec<u8>, PlanError> {
    let (text, sep) = match (keys, env) {
        (Some(k), _) => (k.to_string(), ','),
        (None, Some(k)) if !k.trim().is_empty() => (k, ' '),
        _ => (DEFAULT_KEYS.to_string(), ','),
    };
    let keys: Vec<u8> = text
        .split(sep)
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            let bad = |detail| PlanError::BadKey {
                flag: "--keys",
                spec: k.to_string(),
                detail,
            };
            // The system's own keys name senders, marks, status lines and pages: a
            // control character there would be obeyed by the terminal.
            match parse_key(k).map_err(bad)? {
                key if key.is_ascii_graphic() => Ok(key),
                _ => Err(bad(format!(
                    "a key of the system is a printable ASCII character, not {k:?}"
                ))),
            }
        })
        .collect::<Result<_, _>>()?;
    if keys.is_empty() {
        return Err(PlanError::NoKeys);
    }
    if let Some(k) = (0..keys.len()).find_map(|i| keys[..i].contains(&keys[i]).then_some(keys[i])) {
        return Err(PlanError::DuplicateKey(k as char));
    }
    Ok(keys)
}

/// A count of keys for the benches: keys are the letters A, B, ... (at most 26).
pub fn key_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=26).contains(&n) => Ok(n),
        _ => Err(format!("{text:?}: expected a key count from 1 to 26")),
    }
}

/// A worker count: 1 up to the ten worker slots a run has.
pub fn worker_count(text: &str) -> Result<usize, String> {
    let max = crate::driver::preset::MAX_WORKERS;
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("{text:?}: expected a worker count from 1 to {max}")),
    }
}

/// A byte count of at least one.
pub fn positive_bytes(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{text:?}: expected a positive number of bytes")),
    }
}

/// `verify`'s plan. Without a sink dir, only the plain outputs are read; with neither,
/// the original's sink dir.
pub fn verify_plan(
    selection: &KeySelection,
    input_dir: &Path,
    sink_dir: Option<PathBuf>,
    plain_outputs: Vec<PathBuf>,
    expect_complete: bool,
    semantics: Semantics,
    io: crate::formats::mapped::IoMode,
) -> Result<VerifyPlan, PlanError> {
    let inputs = select_inputs(selection, input_dir)
        .map_err(|e| PlanError::Inputs(crate::error_text(&e)))?;
    let sink_dir = match (sink_dir, plain_outputs.is_empty()) {
        (Some(dir), _) => Some(dir),
        (None, true) => Some(PathBuf::from(DEFAULT_SINK_DIR)),
        (None, false) => None,
    };
    Ok(VerifyPlan {
        sink_dir,
        plain_outputs,
        inputs,
        expect_complete,
        semantics,
        io,
    })
}

/// A watch plan as JSON (`watch --plan`): the text itself when it starts with `{` (how
/// `run` hands its checkers on other hosts their part of its plan, so a checker's command
/// line says what it checks), else a file holding it.
pub fn read_watch_plan(plan: &str) -> Result<WatchPlan, PlanError> {
    let bad = |from: &str, detail: String| PlanError::WatchPlan {
        from: from.to_string(),
        detail,
    };
    let text = if plan.trim_start().starts_with('{') {
        plan.to_string()
    } else {
        std::fs::read_to_string(plan).map_err(|e| bad(plan, e.to_string()))?
    };
    let from = if text.len() == plan.len() {
        "(the JSON given)"
    } else {
        plan
    };
    serde_json::from_str(&text).map_err(|e| bad(from, format!("not a watch plan: {e}")))
}

/// Which sender logs a watch reads.
pub enum SenderLogs {
    /// `DIR/sender.out.K` for every key.
    InDir(PathBuf),
    /// `K=PATH` specs.
    Given(Vec<String>),
    /// None (the senders are checked on their own hosts).
    NoneHere,
}

/// What `watch` was asked, beyond the verify part of its plan.
pub struct WatchRequest {
    pub sender_logs: SenderLogs,
    pub sink_log: Option<PathBuf>,
    pub ack_timeout: std::time::Duration,
    pub registry_window: usize,
    pub until: Until,
    pub timeout: Option<std::time::Duration>,
    pub events: Option<PathBuf>,
    pub on_violation: Option<String>,
    pub poll: Option<std::time::Duration>,
    pub progress: ProgressStyle,
    /// Whether the sink is checked here or only sender logs.
    pub sink: SinkScope,
}

/// `watch`'s plan: sender logs from `K=PATH` specs, else `DIR/sender.out.K` per key; the
/// sink log defaults to `SINK_DIR/stdout-stderr`.
pub fn watch_plan(verify: VerifyPlan, w: WatchRequest) -> Result<WatchPlan, PlanError> {
    let sender_logs: Vec<(u8, PathBuf)> = match &w.sender_logs {
        SenderLogs::InDir(dir) => verify
            .inputs
            .iter()
            .map(|k| (k.key, crate::rundir::RunDir(dir).sender_log(k.key as char)))
            .collect(),
        SenderLogs::Given(specs) => specs
            .iter()
            .map(|spec| key_path("--sender-log", spec))
            .collect::<Result<_, _>>()?,
        SenderLogs::NoneHere => Vec::new(),
    };
    let sink_dir = verify
        .sink_dir
        .clone()
        .unwrap_or_else(|| DEFAULT_SINK_DIR.into());
    Ok(WatchPlan {
        sink_log: Some(
            w.sink_log
                .unwrap_or_else(|| sink_dir.join(crate::rundir::SINK_LOG)),
        ),
        verify,
        sender_logs,
        ack_timeout: w.ack_timeout,
        registry_window: w.registry_window.max(1),
        until: w.until,
        timeout: w.timeout,
        events: w.events,
        on_violation: w.on_violation,
        poll: w.poll,
        progress: w.progress,
        checks: Checks {
            sink: w.sink,
            ..Checks::default()
        },
    })
}

/// What `run` was asked.
pub struct RunRequest {
    pub scenario: crate::driver::scenario::Scenario,
    pub preset: crate::driver::preset::PresetKind,
    pub seed: Option<u64>,
    pub keys: Option<String>,
    pub port_base: Option<u16>,
    pub run_dir: PathBuf,
    pub rate: u64,
    pub checkpoint_interval: std::time::Duration,
    /// `--inject KIND --inject-after N --inject-key K` (no key for `skip-fsync`).
    pub inject: Option<(crate::demo::worker::InjectKind, u64, Option<String>)>,
    pub exe: PathBuf,
    /// The environment (`WALLAROO_*`, `MULTIPLE_KEYS_LIST`, ...).
    pub env: Vec<(String, String)>,
    pub time_scale: f64,
    pub on_violation: crate::driver::run::OnViolation,
    pub duration: Option<std::time::Duration>,
    pub replay: Option<PathBuf>,
    pub bytes_per_key: u64,
    pub progress: ProgressStyle,
    pub ack_timeout: std::time::Duration,
    /// `--serve`: the live report's address.
    pub serve: Option<std::net::SocketAddr>,
    /// `--keep-runs`: how many earlier green runs the run dir keeps.
    pub keep_runs: usize,
    /// The driver the run uses (`--command-driver` forces the command templates).
    pub driver: crate::driver::hosts::DriverKind,
}

/// Why a run's plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum RunPlanError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Ports(#[from] crate::driver::preset::PortRangeError),
    #[error("--time-scale {}: expected a number above 0 and at most {MAX_TIME_SCALE}", crate::duration::show_number(*.0))]
    TimeScale(f64),
    #[error("--duration 0: a soak of no time verifies nothing; give a positive duration")]
    ZeroDuration,
    #[error("--replay {path}: {detail}")]
    Replay { path: PathBuf, detail: String },
    #[error("{place}: {detail}")]
    Step { place: String, detail: String },
    #[error("power and disk faults of {component}: {why}")]
    Layer { component: String, why: String },
}

/// The largest `--time-scale` (every timing a thousand times as long).
pub const MAX_TIME_SCALE: f64 = 1000.0;

/// The steps of `--replay`'s events.jsonl, read now, before the run touches anything
/// (the file is usually the previous run's, in the same run dir).
fn read_replay(path: &Path) -> Result<Vec<crate::rundir::step::Step>, RunPlanError> {
    use crate::rundir::events::EventLine;
    let fail = |detail: String| RunPlanError::Replay {
        path: path.to_path_buf(),
        detail,
    };
    let events =
        crate::rundir::events::read_events(path).map_err(|e| fail(crate::error_text(&e)))?;
    if !events.iter().any(|e| matches!(e, EventLine::Run { .. })) {
        return Err(fail(
            "not a run's events.jsonl: it has no run line (a run writes {\"run\":...} first)"
                .into(),
        ));
    }
    let mut steps = crate::rundir::events::steps(&events);
    for (i, step) in steps.iter_mut().enumerate() {
        crate::driver::scenario::name_step_component(step).map_err(|why| {
            fail(format!(
                "step {} (at {}): {why}",
                i + 1,
                crate::duration::show_number(step.at)
            ))
        })?;
    }
    Ok(steps)
}

/// Every step (scripted or replayed) can take effect in this run: its times and fault
/// are in bounds, its worker exists or is grown first, its sender is one of the run's
/// keys, and its link is one of the proxy's.
fn check_steps(
    scenario: &crate::driver::scenario::Scenario,
    replay: Option<&[crate::rundir::step::Step]>,
    preset: &crate::driver::preset::Preset,
) -> Result<(), RunPlanError> {
    let links: Vec<String> = match preset.proxy {
        Some(_) => preset
            .proxy_links()
            .map_err(|e| PlanError::Network(e.to_string()))?
            .into_iter()
            .map(|l| l.name)
            .collect(),
        None => Vec::new(),
    };
    let lists = [
        ("scenario step", &scenario.steps[..]),
        ("--replay step", replay.unwrap_or_default()),
    ];
    let steps = lists.iter().flat_map(|(origin, steps)| {
        steps
            .iter()
            .enumerate()
            .map(move |(i, s)| (*origin, i + 1, s))
    });
    for (origin, i, step) in steps {
        let fail = |detail: String| RunPlanError::Step {
            place: format!(
                "{origin} {i} ({} {} at {})",
                step.action().as_str(),
                step.component(),
                crate::duration::show_number(step.at)
            ),
            detail,
        };
        scenario.check_step(step).map_err(fail)?;
        if let Some(crate::topology::Component::Sender(k)) =
            crate::topology::Component::parse(step.component())
        {
            if !preset.keys.contains(&k) {
                return Err(fail(format!(
                    "there is no sender-{k}: the run's keys are {}",
                    preset.keys.iter().collect::<String>()
                )));
            }
        }
        if let Some(link) = step.link() {
            if !links.iter().any(|l| l == link) {
                return Err(fail(format!(
                    "there is no link {link:?}: the links are {}",
                    links.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// Where the fault proxy listens, when the run has network faults (its loops or steps,
/// or a replayed events.jsonl with network steps).
fn proxy_ports(
    r: &RunRequest,
    replay: Option<&[crate::rundir::step::Step]>,
    ports: &crate::driver::preset::Ports,
    keys: usize,
) -> Result<Option<crate::topology::ProxyPorts>, PlanError> {
    let replayed = replay.is_some_and(|steps| steps.iter().any(|s| s.action().is_network()));
    if !r.scenario.network_faults() && !replayed {
        return Ok(None);
    }
    let host = proxy_host(&r.scenario)?;
    if r.preset == crate::driver::preset::PresetKind::Wallaroo {
        return wallaroo_proxy_ports(&r.scenario, &host, ports).map(Some);
    }
    if keys > crate::topology::MAX_PROXIED_KEYS {
        return Err(PlanError::Network(format!(
            "{keys} keys: the proxy carries at most {} senders' links",
            crate::topology::MAX_PROXIED_KEYS
        )));
    }
    Ok(Some(crate::topology::ProxyPorts::from_base(
        &host,
        ports.in_base,
        crate::driver::preset::MAX_WORKERS,
        keys,
    )))
}

/// The wallaroo preset's proxy ports. Its sender connects only to 127.0.0.1:IN_BASE
/// on its own machine (wallaroo-formats.md §4.1), so the proxy can stand there only when the senders
/// run on this machine (every host a loopback address). Otherwise the sink and control
/// links still go through the proxy, and the senders' link stays direct: a fault
/// asked for on it is refused here rather than found missing mid-run.
fn wallaroo_proxy_ports(
    scenario: &crate::driver::scenario::Scenario,
    host: &str,
    ports: &crate::driver::preset::Ports,
) -> Result<crate::topology::ProxyPorts, PlanError> {
    let workers = crate::driver::preset::MAX_WORKERS;
    if all_loopback(scenario) {
        return Ok(crate::topology::ProxyPorts::wallaroo(
            host,
            ports.in_base,
            workers,
        ));
    }
    use crate::driver::scenario::NetScope;
    let on_senders = scenario.net.contains(&NetScope::Source)
        || scenario
            .steps
            .iter()
            .any(|s| s.link().is_some_and(|l| NetScope::Source.covers(l)));
    if on_senders {
        return Err(PlanError::Network(
            "the wallaroo preset's sender connects only to 127.0.0.1 on its own machine, so with components on other hosts its link cannot go through the proxy: drop net-source and sender links, or run every component here".into(),
        ));
    }
    Ok(crate::topology::ProxyPorts::from_base(
        host,
        ports.in_base,
        workers,
        0,
    ))
}

fn all_loopback(scenario: &crate::driver::scenario::Scenario) -> bool {
    let loopback = |h: &String| {
        h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    };
    scenario.hosts.all().iter().all(loopback)
}

/// Where the proxy listens: `[network] proxy_host`, else 127.0.0.1 when every host is a
/// loopback address (all on this machine).
fn proxy_host(scenario: &crate::driver::scenario::Scenario) -> Result<String, PlanError> {
    if let Some(host) = &scenario.network.proxy_host {
        return Ok(host.clone());
    }
    if all_loopback(scenario) {
        return Ok(crate::topology::DEFAULT_HOST.to_string());
    }
    Err(PlanError::Network(
        "with components on other hosts, [network] proxy_host must name an address of this machine that they reach".into(),
    ))
}

/// The run's seed: `--seed`, else the scenario's, else the replayed run's (its inputs
/// are made from it), else the clock's.
fn run_seed(r: &RunRequest) -> u64 {
    let replayed_seed = r
        .replay
        .as_deref()
        .and_then(crate::rundir::events::header_of)
        .map(|h| h.seed);
    r.seed
        .or(r.scenario.seed)
        .or(replayed_seed)
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// `--inject KIND --inject-after-lines N --inject-key K`, checked: a worker's
/// injection needs its key, the sink's (`skip-fsync`) has none.
fn injection(
    (kind, after_lines, key): (crate::demo::worker::InjectKind, u64, Option<String>),
) -> Result<crate::topology::Injection, PlanError> {
    use crate::demo::worker::InjectKind;
    let key = match (kind, key) {
        (InjectKind::SkipFsync, Some(_)) => return Err(PlanError::InjectKeyUnused),
        (InjectKind::SkipFsync, None) => None,
        (_, None) => return Err(PlanError::InjectKeyMissing),
        (_, Some(key)) => Some(parse_key(&key).map_err(|detail| PlanError::BadKey {
            flag: "--inject-key",
            spec: key.clone(),
            detail,
        })? as char),
    };
    Ok(crate::topology::Injection {
        kind: crate::choice::Choice::name(kind).to_string(),
        after_lines,
        key,
    })
}

/// The `soakcheck fs` layers a run's power and disk faults need (none without them):
/// mounted at `RUN_DIR/soakcheck-fs/<component>`.
fn fs_mounts(
    scenario: &crate::driver::scenario::Scenario,
    replay: Option<&[crate::rundir::step::Step]>,
    run_dir: &std::path::Path,
) -> Option<crate::topology::FsMounts> {
    let mut components = scenario.fs_components();
    let replayed = replay
        .into_iter()
        .flatten()
        .filter(|s| s.action().is_disk());
    components.extend(replayed.filter_map(|s| crate::topology::Component::parse(s.component())));
    components.sort();
    components.dedup();
    (!components.is_empty()).then(|| crate::topology::FsMounts {
        root: crate::rundir::RunDir(run_dir).fs_mounts(),
        components,
    })
}

/// Every component with power or disk faults can have its layer: on this machine, or
/// on its host through the ssh driver; the wallaroo preset's workers keep their state
/// where soakcheck does not mount it.
fn check_layers(
    preset: &crate::driver::preset::Preset,
    driver: crate::driver::hosts::DriverKind,
) -> Result<(), RunPlanError> {
    use crate::driver::hosts::{is_this_machine, DriverKind};
    use crate::topology::Component;
    let Some(fs) = &preset.fs else {
        return Ok(());
    };
    for c in &fs.components {
        let refused = |why: String| RunPlanError::Layer {
            component: c.name(),
            why,
        };
        let host = preset.hosts.of(c);
        if driver != DriverKind::Ssh && !is_this_machine(host) {
            return Err(refused(format!(
                "it runs on {host}, and only the ssh driver runs a filesystem layer on \
                 another host (this run uses the {} driver)",
                format!("{driver:?}").to_lowercase()
            )));
        }
        let wallaroo = preset.kind == crate::driver::preset::PresetKind::Wallaroo;
        if matches!(c, Component::Worker(_)) && wallaroo {
            return Err(refused(
                "the wallaroo preset's workers keep their state where Wallaroo puts it, \
                 which soakcheck does not mount: power and disk faults of a worker need the \
                 demo preset (the sink's work with both)"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// `--time-scale` within bounds, `--duration` above zero.
fn check_times(r: &RunRequest) -> Result<(), RunPlanError> {
    if !(r.time_scale.is_finite() && r.time_scale > 0.0 && r.time_scale <= MAX_TIME_SCALE) {
        return Err(RunPlanError::TimeScale(r.time_scale));
    }
    if r.duration == Some(std::time::Duration::ZERO) {
        return Err(RunPlanError::ZeroDuration);
    }
    Ok(())
}

/// `run`'s plan: the seed (the scenario's, else the clock's), the keys, the ports (the
/// base, else the `WALLAROO_*` variables), the injection and the preset.
pub fn run_plan(r: RunRequest) -> Result<crate::driver::run::RunPlan, RunPlanError> {
    use crate::driver::preset::{Ports, Preset};
    let var = |name: &str| {
        r.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let seed = run_seed(&r);
    let keys = keys_or_default(r.keys.as_deref(), var("MULTIPLE_KEYS_LIST"))?;
    let ports = match r.port_base {
        Some(base) => Ports::from_base(base)?,
        None => Ports::from_env(&var)?,
    };
    check_times(&r)?;
    let replay = r.replay.as_deref().map(read_replay).transpose()?;
    let proxy = proxy_ports(&r, replay.as_deref(), &ports, keys.len())?;
    let preset = Preset {
        kind: r.preset,
        ports,
        proxy,
        fs: fs_mounts(&r.scenario, replay.as_deref(), &r.run_dir),
        run_dir: r.run_dir,
        workers: r.scenario.workers,
        keys: keys.into_iter().map(|k| k as char).collect(),
        rate: r.rate,
        checkpoint_interval_ms: r.checkpoint_interval.as_millis() as u64,
        exe: r.exe,
        env: r.env,
        inject: r.inject.clone().map(injection).transpose()?,
        run_id: Some(crate::driver::run::new_run_id()),
        hosts: r.scenario.hosts.clone(),
    };
    check_steps(&r.scenario, replay.as_deref(), &preset)?;
    check_layers(&preset, r.driver)?;
    Ok(crate::driver::run::RunPlan {
        scenario: r.scenario,
        preset,
        seed,
        time_scale: r.time_scale,
        on_violation: r.on_violation,
        duration: r.duration,
        replayed: replay.as_ref().and(r.replay.clone()),
        replay,
        bytes_per_key: r.bytes_per_key,
        progress: r.progress,
        ack_timeout: r.ack_timeout,
        serve: r.serve,
        keep_runs: r.keep_runs,
        pages: Some(std::sync::Arc::new(crate::report::Pages)),
    })
}

/// What `demo worker` was asked.
pub struct WorkerRequest {
    pub name: String,
    pub worker_count: usize,
    pub in_base: u16,
    pub external_base: u16,
    pub sink_port: u16,
    pub control_base: u16,
    pub control_port: Option<u16>,
    pub source_port: Option<u16>,
    pub external_port: Option<u16>,
    pub host: String,
    pub sink_host: String,
    pub control_host: String,
    pub join: bool,
    pub state_dir: Option<PathBuf>,
    pub checkpoint_interval: std::time::Duration,
    /// `--inject KIND --inject-after N [--inject-key K]`.
    pub inject: Option<(crate::demo::worker::InjectKind, u64, Option<String>)>,
    pub run_id: Option<String>,
}

/// Why a worker cannot be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerPlanError {
    #[error("--name {0:?}: expected initializer or workerN")]
    Name(String),
    #[error("worker {n} needs port {base} + 10 x {n} = {port}, past 65535")]
    Port { n: usize, base: u16, port: usize },
    #[error("{host}: {detail}")]
    Address { host: String, detail: String },
    #[error("--inject skip-fsync is the sink's bug, not a worker's: start the sink with `demo sink --skip-fsync`")]
    SinkInjection,
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// `host:port` resolved (a host name or an address).
fn socket_addr(host: &str, port: u16) -> Result<std::net::SocketAddr, WorkerPlanError> {
    use std::net::ToSocketAddrs;
    let address = |detail: String| WorkerPlanError::Address {
        host: host.to_string(),
        detail,
    };
    (host, port)
        .to_socket_addrs()
        .map_err(|e| address(e.to_string()))?
        .next()
        .ok_or_else(|| address("no address".to_string()))
}

/// A demo worker's configuration: its ports (base + 10 per worker number unless given),
/// its addresses on its host, the sink's and the initializer's, and its state dir
/// (default `/tmp/soakcheck-state/NAME`).
pub fn worker_config(
    r: WorkerRequest,
) -> Result<crate::demo::worker::WorkerConfig, WorkerPlanError> {
    use crate::demo::worker::{Injection, WorkerConfig};
    use crate::topology::worker_number;
    let n = worker_number(&r.name).ok_or_else(|| WorkerPlanError::Name(r.name.clone()))?;
    let port = |base: u16, given: Option<u16>| match given {
        Some(p) => Ok(p),
        None => {
            let port = usize::from(base) + 10 * n;
            u16::try_from(port).map_err(|_| WorkerPlanError::Port { n, base, port })
        }
    };
    let inject = match r.inject {
        Some((crate::demo::worker::InjectKind::SkipFsync, ..)) => {
            return Err(WorkerPlanError::SinkInjection)
        }
        Some((kind, after_lines, key)) => Some(Injection {
            kind,
            after_lines,
            key: key
                .map(|k| {
                    parse_key(&k).map_err(|detail| PlanError::BadKey {
                        flag: "--inject-key",
                        spec: k.clone(),
                        detail,
                    })
                })
                .transpose()?,
        }),
        None => None,
    };
    Ok(WorkerConfig {
        state_dir: r
            .state_dir
            .unwrap_or_else(|| PathBuf::from("/tmp/soakcheck-state").join(&r.name)),
        worker_count: r.worker_count,
        source_addr: socket_addr(&r.host, port(r.in_base, r.source_port)?)?,
        external_addr: socket_addr(&r.host, port(r.external_base, r.external_port)?)?,
        sink_addr: socket_addr(&r.sink_host, r.sink_port)?,
        checkpoint_interval: r.checkpoint_interval,
        inject,
        control_addr: socket_addr(&r.control_host, r.control_port.unwrap_or(r.control_base))?,
        join: r.join,
        run_id: r.run_id,
        name: r.name,
    })
}

/// `ALOC_SINK_PHASE1_SLEEP` (seconds) as the original sink reads it: anything else is 0.
pub fn phase1_sleep(value: Option<&str>) -> std::time::Duration {
    value
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map_or(
            std::time::Duration::ZERO,
            std::time::Duration::from_secs_f64,
        )
}

/// A feed's rate as the original reads it: a missing or non-integer rate is 150 bytes/s.
pub fn feed_rate(text: Option<&str>) -> u64 {
    text.and_then(|r| r.parse::<u64>().ok()).unwrap_or(150)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_proxy_listens_where_the_other_hosts_reach_it() {
        use crate::driver::scenario::Scenario;
        let mut s = Scenario::parse("3", &["net-sink".to_string()], None).unwrap();
        assert_eq!(proxy_host(&s).unwrap(), "127.0.0.1");
        let hosts = |h: &str| {
            crate::topology::Hosts::new([("sink".to_string(), h.to_string())].into_iter().collect())
        };
        s.hosts = hosts("127.0.0.2");
        assert_eq!(proxy_host(&s).unwrap(), "127.0.0.1");
        s.hosts = hosts("10.1.2.3");
        let err = proxy_host(&s).unwrap_err().to_string();
        assert!(err.contains("[network] proxy_host"), "{err}");
        s.network.proxy_host = Some("10.1.2.1".into());
        assert_eq!(proxy_host(&s).unwrap(), "10.1.2.1");
        // The wallaroo preset's senders reach only 127.0.0.1 of their own machine: with
        // other hosts their link stays direct, and faults on it are refused.
        let ports = crate::driver::preset::Ports::from_base(7100).unwrap();
        let p = wallaroo_proxy_ports(&s, "10.1.2.1", &ports).unwrap();
        assert_eq!((p.senders.len(), p.initializer_source), (0, None));
        assert_eq!(p.sink(1), 7116);
        s.net.push(crate::driver::scenario::NetScope::Source);
        let err = wallaroo_proxy_ports(&s, "10.1.2.1", &ports)
            .unwrap_err()
            .to_string();
        assert!(err.contains("drop net-source"), "{err}");
        s.hosts = hosts("127.0.0.2");
        let p = wallaroo_proxy_ports(&s, "127.0.0.1", &ports).unwrap();
        assert_eq!((p.senders, p.initializer_source), (vec![7100], Some(7108)));
    }

    use super::*;

    #[test]
    fn key_paths_and_key_lists() {
        assert_eq!(
            key_path("--input", "A=/x").unwrap(),
            (b'A', PathBuf::from("/x"))
        );
        assert_eq!(
            key_path("--input", "A").unwrap_err().to_string(),
            "--input \"A\": expected K=PATH"
        );
        assert!(key_path("--input", "AB=/x").is_err());
        assert_eq!(keys_or_default(Some("A,B"), None).unwrap(), b"AB");
        // A control character would reach terminals through marks and status lines.
        let escape = keys_or_default(Some("\x1b,A"), None)
            .unwrap_err()
            .to_string();
        assert!(escape.contains("printable"), "{escape}");
        assert!(keys_or_default(Some("A, "), None).is_ok());
        assert_eq!(keys_or_default(None, Some("C D".into())).unwrap(), b"CD");
        assert_eq!(keys_or_default(None, Some(" ".into())).unwrap().len(), 10);
        assert_eq!(
            keys_or_default(Some("A,A"), None).unwrap_err(),
            PlanError::DuplicateKey('A')
        );
        assert_eq!(
            keys_or_default(Some(","), None).unwrap_err(),
            PlanError::NoKeys
        );
    }

    #[test]
    fn worker_ports_and_original_defaults() {
        let request = |name: &str, in_base: u16| WorkerRequest {
            name: name.into(),
            worker_count: 3,
            in_base,
            external_base: 7103,
            sink_port: 7200,
            control_base: 7101,
            control_port: None,
            source_port: None,
            external_port: None,
            host: "127.0.0.3".into(),
            sink_host: "127.0.0.2".into(),
            control_host: "127.0.0.1".into(),
            join: false,
            state_dir: None,
            checkpoint_interval: std::time::Duration::from_secs(1),
            inject: None,
            run_id: None,
        };
        let c = worker_config(request("worker2", 7100)).unwrap();
        assert_eq!(c.source_addr.to_string(), "127.0.0.3:7120");
        assert_eq!(c.external_addr.to_string(), "127.0.0.3:7123");
        assert_eq!(c.sink_addr.to_string(), "127.0.0.2:7200");
        assert_eq!(c.state_dir, PathBuf::from("/tmp/soakcheck-state/worker2"));
        assert!(matches!(
            worker_config(request("worker9", 65500)),
            Err(WorkerPlanError::Port { n: 9, .. })
        ));
        assert!(worker_config(request("boss", 7100)).is_err());
        assert_eq!(
            phase1_sleep(Some("0.5")),
            std::time::Duration::from_millis(500)
        );
        assert_eq!(phase1_sleep(Some("-1")), std::time::Duration::ZERO);
        assert_eq!(feed_rate(Some("x")), 150);
    }

    #[test]
    fn limits() {
        assert!(key_count("0").is_err() && key_count("27").is_err() && key_count("3").is_ok());
        assert!(worker_count("11").is_err() && worker_count("10").is_ok());
        assert!(positive_bytes("0").is_err() && positive_bytes("1").is_ok());
    }
}
