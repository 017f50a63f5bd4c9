//! A strict reader and writer for the subset of Python literals that the sink writes
//! into its txnlog: lists, tuples, `str` (with Python's escapes), `int`, `float`,
//! `True`, `False` and `None`.
//!
//! The original tools `eval` every txnlog line. We never evaluate anything: the parser
//! below accepts exactly the literal grammar and reports the column of the first byte it
//! cannot accept, so a caller can say `file:line:column: expected ...`. The writer
//! reproduces CPython's `str()`/`repr()` byte for byte, because the original tools still
//! read what our tools write.

use std::borrow::Cow;
use std::fmt::Write as _;

/// One Python literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    /// Python ints are unbounded; the sink only writes times, offsets and stream ids,
    /// which fit in an `i128` with room to spare.
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
}

impl Value {
    /// The Python type name, for error messages ("expected int, found str").
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
        }
    }
}

/// Why a literal could not be parsed; `column` is 1-based and counts bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    pub column: usize,
    pub expected: &'static str,
    pub found: String,
}

/// Nesting deeper than this is refused, so a hostile line cannot overflow the stack.
const MAX_DEPTH: usize = 64;

/// Parses one complete literal; only spaces and tabs may surround it.
pub fn parse(text: &[u8]) -> Result<Value, ParseError> {
    let mut parser = Parser { text, pos: 0 };
    parser.skip_blanks();
    let value = parser.value(0)?;
    parser.skip_blanks();
    if parser.pos != text.len() {
        return Err(parser.error("end of line"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, expected: &'static str) -> ParseError {
        let found = match self.text.get(self.pos) {
            None => "end of line".to_string(),
            Some(_) => {
                let end = (self.pos + 12).min(self.text.len());
                format!("{:?}", String::from_utf8_lossy(&self.text[self.pos..end]))
            }
        };
        ParseError {
            column: self.pos + 1,
            expected,
            found,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("less nesting"));
        }
        match self.peek() {
            Some(b'[') => Ok(Value::List(self.sequence(b']', depth)?)),
            Some(b'(') => self.tuple(depth),
            Some(b'\'' | b'"') => Ok(Value::Str(self.string()?)),
            Some(b'-' | b'+' | b'0'..=b'9' | b'.') => self.number(),
            Some(b'T' | b'F' | b'N') => self.keyword(),
            _ => Err(self.error("a literal (list, tuple, str, number, True, False or None)")),
        }
    }

    fn keyword(&mut self) -> Result<Value, ParseError> {
        for (word, value) in [
            (&b"True"[..], Value::Bool(true)),
            (b"False", Value::Bool(false)),
            (b"None", Value::None),
        ] {
            if self.text[self.pos..].starts_with(word) {
                let after = self.text.get(self.pos + word.len());
                if !matches!(after, Some(c) if c.is_ascii_alphanumeric() || *c == b'_') {
                    self.pos += word.len();
                    return Ok(value);
                }
            }
        }
        Err(self.error("True, False or None"))
    }

    /// Parses `[a, b, ...]` or the inside of a tuple up to `close`, allowing a trailing comma.
    fn sequence(&mut self, close: u8, depth: usize) -> Result<Vec<Value>, ParseError> {
        self.pos += 1; // the opening bracket
        let mut items = Vec::new();
        loop {
            self.skip_blanks();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_blanks();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => {
                    return Err(self.error(if close == b']' {
                        "',' or ']'"
                    } else {
                        "',' or ')'"
                    }))
                }
            }
        }
    }

    /// `(x)` is just `x` in Python; `(x,)`, `()` and `(x, y)` are tuples.
    fn tuple(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.pos += 1;
        self.skip_blanks();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(Value::Tuple(Vec::new()));
        }
        let first = self.value(depth + 1)?;
        self.skip_blanks();
        match self.peek() {
            Some(b')') => {
                self.pos += 1;
                Ok(first)
            }
            Some(b',') => {
                self.pos += 1;
                let mut items = vec![first];
                loop {
                    self.skip_blanks();
                    if self.peek() == Some(b')') {
                        self.pos += 1;
                        return Ok(Value::Tuple(items));
                    }
                    items.push(self.value(depth + 1)?);
                    self.skip_blanks();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b')') => {
                            self.pos += 1;
                            return Ok(Value::Tuple(items));
                        }
                        _ => return Err(self.error("',' or ')'")),
                    }
                }
            }
            _ => Err(self.error("',' or ')'")),
        }
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let mut negative = false;
        if let Some(sign @ (b'-' | b'+')) = self.peek() {
            negative = sign == b'-';
            self.pos += 1;
        }
        let digits_start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9' | b'_')) {
            self.pos += 1;
        }
        let int_digits = self.pos - digits_start;
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            is_float = true;
            self.pos += 1;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            is_float = true;
            self.pos += 1;
            if matches!(self.peek(), Some(b'-' | b'+')) {
                self.pos += 1;
            }
            let exp_start = self.pos;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
            if self.pos == exp_start {
                return Err(self.error("exponent digits"));
            }
        }
        if matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
            return Err(self.error("a number"));
        }
        let text = std::str::from_utf8(&self.text[start..self.pos]).expect("ASCII");
        if is_float {
            if int_digits == 0 && !text.contains(|c: char| c.is_ascii_digit()) {
                self.pos = start;
                return Err(self.error("a number"));
            }
            let cleaned = if text.contains('_') {
                Cow::Owned(text.replace('_', ""))
            } else {
                Cow::Borrowed(text)
            };
            // Overflow to infinity is refused: no sink writes it and it has no literal form.
            return match cleaned.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Value::Float(f)),
                _ => {
                    self.pos = start;
                    Err(self.error("a finite float"))
                }
            };
        }
        if int_digits == 0 {
            self.pos = start;
            return Err(self.error("a number"));
        }
        let digits = &text[digits_start - start..];
        // Python 3 rejects leading zeros ("0123") and misplaced underscores.
        if (digits.len() > 1
            && digits.starts_with('0')
            && digits.bytes().any(|c| c != b'0' && c != b'_'))
            || digits.starts_with('_')
            || digits.ends_with('_')
            || digits.contains("__")
        {
            self.pos = digits_start;
            return Err(self.error("a decimal integer"));
        }
        let plain = if digits.contains('_') {
            Cow::Owned(digits.replace('_', ""))
        } else {
            Cow::Borrowed(digits)
        };
        let magnitude: i128 = plain.parse().map_err(|_| {
            self.pos = digits_start;
            self.error("an integer that fits in 127 bits")
        })?;
        Ok(Value::Int(if negative { -magnitude } else { magnitude }))
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let quote = self.text[self.pos];
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Copy the plain run up to the next quote, backslash or line end in one go.
            let rest = &self.text[self.pos..];
            let run = memchr::memchr3(quote, b'\\', b'\n', rest)
                .map(|n| memchr::memchr(b'\r', &rest[..n]).unwrap_or(n));
            let Some(run) = run else {
                self.pos = self.text.len();
                return Err(self.error("closing quote"));
            };
            out.extend_from_slice(&rest[..run]);
            self.pos += run;
            match self.text[self.pos] {
                b'\\' => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                c if c == quote => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("closing quote")),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("UTF-8 text in the string"))
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let Some(c) = self.peek() else {
            return Err(self.error("an escape character"));
        };
        self.pos += 1;
        let simple = match c {
            b'\\' => Some(b'\\'),
            b'\'' => Some(b'\''),
            b'"' => Some(b'"'),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'v' => Some(0x0b),
            b'0'..=b'7' => {
                // Up to three octal digits.
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                push_char(out, value).map_err(|_| self.error("a valid code point"))?;
                return Ok(());
            }
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            return Ok(());
        }
        let digits = match c {
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            _ => {
                // Python keeps unknown escapes literally (with a warning); the sink never
                // writes them, so refusing is the strict and safe choice.
                self.pos -= 1;
                return Err(self.error(
                    "a known escape (\\\\ \\' \\\" \\n \\r \\t \\xNN \\uNNNN \\UNNNNNNNN)",
                ));
            }
        };
        let start = self.pos;
        if self.text.len() < start + digits
            || !self.text[start..start + digits]
                .iter()
                .all(u8::is_ascii_hexdigit)
        {
            return Err(self.error("hex digits of an escape"));
        }
        let hex = std::str::from_utf8(&self.text[start..start + digits]).expect("hex is ASCII");
        let value = u32::from_str_radix(hex, 16).expect("checked hex digits");
        push_char(out, value).map_err(|_| self.error("a valid code point"))?;
        self.pos += digits;
        Ok(())
    }
}

