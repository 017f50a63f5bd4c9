//! The demo's topology, in one place for `demo cluster` and `run`'s demo preset: the
//! components, which host each runs on, their ports, and their command lines (the key to
//! worker rule included: sender K goes to worker (index of K) mod N, because the demo's
//! workers do not route keys to each other as Wallaroo does).
//!
//! `[hosts]` maps a component name or a glob (`*` matches any run of characters) to a
//! host address: an exact name wins over a glob, a longer glob over a shorter one, and
//! `"*"` is the default. Without a table every component is on 127.0.0.1. The command
//! lines carry these addresses (the sink's for the workers, each worker's for its
//! senders, the initializer's control address for every worker), and each demo component
//! binds its own host's address.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One component of the system under test.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    Sink,
    /// Worker number N (0 = initializer).
    Worker(usize),
    /// The sender of key K.
    Sender(char),
}

impl Component {
    /// The name used in logs and events: `sink`, `initializer`/`workerN`, `sender-K`.
    pub fn name(&self) -> String {
        match self {
            Component::Sink => "sink".into(),
            Component::Worker(n) => worker_name(*n),
            Component::Sender(k) => format!("sender-{k}"),
        }
    }
}

/// Worker name for worker number N: `initializer` for 0, `workerN` otherwise.
pub fn worker_name(n: usize) -> String {
    if n == 0 {
        "initializer".into()
    } else {
        format!("worker{n}")
    }
}

/// Parses a worker name back to its number (`initializer` is 0).
pub fn worker_number(name: &str) -> Option<usize> {
    if name == "initializer" {
        return Some(0);
    }
    name.strip_prefix("worker")?.parse().ok().filter(|&n| n > 0)
}

impl Component {
    /// The component called `name` (`sink`, `initializer`, `workerN`, `sender-K`).
    pub fn parse(name: &str) -> Option<Component> {
        if name == "sink" {
            return Some(Component::Sink);
        }
        if let Some(k) = name.strip_prefix("sender-") {
            let mut chars = k.chars();
            return match (chars.next(), chars.next()) {
                (Some(c), None) => Some(Component::Sender(c)),
                _ => None,
            };
        }
        worker_number(name).map(Component::Worker)
    }
}

/// Component name or glob -> host address.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Hosts(BTreeMap<String, String>);

/// The host of everything when no `[hosts]` table says otherwise.
pub const DEFAULT_HOST: &str = "127.0.0.1";

impl Hosts {
    pub fn new(map: BTreeMap<String, String>) -> Hosts {
        Hosts(map)
    }

    /// The host `component` runs on.
    pub fn of(&self, component: &Component) -> &str {
        self.named(&component.name())
    }

    /// The host of the component called `name`.
    pub fn named(&self, name: &str) -> &str {
        if let Some(host) = self.0.get(name) {
            return host;
        }
        self.0
            .iter()
            .filter(|(pattern, _)| pattern.contains('*') && glob_matches(pattern, name))
            .max_by_key(|(pattern, _)| pattern.len())
            .map_or(DEFAULT_HOST, |(_, host)| host)
    }

    /// No `[hosts]` table: everything on 127.0.0.1.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every distinct host named (for checks that must run on each).
    pub fn all(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.0.values().cloned().collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

/// `*` matches any run of characters (none included); everything else itself.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Where a topology's components listen.
pub trait PortPlan {
    fn sink(&self) -> u16;
    /// The initializer's control port.
    fn control(&self) -> u16;
    /// Worker n's connector source port.
    fn source(&self, n: usize) -> u16;
    /// Worker n's external channel port.
    fn external(&self, n: usize) -> u16;
}

/// Ports picked one by one (free ports, as `demo cluster` and the tests pick them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickedPorts {
    pub sink: u16,
    pub control: u16,
    /// Per worker: (source, external).
    pub workers: Vec<(u16, u16)>,
}

impl PortPlan for PickedPorts {
    fn sink(&self) -> u16 {
        self.sink
    }
    fn control(&self) -> u16 {
        self.control
    }
    fn source(&self, n: usize) -> u16 {
        self.workers.get(n).map_or(0, |w| w.0)
    }
    fn external(&self, n: usize) -> u16 {
        self.workers.get(n).map_or(0, |w| w.1)
    }
}

/// A link the fault proxy carries, by name and `HOST:PORT` addresses (the proxy
/// resolves them when it starts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAddrs {
    /// `sender-A->worker1`, `worker1->sink`, `worker2->initializer`.
    pub name: String,
    pub listen: String,
    pub upstream: String,
}

