//! One way to show what a command found: as text for a person or as JSON, and the exit
//! status that goes with it. Exit statuses live here and only here: 0 every check passed,
//! 1 a finding, 2 could not check (bad input, an unreadable file, bad usage, stopped
//! before the end).

/// Every check passed.
pub const EXIT_OK: i32 = 0;
/// A violation or another finding.
pub const EXIT_FINDING: i32 = 1;
/// Could not check.
pub const EXIT_ERROR: i32 = 2;

/// How an outcome is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human { color: bool },
    Json,
}

/// What a command found.
pub trait Outcome {
    fn human(&self, color: bool) -> String;
    fn json(&self) -> String;
    fn exit_code(&self) -> i32;

    /// The text for `format`, ending with a newline.
    fn render(&self, format: Format) -> String {
        let mut text = match format {
            Format::Human { color } => self.human(color),
            Format::Json => self.json(),
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }
}

impl Outcome for crate::verify::Report {
    fn human(&self, color: bool) -> String {
        self.to_human(color)
    }
    fn json(&self) -> String {
        self.to_json()
    }
    fn exit_code(&self) -> i32 {
        self.verdict.exit_code()
    }
}

impl crate::watch::WatchOutcome {
    /// Verify's report with the findings in it (its last line names the first).
    fn report_with_findings(&self) -> crate::verify::Report {
        let mut report = self.report.clone();
        report.findings = Some(serde_json::to_value(&self.findings).expect("findings serialize"));
        report
    }
}

impl Outcome for crate::watch::WatchOutcome {
    /// The findings, then verify's report of what was verified.
    fn human(&self, color: bool) -> String {
        let mut text = String::new();
        for f in &self.findings {
            text += &format!(
                "finding: {} after {:.1}s: {}\n",
                f.kind_name(),
                f.elapsed_s,
                f.detail
            );
        }
        text + &self.report_with_findings().to_human(color)
    }
    fn json(&self) -> String {
        self.report_with_findings().to_json()
    }
    fn exit_code(&self) -> i32 {
        crate::watch::WatchOutcome::exit_code(self)
    }
}

impl Outcome for crate::driver::run::RunSummary {
    fn human(&self, _color: bool) -> String {
        self.to_human()
    }
    fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a summary serializes")
    }
    fn exit_code(&self) -> i32 {
        crate::driver::run::RunSummary::exit_code(self)
    }
}

/// A bench report: shown, and a failure when what it measured did not verify.
macro_rules! bench_outcome {
    ($t:ty, $ok:expr) => {
        impl Outcome for $t {
            fn human(&self, _color: bool) -> String {
                self.to_human()
            }
            fn json(&self) -> String {
                serde_json::to_string_pretty(self).expect("a report serializes")
            }
            fn exit_code(&self) -> i32 {
                let ok: fn(&$t) -> bool = $ok;
                if ok(self) {
                    EXIT_OK
                } else {
                    EXIT_ERROR
                }
            }
        }
    };
}

bench_outcome!(crate::bench::verify::BenchVerifyReport, |_| true);
bench_outcome!(crate::bench::demo::BenchDemoReport, |r| r.verified
    && r.proxied.as_ref().is_none_or(|p| p.verified));
bench_outcome!(crate::bench::watch::BenchWatchReport, |r| r.verified);
bench_outcome!(crate::bench::proxy::BenchProxyReport, |_| true);