fn push_char(out: &mut Vec<u8>, value: u32) -> Result<(), ()> {
    let ch = char::from_u32(value).ok_or(())?;
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    Ok(())
}

/// Appends CPython's `repr()` of `value` (which is also its `str()` inside a container).
pub fn write_repr(out: &mut String, value: &Value) {
    match value {
        Value::None => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_float(out, *f),
        Value::Str(s) => write_str(out, s),
        Value::List(items) => {
            out.push('[');
            write_items(out, items);
            out.push(']');
        }
        Value::Tuple(items) => {
            out.push('(');
            write_items(out, items);
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
    }
}

fn write_items(out: &mut String, items: &[Value]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_repr(out, item);
    }
}

/// CPython's float repr: the shortest round-trip digits (Rust's `Display` gives the same
/// digits), always with a `.0` for whole numbers, and exponent form outside
/// 1e-4 <= |x| < 1e16.
pub fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("nan");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
        return;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Python: 1e+16, 1.5e-05: mantissa digits as shortest repr, exponent at least 2 digits.
        let formatted = format!("{f:e}"); // e.g. "1.5e-5", "1e16"
        let (mantissa, exp) = formatted.split_once('e').expect("exponent form");
        let exp: i32 = exp.parse().expect("exponent");
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "{mantissa}e{sign}{:02}", exp.abs());
        return;
    }
    let formatted = format!("{f}");
    out.push_str(&formatted);
    if !formatted.contains('.') {
        out.push_str(".0");
    }
}

