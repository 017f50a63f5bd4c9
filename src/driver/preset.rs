//! Presets: the command lines of the system under test.
//!
//! - `demo` (the default): the embedded demo's sink, workers and feeds
//!   (`soakcheck demo ...`). Feed K connects to worker (index of K) mod N, because the
//!   demo's workers do not route keys to each other as Wallaroo does.
//! - `wallaroo`: the original system, started exactly as the original scripts start it:
//!   `start-initializer.sh` and `start-worker.sh` (from `$WALLAROO_BIN` and the
//!   `WALLAROO_*` variables of `sample-env-vars.sh`, defaults included), `aloc_sink` and
//!   `at_least_once_line_file_feed` under `$WALLAROO_TOP`, every sender to the
//!   initializer's source port.

use std::path::PathBuf;

use super::hosts::Hosts;
use super::{Component, LaunchSpec};
use crate::topology::{Injection, PortPlan, Topology};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PresetKind {
    Demo,
    Wallaroo,
}

impl crate::choice::Choice for PresetKind {
    const CHOICES: &'static [(Self, &'static str)] = &[
        (PresetKind::Demo, "The embedded demo system"),
        (
            PresetKind::Wallaroo,
            "The original Wallaroo system, as its start scripts ran it",
        ),
    ];
}

crate::display_as_choice!(PresetKind);

/// The original port scheme (wallaroo-formats.md §8.5), read from the `WALLAROO_*` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    pub in_base: u16,
    pub control_base: u16,
    pub data_base: u16,
    pub my_external_base: u16,
    pub my_control_base: u16,
    pub my_data_base: u16,
    pub out_port: u16,
}

/// Worker numbers a run can use: the initial cluster and any worker that grow adds
/// (`worker1`..`worker9`).
pub const MAX_WORKERS: usize = 10;

/// The wallaroo preset's one link for every sender: the original sender connects only
/// to 127.0.0.1:IN_BASE, so the proxy cannot tell its senders apart by port.
pub const WALLAROO_SENDERS_LINK: &str = "sender-*->initializer";

/// A port scheme that does not fit in 16 bits.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} {base} needs ports {base} to {}, past the last port, 65535 (the demo uses \
     up to +{span}): the highest that fits is {}",
    .base + .span,
    65535 - .span
)]
pub struct PortRangeError {
    what: &'static str,
    base: u32,
    span: u32,
}

impl Ports {
    /// The defaults of `sample-env-vars.sh`, shifted so that `in_base` is `base`.
    pub fn from_base(base: u16) -> Result<Ports, PortRangeError> {
        let at = |offset: u32| {
            u16::try_from(u32::from(base) + offset).map_err(|_| PortRangeError {
                what: "--port-base",
                base: u32::from(base),
                span: 100,
            })
        };
        let ports = Ports {
            in_base: base,
            control_base: at(1)?,
            data_base: at(2)?,
            my_external_base: at(3)?,
            my_control_base: at(4)?,
            my_data_base: at(5)?,
            out_port: at(100)?,
        };
        ports.validate()?;
        Ok(ports)
    }

    /// From the environment, with `sample-env-vars.sh`'s defaults.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Ports, PortRangeError> {
        let d = Ports::from_base(7100)?;
        let get =
            |name: &str, default: u16| env(name).and_then(|v| v.parse().ok()).unwrap_or(default);
        let ports = Ports {
            in_base: get("WALLAROO_IN_BASE", d.in_base),
            control_base: get("WALLAROO_CONTROL_BASE", d.control_base),
            data_base: get("WALLAROO_DATA_BASE", d.data_base),
            my_external_base: get("WALLAROO_MY_EXTERNAL_BASE", d.my_external_base),
            my_control_base: get("WALLAROO_MY_CONTROL_BASE", d.my_control_base),
            my_data_base: get("WALLAROO_MY_DATA_BASE", d.my_data_base),
            out_port: get("WALLAROO_OUT_PORT", d.out_port),
        };
        ports.validate()?;
        Ok(ports)
    }

    /// Every per-worker port (base + 10 per worker number) fits for all [`MAX_WORKERS`].
    fn validate(&self) -> Result<(), PortRangeError> {
        let span = 10 * (MAX_WORKERS as u32 - 1);
        for (what, base) in [
            ("WALLAROO_IN_BASE", self.in_base),
            ("WALLAROO_MY_EXTERNAL_BASE", self.my_external_base),
            ("WALLAROO_MY_CONTROL_BASE", self.my_control_base),
            ("WALLAROO_MY_DATA_BASE", self.my_data_base),
        ] {
            let base = u32::from(base);
            if base + span > u32::from(u16::MAX) {
                return Err(PortRangeError { what, base, span });
            }
        }
        Ok(())
    }

    /// `base` + 10 per worker number (validated to fit for every worker a run uses).
    fn shifted(base: u16, n: usize) -> u16 {
        u16::try_from(usize::from(base) + 10 * n).unwrap_or(u16::MAX)
    }

    pub fn source(&self, n: usize) -> u16 {
        Self::shifted(self.in_base, n)
    }
    pub fn external(&self, n: usize) -> u16 {
        Self::shifted(self.my_external_base, n)
    }
}

