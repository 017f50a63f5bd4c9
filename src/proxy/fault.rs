//! The faults a link can have, per direction, and how a request names them.
//!
//! A [`Faults`] value is the whole state of one direction of one link; the proxy's
//! pumps read it from a `tokio::sync::watch` channel, so a change reaches every open
//! connection at once. `reset` is not a state but an act (every connection of the link
//! is closed with an RST), followed by a state: new connections are refused until a
//! deadline.

use std::time::{Duration, Instant};

/// One direction of a link: `up` is from the connecting side (a sender, a worker) to
/// the listening side (a worker, the sink, the initializer); `down` is the replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Up,
    Down,
}

/// Which directions a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Directions {
    #[default]
    Both,
    Up,
    Down,
}

impl Directions {
    pub fn includes(self, d: Direction) -> bool {
        match self {
            Directions::Both => true,
            Directions::Up => d == Direction::Up,
            Directions::Down => d == Direction::Down,
        }
    }
}

/// The state of one direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// A blackhole: connections stay open, nothing is forwarded (bytes wait, as TCP
    /// retransmits them, and arrive after the heal).
    pub partition: bool,
    /// Every byte is forwarded this long after it was read, give or take the jitter
    /// (never earlier than the byte before it).
    pub delay: Option<Delay>,
    /// At most this many bytes a second.
    pub bandwidth: Option<u64>,
    /// Forward in small random pieces (1 to [`SLICE_MAX`] bytes), each its own write.
    pub slice: bool,
    /// New connections are refused (accepted and reset) until then.
    pub refuse_until: Option<Instant>,
}

impl Faults {
    /// True when nothing is in the way: the pumps take their fast path.
    pub fn is_clear(&self) -> bool {
        !self.partition && self.delay.is_none() && self.bandwidth.is_none() && !self.slice
    }
}

/// The largest piece `slice` forwards.
pub const SLICE_MAX: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delay {
    pub ms: u64,
    #[serde(default)]
    pub jitter_ms: u64,
}

/// A fault to apply to a link (in the directions of its request).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    Partition,
    /// RST every connection now; refuse new ones for `refuse_ms`.
    Reset {
        #[serde(default)]
        refuse_ms: u64,
    },
    Delay(Delay),
    Bandwidth {
        bytes_per_s: u64,
    },
    Slice,
    /// Every fault of the directions cleared.
    Heal,
}

/// The longest delay, jitter or refusal a fault may ask for (one hour): a longer one is
/// a partition, and asked for as one; past it, a clock reading plus the delay would
/// overflow and the fault would be shown as active while bytes passed at once.
pub const MAX_FAULT_MS: u64 = 3_600_000;

impl Fault {
    /// Refuses a fault that cannot take effect as asked: a delay, jitter or refusal over
    /// [`MAX_FAULT_MS`], or a bandwidth of 0 bytes a second.
    pub fn check(&self) -> Result<(), String> {
        let within = |what: &str, ms: u64| {
            if ms <= MAX_FAULT_MS {
                Ok(())
            } else {
                Err(format!(
                    "{what} {ms} ms: at most {MAX_FAULT_MS} ms (one hour); a longer one is a partition"
                ))
            }
        };
        match *self {
            Fault::Delay(d) => {
                within("delay", d.ms)?;
                within("jitter", d.jitter_ms)
            }
            Fault::Reset { refuse_ms } => within("refuse", refuse_ms),
            Fault::Bandwidth { bytes_per_s: 0 } => {
                Err("bandwidth 0 bytes a second: at least 1 (a link that passes nothing is a partition)".into())
            }
            _ => Ok(()),
        }
    }

    /// `faults` with this fault applied (reset's connections are the proxy's business).
    pub fn apply(&self, faults: Faults, now: Instant) -> Faults {
        match *self {
            Fault::Partition => Faults {
                partition: true,
                ..faults
            },
            Fault::Reset { refuse_ms } => Faults {
                refuse_until: Some(now + Duration::from_millis(refuse_ms)),
                ..faults
            },
            Fault::Delay(d) => Faults {
                delay: Some(d),
                ..faults
            },
            Fault::Bandwidth { bytes_per_s } => Faults {
                bandwidth: Some(bytes_per_s.max(1)),
                ..faults
            },
            Fault::Slice => Faults {
                slice: true,
                ..faults
            },
            Fault::Heal => Faults::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heal_clears_everything_and_faults_combine() {
        let now = Instant::now();
        let f = Fault::Slice.apply(Fault::Partition.apply(Faults::default(), now), now);
        assert!(f.partition && f.slice && !f.is_clear());
        assert_eq!(Fault::Heal.apply(f, now), Faults::default());
        let json = serde_json::to_string(&Fault::Delay(Delay {
            ms: 5,
            jitter_ms: 0,
        }))
        .unwrap();
        assert_eq!(json, r#"{"delay":{"ms":5,"jitter_ms":0}}"#);
        assert_eq!(
            serde_json::from_str::<Fault>(r#""partition""#).unwrap(),
            Fault::Partition
        );
    }
}
