//! Grow and shrink: workers leave the cluster and join it again, through the
//! initializer's external channel.

use super::*;

impl<'a> Supervisor<'a> {
    pub(super) fn grow_shrink(&mut self) -> Result<(), RunFailure> {
        if self.plan.scenario.grow && self.rng.range(0, 9) < 5 {
            if let Some(n) = (1..=9).find(|n| !self.members.contains(n)) {
                self.grow(n)?;
            }
        }
        if self.plan.scenario.shrink && self.rng.range(0, 9) < 5 {
            let candidates: Vec<usize> = self
                .members
                .iter()
                .copied()
                .filter(|&n| n > 0 && !self.down.contains_key(&Component::Worker(n)))
                .collect();
            if !candidates.is_empty() {
                let n = candidates[self.rng.range(0, candidates.len() as u64 - 1) as usize];
                self.shrink(n);
            }
        }
        self.schedule(
            secs(self.plan.timings.grow_shrink_every),
            Due::of(GrowShrinkTick),
        );
        Ok(())
    }

    pub(super) fn grow(&mut self, n: usize) -> Result<(), RunFailure> {
        let c = Component::Worker(n);
        self.start_component(&c, true)?;
        // A shrunk worker was down on purpose; a member again, it is not.
        self.down.remove(&c);
        self.members.push(n);
        self.event(Act::Grow, &c);
        self.say(&format!("Join {n}."));
        self.must_be_ready(c);
        Ok(())
    }

    /// The worker leaves by itself once the initializer accepts; its exit is reaped
    /// as any other (a shrunk worker is down on purpose). A busy initializer is asked
    /// again on a later tick.
    pub(super) fn shrink(&mut self, n: usize) {
        let c = Component::Worker(n);
        if self.cluster.shrink(n) {
            self.members.retain(|&m| m != n);
            self.take_down(&c);
            self.event(Act::Shrink, &c);
            self.say(&format!("Shrink {n}"));
        }
    }
}

/// The grow-and-shrink loop's tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct GrowShrinkTick;

/// `grow`, `shrink`, `grow-and-shrink`: workers leave and join.
pub(super) struct GrowShrink;

impl super::family::FaultFamily for GrowShrink {
    type Timer = GrowShrinkTick;

    fn prepare(&self, _: &mut Supervisor<'_>) -> Result<(), DriverError> {
        Ok(())
    }

    fn begin(&self, sup: &mut Supervisor<'_>) {
        let scenario = &sup.plan.scenario;
        if scenario.grow || scenario.shrink {
            let start = secs(sup.plan.timings.start_delay);
            sup.schedule(start, Due::of(GrowShrinkTick));
        }
    }

    fn fire(&self, sup: &mut Supervisor<'_>, _: GrowShrinkTick) -> Result<(), RunFailure> {
        sup.grow_shrink()
    }

    /// A scripted grow (skipped when the worker is already a member) or shrink.
    fn step(&self, sup: &mut Supervisor<'_>, step: &Step) -> Option<Result<(), RunFailure>> {
        let grow = match step.act {
            Act::Grow(_) => true,
            Act::Shrink(_) => false,
            _ => return None,
        };
        let Some(Component::Worker(n)) = Supervisor::step_component(step) else {
            return Some(Ok(()));
        };
        if !grow {
            sup.shrink(n);
            return Some(Ok(()));
        }
        if sup.driver.is_alive(&Component::Worker(n)) {
            sup.skip_step(step, "it is already a member");
            return Some(Ok(()));
        }
        Some(sup.grow(n))
    }
}
