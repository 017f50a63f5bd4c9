//! Read-only access to a whole file as one byte slice: a memory map when possible, a
//! plain read otherwise (or when the caller asks for it, so tests can run every case
//! through both paths, as ripgrep's tester does).
//!
//! Mapping is only safe for files that do not shrink while mapped (a shrink turns an
//! access past the new end into SIGBUS). `verify` reads saved directories; live
//! directories must only map committed ranges, which never shrink.

use std::path::Path;

use memmap2::Mmap;

use super::regular::open_regular;

/// How file contents are brought into memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IoMode {
    /// Memory-map files, falling back to reading when mapping fails.
    #[default]
    Mmap,
    /// Read files into memory.
    Read,
}

impl crate::choice::Choice for IoMode {
    const CHOICES: &'static [(Self, &'static str)] = &[
        (
            IoMode::Mmap,
            "Memory-map files, falling back to reading when mapping fails",
        ),
        (IoMode::Read, "Read files into memory"),
    ];
}

crate::display_as_choice!(IoMode);

/// The contents of a file.
pub enum FileBytes {
    Mapped(Mmap),
    Read(Vec<u8>),
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Read(v) => v,
        }
    }
}

impl FileBytes {
    /// Opens `path` (a regular file only: see [`open_regular`]) and brings its current
    /// contents into memory per `mode`.
    pub fn open(path: &Path, mode: IoMode) -> std::io::Result<FileBytes> {
        let mut file = open_regular(path)?;
        let len = file.metadata()?.len();
        if mode == IoMode::Mmap && len > 0 {
            // SAFETY: the file is mapped read-only. Callers only map files that are not
            // being truncated (saved sink directories and input files); see module docs.
            if let Ok(map) = unsafe { memmap2::MmapOptions::new().len(len as usize).map(&file) } {
                // Measured against MAP_POPULATE, MADV_WILLNEED, no advice and reading
                // whole files into memory, on `bench verify`'s data at 4, 16 and 64 KB
                // commits: populating costs 4-6 ms more (it maps every page up front,
                // on one thread, before the two threads compare), reading costs twice
                // the time, and the advice makes no difference (docs/performance.md).
                #[cfg(unix)]
                let _ = map.advise(memmap2::Advice::Sequential);
                return Ok(FileBytes::Mapped(map));
            }
        }
        let mut bytes = Vec::with_capacity(len as usize);
        std::io::Read::read_to_end(&mut file, &mut bytes)?;
        Ok(FileBytes::Read(bytes))
    }
}
