//! Clock faults: a component's wall clock steps, strobes or runs fast or slow, then
//! heals back to true time. `clock-sink` and `clockN` run a loop each; scripted steps
//! (`clock-step`, `clock-strobe`, `clock-rate`, `clock-heal`) do one.
//!
//! How: a component with a clock fault anywhere in the scenario (or the replay) is
//! started under Debian's libfaketime (`LD_PRELOAD`), reading its offset from a file of
//! its own, `RUN_DIR/soakcheck-clock/<component>`, on its host, at every call
//! (`FAKETIME_NO_CACHE=1`). A fault rewrites that file atomically (through the driver on
//! another host); the monotonic clock is never faked (`FAKETIME_DONT_FAKE_MONOTONIC=1`),
//! so timers and timeouts stay sane. Before the cluster starts, every such file is set to
//! true time and the library is checked on each host: a component that would silently
//! ignore its clock faults is refused, never reported as faulted.
//!
//! libfaketime keeps a shared-memory pair per process in /dev/shm, which a killed
//! process leaves behind; the soak removes those of every process it started once they
//! are gone.
//!
//! Characters off a terminal: `<` a step back, `>` a step forward, `~` a strobe, `*` a
//! rate change, `=` back to true time, each followed by the component (`S` the sink, `N`
//! worker N).

use std::path::{Path, PathBuf};

use super::*;
use crate::rundir::step::{ClockRate, ClockStep, ClockStrobe};

/// Debian's libfaketime (packages `libfaketime` and `faketime`).
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Where a component's clock offset is, on its host.
pub fn clock_file(run_dir: &Path, c: &Component) -> PathBuf {
    run_dir.join(crate::rundir::CLOCK).join(c.name())
}

