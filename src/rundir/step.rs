//! A step: one fault or action at a time after the soak began. Scripted steps (a
//! scenario's `[[steps]]`, `run_customN`), replayed steps (`--replay`) and the lines of
//! events.jsonl are all this one type, so a run's timeline reads back as the steps that
//! repeat it.
//!
//! A step is its time and an [`Act`], a tagged enum with one variant per action, each
//! with only the fields its action has. In JSON and TOML the tag is `action`, beside
//! `at` and the variant's fields:
//!
//! ```text
//! {"at":3.0,"action":"crash","component":"sink"}
//! {"at":5.2,"action":"delay","component":"worker1","link":"worker1->sink","ms":120,"jitter_ms":24}
//! ```
//!
//! which is byte for byte what earlier versions wrote, so their files still replay.

use crate::proxy::{Delay, Fault};

/// A fault or action at `at` seconds after the soak began.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Step {
    pub at: f64,
    #[serde(flatten)]
    pub act: Act,
}

/// What a step does: one variant per action.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Act {
    Crash(Target),
    Restart(Target),
    Pause(Target),
    Resume(Target),
    Grow(Target),
    Shrink(Target),
    /// Network faults of a link, through the fault proxy.
    Partition(Net),
    Reset {
        #[serde(flatten)]
        net: Net,
        /// How long new connections are refused, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refuse_ms: Option<u64>,
    },
    Delay {
        #[serde(flatten)]
        net: Net,
        /// Milliseconds, and the jitter either side.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jitter_ms: Option<u64>,
    },
    Bandwidth {
        #[serde(flatten)]
        net: Net,
        /// Bytes a second.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes_per_s: Option<u64>,
    },
    Slice(Net),
    Heal(Net),
    /// A component's clock (through libfaketime) set `by` seconds off true time, back
    /// to true time after `for` seconds when it says.
    ClockStep(ClockStep),
    /// A component's clock flips between true time and `by` seconds off every `period`
    /// seconds, for `for` seconds, then is true again.
    ClockStrobe(ClockStrobe),
    /// A component's clock runs `rate` times as fast (from where it is now), back to
    /// true time after `for` seconds when it says.
    ClockRate(ClockRate),
    /// A component's clock is true time again.
    ClockHeal(Target),
    /// A power cut of a component: killed, what it wrote and never fsynced lost (through
    /// its `soakcheck fs` layer), restarted.
    PowerLoss(PowerCut),
    /// An errno on one kind of operation on a component's files, for `for` seconds.
    DiskError(DiskError),
    /// A component's disk errors end.
    DiskHeal(Target),
}

/// A power cut, and (in the events of a run) what it took back.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize, serde::Serialize)]
pub struct PowerCut {
    #[serde(default = "sink")]
    pub component: String,
    /// Bytes written or cut and never fsynced, taken back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_bytes: Option<u64>,
    /// Files those bytes were in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_files: Option<u64>,
    /// Entry operations (create, rename, unlink) undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_entries: Option<u64>,
    /// The directory (on the component's host) that keeps the bytes it took back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct DiskError {
    #[serde(default = "sink")]
    pub component: String,
    pub op: crate::fs::faults::Op,
    pub errno: crate::fs::faults::Errno,
    /// A regex on the path in the component's directory (`/output.worker1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_s: Option<f64>,
}