impl PortPlan for Ports {
    fn sink(&self) -> u16 {
        self.out_port
    }
    fn control(&self) -> u16 {
        self.control_base
    }
    fn source(&self, n: usize) -> u16 {
        Ports::source(self, n)
    }
    fn external(&self, n: usize) -> u16 {
        Ports::external(self, n)
    }
}

/// Builds launch specs for one run.
#[derive(Debug, Clone)]
pub struct Preset {
    pub kind: PresetKind,
    pub ports: Ports,
    pub run_dir: PathBuf,
    /// The initial worker count.
    pub workers: usize,
    pub keys: Vec<char>,
    pub rate: u64,
    pub checkpoint_interval_ms: u64,
    /// The soakcheck binary (demo preset).
    pub exe: PathBuf,
    /// `WALLAROO_*` and other variables (wallaroo preset), as the environment has them.
    pub env: Vec<(String, String)>,
    pub inject: Option<Injection>,
    /// The run's identity, handed to every demo component (see [`crate::demo`]).
    pub run_id: Option<String>,
    /// Which host each component runs on (`[hosts]`).
    pub hosts: Hosts,
    /// The links go through the fault proxy (a run with network faults).
    pub proxy: Option<crate::topology::ProxyPorts>,
    /// The components whose files go through a `soakcheck fs` layer (power and disk
    /// faults), and where their mounts are.
    pub fs: Option<crate::topology::FsMounts>,
}

impl Preset {
    fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// A `WALLAROO_*` variable, or `sample-env-vars.sh`'s value for it.
    fn wallaroo_var(&self, name: &str) -> String {
        if let Some(v) = self.var(name) {
            return v;
        }
        // The initializer's host: the variable, else [hosts] (127.0.0.1 without it).
        let host = self
            .var("WALLAROO_INIT_HOST")
            .unwrap_or_else(|| self.host(&Component::Worker(0)).to_string());
        let p = &self.ports;
        match name {
            "WALLAROO_ARG_IN" => "InputBlobs@__IN_HOST__:__IN_PORT__:Dragons-Love-Tacos:500:50".into(),
            "WALLAROO_ARG_OUT" => format!("{}:{}", self.var("WALLAROO_OUT_HOST").unwrap_or_else(|| self.sink_host(&host)), p.out_port),
            "WALLAROO_ARG_METRICS" => format!("{}:5001", self.var("WALLAROO_METRICS_HOST").unwrap_or(host.clone())),
            "WALLAROO_ARG_CONTROL" => format!("{host}:{}", p.control_base),
            "WALLAROO_ARG_DATA" => format!("{host}:{}", p.data_base),
            "WALLAROO_ARG_RESILIENCE" => "--run-with-resilience".into(),
            "WALLAROO_ARG_PONY" => "--ponynoblock --ponythreads=1 --ponyminthreads=9999".into(),
            "WALLAROO_ARG_PT" => {
                "--verbose --parallelism 20 --source connector --parallelism 10 --key-by first-byte --step asis-state --sink connector".into()
            }
            "WALLAROO_BASE_ARGS" => format!(
                "{} --out {} --metrics {} --control {} {}",
                self.wallaroo_var("WALLAROO_ARG_PT"),
                self.wallaroo_var("WALLAROO_ARG_OUT"),
                self.wallaroo_var("WALLAROO_ARG_METRICS"),
                self.wallaroo_var("WALLAROO_ARG_CONTROL"),
                self.wallaroo_var("WALLAROO_ARG_RESILIENCE")
            ),
            "WALLAROO_INIT_HOST" => host,
            "WALLAROO_TOP" => self.var("HOME").map_or_else(|| "/root/wallaroo".into(), |h| format!("{h}/wallaroo")),
            "WALLAROO_BIN" => format!("{}/examples/pony/passthrough/passthrough", self.wallaroo_var("WALLAROO_TOP")),
            _ => String::new(),
        }
    }