/// The environment that starts `c` under libfaketime.
pub fn faketime_env(run_dir: &Path, c: &Component) -> Vec<(String, String)> {
    let file = clock_file(run_dir, c).display().to_string();
    [
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME_TIMESTAMP_FILE", &file),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ("DONT_FAKE_MONOTONIC", "1"),
        // A rate change runs from the moment it is set, not from the process's start.
        ("FAKETIME_XRESET", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The clock loops' timers (and the heal of a scripted clock fault).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ClockTimer {
    /// A loop strikes its component's clock.
    Fault(Component),
    /// Back to true time; a loop's next fault follows when `looping`.
    Heal(Component, bool),
    /// A strobe flips: `by` off (or true when `off` is false), every `period`, until
    /// the heal.
    Flip {
        c: Component,
        by: f64,
        period: f64,
        off: bool,
    },
}

/// A component's clock as libfaketime reads it: seconds off true time, and its rate.
fn spec(offset: f64, rate: f64) -> String {
    if rate == 1.0 {
        format!("{offset:+}")
    } else {
        format!("{offset:+} x{rate}")
    }
}

impl<'a> Supervisor<'a> {
    /// Whether `c` runs under libfaketime: a clock loop or a clock step names it.
    pub(super) fn clocked(&self, c: &Component) -> bool {
        let steps = self.plan.scenario.steps.iter();
        let replayed = self.plan.replay.iter().flatten();
        self.plan.scenario.clocks.contains(c)
            || steps.chain(replayed).any(|s| {
                s.action().is_clock() && Component::parse(s.component()).as_ref() == Some(c)
            })
    }

    /// Writes `c`'s clock file on its host, atomically.
    fn set_clock(&mut self, c: &Component, offset: f64, rate: f64) -> Result<(), DriverError> {
        let path = clock_file(&self.preset.run_dir, c);
        let text = spec(offset, rate);
        let failed = |detail: String| DriverError::Action {
            action: "clock",
            component: c.name(),
            detail,
        };
        let script =
            r#"mkdir -p "${1%/*}" && printf '%s\n' "$2" > "$1.tmp" && mv -f "$1.tmp" "$1""#;
        let argv: Vec<String> = ["sh", "-c", script, "sh"]
            .into_iter()
            .map(String::from)
            .chain([path.display().to_string(), text.clone()])
            .collect();
        match self.driver.remote_command(c, &argv) {
            Some(mut command) => {
                let out = command.output().map_err(|e| failed(e.to_string()))?;
                if !out.status.success() {
                    return Err(failed(format!(
                        "writing {} on its host: {}",
                        path.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
            }
            None => path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| crate::gen::write_atomically(&path, |out| writeln!(out, "{text}")))
                .map_err(|e| failed(format!("{}: {e}", path.display())))?,
        }
        Ok(())
    }

    /// Whether libfaketime is on `c`'s host (a component started without it would
    /// keep true time through every clock fault), and whether its offset file can be
    /// written there: a driver that runs nothing on another host for soakcheck (the
    /// command templates) cannot reach a component whose host is not this machine.
    fn check_libfaketime(&mut self, c: &Component) -> Result<(), DriverError> {
        let argv = ["test", "-r", LIBFAKETIME].map(String::from);
        let host = self.preset.hosts.of(c).to_string();
        let here = crate::driver::hosts::is_this_machine(&host);
        if !here && self.driver.remote_command(c, &argv).is_none() {
            return Err(DriverError::Action {
                action: "clock",
                component: c.name(),
                detail: format!(
                    "it runs on {host}, where this driver runs nothing for soakcheck, so its \
                     offset file could not be written there and its clock faults would do \
                     nothing: use the ssh driver for clock faults on other hosts"
                ),
            });
        }
        let found = match self.driver.remote_command(c, &argv) {
            Some(mut command) => command.status().is_ok_and(|s| s.success()),
            None => Path::new(LIBFAKETIME).is_file(),
        };
        if found {
            return Ok(());
        }
        Err(DriverError::Action {
            action: "clock",
            component: c.name(),
            detail: format!(
                "{LIBFAKETIME} is not on its host, so its clock faults would do nothing: \
                 install Debian's libfaketime (apt-get install faketime libfaketime)"
            ),
        })
    }

    /// A clock fault of `c`: its events, its character, and the file.
    fn clock_fault(
        &mut self,
        c: &Component,
        act: Act,
        offset: f64,
        rate: f64,
    ) -> Result<(), RunFailure> {
        self.set_clock(c, offset, rate)?;
        let mark = match &act {
            Act::ClockStrobe(_) => '~',
            Act::ClockRate(_) => '*',
            Act::ClockHeal(_) => '=',
            _ if offset < 0.0 => '<',
            _ => '>',
        };
        self.record_act(act);
        self.say(&format!("{mark}{}", Self::short(c)));
        Ok(())
    }

    /// A loop's fault: a step back or forward of U(0.1, clock_step_max) s (6 in 10), a
    /// strobe of up to 5 s (2 in 10) or a rate of 0.25 to 4 (2 in 10), healed after
    /// U(0.1, clock_down_max) s.
    fn clock_loop_fault(&mut self, c: Component) -> Result<(), RunFailure> {
        let t = self.plan.timings.clone();
        let down = secs(0.1) + self.uniform(t.clock_down_max);
        let for_s = Some(down.as_secs_f64());
        let back = self.rng.range(0, 1) == 0;
        let sign = if back { -1.0 } else { 1.0 };
        let component = c.name();
        match self.rng.range(0, 9) {
            0..=5 => {
                let by = sign * (0.1 + self.uniform(t.clock_step_max - 0.1).as_secs_f64());
                let act = Act::ClockStep(ClockStep {
                    component,
                    by,
                    for_s,
                });
                self.clock_fault(&c, act, by, 1.0)?;
            }
            6..=7 => {
                let by = sign * (0.1 + self.uniform(4.9).as_secs_f64());
                let period = 0.2 + self.uniform(0.8).as_secs_f64();
                let act = Act::ClockStrobe(ClockStrobe {
                    component,
                    by,
                    period,
                    for_s: down.as_secs_f64(),
                });
                self.clock_fault(&c, act, by, 1.0)?;
                self.schedule(
                    secs(period),
                    Due::of(ClockTimer::Flip {
                        c: c.clone(),
                        by,
                        period,
                        off: false,
                    }),
                );
            }
            _ => {
                let rate = 0.25 + self.uniform(3.75).as_secs_f64();
                let act = Act::ClockRate(ClockRate {
                    component,
                    rate,
                    for_s,
                });
                self.clock_fault(&c, act, 0.0, rate)?;
            }
        }
        self.schedule(down, Due::of(ClockTimer::Heal(c, true)));
        Ok(())
    }

    /// Back to true time; a loop's next fault is U(0, clock_up_max) s later.
    fn clock_heal(&mut self, c: Component, looping: bool) -> Result<(), RunFailure> {
        self.clock_fault(
            &c,
            Act::ClockHeal(Target {
                component: c.name(),
            }),
            0.0,
            1.0,
        )?;
        self.timers.retain(|Reverse(t)| {
            !matches!(&t.due, Due::Family(f) if f.is::<ClockTimer>(|timer| matches!(timer, ClockTimer::Flip { c: flip, .. } if *flip == c)))
        });
        if looping {
            let up = self.uniform(self.plan.timings.clock_up_max);
            self.schedule(up, Due::of(ClockTimer::Fault(c)));
        }
        Ok(())
    }

    /// A scripted clock step (its heal after its `for`, when it says).
    fn scripted_clock(&mut self, step: &Step) -> Result<(), RunFailure> {
        let Some(c) = Self::step_component(step) else {
            return Ok(());
        };
        let (offset, rate) = match &step.act {
            Act::ClockStep(s) => (s.by, 1.0),
            Act::ClockStrobe(s) => (s.by, 1.0),
            Act::ClockRate(s) => (0.0, s.rate),
            _ => (0.0, 1.0),
        };
        self.clock_fault(&c, step.act.clone(), offset, rate)?;
        if let Act::ClockStrobe(s) = &step.act {
            let flip = ClockTimer::Flip {
                c: c.clone(),
                by: s.by,
                period: s.period,
                off: false,
            };
            self.schedule(secs(s.period), Due::of(flip));
        }
        if let Some(for_s) = step.for_s().filter(|_| step.action() != Action::ClockHeal) {
            self.schedule(secs(for_s), Due::of(ClockTimer::Heal(c, false)));
        }
        Ok(())
    }

    /// Removes, on the host of each component this soak started under libfaketime, the
    /// shared-memory pairs libfaketime made since the first of them started (before the
    /// senders, which can be long before under load) whose process is gone
    /// (a killed process leaves its pair; the pair is named by the pid that made it,
    /// which need not be the group the driver knows). A pair of a live process is
    /// never touched, and removing a dead one's is harmless: a process that attached to
    /// it keeps its mapping.
    pub(super) fn clean_faketime_shm(&mut self) {
        let Some(first) = self.faketime_since else {
            return;
        };
        let since = (first - 1.0).floor() as i64;
        let mut done: Vec<String> = Vec::new();
        for c in std::mem::take(&mut self.faketime_hosts) {
            let host = self.preset.hosts.of(&c).to_string();
            if done.contains(&host) {
                continue;
            }
            done.push(host);
            let script = format!(
                "find /dev/shm -maxdepth 1 \\( -name 'faketime_shm_*' -o -name 'sem.faketime_sem_*' \\) \
                 -newermt @{since} | while read -r f; do p=${{f##*_}}; [ -d /proc/$p ] || rm -f \"$f\"; done"
            );
            let argv = ["sh", "-c", &script].map(String::from);
            match self.driver.remote_command(&c, &argv) {
                Some(mut command) => {
                    let _ = command.output();
                }
                None => remove_dead_pairs(since),
            }
        }
    }
}

/// This machine's libfaketime pairs made since `since` (Unix seconds) whose process is
/// gone.
fn remove_dead_pairs(since: i64) {
    let Ok(entries) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("faketime_shm_")
            .or_else(|| name.strip_prefix("sem.faketime_sem_"))
        else {
            continue;
        };
        let recent = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|d| d.as_secs() as i64 >= since);
        if recent && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `clock-sink`, `clockN`: a loop per component steps, strobes or speeds its clock and
/// heals it.
pub(super) struct ClockLoops;

impl super::family::FaultFamily for ClockLoops {
    type Timer = ClockTimer;

    /// Every clocked component keeps true time at the start, and libfaketime is on its
    /// host.
    fn prepare(&self, sup: &mut Supervisor<'_>) -> Result<(), DriverError> {
        let clocked: Vec<Component> = std::iter::once(Component::Sink)
            .chain((0..crate::driver::preset::MAX_WORKERS).map(Component::Worker))
            .filter(|c| sup.clocked(c))
            .collect();
        for c in clocked {
            sup.check_libfaketime(&c)?;
            sup.set_clock(&c, 0.0, 1.0)?;
        }
        Ok(())
    }

    fn begin(&self, sup: &mut Supervisor<'_>) {
        let t = sup.plan.timings.clone();
        for c in sup.plan.scenario.clocks.clone() {
            let d = secs(t.start_delay) + sup.uniform(t.clock_up_max);
            sup.schedule(d, Due::of(ClockTimer::Fault(c)));
        }
    }

    fn fire(&self, sup: &mut Supervisor<'_>, timer: ClockTimer) -> Result<(), RunFailure> {
        match timer {
            ClockTimer::Fault(c) => sup.clock_loop_fault(c),
            ClockTimer::Heal(c, looping) => sup.clock_heal(c, looping),
            ClockTimer::Flip { c, by, period, off } => {
                let offset = if off { by } else { 0.0 };
                sup.set_clock(&c, offset, 1.0)?;
                let next = ClockTimer::Flip {
                    c,
                    by,
                    period,
                    off: !off,
                };
                sup.schedule(secs(period), Due::of(next));
                Ok(())
            }
        }
    }

    fn step(&self, sup: &mut Supervisor<'_>, step: &Step) -> Option<Result<(), RunFailure>> {
        step.action().is_clock().then(|| sup.scripted_clock(step))
    }
}