impl LinkAddrs {
    pub fn new(name: String, listen: String, upstream: &str) -> LinkAddrs {
        LinkAddrs {
            name,
            listen,
            upstream: upstream.to_string(),
        }
    }
}

/// Where the fault proxy listens for each link when the links go through it: per
/// worker slot its link to the sink and to the initializer's control channel, per
/// sender (in key order) its link to its worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPorts {
    /// Where the proxy runs (the control machine).
    pub host: String,
    pub sink: Vec<u16>,
    pub control: Vec<u16>,
    pub senders: Vec<u16>,
    /// Where the initializer's connector source listens when the proxy takes its port:
    /// the wallaroo preset's senders only ever connect to `IN_BASE` (wallaroo-formats.md §4.1), so the
    /// proxy listens there and the initializer moves here. None for the demo, whose
    /// senders are pointed at the proxy instead.
    pub initializer_source: Option<u16>,
}

/// The most senders whose links a run's proxy can carry (base + 110 .. base + 199).
pub const MAX_PROXIED_KEYS: usize = 90;

impl ProxyPorts {
    /// A run's: worker n's links at base + 10n + 6 (sink) and + 7 (control), free in
    /// the port scheme, and sender i's at base + 110 + i.
    pub fn from_base(host: &str, base: u16, workers: usize, keys: usize) -> ProxyPorts {
        ProxyPorts {
            host: host.to_string(),
            sink: (0..workers).map(|n| base + 10 * n as u16 + 6).collect(),
            control: (0..workers).map(|n| base + 10 * n as u16 + 7).collect(),
            senders: (0..keys).map(|i| base + 110 + i as u16).collect(),
            initializer_source: None,
        }
    }

    /// The wallaroo preset's: the sink and control links as [`ProxyPorts::from_base`]
    /// has them, and one link for every sender at `IN_BASE` itself, the only address
    /// the original sender connects to; the initializer's source moves to base + 8,
    /// free in the port scheme.
    pub fn wallaroo(host: &str, base: u16, workers: usize) -> ProxyPorts {
        ProxyPorts {
            senders: vec![base],
            initializer_source: Some(base + 8),
            ..ProxyPorts::from_base(host, base, workers, 0)
        }
    }

    /// Each worker slot's links below `workers`: `workerN->sink` to `sink` and, but the
    /// initializer's (which serves it), `workerN->initializer` to `control` (the
    /// addresses the workers would connect to without the proxy).
    pub fn worker_links(&self, workers: usize, sink: &str, control: &str) -> Vec<LinkAddrs> {
        let at = |port: u16| format!("{}:{port}", self.host);
        let mut links = Vec::new();
        for n in 0..workers {
            let name = worker_name(n);
            links.push(LinkAddrs::new(
                format!("{name}->sink"),
                at(self.sink(n)),
                sink,
            ));
            if n > 0 {
                links.push(LinkAddrs::new(
                    format!("{name}->initializer"),
                    at(self.control(n)),
                    control,
                ));
            }
        }
        links
    }

    pub fn sink(&self, n: usize) -> u16 {
        self.sink.get(n).copied().unwrap_or(0)
    }
    pub fn control(&self, n: usize) -> u16 {
        self.control.get(n).copied().unwrap_or(0)
    }
    pub fn sender(&self, i: usize) -> u16 {
        self.senders.get(i).copied().unwrap_or(0)
    }
}

/// A fault a worker injects into its committed output (kind, after N lines, key), or
/// the sink's planted bug (`skip-fsync`, no key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    pub kind: String,
    pub after_lines: u64,
    pub key: Option<char>,
}

/// The injection that is the sink's planted bug.
pub const SKIP_FSYNC: &str = "skip-fsync";

/// The components whose files go through a `soakcheck fs` layer, and where their
/// mounts are: `root/<component>` (the sink's directory, or a worker's state directory,
/// seen through the layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsMounts {
    pub root: PathBuf,
    pub components: Vec<Component>,
}

