//! Network faults: a loop per `net-*` argument strikes a random link of its scope
//! through the fault proxy and heals it; scripted network steps heal after their `for`.

use super::*;

impl<'a> Supervisor<'a> {
    pub(super) fn network(&self) -> Result<&'a dyn Network, RunFailure> {
        self.network.ok_or_else(|| {
            RunFailure::Setup(
                "a network fault needs the fault proxy, which this run does not have".into(),
            )
        })
    }

    /// A network loop: a random fault on a random link of its scope, healed after
    /// U(0.1, net_down_max) s; `p` and the link's mark off a terminal.
    pub(super) fn net_fault(&mut self, scope: NetScope) -> Result<(), RunFailure> {
        use crate::proxy::{Delay, Fault};
        let network = self.network()?;
        // Links of the cluster as it is: a worker slot not in it has no traffic.
        let member = |link: &str| match Component::parse(crate::rundir::step::link_client(link)) {
            Some(Component::Worker(n)) => self.members.contains(&n),
            _ => true,
        };
        let links: Vec<String> = network
            .links()
            .into_iter()
            .filter(|l| scope.covers(l) && member(l))
            .collect();
        if links.is_empty() {
            return Ok(());
        }
        // `range` is inclusive at both ends.
        let link = links[self.rng.range(0, links.len() as u64 - 1) as usize].clone();
        let fault = match self.rng.range(0, 9) {
            0..=3 => Fault::Partition,
            4..=5 => Fault::Reset { refuse_ms: 500 },
            6..=7 => {
                let ms = self.rng.range(20, 300);
                Fault::Delay(Delay {
                    ms,
                    jitter_ms: ms / 5,
                })
            }
            _ => Fault::Bandwidth {
                bytes_per_s: self.rng.range(16_384, 262_144),
            },
        };
        network.apply(&link, fault).map_err(RunFailure::Setup)?;
        self.net_event(&fault, &link);
        self.say(&format!("n{}", NetScope::mark(&link)));
        let down = secs(0.1) + self.uniform(self.plan.timings.net_down_max);
        self.schedule(down, Due::of(NetTimer::Heal(link, Some(scope))));
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
        let mark = if heal { 'h' } else { 'n' };
        self.say(&format!("{mark}{}", NetScope::mark(&net.link)));
        if let Some(s) = net.for_s.filter(|_| !heal) {
            self.schedule(secs(s), Due::of(NetTimer::Heal(net.link.clone(), None)));
        }
        Ok(())
    }

    /// Heals `link`; a loop's next fault is U(0, net_up_max) s later.
    pub(super) fn net_heal(
        &mut self,
        link: &str,
        scope: Option<NetScope>,
    ) -> Result<(), RunFailure> {
        let network = self.network()?;
        network
            .apply(link, crate::proxy::Fault::Heal)
            .map_err(RunFailure::Setup)?;
        self.net_event(&crate::proxy::Fault::Heal, link);
        self.say(&format!("h{}", NetScope::mark(link)));
        if let Some(scope) = scope {
            let up = self.uniform(self.plan.timings.net_up_max);
            self.schedule(up, Due::of(NetTimer::Fault(scope)));
        }
        Ok(())
    }
}

/// The network loops' timers (and a scripted network fault's heal).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum NetTimer {
    /// A loop strikes one of its links.
    Fault(NetScope),
    /// A link's fault is over; a loop's next fault follows.
    Heal(String, Option<NetScope>),
}

/// `net-sink`, `net-source`, `net-control`: a loop per scope strikes a random link of it
/// and heals it.
pub(super) struct NetworkLoops;

impl super::family::FaultFamily for NetworkLoops {
    type Timer = NetTimer;

    fn prepare(&self, _: &mut Supervisor<'_>) -> Result<(), DriverError> {
        Ok(())
    }

    fn begin(&self, sup: &mut Supervisor<'_>) {
        let t = sup.plan.timings.clone();
        for scope in sup.plan.scenario.net.clone() {
            let d = secs(t.start_delay) + sup.uniform(t.net_up_max);
            sup.schedule(d, Due::of(NetTimer::Fault(scope)));
        }
    }

    fn fire(&self, sup: &mut Supervisor<'_>, timer: NetTimer) -> Result<(), RunFailure> {
        match timer {
            NetTimer::Fault(scope) => sup.net_fault(scope),
            NetTimer::Heal(link, scope) => sup.net_heal(&link, scope),
        }
    }

    /// A scripted network fault of a link, healed after its `for` when it says.
    fn step(&self, sup: &mut Supervisor<'_>, step: &Step) -> Option<Result<(), RunFailure>> {
        let fault = step.fault()?;
        let net = step.act.net()?;
        Some(sup.scripted_network(fault, net))
    }
}
