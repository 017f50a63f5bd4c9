//! Waits for readiness: after the start and after each restart, a component must be
//! ready; when it is not within its timeout it is judged on evidence (see
//! [`crate::driver::readiness`]).

use super::*;

impl<'a> Supervisor<'a> {
    pub(super) fn startup_check(&mut self, deadline: Instant) -> Result<(), RunFailure> {
        if let Some(Ending::Found) = self.reap()? {
            return Ok(());
        }
        let now = self.now();
        if self.cluster.ready(Duration::from_millis(500)) {
            self.begin_soak()?;
        } else if now > deadline {
            return self.startup_judgment(now);
        } else {
            self.schedule(Duration::from_millis(100), Due::StartupCheck(deadline));
        }
        Ok(())
    }

    /// The cluster is not ready at its start's deadline: slow (its logs grow) is given
    /// another `readiness_timeout`, up to `readiness_limit`; no progress is a setup
    /// failure that says what was seen.
    pub(super) fn startup_judgment(&mut self, now: Instant) -> Result<(), RunFailure> {
        let seen = self.cluster_progress();
        let waiting = self.startup.clone().unwrap_or(Waiting {
            id: 0,
            since: self.started,
            seen: seen.clone(),
            seen_at: now,
            deadline: now,
        });
        let alive = self
            .driver
            .started()
            .iter()
            .all(|c| self.driver.is_alive(c));
        match judge(
            "the cluster",
            &waiting,
            alive,
            &seen,
            now,
            self.readiness_limits(),
        ) {
            Judgment::Slow(grew) => {
                let limit = self.plan.timings.readiness_limit;
                let _ = writeln!(
                    self.out,
                    "the cluster is slow to be ready, not stuck ({grew}): waiting, up to {limit:.0} s after its start"
                );
                let next = now + secs(self.plan.timings.readiness_timeout);
                self.startup = Some(Waiting {
                    seen,
                    seen_at: now,
                    deadline: next,
                    ..waiting
                });
                self.schedule(Duration::from_millis(100), Due::StartupCheck(next));
                Ok(())
            }
            Judgment::Stuck(evidence) => Err(RunFailure::Setup(format!(
                "the cluster was not ready within {:.0} s ({evidence}); logs are in {}",
                now.saturating_duration_since(waiting.since).as_secs_f64(),
                self.preset.run_dir.display()
            ))),
        }
    }

    /// What can be seen of the whole cluster: the sink's and the workers' logs summed,
    /// and the sink's txnlogs.
    pub(super) fn cluster_progress(&self) -> Progress {
        let mut parts = vec![self.cluster.progress(&Component::Sink)];
        parts.extend(
            (0..self.plan.scenario.workers).map(|n| self.cluster.progress(&Component::Worker(n))),
        );
        let logs: Option<u64> = parts.iter().map(|p| p.log.as_ref().map(|(_, n)| *n)).sum();
        Progress {
            listening: None,
            log: logs.map(|n| ("the logs of the sink and the workers".to_string(), n)),
            txnlog_bytes: parts[0].txnlog_bytes,
        }
    }

    pub(super) fn ready_check(&mut self, c: Component, wait: u64) -> Option<Ending> {
        let Some(waiting) = self.waiting.get(&c).filter(|w| w.id == wait).cloned() else {
            // Its wait ended: it was crashed, paused or shrunk on purpose since.
            return None;
        };
        if self.cluster.component_ready(&c, &self.live_workers()) {
            self.waiting.remove(&c);
            return None;
        }
        let now = self.now();
        if now <= waiting.deadline {
            self.schedule(Duration::from_millis(200), Due::ReadyCheck(c, wait));
            return None;
        }
        let seen = self.cluster.progress(&c);
        let alive = self.driver.is_alive(&c);
        match judge(
            &c.name(),
            &waiting,
            alive,
            &seen,
            now,
            self.readiness_limits(),
        ) {
            Judgment::Slow(grew) => {
                let limit = self.plan.timings.readiness_limit;
                let _ = writeln!(
                    self.out,
                    "\n{} is slow to be ready, not stuck ({grew}): waiting, up to {limit:.0} s after its restart",
                    c.name()
                );
                let deadline = now + secs(self.plan.timings.readiness_timeout);
                self.waiting.insert(
                    c.clone(),
                    Waiting {
                        seen,
                        seen_at: now,
                        deadline,
                        ..waiting
                    },
                );
                self.schedule(Duration::from_millis(200), Due::ReadyCheck(c, wait));
                None
            }
            Judgment::Stuck(detail) => {
                self.waiting.remove(&c);
                self.found(Finding {
                    kind: FindingKind::Stalled,
                    key: None,
                    detail,
                    elapsed_s: self.elapsed_s(),
                })
            }
        }
    }

    /// A component goes down on purpose (a crash, a pause, a shrink): it is not waited
    /// for any more, so neither its own next crash nor the others' can be taken for a
    /// failure to come back.
    pub(super) fn take_down(&mut self, c: &Component) {
        self.down.insert(c.clone(), self.now());
        self.waiting.remove(c);
    }

    /// The members that are not down on purpose (crashed, paused or shrunk).
    pub(super) fn live_workers(&self) -> Vec<usize> {
        self.members
            .iter()
            .copied()
            .filter(|&n| !self.down.contains_key(&Component::Worker(n)))
            .collect()
    }

    pub(super) fn readiness_limits(&self) -> Limits {
        let t = &self.plan.timings;
        Limits {
            limit: secs(t.readiness_limit.max(t.readiness_timeout)),
        }
    }

    pub(super) fn must_be_ready(&mut self, c: Component) {
        let now = self.now();
        self.seq += 1;
        let id = self.seq;
        let waiting = Waiting {
            id,
            since: now,
            seen: self.cluster.progress(&c),
            seen_at: now,
            deadline: now + secs(self.plan.timings.readiness_timeout),
        };
        self.waiting.insert(c.clone(), waiting);
        self.schedule(Duration::from_millis(200), Due::ReadyCheck(c, id));
    }
}