impl FsMounts {
    /// Where `c` reads and writes its files, when they go through a layer.
    pub fn mount_of(&self, c: &Component) -> Option<PathBuf> {
        self.components
            .contains(c)
            .then(|| self.root.join(c.name()))
    }
}

/// Everything that decides the demo's command lines.
pub struct Topology<'a> {
    /// The soakcheck binary.
    pub exe: &'a Path,
    /// Workers in the initial cluster.
    pub workers: usize,
    pub keys: &'a [char],
    /// Bytes per second per sender.
    pub rate: u64,
    pub checkpoint_interval_ms: u64,
    /// The sink's directory (its `output.*` and `abort.*` files).
    pub sink_dir: PathBuf,
    /// Each worker's durable state goes in `state_dir/<worker name>`.
    pub state_dir: PathBuf,
    /// `input_dir/input-file.K.txt`.
    pub input_dir: PathBuf,
    pub ports: &'a dyn PortPlan,
    pub hosts: &'a Hosts,
    pub run_id: Option<&'a str>,
    pub inject: Option<&'a Injection>,
    /// The links go through the fault proxy there.
    pub proxy: Option<&'a ProxyPorts>,
    /// The components whose files go through a `soakcheck fs` layer.
    pub fs: Option<&'a FsMounts>,
}