/// CPython's `repr()` of a `str`.
pub fn write_str(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x7f => out.push(c),
            c if is_printable(c) => out.push(c),
            c if (c as u32) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push(quote);
}

/// CPython's `repr()` of a `bytes` value, e.g. `b'A0000000 ...\n'` (the abort rules'
/// `stream-content` regexps match this text).
pub fn bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(bytes.len() + 3);
    out.push('b');
    out.push(quote as char);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ if b == quote => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push(quote as char);
    out
}

/// An approximation of Python's `str.isprintable()` for non-ASCII characters: control,
/// format, separator (other than the plain space), surrogate and private-use characters
/// are escaped. The sink only ever writes ASCII, so this matters only for round trips.
fn is_printable(c: char) -> bool {
    let u = c as u32;
    !((0x80..=0xa0).contains(&u)
        || u == 0xad
        || (0x2000..=0x200f).contains(&u)
        || (0x2028..=0x202f).contains(&u)
        || (0x205f..=0x206f).contains(&u)
        || u == 0x3000
        || u == 0xfeff
        || (0xe000..=0xf8ff).contains(&u)
        || (0xfff0..=0xfffb).contains(&u)
        || u >= 0xf0000)
}

/// `repr()` of a value as a new string.
pub fn repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value);
    out
}