/// The component of a clock step: the sink when the step leaves it out.
fn sink() -> String {
    "sink".into()
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct ClockStep {
    #[serde(default = "sink")]
    pub component: String,
    /// Seconds off true time (negative: behind).
    pub by: f64,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct ClockStrobe {
    #[serde(default = "sink")]
    pub component: String,
    /// Seconds off true time in the off half of each period (default: 1 s behind).
    #[serde(default = "one_second_back")]
    pub by: f64,
    pub period: f64,
    #[serde(rename = "for")]
    pub for_s: f64,
}

fn one_second_back() -> f64 {
    -1.0
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct ClockRate {
    #[serde(default = "sink")]
    pub component: String,
    pub rate: f64,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_s: Option<f64>,
}

/// The component a process step acts on: `sink`, `initializer`, `workerN`, `sender-K`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub struct Target {
    #[serde(default)]
    pub component: String,
}

/// The link a network step strikes (`worker1->sink`, `sender-A->worker1`,
/// `worker2->initializer`), and how long before its heal. Its component is the link's
/// connecting side (a scenario file may leave it out).
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize, serde::Serialize)]
pub struct Net {
    #[serde(default)]
    pub component: String,
    #[serde(default)]
    pub link: String,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_s: Option<f64>,
}

/// The kind of a step, without its fields: what the report counts and colours.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Crash,
    Restart,
    Pause,
    Resume,
    Grow,
    Shrink,
    Partition,
    Reset,
    Delay,
    Bandwidth,
    Slice,
    Heal,
    ClockStep,
    ClockStrobe,
    ClockRate,
    ClockHeal,
    PowerLoss,
    DiskError,
    DiskHeal,
}

impl Action {
    /// The name in events.jsonl and the fault counts.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Crash => "crash",
            Action::Restart => "restart",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Grow => "grow",
            Action::Shrink => "shrink",
            Action::Partition => "partition",
            Action::Reset => "reset",
            Action::Delay => "delay",
            Action::Bandwidth => "bandwidth",
            Action::Slice => "slice",
            Action::Heal => "heal",
            Action::ClockStep => "clock-step",
            Action::ClockStrobe => "clock-strobe",
            Action::ClockRate => "clock-rate",
            Action::ClockHeal => "clock-heal",
            Action::PowerLoss => "power-loss",
            Action::DiskError => "disk-error",
            Action::DiskHeal => "disk-heal",
        }
    }

    /// A fault of a component's clock.
    pub fn is_clock(self) -> bool {
        matches!(
            self,
            Action::ClockStep | Action::ClockStrobe | Action::ClockRate | Action::ClockHeal
        )
    }

    /// A fault of a component's disk (a power cut, an errno) or its heal.
    pub fn is_disk(self) -> bool {
        matches!(
            self,
            Action::PowerLoss | Action::DiskError | Action::DiskHeal
        )
    }

    /// A fault of a link rather than of a process.
    pub fn is_network(self) -> bool {
        matches!(
            self,
            Action::Partition
                | Action::Reset
                | Action::Delay
                | Action::Bandwidth
                | Action::Slice
                | Action::Heal
        )
    }

    /// A fault (counted, and followed by a recovery), not a restart, resume or heal.
    pub fn is_fault(self) -> bool {
        !matches!(
            self,
            Action::Restart | Action::Resume | Action::Heal | Action::ClockHeal | Action::DiskHeal
        )
    }
}

impl Act {
    /// Its kind.
    pub fn action(&self) -> Action {
        match self {
            Act::Crash(_) => Action::Crash,
            Act::Restart(_) => Action::Restart,
            Act::Pause(_) => Action::Pause,
            Act::Resume(_) => Action::Resume,
            Act::Grow(_) => Action::Grow,
            Act::Shrink(_) => Action::Shrink,
            Act::Partition(_) => Action::Partition,
            Act::Reset { .. } => Action::Reset,
            Act::Delay { .. } => Action::Delay,
            Act::Bandwidth { .. } => Action::Bandwidth,
            Act::Slice(_) => Action::Slice,
            Act::Heal(_) => Action::Heal,
            Act::ClockStep(_) => Action::ClockStep,
            Act::ClockStrobe(_) => Action::ClockStrobe,
            Act::ClockRate(_) => Action::ClockRate,
            Act::ClockHeal(_) => Action::ClockHeal,
            Act::PowerLoss(_) => Action::PowerLoss,
            Act::DiskError(_) => Action::DiskError,
            Act::DiskHeal(_) => Action::DiskHeal,
        }
    }

