//! Which host each component runs on, and how `run` reaches the hosts: a scenario's
//! `[hosts]` and `[driver]` tables.
//!
//! `[hosts]` ([`Hosts`], in [`crate::topology`]) maps components to host addresses;
//! `[driver]` says how `run` reaches them.

use super::command::CommandTemplates;

pub use crate::topology::{Hosts, DEFAULT_HOST};

/// How components are started: `[driver]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriverKind {
    /// Child processes of `run`, each in its own process group.
    #[default]
    Local,
    /// Over ssh to each component's host (see [`super::ssh`]).
    Ssh,
    /// Shell templates (`[commands]`), for containers and pods.
    Command,
}

/// The `[driver]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverConfig {
    #[serde(default)]
    pub kind: DriverKind,
    /// Arguments for every ssh call (port, key, options), before the destination.
    #[serde(default)]
    pub ssh: Vec<String>,
    /// The remote user (`user@host`).
    pub user: Option<String>,
    /// The command templates (also accepted as a top-level `[commands]` table).
    pub commands: Option<CommandTemplates>,
}

/// Whether `host` is this machine (a loopback address, or `localhost`).
pub fn is_this_machine(host: &str) -> bool {
    host.starts_with("127.") || host == "localhost" || host == "::1"
}

#[cfg(test)]
mod example_tests {
    use super::*;
    use crate::driver::scenario::Scenario;
    use crate::topology::Component;

    /// The example scenarios stay valid: each parses, with the driver and hosts it says.
    #[test]
    fn the_examples_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let parse = |name: &str| Scenario::parse("3", &[], Some(&dir.join(name))).unwrap();
        let ssh = parse("ssh-three-hosts.toml");
        assert_eq!(ssh.driver.kind, DriverKind::Ssh);
        assert_eq!(ssh.hosts.of(&Component::Sink), "127.0.0.2");
        assert_eq!(ssh.hosts.of(&Component::Sender('A')), "127.0.0.4");
        assert_eq!(ssh.hosts.of(&Component::Worker(2)), "127.0.0.3");
        for name in ["docker.toml", "kubectl.toml"] {
            let s = parse(name);
            assert_eq!(s.driver.kind, DriverKind::Command, "{name}");
            assert!(s.commands.is_some(), "{name}");
        }
    }
}
