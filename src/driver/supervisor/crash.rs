//! Crash and pause loops: each `crashN`/`crash-sink`/`pause` component is crashed (or
//! paused) at random, restarted (or resumed) after its down time, and must be ready
//! again before its next fault; the source loop crashes senders.

use super::*;

impl<'a> Supervisor<'a> {
    pub(super) fn crash_loop(&mut self, c: Component) -> Result<(), RunFailure> {
        let is_member = match &c {
            Component::Worker(n) => self.members.contains(n),
            _ => true,
        };
        // Killed on purpose by another loop (a power cut): that loop brings it back.
        let taken = self.down.contains_key(&c) && !self.driver.is_alive(&c);
        if !is_member || taken {
            self.schedule(secs(1.0), Due::of(CrashTimer::Crash(c)));
            return Ok(());
        }
        // Stabilization: a loop skips its crash while the cluster is not ready.
        if !self.cluster.ready(Duration::from_millis(300)) {
            let s = if c == Component::Sink {
                ":s".to_string()
            } else {
                format!(":c{}", Self::short(&c))
            };
            self.say(&s);
            self.schedule(secs(1.0), Due::of(CrashTimer::Crash(c)));
            return Ok(());
        }
        // A component that ended by itself is not crashed (no fault is recorded that
        // had no effect); it is restarted as after a crash.
        if !self.driver.is_alive(&c) {
            let _ = writeln!(
                self.out,
                "\n{} had already exited by itself: restarting it, no crash recorded",
                c.name()
            );
            self.take_down(&c);
            self.schedule(Duration::ZERO, Due::of(CrashTimer::Restart(c)));
            return Ok(());
        }
        let pause = self.plan.scenario.pauses
            && self.rng.range(0, 9) < 3
            && !matches!(c, Component::Sender(_));
        if pause {
            self.driver.pause(&c)?;
            self.event(Act::Pause, &c);
            self.say(&format!("p{}", Self::short(&c)));
            self.take_down(&c);
            let d = self.uniform(self.plan.timings.pause_max);
            self.schedule(d, Due::of(CrashTimer::Resume(c)));
        } else {
            self.driver.kill(&c)?;
            self.event(Act::Crash, &c);
            self.say(&format!("c{}", Self::short(&c)));
            self.take_down(&c);
            let t = &self.plan.timings;
            let d = match c {
                Component::Sink => self.uniform(t.sink_down_max),
                Component::Worker(_) => self.uniform(t.worker_down_max),
                Component::Sender(_) => secs(0.1),
            };
            self.schedule(d, Due::of(CrashTimer::Restart(c)));
        }
        Ok(())
    }

    pub(super) fn restart(&mut self, c: Component) -> Result<(), RunFailure> {
        if matches!(c, Component::Sender(_)) && self.driver.is_alive(&c) {
            return Ok(());
        }
        self.start_component(&c, false)?;
        self.event(Act::Restart, &c);
        self.down.remove(&c);
        // The original prints no character for a sender's restart (its `cs` says it all).
        if !matches!(c, Component::Sender(_)) {
            self.say(&format!("r{}", Self::short(&c)));
            self.must_be_ready(c.clone());
        }
        self.schedule_next_crash(c);
        Ok(())
    }

    pub(super) fn source_crash(&mut self) -> Result<(), RunFailure> {
        let live: Vec<char> = self
            .plan
            .keys
            .iter()
            .copied()
            .filter(|k| self.driver.is_alive(&Component::Sender(*k)))
            .collect();
        if !live.is_empty() {
            let k = live[self.rng.range(0, live.len() as u64 - 1) as usize];
            let c = Component::Sender(k);
            self.driver.kill(&c)?;
            self.event(Act::Crash, &c);
            self.say(&format!("cs{k}"));
            self.schedule(Duration::from_millis(100), Due::of(CrashTimer::Restart(c)));
        }
        let d = self
            .uniform(self.plan.timings.source_up_max)
            .max(Duration::from_millis(100));
        self.schedule(d, Due::of(SourceCrash));
        Ok(())
    }

    /// A scripted crash, restart, pause or resume; skipped when it would do nothing now
    /// (a crash, pause or resume of a component that is not running, a restart of one
    /// that is).
    fn scripted_process(&mut self, step: &Step) -> Result<(), RunFailure> {
        let Some(c) = Self::step_component(step) else {
            return Ok(());
        };
        let alive = self.driver.is_alive(&c);
        let without_effect = match step.action() {
            Action::Restart if alive => Some("it is running"),
            Action::Crash | Action::Pause | Action::Resume if !alive => Some("it is not running"),
            _ => None,
        };
        if let Some(why) = without_effect {
            self.skip_step(step, why);
            return Ok(());
        }
        match step.action() {
            Action::Crash => {
                self.driver.kill(&c)?;
                self.take_down(&c);
                self.event(Act::Crash, &c);
                self.say(&format!("c{}", Self::short(&c)));
                if matches!(c, Component::Sender(_)) {
                    let restart = Due::of(CrashTimer::Restart(c));
                    self.schedule(Duration::from_millis(100), restart);
                }
            }
            Action::Restart => {
                self.start_component(&c, false)?;
                self.down.remove(&c);
                self.event(Act::Restart, &c);
                self.say(&format!("r{}", Self::short(&c)));
            }
            Action::Pause => {
                self.driver.pause(&c)?;
                self.take_down(&c);
                self.event(Act::Pause, &c);
            }
            _ => {
                self.driver.resume(&c)?;
                self.down.remove(&c);
                self.event(Act::Resume, &c);
            }
        }
        Ok(())
    }

