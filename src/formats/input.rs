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

/// Checks that every line of `bytes` starts with `key` (an empty file is fine); returns
/// the number of LFs. This runs on every input while verification goes on, so it is one
/// pass a word at a time ([`scan_lines`]); lines are counted again only to name a wrong
/// one.
pub fn check_lines_start_with_key(path: &Path, key: u8, bytes: &[u8]) -> Result<u64, InputError> {
    let scan = scan_lines(key, bytes);
    match scan.first_wrong {
        None => Ok(scan.lfs),
        Some(start) => Err(wrong_key(path, key, bytes, start)),
    }
}

/// The error for the line of `bytes` (the input at `path`) that starts at `start` and
/// does not start with `key`: its line number and its first bytes.
pub fn wrong_key(path: &Path, key: u8, bytes: &[u8], start: usize) -> InputError {
    let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |n| start + n);
    InputError::WrongKey {
        path: path.to_path_buf(),
        line: memchr::memchr_iter(b'\n', &bytes[..start]).count() + 1,
        key: key as char,
        found: String::from_utf8_lossy(&bytes[start..end.min(start + 60)]).into_owned(),
    }
}

/// What one pass over an input finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineScan {
    /// LF bytes (the input's complete lines).
    pub lfs: u64,
    /// The start of the first line whose first byte is not the key.
    pub first_wrong: Option<usize>,
}

/// One pass over `bytes`: counts LFs and finds the first line that does not start with
/// `key`. Sixteen bytes a step with SSE2 (every x86-64 has it), else LF by LF.
pub fn scan_lines(key: u8, bytes: &[u8]) -> LineScan {
    if bytes.first().is_some_and(|&b| b != key) {
        return LineScan {
            lfs: 0,
            first_wrong: Some(0),
        };
    }
    #[cfg(target_arch = "x86_64")]
    let (i, lfs) = scan_sse2(key, bytes);
    #[cfg(not(target_arch = "x86_64"))]
    let (i, lfs) = (0, 0);
    scan_bytes(key, bytes, i, lfs)
}

/// LF by LF from `i` (the tail, or where the SSE2 scan stopped), with `lfs` LFs counted
/// before it.
fn scan_bytes(key: u8, bytes: &[u8], i: usize, mut lfs: u64) -> LineScan {
    for j in memchr::memchr_iter(b'\n', &bytes[i..]).map(|j| i + j) {
        if bytes.get(j + 1).is_some_and(|&b| b != key) {
            return LineScan {
                lfs,
                first_wrong: Some(j + 1),
            };
        }
        lfs += 1;
    }
    LineScan {
        lfs,
        first_wrong: None,
    }
}

/// Sixteen bytes at a time with SSE2: the LF mask of a block, and the mask of bytes one
/// on that are not the key. Returns where it stopped (at a block holding a wrong line,
/// or where fewer than 17 bytes are left) and the LFs before that.
#[cfg(target_arch = "x86_64")]
fn scan_sse2(key: u8, bytes: &[u8]) -> (usize, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let (mut i, mut lfs) = (0, 0u64);
    // SAFETY: SSE2 is part of x86-64; every load reads 16 bytes inside `bytes`
    // (`i + 17 <= len` covers the load at `i + 1`).
    unsafe {
        let (lf, keys) = (_mm_set1_epi8(b'\n' as i8), _mm_set1_epi8(key as i8));
        let load = |at: usize| _mm_loadu_si128(bytes.as_ptr().add(at).cast::<__m128i>());
        while i + 17 <= bytes.len() {
            let lf_mask = _mm_movemask_epi8(_mm_cmpeq_epi8(load(i), lf)) as u32;
            let key_mask = _mm_movemask_epi8(_mm_cmpeq_epi8(load(i + 1), keys)) as u32;
            if lf_mask & !key_mask & 0xffff != 0 {
                break;
            }
            lfs += u64::from(lf_mask.count_ones());
            i += 16;
        }
    }
    (i, lfs)
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

    #[test]
    fn finds_the_first_line_of_another_key_at_every_position() {
        let wrong = |bytes: &[u8]| scan_lines(b'A', bytes).first_wrong;
        for len in 0..40 {
            let mut bytes: Vec<u8> = (0..len)
                .map(|i| if i % 5 == 4 { b'\n' } else { b'A' })
                .collect();
            assert_eq!(wrong(&bytes), None, "{len}");
            assert_eq!(scan_lines(b'A', &bytes).lfs, (len / 5) as u64, "{len}");
            let starts: Vec<usize> = (0..len)
                .filter(|&i| i == 0 || bytes[i - 1] == b'\n')
                .collect();
            for at in starts {
                let saved = bytes[at];
                bytes[at] = b'B';
                assert_eq!(wrong(&bytes), Some(at), "{len} {at}");
                bytes[at] = saved;
            }
        }
        // A byte that is not a LF never counts as a line end (no false positives).
        let bytes = b"A\x8a\x0bB\x0aAx\n\x89B";
        assert_eq!(wrong(bytes), Some(8));
    }

    /// The scan this machine uses agrees with the portable LF-by-LF scan on every input.
    #[test]
    fn the_fast_scan_agrees_with_the_portable_scan() {
        let mut rng = crate::gen::Rng::new(9);
        for len in 0..200 {
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| match rng.range(0, 9) {
                    0..=1 => b'\n',
                    2 => 0x8a,
                    3 => b'B',
                    _ => b'A',
                })
                .collect();
            if let Some(b) = bytes.first_mut() {
                *b = b'A';
            }
            assert_eq!(
                scan_lines(b'A', &bytes),
                scan_bytes(b'A', &bytes, 0, 0),
                "{bytes:?}"
            );
        }
    }

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
