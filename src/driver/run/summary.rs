//! How a run ended, for a person and for `--json`: its verdict (a pass on nothing is
//! `nothing-verified`), faults, what was verified, findings and what is left running.

use super::*;

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub seed: u64,
    pub verdict: &'static str,
    pub duration_s: f64,
    /// Faults by kind, then by component.
    pub faults: BTreeMap<String, BTreeMap<String, u64>>,
    pub fault_count: u64,
    pub commits: u64,
    pub bytes_verified: u64,
    /// The bytes of every key's input: less verified than this is a prefix (a run that
    /// `--duration` ended before its senders' end).
    pub input_bytes: u64,
    /// Keys of which not one byte was verified (a run with any is not a pass).
    pub unverified_keys: Vec<String>,
    /// Keys without a verdict: their order rests on the sink's timestamps where they go
    /// back (verdict `undetermined`, exit 2).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undetermined_keys: Vec<String>,
    pub findings: Vec<Finding>,
    pub frozen: bool,
    pub stopped_by_signal: bool,
    pub postmortem: Option<String>,
    pub run_dir: String,
    /// The post-mortem page written at the end.
    pub report: Option<String>,
    /// Process groups of the run still alive after its stop, with where they are
    /// (empty: nothing of the run is left on any host).
    pub left_running: Vec<String>,
}

/// The bytes of the run's inputs (0 for one that cannot be read).
pub(super) fn input_bytes(plan: &RunPlan) -> u64 {
    let p = &plan.preset;
    p.keys
        .iter()
        .filter_map(|&k| std::fs::metadata(p.input_path(k)).ok())
        .map(|m| m.len())
        .sum()
}

/// What a soak leaves for its summary.
pub(super) struct RunTotals {
    pub(super) ending: Ending,
    pub(super) frozen: bool,
    pub(super) postmortem: Option<String>,
    pub(super) left_running: Vec<String>,
    pub(super) faults: BTreeMap<String, BTreeMap<String, u64>>,
    pub(super) fault_count: u64,
    pub(super) duration_s: f64,
    pub(super) checked: CheckTotals,
    pub(super) findings: Vec<Finding>,
}

/// What the checks verified by the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct CheckTotals {
    pub(super) commits: u64,
    pub(super) bytes_verified: u64,
    /// Keys with input of which not one byte was verified.
    pub(super) unverified: Vec<String>,
    /// Keys whose order the sink's timestamps leave open.
    pub(super) undetermined: Vec<String>,
}

impl RunSummary {
    /// The summary of `reset-only`.
    pub(super) fn reset(plan: &RunPlan) -> RunSummary {
        RunSummary {
            seed: plan.seed,
            verdict: "reset",
            duration_s: 0.0,
            faults: BTreeMap::new(),
            fault_count: 0,
            commits: 0,
            bytes_verified: 0,
            input_bytes: 0,
            unverified_keys: vec![],
            undetermined_keys: vec![],
            findings: vec![],
            frozen: false,
            stopped_by_signal: false,
            postmortem: None,
            run_dir: plan.preset.run_dir.display().to_string(),
            report: None,
            left_running: Vec::new(),
        }
    }

    pub(super) fn new(plan: &RunPlan, t: RunTotals) -> RunSummary {
        let stopped_by_signal = t.ending == Ending::Signal;
        let ended_well = t.ending == Ending::Complete || t.ending == Ending::Duration;
        let nothing = ended_well
            && t.findings.is_empty()
            && (t.checked.bytes_verified == 0 || !t.checked.unverified.is_empty());
        let verdict = if !t.findings.is_empty() {
            "violation"
        } else if nothing {
            "nothing-verified"
        } else if ended_well && !t.checked.undetermined.is_empty() {
            "undetermined"
        } else if ended_well {
            "ok"
        } else {
            "stopped"
        };
        RunSummary {
            seed: plan.seed,
            verdict,
            duration_s: t.duration_s,
            faults: t.faults,
            fault_count: t.fault_count,
            commits: t.checked.commits,
            bytes_verified: t.checked.bytes_verified,
            input_bytes: input_bytes(plan),
            unverified_keys: t.checked.unverified,
            undetermined_keys: t.checked.undetermined,
            findings: t.findings,
            frozen: t.frozen,
            stopped_by_signal: stopped_by_signal && !t.frozen,
            postmortem: t.postmortem,
            run_dir: plan.preset.run_dir.display().to_string(),
            report: None,
            left_running: t.left_running,
        }
    }

