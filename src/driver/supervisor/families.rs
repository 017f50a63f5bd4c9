//! Fault families: each kind of fault the soak injects (crash and pause loops, grow and
//! shrink, sender crashes, scripted steps, network faults) is one
//! [`FaultFamily`](super::family::FaultFamily) in its own module, which says what it
//! schedules when the soak begins and fires its own timers (the fault and its heal),
//! of a timer type of its own. The supervisor keeps only the event loop.
//!
//! A new fault kind is a module under `driver/supervisor/` with its loop and its timer
//! type, and one line in [`FAMILIES`].

use super::family::AnyFamily;

/// Every family, in the order they begin: the order of their draws from the soak's RNG,
/// so a seed always gives the same schedule.
pub(super) static FAMILIES: [&dyn AnyFamily; 7] = [
    &super::crash::CrashLoops,
    &super::membership::GrowShrink,
    &super::crash::SenderCrashes,
    &super::scripted::ScriptedSteps,
    &super::network::NetworkLoops,
    &super::clock::ClockLoops,
    &super::power::PowerLoops,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A timer goes to the family whose type it is, so no two families share one.
    #[test]
    fn every_family_has_a_timer_type_of_its_own() {
        let mut types: Vec<_> = FAMILIES.iter().map(|f| f.timer_type()).collect();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), FAMILIES.len());
    }
}
