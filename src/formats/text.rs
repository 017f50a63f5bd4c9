//! Text taken from files, as a page shows it: never obeyed. Control characters become
//! `\x1b`, bytes that are not UTF-8 `\xff`, and the characters that reorder or hide
//! text (bidi overrides and isolates, zero-width and other format characters) become
//! `\u{202e}`, so what a line, a name or a detail holds is what a reader sees. Every
//! text of the page that came from a file goes through here.

/// Bytes as text: control bytes and invalid UTF-8 shown as `\xNN`.
pub fn visible(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        push_visible(&mut out, chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Text taken from a file (a log line, a detail, a name) as the page shows it: control
/// characters as `\x1b`, and the characters that reorder or hide text (bidi overrides
/// and isolates, zero-width and other format characters) as `\u{202e}`, so what a line
/// holds is what a reader sees.
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_visible(&mut out, text);
    out
}

fn push_visible(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else if hides_or_reorders(c) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
}

/// The format characters that change how the text around them is shown: bidi marks,
/// embeddings, overrides and isolates; zero-width spaces and joiners; word joiner and
/// invisible operators; the byte-order mark; interlinear annotation.
fn hides_or_reorders(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_do_not_print_are_shown_as_escapes() {
        assert_eq!(visible(b"A1\x00\xff\x1b[31m"), r"A1\x00\xff\x1b[31m");
        assert_eq!(visible("é".as_bytes()), "é");
    }

    /// Issue 17.7: a log line's terminal escapes and bidi overrides are shown, not
    /// obeyed: `evil\u{202e}gnp.exe` must not read as `evilexe.png`.
    #[test]
    fn control_and_bidi_characters_from_files_are_shown() {
        assert_eq!(shown("ERROR \x1b[2Jgone"), r"ERROR \x1b[2Jgone");
        assert_eq!(shown("evil\u{202e}gnp.exe"), r"evil\u{202e}gnp.exe");
        assert_eq!(
            shown("a\u{2066}b\u{2069}\u{200b}c"),
            r"a\u{2066}b\u{2069}\u{200b}c"
        );
        assert_eq!(shown("tab\tstays, é stays"), "tab\tstays, é stays");
    }
}