    /// 1 for a finding; 2 when stopped before the end or nothing was verified (a pass
    /// on nothing is not a pass); else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.findings.is_empty() {
            1
        } else if self.stopped_by_signal
            || self.verdict == "nothing-verified"
            || self.verdict == "undetermined"
            || !self.left_running.is_empty()
        {
            2
        } else {
            0
        }
    }

    pub fn to_human(&self) -> String {
        let mut out = format!(
            "\nsoakcheck run: {} after {} (seed {}, run dir {})\n",
            self.verdict,
            crate::duration::human_duration(self.duration_s),
            self.seed,
            self.run_dir
        );
        out += &format!("  faults injected: {}\n", self.fault_count);
        for (kind, by) in &self.faults {
            let list: Vec<String> = by.iter().map(|(c, n)| format!("{c} {n}")).collect();
            out += &format!("    {kind:<10} {}\n", list.join(", "));
        }
        out += &format!(
            "  commits verified: {}, bytes verified: {}\n",
            self.commits, self.bytes_verified
        );
        if self.verdict == "ok" && self.bytes_verified < self.input_bytes {
            out += &format!(
                "  a prefix: the soak ended before every sender's end; {} of {} input bytes ({:.1} %) were committed and verified\n",
                self.bytes_verified,
                self.input_bytes,
                self.bytes_verified as f64 * 100.0 / self.input_bytes as f64
            );
        }
        if self.verdict == "nothing-verified" && self.unverified_keys.is_empty() {
            out += &format!(
                "  not a pass: not one committed byte was verified in {}/sink-out\n",
                self.run_dir
            );
        } else if self.verdict == "nothing-verified" {
            out += &format!(
                "  not a pass: not one committed byte of key(s) {} was verified in {}/sink-out\n",
                self.unverified_keys.join(","),
                self.run_dir
            );
        }
        if self.verdict == "undetermined" {
            out += &format!(
                "  not a pass: the order of key(s) {} rests on the sink's timestamps, which cannot order their lines where they move between files (`soakcheck verify` on {}/sink-out names the commits)\n",
                self.undetermined_keys.join(","),
                self.run_dir
            );
        }
        for f in &self.findings {
            out += &format!(
                "  finding: {} after {}: {}\n",
                f.kind_name(),
                crate::duration::human_duration(f.elapsed_s),
                f.detail
            );
        }
        let power_loss = crate::finding::FindingKind::CommittedDataLostOnPowerLoss;
        if self.findings.iter().any(|f| f.kind == power_loss) {
            out += &format!(
                "  what each power cut took back: {}/{}/COMPONENT/cut-N/ (FILE.from-OFFSET holds \
                 the bytes FILE had from OFFSET on before the cut; events.jsonl names each cut's folder)\n",
                self.run_dir,
                crate::rundir::POWER_CUTS
            );
        }
        if let Some(p) = &self.postmortem {
            out += &format!("  post-mortem bundle: {p}\n");
        }
        if let Some(r) = &self.report {
            out += &format!("  report: {r}\n");
        }
        if !self.left_running.is_empty() {
            out += &format!(
                "  LEFT RUNNING after the stop: {}\n",
                self.left_running.join(", ")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::run::OnViolation;
    use crate::driver::scenario::Scenario;
    use crate::watch::ProgressStyle;
    use std::time::Duration;

    fn plan() -> RunPlan {
        RunPlan {
            scenario: Scenario::parse("1", &[], None).unwrap(),
            preset: crate::driver::preset::test_demo(7100, &['A', 'B']),
            seed: 1,
            time_scale: 1.0,
            on_violation: OnViolation::Freeze,
            duration: None,
            replay: None,
            replayed: None,
            bytes_per_key: 1000,
            progress: ProgressStyle::Quiet,
            ack_timeout: Duration::from_secs(1),
            serve: None,
            keep_runs: 5,
            pages: None,
        }
    }

    fn totals(ending: Ending, bytes_verified: u64, unverified: &[&str]) -> RunTotals {
        RunTotals {
            ending,
            frozen: false,
            postmortem: None,
            left_running: vec![],
            faults: BTreeMap::new(),
            fault_count: 0,
            duration_s: 1.0,
            checked: CheckTotals {
                commits: 3,
                bytes_verified,
                unverified: unverified.iter().map(|k| k.to_string()).collect(),
                undetermined: vec![],
            },
            findings: vec![],
        }
    }

    /// Issue 19: a soak whose sink clock stepped back where a key moved between files
    /// has no verdict for that key: `undetermined`, exit 2, naming it; never ok.
    #[test]
    fn a_key_whose_order_the_stamps_leave_open_makes_the_run_not_a_pass() {
        let mut t = totals(Ending::Complete, 5000, &[]);
        t.checked.undetermined = vec!["B".into()];
        let summary = RunSummary::new(&plan(), t);
        assert_eq!((summary.verdict, summary.exit_code()), ("undetermined", 2));
        assert!(summary
            .to_human()
            .contains("key(s) B rests on the sink's timestamps"));
    }

    /// Issue 17.2: a soak in which one key verified not one byte did not test that key,
    /// so it is `nothing-verified` (exit 2) naming the key, not ok; a soak that verified
    /// every key is ok, and one stopped by a signal stays `stopped`.
    #[test]
    fn a_key_that_verified_nothing_makes_the_run_not_a_pass() {
        let plan = plan();
        let one_key = RunSummary::new(&plan, totals(Ending::Duration, 5000, &["B"]));
        assert_eq!(one_key.verdict, "nothing-verified");
        assert_eq!(one_key.exit_code(), 2);
        assert!(one_key
            .to_human()
            .contains("not one committed byte of key(s) B was verified"));
        let every_key = RunSummary::new(&plan, totals(Ending::Complete, 5000, &[]));
        assert_eq!((every_key.verdict, every_key.exit_code()), ("ok", 0));
        let none = RunSummary::new(&plan, totals(Ending::Duration, 0, &[]));
        assert_eq!(none.verdict, "nothing-verified");
        let stopped = RunSummary::new(&plan, totals(Ending::Signal, 5000, &["B"]));
        assert_eq!((stopped.verdict, stopped.exit_code()), ("stopped", 2));
    }
}
