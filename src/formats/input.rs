//! Input files: one per routing key, `input-file.<K>.txt`, every line starting with its
//! key byte (spec section 2), and the `od -x` layout that generates them.
//!
//! [`OdWriter`] reproduces GNU `od -x` output with the key byte in front of every line:
//! a 7-digit (8 once past 0o7777777) octal address, eight little-endian 16-bit words in
//! lowercase hex, `*` for repeated 16-byte rows, and the final address line.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Key K's input in `dir`: `dir/input-file.K.txt`.
pub fn input_path(dir: &Path, key: u8) -> PathBuf {
    dir.join(format!("input-file.{}.txt", key as char))
}

/// Finds every `input-file.<K>.txt` in `dir` whose K is one byte, sorted by key.
pub fn discover_keys(dir: &Path) -> io::Result<Vec<u8>> {
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.as_encoded_bytes();
        if let Some(rest) = name.strip_prefix(b"input-file.") {
            if let Some(key) = rest.strip_suffix(b".txt") {
                if key.len() == 1 {
                    keys.push(key[0]);
                }
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// Why an input file cannot serve as a key's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error(
        "{path}:{line}: expected every line to start with the key byte {key:?}, found {found:?}"
    )]
    WrongKey {
        path: PathBuf,
        line: usize,
        key: char,
        found: String,
    },
}

/// Checks that every line of `bytes` starts with `key` (an empty file is fine).
pub fn check_lines_start_with_key(path: &Path, key: u8, bytes: &[u8]) -> Result<(), InputError> {
    let mut start = 0usize;
    let mut line = 1usize;
    while start < bytes.len() {
        if bytes[start] != key {
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |n| start + n);
            let shown = &bytes[start..end.min(start + 60)];
            return Err(InputError::WrongKey {
                path: path.to_path_buf(),
                line,
                key: key as char,
                found: String::from_utf8_lossy(shown).into_owned(),
            });
        }
        match memchr::memchr(b'\n', &bytes[start..]) {
            Some(n) => start += n + 1,
            None => break,
        }
        line += 1;
    }
    Ok(())
}

/// Writes `od -x`-style lines, each prefixed with the key byte, from a stream of bytes.
pub struct OdWriter<W: Write> {
    out: W,
    key: u8,
    address: u64,
    row: [u8; 16],
    row_len: usize,
    previous: Option<[u8; 16]>,
    suppressing: bool,
}

impl<W: Write> OdWriter<W> {
    pub fn new(out: W, key: u8) -> Self {
        OdWriter {
            out,
            key,
            address: 0,
            row: [0; 16],
            row_len: 0,
            previous: None,
            suppressing: false,
        }
    }

    /// Feeds more binary data.
    pub fn write_data(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let take = (16 - self.row_len).min(data.len());
            self.row[self.row_len..self.row_len + take].copy_from_slice(&data[..take]);
            self.row_len += take;
            data = &data[take..];
            if self.row_len == 16 {
                self.emit_full_row()?;
            }
        }
        Ok(())
    }

    fn emit_full_row(&mut self) -> io::Result<()> {
        let row = self.row;
        if self.previous == Some(row) {
            if !self.suppressing {
                self.out.write_all(&[self.key, b'*', b'\n'])?;
                self.suppressing = true;
            }
        } else {
            self.suppressing = false;
            self.write_row(&row, 16)?;
            self.previous = Some(row);
        }
        self.address += 16;
        self.row_len = 0;
        Ok(())
    }

    fn write_row(&mut self, row: &[u8; 16], len: usize) -> io::Result<()> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut line = Vec::with_capacity(64);
        line.push(self.key);
        write_address(&mut line, self.address);
        // od -x prints 2-byte words in host order (little-endian); an odd tail byte is
        // padded with zero.
        for word in 0..len.div_ceil(2) {
            let lo = row[word * 2];
            let hi = if word * 2 + 1 < len {
                row[word * 2 + 1]
            } else {
                0
            };
            line.push(b' ');
            for nibble in [hi >> 4, hi & 15, lo >> 4, lo & 15] {
                line.push(HEX[nibble as usize]);
            }
        }
        line.push(b'\n');
        self.out.write_all(&line)
    }

    /// Writes the last partial row and the final address line; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.row_len > 0 {
            let row = self.row;
            let len = self.row_len;
            self.write_row(&row, len)?;
            self.address += len as u64;
        }
        let mut line = vec![self.key];
        write_address(&mut line, self.address);
        line.push(b'\n');
        self.out.write_all(&line)?;
        Ok(self.out)
    }
}

fn write_address(line: &mut Vec<u8>, address: u64) {
    line.extend_from_slice(format!("{address:07o}").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn od(key: u8, data: &[u8]) -> String {
        let mut w = OdWriter::new(Vec::new(), key);
        w.write_data(data).unwrap();
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn layout_matches_od_x() {
        let data: Vec<u8> = (0u8..20).collect();
        assert_eq!(
            od(b'A', &data),
            "A0000000 0100 0302 0504 0706 0908 0b0a 0d0c 0f0e\nA0000020 1110 1312\nA0000024\n"
        );
        assert_eq!(od(b'B', &[1, 2, 3]), "B0000000 0201 0003\nB0000003\n");
        assert_eq!(od(b'C', &[]), "C0000000\n");
        let zeros = [0u8; 64];
        assert_eq!(
            od(b'Z', &zeros),
            "Z0000000 0000 0000 0000 0000 0000 0000 0000 0000\nZ*\nZ0000100\n"
        );
    }

    #[test]
    fn key_check_names_the_line() {
        let err = check_lines_start_with_key(Path::new("in"), b'A', b"A1\nA2\nB3\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "in:3: expected every line to start with the key byte 'A', found \"B3\""
        );
        check_lines_start_with_key(Path::new("in"), b'A', b"A1\nA2").unwrap();
    }
}
