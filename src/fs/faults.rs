//! Disk faults the layer injects on request: an errno (`EIO`, `ENOSPC`, `EDQUOT`,
//! `EROFS`) returned by one kind of operation on the paths a regex matches, with a
//! probability, for a while; and torn writes, which make a power cut keep a prefix of
//! the last unsynced write of each file they match, instead of none of it.

use std::time::{Duration, Instant};

use regex::Regex;
use serde::{Deserialize, Serialize};

/// The operations an errno fault can strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Write,
    Fsync,
    Open,
    Create,
    Rename,
}

/// The errors an errno fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Errno {
    EIO,
    ENOSPC,
    EDQUOT,
    EROFS,
}

impl Errno {
    pub fn code(self) -> i32 {
        match self {
            Errno::EIO => libc_errno::EIO,
            Errno::ENOSPC => libc_errno::ENOSPC,
            Errno::EDQUOT => libc_errno::EDQUOT,
            Errno::EROFS => libc_errno::EROFS,
        }
    }
}

/// Linux's numbers (nix's `Errno` would do, but these four are all we need as `i32`).
mod libc_errno {
    pub const EIO: i32 = nix::errno::Errno::EIO as i32;
    pub const ENOSPC: i32 = nix::errno::Errno::ENOSPC as i32;
    pub const EDQUOT: i32 = nix::errno::Errno::EDQUOT as i32;
    pub const EROFS: i32 = nix::errno::Errno::EROFS as i32;
}

/// A fault as `POST /faults` takes it: either `op` and `errno`, or `"torn": true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<Errno>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub torn: bool,
    /// A regex on the path as the mount shows it (`/out.worker1`); every path when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The chance each matching operation (or file, for torn writes) is struck; 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Seconds it lasts; until `DELETE /faults` when absent.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_s: Option<f64>,
}

/// What a fault does.
#[derive(Debug, Clone)]
enum Kind {
    Errno(Op, Errno),
    Torn,
}

/// One active fault.
#[derive(Debug, Clone)]
struct Rule {
    kind: Kind,
    path: Option<Regex>,
    probability: f64,
    until: Option<Instant>,
}

/// Every active fault, and the generator of their chances.
#[derive(Debug)]
pub struct Faults {
    rules: Vec<Rule>,
    rng: u64,
}

impl Faults {
    pub fn new(seed: u64) -> Faults {
        Faults {
            rules: Vec::new(),
            rng: seed | 1,
        }
    }

    /// Adds a fault; an error says what is wrong with the request.
    pub fn add(&mut self, req: &FaultRequest) -> Result<(), String> {
        let kind = match (req.op, req.errno, req.torn) {
            (Some(op), Some(errno), false) => Kind::Errno(op, errno),
            (None, None, true) => Kind::Torn,
            _ => return Err("a fault is either \"op\" and \"errno\", or \"torn\": true".into()),
        };
        let probability = req.probability.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&probability) {
            return Err(format!("probability {probability} is not within 0..=1"));
        }
        let until = match req.for_s {
            Some(s) if !(s.is_finite() && s > 0.0 && s < 1e9) => {
                return Err(format!("\"for\" {s} is not a positive number of seconds"))
            }
            Some(s) => Some(Instant::now() + Duration::from_secs_f64(s)),
            None => None,
        };
        let path = match &req.path {
            Some(p) => Some(Regex::new(p).map_err(|e| format!("path regex: {e}"))?),
            None => None,
        };
        self.rules.push(Rule {
            kind,
            path,
            probability,
            until,
        });
        Ok(())
    }

    /// Removes every fault.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// How many faults are active.
    pub fn active(&mut self) -> usize {
        self.expire();
        self.rules.len()
    }

    fn expire(&mut self) {
        let now = Instant::now();
        self.rules.retain(|r| r.until.is_none_or(|u| u > now));
    }

    /// A uniform draw in [0, 1) (xorshift64*).
    fn draw(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The errno `op` on `path` fails with now, if any.
    pub fn errno(&mut self, op: Op, path: &str) -> Option<i32> {
        if self.rules.is_empty() {
            return None;
        }
        self.expire();
        let hit = self.rules.iter().find_map(|r| match r.kind {
            Kind::Errno(o, e) if o == op && r.path.as_ref().is_none_or(|p| p.is_match(path)) => {
                Some((e, r.probability))
            }
            _ => None,
        })?;
        (self.draw() < hit.1).then(|| hit.0.code())
    }

    /// How much of a last unsynced write of `len` bytes to `path` a power cut keeps:
    /// None (all of it is lost) unless a torn-write fault strikes it.
    pub fn torn(&mut self, path: &str, len: usize) -> Option<usize> {
        self.expire();
        let p = self.rules.iter().find_map(|r| match r.kind {
            Kind::Torn if r.path.as_ref().is_none_or(|p| p.is_match(path)) => Some(r.probability),
            _ => None,
        })?;
        if len < 2 || self.draw() >= p {
            return None;
        }
        Some(1 + (self.draw() * (len - 1) as f64) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> FaultRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_errno_fault_strikes_only_its_operation_and_paths() {
        let mut f = Faults::new(7);
        f.add(&req(r#"{"op":"fsync","errno":"EIO","path":"worker1"}"#))
            .unwrap();
        assert_eq!(f.errno(Op::Fsync, "/out.worker1"), Some(5));
        assert_eq!(f.errno(Op::Write, "/out.worker1"), None);
        assert_eq!(f.errno(Op::Fsync, "/out.worker2"), None);
        f.clear();
        assert_eq!(f.errno(Op::Fsync, "/out.worker1"), None);
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let mut f = Faults::new(7);
        for bad in [
            r#"{"op":"fsync"}"#,
            r#"{"op":"fsync","errno":"EIO","torn":true}"#,
            r#"{"op":"fsync","errno":"EIO","probability":2}"#,
            r#"{"op":"fsync","errno":"EIO","for":-1}"#,
            r#"{"op":"fsync","errno":"EIO","path":"("}"#,
        ] {
            assert!(f.add(&req(bad)).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<FaultRequest>(r#"{"op":"fsync","errno":"EPERM"}"#).is_err());
    }

    #[test]
    fn a_torn_write_keeps_a_strict_nonempty_prefix() {
        let mut f = Faults::new(3);
        f.add(&req(r#"{"torn":true}"#)).unwrap();
        for _ in 0..100 {
            let keep = f.torn("/a", 10).unwrap();
            assert!((1..10).contains(&keep));
        }
        assert_eq!(f.torn("/a", 1), None);
    }
}
