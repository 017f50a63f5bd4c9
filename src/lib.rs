//! soakcheck: proves a stream processor kept its exactly-once promise while it is crashed
//! on purpose.
//!
//! The library holds everything; `src/main.rs` only parses arguments and maps outcomes to
//! exit codes (0 pass, 1 violation, 2 could not check).
//! - [`formats`]: what the system under test leaves on disk (txnlogs, sink directories,
//!   input files), read strictly and written byte-compatibly.
//! - [`verify`]: the incremental checker core and the offline verifier built on it.
//! - [`gen`]: input files and sink directories for tests, benches and demos.
//! - [`bench`]: throughput measurements reported as ratios to `cmp`.
//!
//! `wallaroo-formats.md §N.M` in the docs is section N.M of the reference for every wire
//! message and on-disk format, `../shared/spec/wallaroo-formats.md` beside the project.

pub mod bench;
pub mod choice;
pub mod demo;
pub mod driver;
pub mod duration;
pub mod finding;
pub mod formats;
pub mod fs;
pub mod gen;
pub mod http;
pub mod outcome;
pub mod plans;
pub mod process;
pub mod proxy;
pub mod report;
pub mod rundir;
pub mod term;
pub mod topology;
pub mod verify;
pub mod watch;
pub mod wire;

/// A unit enum value's name as its JSON has it (`torn-txnlog-tail`, `ack-timeout`).
pub fn json_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// One line for an error and its causes, as the binary prints it. Our errors already put
/// their source's text in their own message (`path: reason`), so a cause whose text is
/// already there is not repeated ("Is a directory (os error 21): Is a directory ...").
pub fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_text_names_each_cause_once() {
        let io = std::io::Error::from_raw_os_error(21);
        let e = anyhow::Error::new(crate::verify::VerifyError::Output {
            path: "/tmp/x".into(),
            source: io,
        })
        .context("verifying");
        let text = super::error_text(e.as_ref());
        assert_eq!(text.matches("Is a directory").count(), 1, "{text}");
        assert!(
            text.starts_with("verifying: /tmp/x: cannot read output file"),
            "{text}"
        );
    }
}
