//! The fault-family trait, and the timers each family owns.
//!
//! A family's timers are its own type ([`FaultFamily::Timer`]: `CrashTimer`, `NetTimer`,
//! ...), declared in its module. The supervisor's heap holds them boxed in
//! [`Due::Family`], next to its own timers (readiness, the run's end, the status line),
//! and hands each to the one family whose type it is. So a new family adds its timers
//! without touching the supervisor's `Due`.

use std::any::{Any, TypeId};
use std::fmt::Debug;

use super::{DriverError, Due, RunFailure, Supervisor};
use crate::rundir::step::Step;

/// One family of faults: what it schedules when the soak begins, and how it fires its
/// own timers (the fault and its heal, with their characters and events).
pub(super) trait FaultFamily: Sync {
    /// Its timers: a type of its own, which no other family uses.
    type Timer: Clone + Debug + PartialEq + Send + 'static;

    /// Schedules its loops' first timers, as the scenario asks (none when it does not).
    fn begin(&self, sup: &mut Supervisor<'_>);

    /// Gets ready before the cluster starts (a family that needs nothing says `Ok`).
    fn prepare(&self, sup: &mut Supervisor<'_>) -> Result<(), DriverError>;

    /// Fires one of its timers.
    fn fire(&self, sup: &mut Supervisor<'_>, timer: Self::Timer) -> Result<(), RunFailure>;

    /// Carries out a scripted or replayed step when its action is one of this family's
    /// (None when it is not).
    fn step(&self, sup: &mut Supervisor<'_>, step: &Step) -> Option<Result<(), RunFailure>>;
}

/// A [`FaultFamily`] whatever its timer type: what the registry lists.
pub(super) trait AnyFamily: Sync {
    fn prepare(&self, sup: &mut Supervisor<'_>) -> Result<(), DriverError>;
    fn begin(&self, sup: &mut Supervisor<'_>);
    /// Fires `timer` when it is this family's (None when it is not).
    fn try_fire(
        &self,
        sup: &mut Supervisor<'_>,
        timer: &FamilyTimer,
    ) -> Option<Result<(), RunFailure>>;
    fn timer_type(&self) -> TypeId;
    fn step(&self, sup: &mut Supervisor<'_>, step: &Step) -> Option<Result<(), RunFailure>>;
}

impl<F: FaultFamily> AnyFamily for F {
    fn prepare(&self, sup: &mut Supervisor<'_>) -> Result<(), DriverError> {
        FaultFamily::prepare(self, sup)
    }

    fn begin(&self, sup: &mut Supervisor<'_>) {
        FaultFamily::begin(self, sup);
    }

    fn try_fire(
        &self,
        sup: &mut Supervisor<'_>,
        timer: &FamilyTimer,
    ) -> Option<Result<(), RunFailure>> {
        let mine = timer.0.as_any().downcast_ref::<F::Timer>()?.clone();
        Some(self.fire(sup, mine))
    }

    fn timer_type(&self) -> TypeId {
        TypeId::of::<F::Timer>()
    }

    fn step(&self, sup: &mut Supervisor<'_>, step: &Step) -> Option<Result<(), RunFailure>> {
        FaultFamily::step(self, sup, step)
    }
}

/// A family's timer, boxed: compared, cloned and printed as its own type.
pub struct FamilyTimer(Box<dyn TimerValue>);

impl FamilyTimer {
    pub(super) fn new<T: Clone + Debug + PartialEq + Send + 'static>(timer: T) -> FamilyTimer {
        FamilyTimer(Box::new(timer))
    }

    /// Whether the timer inside is a `T` for which `pred` holds.
    pub(super) fn is<T: 'static>(&self, pred: impl Fn(&T) -> bool) -> bool {
        self.0.as_any().downcast_ref::<T>().is_some_and(pred)
    }

    /// The type of the timer inside (its family's [`FaultFamily::Timer`]).
    pub(super) fn timer_type(&self) -> TypeId {
        self.0.as_any().type_id()
    }
}

impl Due {
    /// A family's timer as a `Due`.
    pub(super) fn of<T: Clone + Debug + PartialEq + Send + 'static>(timer: T) -> Due {
        Due::Family(FamilyTimer::new(timer))
    }
}

trait TimerValue: Debug + Send {
    fn as_any(&self) -> &dyn Any;
    fn clone_box(&self) -> Box<dyn TimerValue>;
    fn equals(&self, other: &dyn TimerValue) -> bool;
}

impl<T: Clone + Debug + PartialEq + Send + 'static> TimerValue for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn TimerValue> {
        Box::new(self.clone())
    }
    fn equals(&self, other: &dyn TimerValue) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }
}

impl Clone for FamilyTimer {
    fn clone(&self) -> Self {
        FamilyTimer(self.0.clone_box())
    }
}

impl PartialEq for FamilyTimer {
    fn eq(&self, other: &Self) -> bool {
        self.0.equals(other.0.as_ref())
    }
}

impl Debug for FamilyTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
