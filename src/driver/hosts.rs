//! Which host each component runs on, and how `run` reaches the hosts: a scenario's
//! `[hosts]` and `[driver]` tables.
//!
//! `[hosts]` maps a component name or a glob (`*` matches any run of characters) to a
//! host address: an exact name wins over a glob, a longer glob over a shorter one, and
//! `"*"` is the default. Without a table every component is on 127.0.0.1. The presets put
//! these addresses in the command lines (the sink address for the workers, the worker
//! addresses for the senders, the initializer's control address), and each demo
//! component binds its own host's address.

use std::collections::BTreeMap;

use super::command::CommandTemplates;
use super::Component;

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

/// How components are started: `[driver]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
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

#[cfg(test)]
mod example_tests {
    use super::*;
    use crate::driver::scenario::Scenario;

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