    /// The link and timing of a network step.
    pub fn net(&self) -> Option<&Net> {
        match self {
            Act::Partition(net) | Act::Slice(net) | Act::Heal(net) => Some(net),
            Act::Reset { net, .. } | Act::Delay { net, .. } | Act::Bandwidth { net, .. } => {
                Some(net)
            }
            _ => None,
        }
    }

    fn net_mut(&mut self) -> Option<&mut Net> {
        match self {
            Act::Partition(net) | Act::Slice(net) | Act::Heal(net) => Some(net),
            Act::Reset { net, .. } | Act::Delay { net, .. } | Act::Bandwidth { net, .. } => {
                Some(net)
            }
            _ => None,
        }
    }

    fn target(&self) -> Option<&Target> {
        match self {
            Act::Crash(t)
            | Act::Restart(t)
            | Act::Pause(t)
            | Act::Resume(t)
            | Act::Grow(t)
            | Act::Shrink(t)
            | Act::ClockHeal(t)
            | Act::DiskHeal(t) => Some(t),
            _ => None,
        }
    }
}

impl Step {
    /// A process step: `Step::on(2.0, Act::Shrink, "worker2")`.
    pub fn on(at: f64, act: fn(Target) -> Act, component: &str) -> Step {
        Step {
            at,
            act: act(Target {
                component: component.to_string(),
            }),
        }
    }

    /// A network step on `link` (its component is the link's connecting side).
    pub fn network(at: f64, fault: &Fault, link: &str) -> Step {
        let net = Net {
            component: link_client(link).to_string(),
            link: link.to_string(),
            for_s: None,
        };
        let act = match *fault {
            Fault::Partition => Act::Partition(net),
            Fault::Reset { refuse_ms } => Act::Reset {
                net,
                refuse_ms: Some(refuse_ms),
            },
            Fault::Delay(d) => Act::Delay {
                net,
                ms: Some(d.ms),
                jitter_ms: Some(d.jitter_ms),
            },
            Fault::Bandwidth { bytes_per_s } => Act::Bandwidth {
                net,
                bytes_per_s: Some(bytes_per_s),
            },
            Fault::Slice => Act::Slice(net),
            Fault::Heal => Act::Heal(net),
        };
        Step { at, act }
    }

    pub fn action(&self) -> Action {
        self.act.action()
    }

    /// The component it acts on (a network step's: its link's connecting side).
    pub fn component(&self) -> &str {
        match &self.act {
            Act::ClockStep(c) => &c.component,
            Act::ClockStrobe(c) => &c.component,
            Act::ClockRate(c) => &c.component,
            Act::DiskError(d) => &d.component,
            Act::PowerLoss(p) => &p.component,
            act => match (act.target(), act.net()) {
                (Some(t), _) => &t.component,
                (_, Some(net)) => &net.component,
                _ => "",
            },
        }
    }

    /// A network step's link.
    pub fn link(&self) -> Option<&str> {
        self.act.net().map(|net| net.link.as_str())
    }

    /// How long a network or clock fault lasts before its heal, when the step says.
    pub fn for_s(&self) -> Option<f64> {
        match &self.act {
            Act::ClockStep(c) => c.for_s,
            Act::ClockStrobe(c) => Some(c.for_s),
            Act::ClockRate(c) => c.for_s,
            Act::DiskError(d) => d.for_s,
            act => act.net().and_then(|net| net.for_s),
        }
    }

    /// A network step's component is its link's connecting side.
    pub fn name_component_by_link(&mut self) {
        if let Some(net) = self.act.net_mut() {
            net.component = link_client(&net.link).to_string();
        }
    }

