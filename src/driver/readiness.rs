//! Telling a slow component from a stuck one. A component restarted by a crash loop
//! must be ready again (poll-all-ready) within `readiness_timeout`; on a busy machine a
//! healthy one can take longer, and a finding stops a night's work. So when that time
//! has passed, the supervisor looks for evidence before it judges: whether the process
//! still runs, whether something accepts a connection where it listens, whether its log
//! grew, and whether commits landed in the sink directory since it last looked.
//!
//! - Any sign of progress (its log grew, or commits landed) means slow: it is given
//!   another `readiness_timeout`, up to `readiness_limit` after its restart.
//! - No sign of progress for a whole `readiness_timeout`, a process that is gone, or the
//!   limit reached, is a finding, and the finding says what was seen.

use std::time::{Duration, Instant};

/// What can be seen of a component from the control machine. `None` is "cannot be
/// seen from here" (a log on another host without a shared file system).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Where it listens, and whether a connection there was accepted.
    pub listening: Option<(String, bool)>,
    /// Its logs, named for a person (`its log /tmp/wallaroo.1`), and their size.
    pub log: Option<(String, u64)>,
    /// The size of the sink directory's txnlogs (they grow with every commit).
    pub txnlog_bytes: Option<u64>,
}

impl Progress {
    /// What grew since `before`, for a person: empty when nothing did.
    fn grew_since(&self, before: &Progress) -> Vec<String> {
        let mut grew = Vec::new();
        if let (Some((path, now)), Some((_, then))) = (&self.log, &before.log) {
            if now > then {
                grew.push(format!("{path} grew by {} bytes", now - then));
            }
        }
        if let (Some(now), Some(then)) = (self.txnlog_bytes, before.txnlog_bytes) {
            if now > then {
                grew.push(format!("the sink's txnlogs grew by {} bytes", now - then));
            }
        }
        grew
    }
}

/// A component waiting to be ready again.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// Which wait this is (a component crashed on purpose and restarted waits anew).
    pub id: u64,
    /// When it was restarted.
    pub since: Instant,
    /// When it is judged next.
    pub deadline: Instant,
    /// What was seen at the last look, and when.
    pub seen: Progress,
    pub seen_at: Instant,
}

/// The judgment when a component is still not ready at its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgment {
    /// Progressing: wait another `readiness_timeout`; the text says what grew.
    Slow(String),
    /// A finding, with the evidence.
    Stuck(String),
}

/// The limit a judgment rests on (the scenario's `timings.readiness_limit`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub limit: Duration,
}

/// Judges a component not ready at its deadline: `alive` is whether its process runs,
/// `now` what is seen of it at `at`.
pub fn judge(
    name: &str,
    w: &Waiting,
    alive: bool,
    now: &Progress,
    at: Instant,
    limits: Limits,
) -> Judgment {
    let after = at.saturating_duration_since(w.since).as_secs_f64();
    let quiet = at.saturating_duration_since(w.seen_at).as_secs_f64();
    let lead = format!("{name} was not ready {after:.0} s after it was restarted");
    if !alive {
        return Judgment::Stuck(format!("{lead}: its process is gone"));
    }
    let grew = now.grew_since(&w.seen);
    let listening = match &now.listening {
        Some((addr, true)) => format!("it runs and listens at {addr}"),
        Some((addr, false)) => format!("it runs, but nothing listens at {addr}"),
        None => "it runs".to_string(),
    };
    if at.saturating_duration_since(w.since) >= limits.limit {
        let progress = if grew.is_empty() {
            "no progress since the last look".to_string()
        } else {
            grew.join(", ")
        };
        return Judgment::Stuck(format!(
            "{lead}, the limit (timings.readiness_limit = {:.0} s): {listening}; {progress}",
            limits.limit.as_secs_f64()
        ));
    }
    if !grew.is_empty() {
        return Judgment::Slow(grew.join(", "));
    }
    let mut silent = Vec::new();
    if let Some((path, _)) = &now.log {
        silent.push(format!("nothing was written to {path} for {quiet:.0} s"));
    }
    if now.txnlog_bytes.is_some() {
        silent.push(format!("no commit has landed for {quiet:.0} s"));
    }
    if silent.is_empty() {
        silent.push("no log or commit of it can be seen from here".to_string());
    }
    Judgment::Stuck(format!(
        "{lead} and shows no progress: {listening}; {}",
        silent.join(", ")
    ))
}