    /// The host `component` runs on.
    pub fn host(&self, component: &Component) -> &str {
        self.hosts.of(component)
    }

    /// The sink's host: its `[hosts]` entry, else the initializer's host (as the
    /// original's one-machine scripts have it).
    fn sink_host(&self, init_host: &str) -> String {
        if self.hosts.is_empty() {
            init_host.to_string()
        } else {
            self.host(&Component::Sink).to_string()
        }
    }

    /// Where worker n listens: its `[hosts]` entry, else the initializer's host.
    fn own_host(&self, n: usize, init_host: &str) -> String {
        if self.hosts.is_empty() {
            init_host.to_string()
        } else {
            self.host(&Component::Worker(n)).to_string()
        }
    }

    /// Worker n's external channel (cluster status, shrink).
    pub fn external_addr(&self, n: usize) -> String {
        self.topology().external_addr(n)
    }

    pub fn log_path(&self, component: &Component) -> PathBuf {
        let dir = crate::rundir::RunDir(&self.run_dir);
        match component {
            Component::Sink => dir.sink_log(),
            Component::Worker(n) => dir.worker_log(*n),
            Component::Sender(k) => dir.sender_log(*k),
        }
    }

    pub fn input_path(&self, key: char) -> PathBuf {
        self.run_dir.join(format!("input-file.{key}.txt"))
    }

    pub fn state_dir(&self) -> PathBuf {
        crate::rundir::RunDir(&self.run_dir).state()
    }

    /// Every port the run's components listen on, with what listens there: checked free
    /// before anything starts, so a second run on the same ports fails at once.
    pub fn listening_ports(&self) -> Vec<(u16, String)> {
        let p = &self.ports;
        let mut ports = vec![
            (p.out_port, "the sink".to_string()),
            (
                p.control_base,
                "the initializer's control channel".to_string(),
            ),
        ];
        if self.kind == PresetKind::Wallaroo {
            ports.push((p.data_base, "the initializer's data channel".to_string()));
        }
        if let Some(moved) = self.proxy.as_ref().and_then(|p| p.initializer_source) {
            ports.push((
                moved,
                "the initializer's source port, behind the proxy".to_string(),
            ));
        }
        if let Some(proxy) = &self.proxy {
            for n in 0..MAX_WORKERS {
                let name = crate::topology::worker_name(n);
                ports.push((
                    proxy.sink(n),
                    format!("the proxy of {name}'s link to the sink"),
                ));
                if n > 0 {
                    ports.push((
                        proxy.control(n),
                        format!("the proxy of {name}'s control link"),
                    ));
                }
            }
            if self.kind == PresetKind::Demo {
                for (i, k) in self.keys.iter().enumerate() {
                    ports.push((proxy.sender(i), format!("the proxy of sender {k}'s link")));
                }
            }
        }
        for n in 0..MAX_WORKERS {
            let name = crate::topology::worker_name(n);
            let source = match self.proxy.as_ref().filter(|_| n == 0) {
                Some(proxy) if proxy.initializer_source.is_some() => {
                    "the proxy of the senders' link".to_string()
                }
                _ => format!("{name}'s source port"),
            };
            ports.push((p.source(n), source));
            ports.push((p.external(n), format!("{name}'s external channel")));
            if self.kind == PresetKind::Wallaroo && n > 0 {
                ports.push((
                    Ports::shifted(p.my_control_base, n),
                    format!("{name}'s control channel"),
                ));
                ports.push((
                    Ports::shifted(p.my_data_base, n),
                    format!("{name}'s data channel"),
                ));
            }
        }
        ports
    }