    /// The proxy fault of a network step (the proxy's defaults for what it leaves out).
    pub fn fault(&self) -> Option<Fault> {
        Some(match &self.act {
            Act::Partition(_) => Fault::Partition,
            Act::Reset { refuse_ms, .. } => Fault::Reset {
                refuse_ms: refuse_ms.unwrap_or(0),
            },
            Act::Delay { ms, jitter_ms, .. } => Fault::Delay(Delay {
                ms: ms.unwrap_or(100),
                jitter_ms: jitter_ms.unwrap_or(0),
            }),
            Act::Bandwidth { bytes_per_s, .. } => Fault::Bandwidth {
                bytes_per_s: bytes_per_s.unwrap_or(65_536),
            },
            Act::Slice(_) => Fault::Slice,
            Act::Heal(_) => Fault::Heal,
            _ => return None,
        })
    }
}

/// The connecting side of a link name (`worker1` of `worker1->sink`).
pub fn link_client(link: &str) -> &str {
    link.split_once("->").map_or(link, |(client, _)| client)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as earlier versions (a struct of options) wrote them read back as the same
    /// steps and are written again byte for byte.
    #[test]
    fn steps_are_written_as_earlier_versions_wrote_them() {
        for line in [
            r#"{"at":3.0,"action":"crash","component":"sink"}"#,
            r#"{"at":1.5,"action":"grow","component":"worker3"}"#,
            r#"{"at":2.0,"action":"partition","component":"worker1","link":"worker1->sink","for":2.5}"#,
            r#"{"at":2.0,"action":"reset","component":"worker1","link":"worker1->sink","refuse_ms":500}"#,
            r#"{"at":2.0,"action":"delay","component":"sender-A","link":"sender-A->worker1","ms":120,"jitter_ms":24}"#,
            r#"{"at":2.0,"action":"bandwidth","component":"worker2","link":"worker2->initializer","bytes_per_s":16384}"#,
            r#"{"at":9.0,"action":"heal","component":"worker1","link":"worker1->sink"}"#,
            r#"{"at":3.5,"action":"clock-step","component":"sink","by":-30.0,"for":2.0}"#,
            r#"{"at":3.5,"action":"clock-strobe","component":"worker1","by":-1.0,"period":0.5,"for":10.0}"#,
            r#"{"at":3.5,"action":"clock-rate","component":"sink","rate":2.0}"#,
            r#"{"at":9.0,"action":"clock-heal","component":"sink"}"#,
        ] {
            let step: Step = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&step).unwrap(), line);
        }
        let fault = Fault::Delay(Delay {
            ms: 120,
            jitter_ms: 24,
        });
        let step = Step::network(2.0, &fault, "sender-A->worker1");
        assert_eq!(step.fault(), Some(fault));
        assert_eq!(step.component(), "sender-A");
        assert_eq!(Step::on(1.0, Act::Pause, "sink").fault(), None);
    }

    #[test]
    fn a_scenario_step_reads_from_toml_with_only_its_own_fields() {
        let step: Step =
            toml::from_str("at = 4\naction = \"partition\"\nlink = \"worker1->sink\"\nfor = 2\n")
                .unwrap();
        assert_eq!(
            (step.action(), step.link(), step.for_s()),
            (Action::Partition, Some("worker1->sink"), Some(2.0))
        );
        // The issue's examples: the sink when no component is named.
        let strobe: Step =
            toml::from_str("at = 1\naction = \"clock-strobe\"\nperiod = 0.5\nfor = 10.0\n")
                .unwrap();
        assert_eq!((strobe.component(), strobe.for_s()), ("sink", Some(10.0)));
        let step: Step =
            toml::from_str("at = 1\naction = \"clock-step\"\ncomponent = \"sink\"\nby = -30.0\n")
                .unwrap();
        assert_eq!(
            step.act,
            Act::ClockStep(ClockStep {
                component: "sink".into(),
                by: -30.0,
                for_s: None
            })
        );
        let err = toml::from_str::<Step>("at = 4\naction = \"explode\"\n").unwrap_err();
        assert!(err.to_string().contains("explode"), "{err}");
    }
}