/// Whether a socket listens at `addr` (IPv4), read from the kernel's table
/// (`/proc/net/tcp`) rather than by connecting: a probe connection would be logged by a
/// sink (`Incoming connection from ...`), and its log would seem to grow. None when the
/// address is not one of this machine's (a listener there cannot be seen from here).
pub fn listening(addr: &str) -> Option<bool> {
    use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
    let at = addr.to_socket_addrs().ok()?.next()?;
    let IpAddr::V4(ip) = at.ip() else {
        return None;
    };
    let local = ip.is_loopback() || std::net::TcpListener::bind((ip, 0)).is_ok();
    if !local {
        return None;
    }
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let listens = table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(&"0A")) = (fields.get(1), fields.get(3)) else {
            return false;
        };
        let Some((ip_hex, port_hex)) = local.split_once(':') else {
            return false;
        };
        let port = u16::from_str_radix(port_hex, 16).ok();
        let bound = u32::from_str_radix(ip_hex, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.to_le_bytes()));
        port == Some(at.port()) && bound.is_some_and(|b| b == ip || b.is_unspecified())
    });
    Some(listens)
}

/// A file's size, when it can be read from here.
pub fn size_of(path: &std::path::Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// The summed size of a sink directory's txnlogs, when it can be read from here.
pub fn txnlog_bytes(sink_dir: &std::path::Path) -> Option<u64> {
    let entries = std::fs::read_dir(sink_dir).ok()?;
    Some(
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".txnlog"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(log: u64, txnlogs: u64) -> Progress {
        Progress {
            listening: Some(("127.0.0.1:7200".into(), true)),
            log: Some(("its log /r/sink-out/stdout-stderr".into(), log)),
            txnlog_bytes: Some(txnlogs),
        }
    }

    const LIMITS: Limits = Limits {
        limit: Duration::from_secs(300),
    };

    fn waiting(t0: Instant, p: Progress) -> Waiting {
        Waiting {
            id: 1,
            since: t0,
            deadline: t0 + Duration::from_secs(15),
            seen: p,
            seen_at: t0,
        }
    }

    /// A listener is seen in the kernel's table, by address and port, without a
    /// connection made to it.
    #[test]
    fn a_listener_is_seen_without_connecting() {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        assert_eq!(listening(&addr), Some(true));
        drop(l);
        assert_eq!(listening(&addr), Some(false));
        assert_eq!(
            listening("192.0.2.1:7200"),
            None,
            "not an address of this machine"
        );
    }

    #[test]
    fn a_component_whose_log_or_commits_grow_is_slow_not_stuck() {
        let t0 = Instant::now();
        let w = waiting(t0, seen(100, 5000));
        let at = t0 + Duration::from_secs(15);
        let log = judge("sink", &w, true, &seen(400, 5000), at, LIMITS);
        assert_eq!(
            log,
            Judgment::Slow("its log /r/sink-out/stdout-stderr grew by 300 bytes".into())
        );
        let commits = judge("sink", &w, true, &seen(100, 9000), at, LIMITS);
        assert!(matches!(commits, Judgment::Slow(t) if t.contains("txnlogs grew by 4000")));
    }

    #[test]
    fn no_progress_a_gone_process_or_the_limit_is_a_finding_with_its_evidence() {
        let t0 = Instant::now();
        let w = waiting(t0, seen(100, 5000));
        let at = t0 + Duration::from_secs(15);
        let Judgment::Stuck(silent) = judge("sink", &w, true, &seen(100, 5000), at, LIMITS) else {
            panic!("stuck")
        };
        assert_eq!(
            silent,
            "sink was not ready 15 s after it was restarted and shows no progress: it runs and \
             listens at 127.0.0.1:7200; nothing was written to its log /r/sink-out/stdout-stderr \
             for 15 s, no commit has landed for 15 s"
        );
        let gone = judge("worker1", &w, false, &seen(900, 9000), at, LIMITS);
        assert_eq!(
            gone,
            Judgment::Stuck(
                "worker1 was not ready 15 s after it was restarted: its process is gone".into()
            )
        );
        let late = t0 + Duration::from_secs(300);
        let Judgment::Stuck(limit) = judge("sink", &w, true, &seen(900, 5000), late, LIMITS) else {
            panic!("stuck at the limit")
        };
        assert!(
            limit.contains("readiness_limit = 300 s") && limit.contains("grew by 800"),
            "{limit}"
        );
    }
}
