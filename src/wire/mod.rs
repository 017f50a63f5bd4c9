//! Wire protocols (spec sections 3 and 8): connector frames and messages, the 2PC inner
//! frames carried on stream 0, and the external channel. Decoders never panic: a
//! malformed or truncated frame is a [`WireError`], and callers close the connection.

pub mod connector;
pub mod external;

use std::io::{self, Read, Write};

/// Frames larger than this are refused (the originals have no limit; a line protocol
/// never needs more, and a limit keeps a corrupt length from allocating gigabytes).
pub const MAX_FRAME: u32 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {0} bytes is larger than the {MAX_FRAME}-byte limit")]
    TooLarge(u32),
    #[error("empty frame (length 0)")]
    Empty,
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("unknown {what} tag {tag}")]
    UnknownTag { what: &'static str, tag: u8 },
}

/// Reads one u32-length-prefixed frame body (the bytes after the length).
pub fn read_frame(reader: &mut impl Read) -> Result<Vec<u8>, WireError> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len == 0 {
        return Err(WireError::Empty);
    }
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let mut body = vec![0u8; len as usize];
    reader.read_exact(&mut body)?;
    Ok(body)
}

/// Writes a body with its u32 length prefix.
pub fn write_frame(writer: &mut impl Write, body: &[u8]) -> io::Result<()> {
    writer.write_all(&(body.len() as u32).to_be_bytes())?;
    writer.write_all(body)
}

/// A cursor over a frame body that turns short reads into [`WireError::Malformed`].
pub(crate) struct Body<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Body<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Body { bytes, what }
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], WireError> {
        if self.bytes.len() < n {
            return Err(WireError::Malformed {
                what: self.what,
                detail: format!("{field} needs {n} bytes, {} left", self.bytes.len()),
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, field: &str) -> Result<u8, WireError> {
        Ok(self.take(1, field)?[0])
    }
    pub(crate) fn u16(&mut self, field: &str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(
            self.take(2, field)?.try_into().expect("2 bytes"),
        ))
    }
    pub(crate) fn u32(&mut self, field: &str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(
            self.take(4, field)?.try_into().expect("4 bytes"),
        ))
    }
    pub(crate) fn u64(&mut self, field: &str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(
            self.take(8, field)?.try_into().expect("8 bytes"),
        ))
    }
    pub(crate) fn i64(&mut self, field: &str) -> Result<i64, WireError> {
        Ok(i64::from_be_bytes(
            self.take(8, field)?.try_into().expect("8 bytes"),
        ))
    }
    /// bool8: writers emit 0/1; like the Pony reader, any nonzero byte reads as true.
    pub(crate) fn bool8(&mut self, field: &str) -> Result<bool, WireError> {
        Ok(self.u8(field)? != 0)
    }
    /// A bool8 whose readers disagree on bytes other than 0 and 1 (wallaroo-formats.md §3.7: Python's
    /// REPLY/PHASE2 reader takes only 0x01 as true, Pony any nonzero byte): anything
    /// else is malformed, never guessed, since a guess could commit what the original
    /// sink rolls back.
    pub(crate) fn strict_bool8(&mut self, field: &str) -> Result<bool, WireError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(WireError::Malformed {
                what: self.what,
                detail: format!("{field} is {other}, not 0 or 1"),
            }),
        }
    }
    pub(crate) fn sstr(&mut self, field: &str) -> Result<Vec<u8>, WireError> {
        let n = self.u16(field)? as usize;
        Ok(self.take(n, field)?.to_vec())
    }
    pub(crate) fn lstr(&mut self, field: &str) -> Result<Vec<u8>, WireError> {
        let n = self.u32(field)? as usize;
        Ok(self.take(n, field)?.to_vec())
    }
    pub(crate) fn text(&mut self, field: &str) -> Result<String, WireError> {
        let bytes = self.sstr(field)?;
        String::from_utf8(bytes).map_err(|_| WireError::Malformed {
            what: self.what,
            detail: format!("{field} is not UTF-8"),
        })
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
    pub(crate) fn end(&self) -> Result<(), WireError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(WireError::Malformed {
                what: self.what,
                detail: format!("{} trailing bytes", self.bytes.len()),
            })
        }
    }
}

pub(crate) fn put_sstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(&s[..s.len().min(u16::MAX as usize)]);
}
