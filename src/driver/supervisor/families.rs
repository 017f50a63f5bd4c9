//! Fault families: each kind of fault the soak injects (crash and pause loops, grow and
//! shrink, sender crashes, scripted steps, network faults) is one [`FaultFamily`], which
//! says what it schedules when the soak begins and fires its own timers (the fault and
//! its heal). The supervisor keeps only the event loop: it asks each family in turn.
//!
//! A new fault kind is a module under `driver/supervisor/` with its loop, its timers
//! (`Due` variants), and one line in [`FAMILIES`].

use super::FaultFamily;

/// Every family, in the order they begin: the order of their draws from the soak's RNG,
/// so a seed always gives the same schedule.
pub(super) static FAMILIES: [&dyn FaultFamily; 5] = [
    &super::crash::CrashLoops,
    &super::membership::GrowShrink,
    &super::crash::SenderCrashes,
    &super::scripted::ScriptedSteps,
    &super::network::NetworkLoops,
];