/// Test support: runs CPython (when it is installed) to check our literals against it.
#[cfg(test)]
pub(crate) mod python {
    /// Runs `python3 -c script` with `stdin`; None when python3 is not installed.
    pub fn run(script: &str, stdin: &str) -> Option<(String, String)> {
        let child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        // CI compares with the real CPython (scripts/test installs it): never skip there.
        assert!(
            child.is_ok() || std::env::var("CI").as_deref() != Ok("true"),
            "python3 is needed in CI"
        );
        let mut child = child.ok()?;
        std::io::Write::write_all(&mut child.stdin.take().expect("piped"), stdin.as_bytes())
            .ok()?;
        let out = child.wait_with_output().ok()?;
        Some((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_record_shape_the_sink_writes() {
        let line = b"[1587413105.9012375, '1-ok', 'Passthrough-w-initializer-id-7421:c_id=1', [(1, 0, 2940)]]";
        let v = parse(line).unwrap();
        assert_eq!(
            v,
            Value::List(vec![
                Value::Float(1587413105.9012375),
                Value::Str("1-ok".into()),
                Value::Str("Passthrough-w-initializer-id-7421:c_id=1".into()),
                Value::List(vec![Value::Tuple(vec![
                    Value::Int(1),
                    Value::Int(0),
                    Value::Int(2940)
                ])]),
            ])
        );
        assert_eq!(repr(&v).as_bytes(), line);
        let v = parse(b"[1.0, 'workers-left', \"['worker2']\"]").unwrap();
        assert_eq!(repr(&v), "[1.0, 'workers-left', \"['worker2']\"]");
        assert_eq!(
            parse(b"[1.5, 'connection-closed', True]")
                .unwrap()
                .type_name(),
            "list"
        );
    }

    #[test]
    fn errors_carry_the_column() {
        // Python would concatenate adjacent strings; the sink never writes that, so it is refused.
        let err = parse(b"[1.5, '2-ok' 'x']").unwrap_err();
        assert_eq!(err.column, 14);
        assert_eq!(err.expected, "',' or ']'");
        let err = parse(b"[1.5, '2-ok', __import__('os')]").unwrap_err();
        assert_eq!(err.column, 15);
        assert!(parse(b"[1.5, 'x'").is_err());
        assert!(parse(b"[1.5, 'x]").is_err());
        assert!(parse(b"[1.5, 0123]").is_err());
        assert!(parse(b"[Truex]").is_err());
        assert_eq!(parse(b"[1e999]").unwrap_err().expected, "a finite float");
        assert!(parse(b"'\\q'").is_err());
        assert!(parse(&[b'['; 100]).is_err());
    }

    #[test]
    fn bytes_repr_matches_python() {
        assert_eq!(bytes_repr(b"A0 1\n"), "b'A0 1\\n'");
        assert_eq!(bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(bytes_repr(&[0, 0xff, b'\\']), "b'\\x00\\xff\\\\'");
    }

    #[test]
    fn float_repr_matches_python() {
        for (f, text) in [
            (1587413105.0, "1587413105.0"),
            (1587413105.9012375, "1587413105.9012375"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (-0.0, "-0.0"),
            (123456789012345.6, "123456789012345.6"),
        ] {
            let mut s = String::new();
            write_float(&mut s, f);
            assert_eq!(s, text);
        }
    }

    /// Compares with CPython itself for many epoch-time floats, when python3 is present.
    #[test]
    fn float_repr_matches_cpython() {
        let mut rng = crate::gen::Rng::new(11);
        let floats: Vec<f64> = (0..3000)
            .map(|i| match i % 3 {
                0 => 1.5e9 + rng.range(0, 1 << 40) as f64 / 1e4,
                1 => f64::from_bits(rng.next_u64() >> 2),
                _ => rng.range(0, 1 << 50) as f64 / 1e7,
            })
            .filter(|f| f.is_finite())
            .collect();
        let ours: Vec<String> = floats.iter().map(|&f| repr(&Value::Float(f))).collect();
        let script = "import sys\nfor l in sys.stdin: print(repr(float.fromhex(l.strip())))";
        let hex: String = floats
            .iter()
            .map(|f| format!("{}\n", hex_float(*f)))
            .collect();
        let Some((stdout, _)) = python::run(script, &hex) else {
            return; // no python3: the fixed cases above still hold
        };
        let theirs: Vec<&str> = stdout.lines().collect();
        assert_eq!(theirs.len(), ours.len());
        for (a, b) in ours.iter().zip(theirs) {
            assert_eq!(a, b);
        }
    }

    /// C99 hex float text, which Python's float.fromhex reads exactly.
    fn hex_float(f: f64) -> String {
        let bits = f.to_bits();
        let sign = if bits >> 63 == 1 { "-" } else { "" };
        let exp = ((bits >> 52) & 0x7ff) as i64;
        let mantissa = bits & ((1 << 52) - 1);
        if exp == 0 {
            format!("{sign}0x0.{mantissa:013x}p-1022")
        } else {
            format!("{sign}0x1.{mantissa:013x}p{}", exp - 1023)
        }
    }

    #[test]
    fn string_repr_matches_python_quoting() {
        for (s, text) in [
            ("plain", "'plain'"),
            ("it's", "\"it's\""),
            ("both ' and \"", "'both \\' and \"'"),
            ("tab\tnl\n\\", "'tab\\tnl\\n\\\\'"),
            ("\u{1}", "'\\x01'"),
            ("é", "'é'"),
        ] {
            let mut out = String::new();
            write_str(&mut out, s);
            assert_eq!(out, text);
            assert_eq!(parse(out.as_bytes()).unwrap(), Value::Str(s.to_string()));
        }
    }

    fn value_strategy() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::None),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| Value::Int(i128::from(i))),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::Float),
            any::<String>().prop_map(Value::Str),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
                prop::collection::vec(inner, 0..6).prop_map(Value::Tuple),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trips_generated_values(v in value_strategy()) {
            let text = repr(&v);
            let back = parse(text.as_bytes()).unwrap();
            prop_assert_eq!(repr(&back), text);
            prop_assert_eq!(back, v);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }
    }
}
