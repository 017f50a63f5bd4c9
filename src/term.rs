//! The terminal, in one place: the status line redrawn in place (`verify`, `watch` and
//! `run` draw theirs through [`redraw`]), and the colours of verdict words ([`Paint`],
//! through anstyle). Callers decide whether they face a terminal; colour is off unless
//! asked for.

use std::io::Write;

use anstyle::{AnsiColor, Style};

/// Returns to the start of the line, clears it, and writes `text` in its place.
pub fn redraw(out: &mut dyn Write, text: &str) {
    let _ = write!(out, "\r\x1b[2K{text}");
    let _ = out.flush();
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
}
