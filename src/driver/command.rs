//! The command driver: each action is a shell template, so components on other machines,
//! in containers or in a Kubernetes namespace are driven the same way as local ones, e.g.
//! `kill = "ssh {host} pkill -9 -f {name}"`, `kill = "docker kill {name}"` or
//! `kill = "kubectl delete pod {name} --grace-period=0 --force"`.
//!
//! Placeholders: `{name}` (the component name), `{host}` (its host from `[hosts]`),
//! `{cmd}` (the component's command line, shell-quoted), `{log}` (its log path). `start` must return once the component is
//! launched; `alive` must exit 0 while it runs.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{Component, DriverError, LaunchSpec, ProcessDriver};
use crate::topology::Hosts;

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct CommandTemplates {
    pub start: String,
    pub kill: String,
    pub pause: String,
    pub resume: String,
    pub alive: String,
    pub stop: String,
}

/// Quotes one word for `sh`.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@,+".contains(&b))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

pub struct CommandDriver {
    templates: CommandTemplates,
    hosts: Hosts,
    started: BTreeSet<Component>,
    last_spec: std::collections::BTreeMap<Component, LaunchSpec>,
}

impl CommandDriver {
    pub fn new(templates: CommandTemplates, hosts: Hosts) -> Self {
        CommandDriver {
            templates,
            hosts,
            started: BTreeSet::new(),
            last_spec: Default::default(),
        }
    }

    fn render(&self, template: &str, component: &Component) -> String {
        let spec = self.last_spec.get(component);
        let cmd = spec
            .map(|s| {
                s.argv
                    .iter()
                    .map(|w| shell_quote(w))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let log = spec
            .map(|s| shell_quote(&s.log.display().to_string()))
            .unwrap_or_default();
        template
            .replace("{name}", &component.name())
            .replace("{host}", self.hosts.of(component))
            .replace("{cmd}", &cmd)
            .replace("{log}", &log)
    }

    fn run(
        &self,
        action: &'static str,
        template: &str,
        component: &Component,
    ) -> Result<(), DriverError> {
        let line = self.render(template, component);
        let env = self
            .last_spec
            .get(component)
            .map(|s| s.env.clone())
            .unwrap_or_default();
        let status = Command::new("sh")
            .args(["-c", &line])
            .envs(env)
            .status()
            .map_err(|e| DriverError::Action {
                action,
                component: component.name(),
                detail: e.to_string(),
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(DriverError::Action {
                action,
                component: component.name(),
                detail: format!("`{line}` exited with {status}"),
            })
        }
    }
}

impl ProcessDriver for CommandDriver {
    fn start(&mut self, component: &Component, spec: &LaunchSpec) -> Result<(), DriverError> {
        self.last_spec.insert(component.clone(), spec.clone());
        let t = self.templates.start.clone();
        self.run("start", &t, component)?;
        self.started.insert(component.clone());
        Ok(())
    }
    fn kill(&mut self, component: &Component) -> Result<(), DriverError> {
        let t = self.templates.kill.clone();
        self.run("kill", &t, component)
    }
    fn pause(&mut self, component: &Component) -> Result<(), DriverError> {
        let t = self.templates.pause.clone();
        self.run("pause", &t, component)
    }
    fn resume(&mut self, component: &Component) -> Result<(), DriverError> {
        let t = self.templates.resume.clone();
        self.run("resume", &t, component)
    }
    fn is_alive(&mut self, component: &Component) -> bool {
        let t = self.templates.alive.clone();
        self.run("alive", &t, component).is_ok()
    }
    fn exited(&mut self, component: &Component) -> Option<i32> {
        if self.started.contains(component) && !self.is_alive(component) {
            self.started.remove(component);
            // The exit status is not known through templates.
            return Some(-1);
        }
        None
    }
    fn stop(&mut self, component: &Component, _grace: Duration) -> Result<(), DriverError> {
        let t = self.templates.stop.clone();
        self.started.remove(component);
        self.run("stop", &t, component)
    }
    fn started(&self) -> Vec<Component> {
        self.started.iter().cloned().collect()
    }
    fn locate(&self, _component: &Component) -> Option<String> {
        None
    }
    fn placement(&self, _component: &Component) -> Option<super::Placement> {
        None
    }

    fn describe(&self) -> super::DriverRecord {
        super::DriverRecord::default()
    }

    fn recorded(
        &mut self,
        _placement: &super::Placement,
        _act: super::RecordedAct,
    ) -> Result<bool, DriverError> {
        Ok(false)
    }

    fn survivors(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// Every component is a child on this machine.
    fn remote_command(&self, _on: &Component, _argv: &[String]) -> Option<Command> {
        None
    }

    /// Exits arrive as SIGCHLD.
    fn watch_exits(&mut self, _wakes: crossbeam_channel::Sender<super::Wake>) {}

    fn fetch(
        &mut self,
        _host_of: &Component,
        _remote: &Path,
        _local: &Path,
    ) -> Result<super::Fetched, DriverError> {
        Ok(super::Fetched::AlreadyLocal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Local templates drive a real process: start in the background, check, pause,
    /// resume, kill.
    #[test]
    fn local_templates_drive_a_process() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("{name}.pid").display().to_string();
        let templates = CommandTemplates {
            start: format!("({{cmd}} >> {{log}} 2>&1 & echo $! > {pidfile})"),
            kill: format!("kill -9 $(cat {pidfile})"),
            pause: format!("kill -STOP $(cat {pidfile})"),
            resume: format!("kill -CONT $(cat {pidfile})"),
            alive: format!("kill -0 $(cat {pidfile}) 2>/dev/null && ! grep -q '^State:.*Z' /proc/$(cat {pidfile})/status"),
            stop: format!("kill $(cat {pidfile})"),
        };
        let mut d = CommandDriver::new(templates, Hosts::default());
        let c = Component::Worker(1);
        let spec = LaunchSpec {
            argv: vec!["sleep".into(), "30".into()],
            env: vec![],
            log: dir.path().join("worker1.log"),
        };
        d.start(&c, &spec).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(d.is_alive(&c));
        d.pause(&c).unwrap();
        let pid = std::fs::read_to_string(dir.path().join("worker1.pid"))
            .unwrap()
            .trim()
            .to_string();
        // SIGSTOP is delivered asynchronously: wait for the state to show it.
        let stopped = || {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                s.lines()
                    .any(|l| l.starts_with("State:") && l.contains('T'))
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !stopped() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(stopped(), "the process was not stopped");
        d.resume(&c).unwrap();
        d.kill(&c).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(!d.is_alive(&c));
        assert_eq!(shell_quote("a b'c"), "'a b'\\''c'");
    }
}