    /// After a restart or resume, when this component's loop strikes next.
    pub(super) fn schedule_next_crash(&mut self, c: Component) {
        if self.plan.replay.is_some() {
            return;
        }
        let pace = match &c {
            Component::Worker(n) => self
                .plan
                .scenario
                .crash_workers
                .iter()
                .find(|(w, _)| w == n)
                .map(|(_, p)| *p),
            _ => None,
        };
        let t = self.plan.timings.clone();
        let next = match (&c, pace) {
            (Component::Sink, _) if self.plan.scenario.crash_sink => {
                Some(secs(t.sink_up_min) + self.uniform(t.sink_up_max - t.sink_up_min))
            }
            (Component::Worker(_), Some(Pace::Fast)) => Some(self.uniform(t.worker_up_max)),
            (Component::Worker(_), Some(Pace::Slow)) => {
                Some(secs(t.slow_every) + self.uniform(t.worker_up_max))
            }
            // Senders: the source loop picks its next victim itself.
            _ => None,
        };
        if let Some(d) = next {
            self.schedule(d, Due::of(CrashTimer::Crash(c)));
        }
    }
}

/// The crash loops' timers.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum CrashTimer {
    /// The component's loop strikes.
    Crash(Component),
    /// Its down time is over (after a crash, or a sender's crash by any family).
    Restart(Component),
    /// Its pause is over.
    Resume(Component),
}

/// The source loop's timer: kill a random live sender.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct SourceCrash;

/// `crash-sink`, `crashN` (`.slow`) and `pause`: a component crashed (or paused) at
/// random and restarted (or resumed) after its down time.
pub(super) struct CrashLoops;

impl super::family::FaultFamily for CrashLoops {
    type Timer = CrashTimer;

    fn prepare(&self, _: &mut Supervisor<'_>) -> Result<(), DriverError> {
        Ok(())
    }

    fn begin(&self, sup: &mut Supervisor<'_>) {
        let t = sup.plan.timings.clone();
        if sup.plan.scenario.crash_sink {
            sup.schedule(
                secs(t.start_delay),
                Due::of(CrashTimer::Crash(Component::Sink)),
            );
        }
        for (n, pace) in sup.plan.scenario.crash_workers.clone() {
            let extra = if pace == Pace::Slow {
                secs(t.slow_every)
            } else {
                Duration::ZERO
            };
            let d = secs(t.start_delay) + extra + sup.uniform(t.worker_up_max);
            sup.schedule(d, Due::of(CrashTimer::Crash(Component::Worker(n))));
        }
    }

    fn fire(&self, sup: &mut Supervisor<'_>, timer: CrashTimer) -> Result<(), RunFailure> {
        match timer {
            CrashTimer::Crash(c) => sup.crash_loop(c)?,
            CrashTimer::Restart(c) => sup.restart(c)?,
            CrashTimer::Resume(c) => {
                sup.driver.resume(&c)?;
                sup.event(Act::Resume, &c);
                sup.say(&format!("u{}", Supervisor::short(&c)));
                sup.down.remove(&c);
                sup.schedule_next_crash(c);
            }
        }
        Ok(())
    }

    fn step(&self, sup: &mut Supervisor<'_>, step: &Step) -> Option<Result<(), RunFailure>> {
        match step.act {
            Act::Crash(_) | Act::Restart(_) | Act::Pause(_) | Act::Resume(_) => {
                Some(sup.scripted_process(step))
            }
            _ => None,
        }
    }
}

/// `crash-source`: a random live sender is killed now and then.
pub(super) struct SenderCrashes;

impl super::family::FaultFamily for SenderCrashes {
    type Timer = SourceCrash;

    fn prepare(&self, _: &mut Supervisor<'_>) -> Result<(), DriverError> {
        Ok(())
    }

    fn begin(&self, sup: &mut Supervisor<'_>) {
        if sup.plan.scenario.crash_source {
            let t = sup.plan.timings.clone();
            let d = secs(t.start_delay) + sup.uniform(t.source_up_max);
            sup.schedule(d, Due::of(SourceCrash));
        }
    }

    fn fire(&self, sup: &mut Supervisor<'_>, _: SourceCrash) -> Result<(), RunFailure> {
        sup.source_crash()
    }

    /// A scripted sender crash is a crash step (see [`CrashLoops`]).
    fn step(&self, _: &mut Supervisor<'_>, _: &Step) -> Option<Result<(), RunFailure>> {
        None
    }
}