    /// The command line of `component`; `join` for a worker that joins a running cluster.
    pub fn spec(&self, component: &Component, join: bool) -> LaunchSpec {
        let argv = match self.kind {
            PresetKind::Demo => self.demo_argv(component, join),
            PresetKind::Wallaroo => self.wallaroo_argv(component, join),
        };
        let mut env = self.env.clone();
        if self.kind == PresetKind::Wallaroo && matches!(component, Component::Sender(_)) {
            env.push(("ERROR_9_SHOULD_EXIT".into(), "true".into()));
        }
        LaunchSpec {
            argv,
            env,
            log: self.log_path(component),
        }
    }

    /// The demo's topology for this run (see [`crate::topology`]).
    pub fn topology(&self) -> Topology<'_> {
        Topology {
            exe: &self.exe,
            workers: self.workers,
            keys: &self.keys,
            rate: self.rate,
            checkpoint_interval_ms: self.checkpoint_interval_ms,
            sink_dir: self.run_dir.join(crate::formats::sinkdir::SINK_OUT),
            state_dir: self.state_dir(),
            input_dir: self.run_dir.clone(),
            ports: &self.ports,
            hosts: &self.hosts,
            run_id: self.run_id.as_deref(),
            inject: self.inject.as_ref(),
            proxy: self.proxy.as_ref(),
            fs: self.fs.as_ref(),
        }
    }

    /// Every link the fault proxy carries in this run (none without network faults).
    pub fn proxy_links(&self) -> std::io::Result<Vec<crate::proxy::LinkSpec>> {
        match self.kind {
            PresetKind::Demo => {
                crate::proxy::LinkSpec::resolve_all(self.topology().links(MAX_WORKERS))
            }
            PresetKind::Wallaroo => self.wallaroo_links(),
        }
    }

    /// The wallaroo preset's links: every sender's (one link, at `IN_BASE`, where the
    /// original sender connects) to the initializer's moved source port, each
    /// worker's to the sink, and each but the initializer's to its control channel.
    fn wallaroo_links(&self) -> std::io::Result<Vec<crate::proxy::LinkSpec>> {
        let Some(proxy) = &self.proxy else {
            return Ok(Vec::new());
        };
        let init_host = self.wallaroo_var("WALLAROO_INIT_HOST");
        let mut links = Vec::new();
        if let Some(moved) = proxy.initializer_source {
            links.push(crate::topology::LinkAddrs::new(
                WALLAROO_SENDERS_LINK.to_string(),
                format!("{}:{}", crate::topology::DEFAULT_HOST, self.ports.in_base),
                &format!("{init_host}:{moved}"),
            ));
        }
        // Upstream is where the worker would connect without the proxy.
        links.extend(proxy.worker_links(
            MAX_WORKERS,
            &self.wallaroo_var("WALLAROO_ARG_OUT"),
            &self.wallaroo_var("WALLAROO_ARG_CONTROL"),
        ));
        crate::proxy::LinkSpec::resolve_all(links)
    }

    /// Points a wallaroo worker's command line at its proxy ports: `--out` (the sink)
    /// and, but the initializer's (where it listens), `--control` and `--join`. The
    /// flags are rewritten wherever they came from, `WALLAROO_*` variables included.
    fn through_proxy(&self, n: usize, mut argv: Vec<String>) -> Vec<String> {
        let Some(proxy) = &self.proxy else {
            return argv;
        };
        for i in 1..argv.len() {
            let port = match argv[i - 1].as_str() {
                "--out" => proxy.sink(n),
                "--control" | "--join" if n > 0 => proxy.control(n),
                _ => continue,
            };
            argv[i] = format!("{}:{port}", proxy.host);
        }
        argv
    }

    fn demo_argv(&self, component: &Component, join: bool) -> Vec<String> {
        self.topology().argv(component, join)
    }

    fn wallaroo_argv(&self, component: &Component, join: bool) -> Vec<String> {
        let words = |text: String| {
            text.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let host = self.wallaroo_var("WALLAROO_INIT_HOST");
        let top = self.wallaroo_var("WALLAROO_TOP");
        let p = &self.ports;
        let arg_in = |port: u16| {
            self.wallaroo_var("WALLAROO_ARG_IN")
                .replace("__IN_HOST__", &host)
                .replace("__IN_PORT__", &port.to_string())
        };
        match component {
            Component::Sink => {
                // Through its filesystem layer when it has power or disk faults.
                let dir = self.fs.as_ref().and_then(|f| f.mount_of(component));
                let dir = dir.unwrap_or_else(|| self.run_dir.join("sink-out"));
                vec![
                    format!("{top}/testing/correctness/tests/aloc_sink/aloc_sink"),
                    dir.join("output").display().to_string(),
                    dir.join("abort").display().to_string(),
                    p.out_port.to_string(),
                ]
            }
            Component::Worker(0) => {
                let source = self.proxy.as_ref().and_then(|x| x.initializer_source).unwrap_or(p.in_base);
                let mut v = vec![self.wallaroo_var("WALLAROO_BIN"), "--in".into(), arg_in(source)];
                v.extend(words(self.wallaroo_var("WALLAROO_BASE_ARGS")));
                v.extend(["--data".into(), self.wallaroo_var("WALLAROO_ARG_DATA"), "--cluster-initializer".into()]);
                v.extend(["--external".into(), format!("{host}:{}", p.my_external_base)]);
                v.extend(["--worker-count".into(), self.workers.to_string()]);
                v.extend(words(self.wallaroo_var("WALLAROO_ARG_PONY")));
                self.through_proxy(0, v)
            }
            Component::Worker(n) => {
                let at = |base: u16| Ports::shifted(base, *n);
                let own = self.own_host(*n, &host);
                let arg_in = |port: u16| self.wallaroo_var("WALLAROO_ARG_IN").replace("__IN_HOST__", &own).replace("__IN_PORT__", &port.to_string());
                let mut v = vec![self.wallaroo_var("WALLAROO_BIN"), "--in".into(), arg_in(at(p.in_base))];
                v.extend(words(self.wallaroo_var("WALLAROO_BASE_ARGS")));
                v.extend(["--name".into(), format!("worker{n}"), "--external".into(), format!("{own}:{}", at(p.my_external_base))]);
                v.extend(["--my-control".into(), format!("{own}:{}", at(p.my_control_base))]);
                v.extend(["--my-data".into(), format!("{own}:{}", at(p.my_data_base))]);
                if join {
                    v.extend(["--join".into(), self.wallaroo_var("WALLAROO_ARG_CONTROL")]);
                }
                v.extend(words(self.wallaroo_var("WALLAROO_ARG_PONY")));
                self.through_proxy(*n, v)
            }
            Component::Sender(k) => vec![
                format!("{top}/testing/correctness/scripts/effectively-once/at_least_once_line_file_feed"),
                self.input_path(*k).display().to_string(),
                self.rate.to_string(),
            ],
        }
    }
}

