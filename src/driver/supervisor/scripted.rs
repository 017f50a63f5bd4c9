//! Scripted steps (a scenario's `[[steps]]`, `run_customN`, or `--replay`): each fires at
//! its time, and a step that would do nothing now is skipped and not recorded.

use super::*;

impl<'a> Supervisor<'a> {
    pub(super) fn scripted(&mut self, step: Step) -> Result<(), RunFailure> {
        if let (Some(fault), Some(net)) = (step.fault(), step.act.net()) {
            return self.scripted_network(fault, net);
        }
        let Some(c) = Component::parse(step.component()) else {
            return Ok(());
        };
        if let Some(why) = self.step_without_effect(&step, &c) {
            let _ = writeln!(
                self.out,
                "\nstep at {:.1} s, {} {}: skipped, {why}; nothing recorded",
                step.at,
                step.action().as_str(),
                step.component()
            );
            return Ok(());
        }
        match step.act {
            Act::Crash(_) => {
                self.driver.kill(&c)?;
                self.take_down(&c);
                self.event(Act::Crash, &c);
                self.say(&format!("c{}", Self::short(&c)));
                if matches!(c, Component::Sender(_)) {
                    self.schedule(
                        Duration::from_millis(100),
                        Due::of(super::crash::CrashTimer::Restart(c)),
                    );
                }
            }
            Act::Restart(_) => {
                self.start_component(&c, false)?;
                self.down.remove(&c);
                self.event(Act::Restart, &c);
                self.say(&format!("r{}", Self::short(&c)));
            }
            Act::Pause(_) => {
                self.driver.pause(&c)?;
                self.take_down(&c);
                self.event(Act::Pause, &c);
            }
            Act::Resume(_) => {
                self.driver.resume(&c)?;
                self.down.remove(&c);
                self.event(Act::Resume, &c);
            }
            Act::Grow(_) => {
                if let Component::Worker(n) = c {
                    self.grow(n)?;
                }
            }
            Act::Shrink(_) => {
                if let Component::Worker(n) = c {
                    self.shrink(n);
                }
            }
            // Network steps were handled above.
            _ => {}
        }
        Ok(())
    }

    /// A scripted network fault of `net`'s link, healed after its `for` when it says.
    fn scripted_network(
        &mut self,
        fault: crate::proxy::Fault,
        net: &crate::rundir::step::Net,
    ) -> Result<(), RunFailure> {
        let network = self.network()?;
        network.apply(&net.link, fault).map_err(RunFailure::Setup)?;
        self.net_event(&fault, &net.link);
        let heal = fault == crate::proxy::Fault::Heal;
        let mark = if heal { 'h' } else { 'p' };
        self.say(&format!("{mark}{}", NetScope::mark(&net.link)));
        if let Some(s) = net.for_s.filter(|_| !heal) {
            self.schedule(
                secs(s),
                Due::of(super::network::NetTimer::Heal(net.link.clone(), None)),
            );
        }
        Ok(())
    }

    /// Why a scripted step would do nothing now (so it is not recorded as done): a
    /// crash, pause or resume of a component that is not running, a restart of one that
    /// is.
    pub(super) fn step_without_effect(
        &mut self,
        step: &Step,
        c: &Component,
    ) -> Option<&'static str> {
        let alive = self.driver.is_alive(c);
        match step.action() {
            Action::Crash | Action::Pause | Action::Resume if !alive => Some("it is not running"),
            Action::Restart if alive => Some("it is running"),
            Action::Grow if alive => Some("it is already a member"),
            _ => None,
        }
    }
}

/// A scripted step's timer: the step, due at its time.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Scripted(pub Step);

/// A scenario's steps (`[[steps]]`, `run_customN`, or `--replay`), each at its time.
pub(super) struct ScriptedSteps;

impl super::family::FaultFamily for ScriptedSteps {
    type Timer = Scripted;

    fn begin(&self, sup: &mut Supervisor<'_>) {
        for step in sup.plan.scenario.steps.clone() {
            sup.schedule(secs(step.at), Due::of(Scripted(step)));
        }
    }

    fn fire(&self, sup: &mut Supervisor<'_>, Scripted(step): Scripted) -> Result<(), RunFailure> {
        sup.scripted(step)
    }
}
