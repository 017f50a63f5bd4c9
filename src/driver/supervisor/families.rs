//! Fault families: each kind of fault the soak injects (crash and pause loops, grow and
//! shrink, sender crashes, scripted steps, network faults) is one [`FaultFamily`], which
//! says what it schedules when the soak begins and fires its own timers (the fault and
//! its heal). The supervisor keeps only the event loop: it asks each family in turn.
//!
//! A new fault kind is a module under `driver/supervisor/` with its loop, its timers
//! (`Due` variants), and one line in [`FAMILIES`].

use super::*;

/// One family of faults.
pub(super) trait FaultFamily: Sync {
    /// Schedules its loops' first timers, as the scenario asks (none when it does not).
    fn begin(&self, sup: &mut Supervisor<'_>);
    /// Fires `due` when it is one of this family's timers (None); gives it back when it
    /// is not.
    fn fire(&self, sup: &mut Supervisor<'_>, due: Due) -> Result<Option<Due>, RunFailure>;
}

/// Every family, in the order they begin: the order of their draws from the soak's RNG,
/// so a seed always gives the same schedule.
pub(super) static FAMILIES: [&dyn FaultFamily; 5] = [
    &super::crash::CrashLoops,
    &super::membership::GrowShrink,
    &super::crash::SenderCrashes,
    &super::scripted::ScriptedSteps,
    &super::network::NetworkLoops,
];
