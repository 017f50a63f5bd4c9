//! Scripted steps (a scenario's `[[steps]]`, `run_customN`, or `--replay`): each fires at
//! its time, and a step that would do nothing now is skipped and not recorded.

use super::*;

impl<'a> Supervisor<'a> {
    pub(super) fn scripted(&mut self, step: Step) -> Result<(), RunFailure> {
        if let (Some(fault), Some(link)) = (step.fault(), step.link.clone()) {
            let network = self.network()?;
            network.apply(&link, fault).map_err(RunFailure::Setup)?;
            self.net_event(&fault, &link);
            let mark = if step.action == Action::Heal {
                'h'
            } else {
                'p'
            };
            self.say(&format!("{mark}{}", NetScope::mark(&link)));
            if let Some(s) = step.for_s.filter(|_| step.action != Action::Heal) {
                self.schedule(secs(s), Due::NetHeal(link, None));
            }
            return Ok(());
        }
        let Some(c) = Component::parse(&step.component) else {
            return Ok(());
        };
        if let Some(why) = self.step_without_effect(&step, &c) {
            let _ = writeln!(
                self.out,
                "\nstep at {:.1} s, {} {}: skipped, {why}; nothing recorded",
                step.at,
                step.action.as_str(),
                step.component
            );
            return Ok(());
        }
        match step.action {
            Action::Crash => {
                self.driver.kill(&c)?;
                self.take_down(&c);
                self.event(Action::Crash, &c);
                self.say(&format!("c{}", Self::short(&c)));
                if matches!(c, Component::Sender(_)) {
                    self.schedule(Duration::from_millis(100), Due::Restart(c));
                }
            }
            Action::Restart => {
                self.start_component(&c, false)?;
                self.down.remove(&c);
                self.event(Action::Restart, &c);
                self.say(&format!("r{}", Self::short(&c)));
            }
            Action::Pause => {
                self.driver.pause(&c)?;
                self.take_down(&c);
                self.event(Action::Pause, &c);
            }
            Action::Resume => {
                self.driver.resume(&c)?;
                self.down.remove(&c);
                self.event(Action::Resume, &c);
            }
            Action::Grow => {
                if let Component::Worker(n) = c {
                    self.grow(n)?;
                }
            }
            Action::Shrink => {
                if let Component::Worker(n) = c {
                    self.shrink(n);
                }
            }
            // Network steps were handled above (one without a link does nothing).
            _ => {}
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
        match step.action {
            Action::Crash | Action::Pause | Action::Resume if !alive => Some("it is not running"),
            Action::Restart if alive => Some("it is running"),
            Action::Grow if alive => Some("it is already a member"),
            _ => None,
        }
    }
}

/// A scenario's steps (`[[steps]]`, `run_customN`), each at its time.
pub(super) struct ScriptedSteps;

impl super::FaultFamily for ScriptedSteps {
    fn begin(&self, sup: &mut Supervisor<'_>) {
        for step in sup.plan.scenario.steps.clone() {
            sup.schedule(secs(step.at), Due::Scripted(step));
        }
    }

    fn fire(&self, sup: &mut Supervisor<'_>, due: Due) -> Result<Option<Due>, RunFailure> {
        match due {
            Due::Scripted(step) => sup.scripted(step)?,
            other => return Ok(Some(other)),
        }
        Ok(None)
    }
}
