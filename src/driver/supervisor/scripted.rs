//! Scripted steps (a scenario's `[[steps]]`, `run_customN`, or `--replay`): each fires at
//! its time, and the family whose action it is carries it out
//! ([`FaultFamily::step`](super::family::FaultFamily::step)). A step that would do
//! nothing now is skipped with a note and not recorded.

use super::*;

impl<'a> Supervisor<'a> {
    /// A step that would do nothing now (`why`): said, and not recorded as done.
    pub(super) fn skip_step(&mut self, step: &Step, why: &str) {
        let _ = writeln!(
            self.out,
            "\nstep at {:.1} s, {} {}: skipped, {why}; nothing recorded",
            step.at,
            step.action().as_str(),
            step.component()
        );
    }

    /// The component a process step acts on, when it names one of ours.
    pub(super) fn step_component(step: &Step) -> Option<Component> {
        Component::parse(step.component())
    }
}

/// A scripted step's timer: the step, due at its time.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Scripted(pub Step);

/// A scenario's steps (`[[steps]]`, `run_customN`, or `--replay`), each at its time.
pub(super) struct ScriptedSteps;

impl super::family::FaultFamily for ScriptedSteps {
    type Timer = Scripted;

    fn prepare(&self, _: &mut Supervisor<'_>) -> Result<(), DriverError> {
        Ok(())
    }

    fn begin(&self, sup: &mut Supervisor<'_>) {
        for step in sup.plan.scenario.steps.clone() {
            sup.schedule(secs(step.at), Due::of(Scripted(step)));
        }
    }

    fn fire(&self, sup: &mut Supervisor<'_>, Scripted(step): Scripted) -> Result<(), RunFailure> {
        sup.run_step(&step)
    }

    /// Its steps are the other families' actions.
    fn step(&self, _: &mut Supervisor<'_>, _: &Step) -> Option<Result<(), RunFailure>> {
        None
    }
}
