//! The preset's cluster as the supervisor sees it: is it ready, is one component ready
//! (a worker's own status, the sink listening with live workers processing), shrink a
//! worker, and the evidence of progress for a component that is slow to be ready.

use super::*;

/// The presets' cluster, asked over the initializer's external channel.
pub(super) struct PresetCluster<'a> {
    pub(super) preset: &'a Preset,
    pub(super) probes: &'a BTreeMap<String, crate::driver::scenario::Probe>,
}

impl PresetCluster<'_> {
    /// Whether worker `n` answers that it is processing (connected to the sink and
    /// recovered), asked with room for a busy machine.
    pub(super) fn processing(&self, n: usize) -> bool {
        let answer = query_cluster_status(&self.preset.external_addr(n), READINESS_QUERY);
        matches!(answer, Ok(Some(s)) if s.processing_messages)
    }
}

/// How long one readiness query waits for its answer.
pub(super) const READINESS_QUERY: Duration = Duration::from_millis(500);

impl Cluster for PresetCluster<'_> {
    fn ready(&self, timeout: Duration) -> bool {
        let p = self.preset;
        let Ok(Some(status)) = query_cluster_status(&p.external_addr(0), timeout) else {
            return false;
        };
        status.processing_messages
            && status.worker_names.iter().all(|name| {
                let Some(n) = crate::topology::worker_number(name) else { return false };
                matches!(query_cluster_status(&p.external_addr(n), timeout), Ok(Some(s)) if s.processing_messages)
            })
    }

    fn component_ready(&self, c: &Component, live: &[usize]) -> bool {
        if let Some(probe) = self.probes.get(&c.name()) {
            return probe.ready(&|t| self.ready(t));
        }
        let p = self.preset;
        match c {
            Component::Worker(n) => self.processing(*n),
            Component::Sink => {
                let addr = format!("{}:{}", p.host(c), p.ports.out_port);
                crate::driver::readiness::listening(&addr) != Some(false)
                    && live.iter().all(|&n| self.processing(n))
            }
            Component::Sender(_) => true,
        }
    }

    fn shrink(&self, n: usize) -> bool {
        let request = ShrinkRequest {
            node_names: vec![worker_name(n)],
            ..Default::default()
        };
        let addr = self.preset.external_addr(0);
        let answer = (|| -> Result<Vec<u8>, crate::wire::WireError> {
            let mut s = std::net::TcpStream::connect(&addr)?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            crate::wire::external::write_message(
                &mut s,
                crate::wire::external::SHRINK_REQUEST,
                &serde_json::to_vec(&request).expect("serializes"),
            )?;
            Ok(crate::wire::external::read_message(&mut s)?.1)
        })();
        matches!(answer, Ok(text) if text.starts_with(b"Shrinking"))
    }

    /// Where it listens (the sink's port, a worker's external channel), its log, and
    /// the sink directory's txnlogs, as far as they can be seen from here.
    fn progress(&self, c: &Component) -> crate::driver::readiness::Progress {
        use crate::driver::readiness::{listening, size_of, txnlog_bytes};
        let p = self.preset;
        let addr = match c {
            Component::Sink => Some(format!("{}:{}", p.host(c), p.ports.out_port)),
            Component::Worker(n) => Some(p.external_addr(*n)),
            Component::Sender(_) => None,
        };
        let log = p.log_path(c);
        let own = size_of(&log).map(|n| (format!("its log {}", log.display()), n));
        // The sink is ready again when the workers are back on it: their reconnecting
        // is its progress too.
        let log = match c {
            Component::Sink => own.map(|(_, n)| {
                let workers: u64 = (0..crate::driver::preset::MAX_WORKERS)
                    .filter_map(|w| size_of(&p.log_path(&Component::Worker(w))))
                    .sum();
                (
                    "the logs of the sink and the workers".to_string(),
                    n + workers,
                )
            }),
            _ => own,
        };
        crate::driver::readiness::Progress {
            listening: addr.and_then(|a| listening(&a).map(|up| (a, up))),
            log,
            txnlog_bytes: txnlog_bytes(&p.run_dir.join(crate::formats::sinkdir::SINK_OUT)),
        }
    }
}