/// A demo preset of three workers on `keys`, ports from `base`, for unit tests of what
/// is built on a preset.
#[cfg(test)]
pub fn test_demo(base: u16, keys: &[char]) -> Preset {
    Preset {
        kind: PresetKind::Demo,
        ports: Ports::from_base(base).unwrap(),
        run_dir: PathBuf::from("/nonexistent/run"),
        workers: 3,
        keys: keys.to_vec(),
        rate: 1000,
        checkpoint_interval_ms: 200,
        exe: PathBuf::from("soakcheck"),
        env: vec![],
        inject: None,
        run_id: None,
        hosts: Hosts::default(),
        proxy: None,
        fs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wallaroo(workers: usize) -> Preset {
        Preset {
            kind: PresetKind::Wallaroo,
            ports: Ports::from_base(7100).unwrap(),
            run_dir: PathBuf::from("/tmp"),
            workers,
            keys: vec!['A', 'B'],
            rate: 66000,
            checkpoint_interval_ms: 1000,
            exe: PathBuf::from("soakcheck"),
            env: vec![("HOME".into(), "/home/u".into())],
            inject: None,
            run_id: None,
            hosts: Hosts::default(),
            proxy: None,
            fs: None,
        }
    }

    /// With `[hosts]`, the command lines carry each host's address: workers listen on
    /// their own host, send to the sink's and register with the initializer's.
    #[test]
    fn command_lines_carry_the_hosts() {
        let hosts = Hosts::new(
            [
                ("sink", "10.0.0.2"),
                ("worker2", "10.0.0.5"),
                ("*", "10.0.0.3"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let mut p = wallaroo(3);
        p.hosts = hosts.clone();
        let line = p.spec(&Component::Worker(2), false).argv.join(" ");
        assert!(line.contains("--in InputBlobs@10.0.0.5:7120:"), "{line}");
        assert!(line.contains("--out 10.0.0.2:7200"), "{line}");
        assert!(line.contains("--control 10.0.0.3:7101"), "{line}");
        assert!(
            line.contains(
                "--external 10.0.0.5:7123 --my-control 10.0.0.5:7124 --my-data 10.0.0.5:7125"
            ),
            "{line}"
        );
        let mut d = wallaroo(3);
        d.kind = PresetKind::Demo;
        d.hosts = hosts;
        let worker = d.spec(&Component::Worker(2), false).argv.join(" ");
        assert!(
            worker.contains("--host 10.0.0.5 --sink-host 10.0.0.2 --control-host 10.0.0.3"),
            "{worker}"
        );
        // Sender B goes to worker 1 (index 1 mod 3), on the default host.
        let sender = d.spec(&Component::Sender('B'), false).argv.join(" ");
        assert!(sender.contains("--connect 10.0.0.3:7110"), "{sender}");
        let sink = d.spec(&Component::Sink, false).argv.join(" ");
        assert!(sink.contains("--host 10.0.0.2"), "{sink}");
    }

    /// The command lines of start-initializer.sh, start-worker.sh (and -j), aloc_sink and
    /// the sender, with sample-env-vars.sh's values.
    #[test]
    fn wallaroo_command_lines_are_the_original_scripts() {
        let p = wallaroo(3);
        let line = |c: &Component, join: bool| p.spec(c, join).argv.join(" ");
        let base = "--verbose --parallelism 20 --source connector --parallelism 10 --key-by first-byte --step asis-state --sink connector \
                    --out 127.0.0.1:7200 --metrics 127.0.0.1:5001 --control 127.0.0.1:7101 --run-with-resilience";
        let pony = "--ponynoblock --ponythreads=1 --ponyminthreads=9999";
        let bin = "/home/u/wallaroo/examples/pony/passthrough/passthrough";
        assert_eq!(
            line(&Component::Worker(0), false),
            format!("{bin} --in InputBlobs@127.0.0.1:7100:Dragons-Love-Tacos:500:50 {base} --data 127.0.0.1:7102 --cluster-initializer --external 127.0.0.1:7103 --worker-count 3 {pony}")
        );
        assert_eq!(
            line(&Component::Worker(2), false),
            format!("{bin} --in InputBlobs@127.0.0.1:7120:Dragons-Love-Tacos:500:50 {base} --name worker2 --external 127.0.0.1:7123 --my-control 127.0.0.1:7124 --my-data 127.0.0.1:7125 {pony}")
        );
        assert_eq!(
            line(&Component::Worker(4), true),
            format!("{bin} --in InputBlobs@127.0.0.1:7140:Dragons-Love-Tacos:500:50 {base} --name worker4 --external 127.0.0.1:7143 --my-control 127.0.0.1:7144 --my-data 127.0.0.1:7145 --join 127.0.0.1:7101 {pony}")
        );
        assert_eq!(
            line(&Component::Sink, false),
            "/home/u/wallaroo/testing/correctness/tests/aloc_sink/aloc_sink /tmp/sink-out/output /tmp/sink-out/abort 7200"
        );
        let sender = p.spec(&Component::Sender('B'), false);
        assert_eq!(
            sender.argv.join(" "),
            "/home/u/wallaroo/testing/correctness/scripts/effectively-once/at_least_once_line_file_feed /tmp/input-file.B.txt 66000"
        );
        assert!(sender
            .env
            .contains(&("ERROR_9_SHOULD_EXIT".into(), "true".into())));
        assert_eq!(
            p.spec(&Component::Worker(1), false).log,
            PathBuf::from("/tmp/wallaroo.1")
        );
        assert_eq!(
            p.spec(&Component::Sender('A'), false).log,
            PathBuf::from("/tmp/sender.out.A")
        );
        assert_eq!(
            p.spec(&Component::Sink, false).log,
            PathBuf::from("/tmp/sink-out/stdout-stderr")
        );
    }

    /// With network faults, every wallaroo link goes through the proxy: the senders'
    /// (at 7100, where the original sender connects) to the initializer's source moved
    /// to 7108, each worker's `--out` to its sink proxy, each joiner's `--control` and
    /// `--join` to its control proxy, even when `WALLAROO_ARG_OUT` is the user's.
    #[test]
    fn wallaroo_command_lines_point_at_the_proxy() {
        let mut p = wallaroo(3);
        p.proxy = Some(crate::topology::ProxyPorts::wallaroo(
            "127.0.0.1",
            7100,
            MAX_WORKERS,
        ));
        p.env
            .push(("WALLAROO_ARG_OUT".into(), "127.0.0.9:7200".into()));
        let line = |c: &Component, join: bool| p.spec(c, join).argv.join(" ");
        let init = line(&Component::Worker(0), false);
        assert!(init.contains("--in InputBlobs@127.0.0.1:7108:"), "{init}");
        assert!(init.contains("--out 127.0.0.1:7106 "), "{init}");
        assert!(init.contains("--control 127.0.0.1:7101 "), "{init}");
        let joiner = line(&Component::Worker(4), true);
        assert!(
            joiner.contains("--in InputBlobs@127.0.0.1:7140:"),
            "{joiner}"
        );
        assert!(joiner.contains("--out 127.0.0.1:7146 "), "{joiner}");
        assert!(joiner.contains("--control 127.0.0.1:7147 "), "{joiner}");
        assert!(joiner.contains("--join 127.0.0.1:7147 "), "{joiner}");
        assert!(
            !joiner.contains("7101") && !joiner.contains("7200"),
            "{joiner}"
        );
        let links = p.proxy_links().unwrap();
        let find = |name: &str| links.iter().find(|l| l.name == name).unwrap();
        let senders = find(WALLAROO_SENDERS_LINK);
        assert_eq!(senders.listen.to_string(), "127.0.0.1:7100");
        assert_eq!(senders.upstream.to_string(), "127.0.0.1:7108");
        assert_eq!(find("worker4->sink").listen.to_string(), "127.0.0.1:7146");
        assert_eq!(find("worker4->sink").upstream.to_string(), "127.0.0.9:7200");
        let control = find("worker4->initializer");
        assert_eq!(control.listen.to_string(), "127.0.0.1:7147");
        assert_eq!(control.upstream.to_string(), "127.0.0.1:7101");
        assert!(links.iter().all(|l| l.name != "initializer->initializer"));
        let ports = p.listening_ports();
        assert!(ports.contains(&(
            7108,
            "the initializer's source port, behind the proxy".into()
        )));
        assert!(ports.contains(&(7100, "the proxy of the senders' link".into())));
        // With components on other hosts the senders' link stays direct.
        p.proxy = Some(crate::topology::ProxyPorts::from_base(
            "10.0.0.1",
            7100,
            MAX_WORKERS,
            0,
        ));
        let init = p.spec(&Component::Worker(0), false).argv.join(" ");
        assert!(init.contains("--in InputBlobs@127.0.0.1:7100:"), "{init}");
        assert!(init.contains("--out 10.0.0.1:7106 "), "{init}");
        let links = p.proxy_links().unwrap();
        assert!(links.iter().all(|l| !l.name.starts_with("sender-")));
        assert_eq!(links.len(), 2 * MAX_WORKERS - 1);
    }

    #[test]
    fn wallaroo_variables_override_the_defaults() {
        let mut p = wallaroo(1);
        p.env.push(("WALLAROO_BIN".into(), "/opt/pt".into()));
        p.env
            .push(("WALLAROO_ARG_PONY".into(), "--ponythreads=4".into()));
        assert_eq!(
            p.spec(&Component::Worker(0), false).argv.first().unwrap(),
            "/opt/pt"
        );
        assert_eq!(
            p.spec(&Component::Worker(0), false).argv.last().unwrap(),
            "--ponythreads=4"
        );
        let env = |name: &str| (name == "WALLAROO_IN_BASE").then(|| "8100".to_string());
        assert_eq!(Ports::from_env(&env).unwrap().in_base, 8100);
        assert_eq!(Ports::from_env(&env).unwrap().out_port, 7200);
    }
}