impl Topology<'_> {
    /// The worker sender K sends to.
    pub fn owner(&self, key: char) -> usize {
        let i = self.keys.iter().position(|&k| k == key).unwrap_or(0);
        i % self.workers.max(1)
    }

    pub fn host(&self, c: &Component) -> &str {
        self.hosts.of(c)
    }

    fn key_index(&self, key: char) -> usize {
        self.keys.iter().position(|&k| k == key).unwrap_or(0)
    }

    /// Worker n's source port, where its senders connect.
    fn worker_source(&self, n: usize) -> String {
        format!(
            "{}:{}",
            self.host(&Component::Worker(n)),
            self.ports.source(n)
        )
    }

    /// Every link the proxy carries: each sender's to its worker, each worker's (of
    /// every slot a grow may use) to the sink and, but the initializer's, to the
    /// initializer's control channel.
    pub fn links(&self, workers: usize) -> Vec<LinkAddrs> {
        let Some(p) = self.proxy else {
            return Vec::new();
        };
        let mut links = Vec::new();
        for (i, &k) in self.keys.iter().enumerate() {
            let owner = self.owner(k);
            links.push(LinkAddrs::new(
                format!("sender-{k}->{}", worker_name(owner)),
                format!("{}:{}", p.host, p.sender(i)),
                &self.worker_source(owner),
            ));
        }
        let sink = format!("{}:{}", self.host(&Component::Sink), self.ports.sink());
        let control = format!(
            "{}:{}",
            self.host(&Component::Worker(0)),
            self.ports.control()
        );
        links.extend(p.worker_links(workers, &sink, &control));
        links
    }

    /// Worker n's external channel (cluster status, shrink).
    pub fn external_addr(&self, n: usize) -> String {
        format!(
            "{}:{}",
            self.host(&Component::Worker(n)),
            self.ports.external(n)
        )
    }

    /// Where `c`'s files are seen through its `soakcheck fs` layer, when they are.
    fn files_of(&self, c: &Component) -> Option<PathBuf> {
        self.fs.and_then(|fs| fs.mount_of(c))
    }

    /// The command line of `c`; `join` for a worker that joins a running cluster.
    pub fn argv(&self, c: &Component, join: bool) -> Vec<String> {
        let mut argv = vec![self.exe.display().to_string(), "demo".to_string()];
        let words = |v: &[&str]| v.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        match c {
            Component::Sink => {
                argv.extend(words(&["sink"]));
                let dir = self.files_of(c).unwrap_or_else(|| self.sink_dir.clone());
                argv.push(dir.join("output").display().to_string());
                argv.push(dir.join("abort").display().to_string());
                argv.push(self.ports.sink().to_string());
                argv.extend(["--host".to_string(), self.host(c).to_string()]);
                if self.inject.is_some_and(|i| i.kind == SKIP_FSYNC) {
                    argv.push("--skip-fsync".to_string());
                }
            }
            Component::Worker(n) => argv.extend(self.worker_args(*n, join)),
            Component::Sender(k) => {
                let owner = self.owner(*k);
                let input = crate::formats::input::input_path(&self.input_dir, *k as u8);
                argv.extend(words(&["feed"]));
                argv.push(input.display().to_string());
                argv.push(self.rate.to_string());
                argv.push("--connect".to_string());
                argv.push(match self.proxy {
                    Some(p) => format!("{}:{}", p.host, p.sender(self.key_index(*k))),
                    None => self.worker_source(owner),
                });
            }
        }
        if let Some(id) = self.run_id {
            argv.extend(["--run-id".to_string(), id.to_string()]);
        }
        argv
    }

    fn worker_args(&self, n: usize, join: bool) -> Vec<String> {
        let name = worker_name(n);
        // Through the proxy, a worker reaches the sink and (but the initializer, which
        // serves it) the control channel at its own proxy ports.
        let (sink_host, sink_port) = match self.proxy {
            Some(p) => (p.host.as_str(), p.sink(n)),
            None => (self.host(&Component::Sink), self.ports.sink()),
        };
        let (control_host, control_port) = match self.proxy.filter(|_| n > 0) {
            Some(p) => (p.host.as_str(), p.control(n)),
            None => (self.host(&Component::Worker(0)), self.ports.control()),
        };
        let mut v: Vec<String> = [
            "worker",
            "--name",
            &name,
            "--worker-count",
            &self.workers.to_string(),
            "--source-port",
            &self.ports.source(n).to_string(),
            "--external-port",
            &self.ports.external(n).to_string(),
            "--control-port",
            &control_port.to_string(),
            "--sink-port",
            &sink_port.to_string(),
            "--checkpoint-interval",
            &format!("{}ms", self.checkpoint_interval_ms),
            "--state-dir",
            &self
                .files_of(&Component::Worker(n))
                .unwrap_or_else(|| self.state_dir.join(&name))
                .display()
                .to_string(),
            "--host",
            self.host(&Component::Worker(n)),
            "--sink-host",
            sink_host,
            "--control-host",
            control_host,
        ]
        .iter()
        .map(|w| w.to_string())
        .collect();
        if join {
            v.push("--join".to_string());
        }
        v.extend(self.injection_args(n));
        v
    }

    /// Worker `n`'s injection flags: when it owns the injection's key (the sink's
    /// `skip-fsync` is none of a worker's).
    fn injection_args(&self, n: usize) -> Vec<String> {
        let mine =
            |i: &&Injection| i.kind != SKIP_FSYNC && i.key.is_some_and(|k| self.owner(k) == n);
        let Some(i) = self.inject.filter(mine) else {
            return Vec::new();
        };
        let mut v = vec!["--inject".to_string(), i.kind.clone()];
        v.extend(["--inject-after".to_string(), i.after_lines.to_string()]);
        v.extend(i.key.map(|k| format!("--inject-key={k}")));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_beat_globs_and_longer_globs_beat_shorter() {
        let hosts = Hosts::new(
            [
                ("sink", "127.0.0.2"),
                ("sender-*", "127.0.0.4"),
                ("sender-B", "127.0.0.5"),
                ("*", "127.0.0.3"),
                ("work*1", "127.0.0.6"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        assert_eq!(hosts.of(&Component::Sink), "127.0.0.2");
        assert_eq!(hosts.of(&Component::Sender('A')), "127.0.0.4");
        assert_eq!(hosts.of(&Component::Sender('B')), "127.0.0.5");
        assert_eq!(hosts.of(&Component::Worker(0)), "127.0.0.3");
        assert_eq!(hosts.of(&Component::Worker(1)), "127.0.0.6");
        assert_eq!(hosts.of(&Component::Worker(2)), "127.0.0.3");
        assert_eq!(Hosts::default().of(&Component::Sink), DEFAULT_HOST);
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*c", "abbbc"));
        assert!(glob_matches("a*c", "ac"));
        assert!(!glob_matches("a*c", "a"));
        assert!(glob_matches("*-*-x", "a-b-x"));
        assert!(!glob_matches("ab*ba", "aba"));
    }
}
