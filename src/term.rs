//! The terminal, in one place: the status line redrawn in place (`verify`, `watch` and
//! `run` draw theirs through [`redraw`]), fitted to the terminal's width so that it never
//! wraps (a wrapped line cannot be redrawn in place: each redraw would leave its first
//! rows behind), and the colours of verdict words ([`Paint`], through anstyle). Callers
//! decide whether they face a terminal; colour is off unless asked for.

use std::io::Write;

use anstyle::{AnsiColor, Style};

/// Where a status line's parts are joined; [`fit`] drops whole parts at these.
pub const PART: &str = " | ";

/// Returns to the start of the line, clears it, and writes `text` in its place, fitted
/// to the terminal's width when stdout or stderr is a terminal.
pub fn redraw(out: &mut dyn Write, text: &str) {
    let text = match width() {
        Some(columns) => fit(text, columns),
        None => text.to_string(),
    };
    let _ = write!(out, "\r\x1b[2K{text}");
    let _ = out.flush();
}

/// The columns of the terminal on stdout, else on stderr (`None` off a terminal).
pub fn width() -> Option<usize> {
    terminal_size::terminal_size_of(std::io::stdout())
        .or_else(|| terminal_size::terminal_size_of(std::io::stderr()))
        .map(|(w, _)| w.0 as usize)
}

/// `text` in fewer than `columns` columns (the last one stays free: a character there
/// makes some terminals wrap). The parts (joined by [`PART`]) are kept from the first;
/// the first that does not fit whole is cut with `…` when enough of it shows, and the
/// rest are dropped.
pub fn fit(text: &str, columns: usize) -> String {
    let room = columns.saturating_sub(1);
    if text.chars().count() <= room {
        return text.to_string();
    }
    if room == 0 {
        return String::new();
    }
    let mut kept = String::new();
    for (i, part) in text.split(PART).enumerate() {
        let joined = if i == 0 {
            part.to_string()
        } else {
            format!("{PART}{part}")
        };
        let used = kept.chars().count();
        if used + joined.chars().count() <= room {
            kept += &joined;
            continue;
        }
        // Cut the part when at least a few of its characters show, or when it is the first.
        let left = room.saturating_sub(used + 1);
        if i == 0 || left >= 8 {
            kept.extend(joined.chars().take(left));
            kept = kept.trim_end().to_string();
            kept.push('…');
        }
        break;
    }
    kept
}

/// Clears the status line, so what follows starts on a clean line.
pub fn clear_line(out: &mut dyn Write) {
    redraw(out, "");
}

/// What a coloured word says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// A violation, a problem, an error (bold red).
    Bad,
    /// A pass (green).
    Good,
    /// The verdict OK (bold green).
    Pass,
    /// A note or a hint (yellow).
    Note,
}

impl Tone {
    fn style(self) -> Style {
        let color = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
        match self {
            Tone::Bad => color(AnsiColor::Red).bold(),
            Tone::Good => color(AnsiColor::Green),
            Tone::Pass => color(AnsiColor::Green).bold(),
            Tone::Note => color(AnsiColor::Yellow),
        }
    }
}

/// Colours for words, or none.
#[derive(Debug, Clone, Copy)]
pub struct Paint(pub bool);

impl Paint {
    /// `text` in `tone`'s colour (as is without colour).
    pub fn on(self, text: &str, tone: Tone) -> String {
        if self.0 {
            let style = tone.style();
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_colours_only_when_asked() {
        assert_eq!(Paint(false).on("OK", Tone::Pass), "OK");
        let red = Paint(true).on("VIOLATION", Tone::Bad);
        assert!(red.starts_with('\x1b') && red.contains("VIOLATION") && red.ends_with("\x1b[0m"));
        let mut out = Vec::new();
        redraw(&mut out, "12s faults 3");
        assert_eq!(out, b"\r\x1b[2K12s faults 3");
    }

    #[test]
    fn a_status_line_fits_any_width() {
        let line =
            "12s faults 3 | A 1.0/12.4MB B 0.9/12.4MB | 25 commits/s 1.1 MB/s | acks A:0s B:1s";
        assert_eq!(fit(line, 200), line);
        assert_eq!(fit(line, line.len() + 1), line);
        // Whole parts go from the end first.
        assert_eq!(
            fit(line, 70),
            "12s faults 3 | A 1.0/12.4MB B 0.9/12.4MB | 25 commits/s 1.1 MB/s"
        );
        // A part that does not fit whole is cut when enough of it shows ...
        assert_eq!(fit(line, 30), "12s faults 3 | A 1.0/12.4MB…");
        // ... and dropped when too little would.
        assert_eq!(fit(line, 20), "12s faults 3");
        assert_eq!(fit(line, 8), "12s fa…");
        for columns in 0..100 {
            assert!(
                fit(line, columns).chars().count() < columns.max(1),
                "{columns}"
            );
        }
    }
}
