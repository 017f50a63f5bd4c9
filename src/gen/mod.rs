//! Generators for tests, benches and demos: input files in the original layout
//! ([`inputs`]) and sink directories in the real format ([`sink`]).
//!
//! Both are deterministic for a seed, through [`Rng`], a small generator of our own so
//! that the same seed gives the same bytes whatever crate versions are in use.

pub mod inputs;
pub mod sink;

/// SplitMix64: tiny, fast, and stable forever (its output is fixed by its definition).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5eed_50a4_c4ec_4b00)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi);
        lo + ((u128::from(self.next_u64()) * u128::from(hi - lo + 1)) >> 64) as u64
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory (a new
/// name, made exclusively, so nothing already there is written through), fsync, then
/// rename, so a reader never sees a half-written file and a failure loses nothing.
/// What is at `path` is never replaced by something else: `/dev/stdout` and
/// `/dev/stderr` are this process's own streams (whatever file they are), a device, FIFO
/// or socket is written into, and a symlink is followed, so the link stays and its
/// target is replaced.
pub fn write_atomically(
    path: &std::path::Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    match std::fs::read_link(path)
        .ok()
        .as_deref()
        .and_then(|t| t.to_str())
    {
        Some("/proc/self/fd/1") => return write_stream(&mut std::io::stdout().lock(), write),
        Some("/proc/self/fd/2") => return write_stream(&mut std::io::stderr().lock(), write),
        _ => {}
    }
    let linked;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match std::fs::metadata(path) {
            Ok(target) if !target.is_file() && !target.is_dir() => return write_into(path, write),
            Ok(_) => {
                linked = std::fs::canonicalize(path)?;
                &linked
            }
            // A dangling link: its target is made where the link points.
            Err(_) => {
                linked = resolve_link(path)?;
                &linked
            }
        },
        Ok(m) if !m.is_file() && !m.is_dir() => return write_into(path, write),
        _ => path,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
    write(&mut out)?;
    std::io::Write::flush(&mut out)?;
    drop(out);
    // A file for reading, like every other the tools write (a temporary file is 0600).
    let readable = std::os::unix::fs::PermissionsExt::from_mode(0o644);
    tmp.as_file().set_permissions(readable)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// Writes into one of this process's own streams.
fn write_stream(
    stream: &mut dyn std::io::Write,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stream);
    write(&mut out)?;
    std::io::Write::flush(&mut out)
}

/// Writes straight into what is at `path` (a device, FIFO or socket: nothing to rename).
fn write_into(
    path: &std::path::Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    write(&mut out)?;
    std::io::Write::flush(&mut out)
}

/// Where a symlink points (relative to the link's directory), one step.
fn resolve_link(path: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let target = std::fs::read_link(path)?;
    Ok(match path.parent() {
        Some(dir) if target.is_relative() => dir.join(target),
        _ => target,
    })
}
