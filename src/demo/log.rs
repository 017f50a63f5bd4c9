//! Log lines in the originals' Python logging format:
//! `%(asctime)s %(levelname)-8s [%(filename)s:%(lineno)d] %(message)s`, local time as
//! `YYYY-MM-DD HH:MM:SS,mmm`, on stderr, one write per line so lines never interleave.

use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    pub fn padded(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG   ",
            Level::Info => "INFO    ",
            Level::Warning => "WARNING ",
            Level::Error => "ERROR   ",
            Level::Critical => "CRITICAL",
        }
    }
}

/// Formats one log line (with its LF).
pub fn format_line(level: Level, file: &str, line: u32, message: &str) -> String {
    let now = chrono::Local::now();
    let file = file.rsplit('/').next().unwrap_or(file);
    format!(
        "{} {} [{file}:{line}] {message}\n",
        now.format("%Y-%m-%d %H:%M:%S,%3f"),
        level.padded()
    )
}

pub fn write_line(level: Level, file: &str, line: u32, message: &str) {
    let text = format_line(level, file, line, message);
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `plog!(Level::Info, "fmt", args...)` logs with this source file and line.
#[macro_export]
macro_rules! plog {
    ($level:expr, $($arg:tt)*) => {
        $crate::demo::log::write_line($level, file!(), line!(), &format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_python_layout() {
        let line = format_line(Level::Info, "src/demo/sink.rs", 42, "hello");
        let re = regex::Regex::new(
            r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO     \[sink\.rs:42\] hello\n$",
        )
        .unwrap();
        assert!(re.is_match(&line), "{line}");
    }
}
