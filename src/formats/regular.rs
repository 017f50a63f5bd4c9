//! Opening the files soakcheck reads, safely: only regular files (after symlinks), and
//! never a blocking `open`.
//!
//! A FIFO where a txnlog, output, input or log is expected would block `open` (and every
//! read after it) forever; a character device such as `/dev/zero` never ends, so reading
//! it "to the end" exhausts memory or spins. So a path is stat'ed first, and a file that
//! is not regular is refused with an error naming what it is. The open itself uses
//! `O_NONBLOCK` and the descriptor is checked again with `fstat`, so a regular file
//! swapped for a FIFO between the two calls still cannot block us.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What a non-regular file is, for the error.
fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// The error for a path that exists but is not a regular file.
fn not_regular(meta: &Metadata) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "is {}, not a regular file (soakcheck reads only regular files)",
            kind_of(meta)
        ),
    )
}

/// An error unless `meta` (of a path, after symlinks) is a regular file's.
pub fn require_regular(meta: &Metadata) -> io::Result<()> {
    if meta.is_file() {
        Ok(())
    } else {
        Err(not_regular(meta))
    }
}

/// `Ok(None)` when `path` does not exist, its metadata when it is a regular file (after
/// symlinks), an error otherwise.
pub fn stat_regular(path: &Path) -> io::Result<Option<Metadata>> {
    match std::fs::metadata(path) {
        Ok(meta) => require_regular(&meta).map(|()| Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens `path` for reading if it is a regular file, never blocking.
pub fn open_regular(path: &Path) -> io::Result<File> {
    require_regular(&std::fs::metadata(path)?)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    require_regular(&file.metadata()?)?;
    Ok(file)
}

/// Reads all of `path`, a regular file of at most `limit` bytes: a larger one is an
/// error saying so, after reading at most `limit` + 1 bytes of it (a file growing under
/// us cannot make this read without end).
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("is more than {limit} bytes, more than such a file can be"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_fifos_devices_and_directories_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (zero.as_path(), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let e = open_regular(path).unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
            assert!(stat_regular(path).is_err());
        }
        let file = dir.path().join("f");
        std::fs::write(&file, b"x\n").unwrap();
        assert!(open_regular(&file).is_ok());
        assert_eq!(stat_regular(&file).unwrap().unwrap().len(), 2);
        assert!(stat_regular(&dir.path().join("missing")).unwrap().is_none());
        assert_eq!(read_regular(&file, 2).unwrap(), b"x\n");
        let e = read_regular(&file, 1).unwrap_err().to_string();
        assert!(e.contains("more than 1 bytes"), "{e}");
        assert!(read_regular(&zero, 100)
            .unwrap_err()
            .to_string()
            .contains("a character device"));
    }
}
