//! Sink directory discovery (wallaroo-formats.md §6.1): every `*.txnlog` file names an output file, the
//! txnlog path without its `.txnlog` suffix, exactly as the original verifier finds them.
//! Renamed pairs of workers that left (`output.<W>.<time>` and `.txnlog`) are found the
//! same way and read like any other pair.

use std::path::{Path, PathBuf};

/// The sink directory's name in a run directory (and in a post-mortem bundle).
pub const SINK_OUT: &str = "sink-out";

/// One output file and its txnlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPair {
    /// The output file name relative to the sink directory, e.g. `output.worker1`.
    pub name: String,
    pub output: PathBuf,
    pub txnlog: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkDirError {
    #[error("{path}: cannot read sink directory: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a directory")]
    NotADirectory { path: PathBuf },
    #[error("{path}: file name is not UTF-8; sink output names are ASCII worker names")]
    NonUtf8Name { path: PathBuf },
}

/// What a sink directory holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkListing {
    /// The output/txnlog pairs, sorted by output name (the order the original tie-breaks
    /// commits in).
    pub pairs: Vec<OutputPair>,
    /// Output files (`output.*`) with no txnlog: nothing of them is committed, so nothing
    /// of them is checked, which the report says rather than ignore them silently.
    pub untracked: Vec<String>,
}

/// Whether `name` is a sink output file's name: `output.<W>` or a renamed
/// `output.<W>.<T>`, not a txnlog, a sink diagnostic copy or the original verifier's
/// own files (wallaroo-formats.md §6.5).
fn is_output_name(name: &str) -> bool {
    name.starts_with("output.")
        && !name.ends_with(".txnlog")
        && !name.ends_with(".diag")
        && name != "output.concatenated"
        && name != "output.concatenated.mapping"
}

/// Lists the output/txnlog pairs of `dir` and its output files without a txnlog.
pub fn discover(dir: &Path) -> Result<SinkListing, SinkDirError> {
    let io = |source| SinkDirError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.is_dir() {
        if dir.exists() {
            return Err(SinkDirError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such directory",
        )));
    }
    let mut pairs = Vec::new();
    let mut outputs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            if file_name.as_encoded_bytes().ends_with(b".txnlog") {
                return Err(SinkDirError::NonUtf8Name { path: entry.path() });
            }
            continue;
        };
        let Some(output_name) = name.strip_suffix(".txnlog") else {
            if is_output_name(name) {
                outputs.push(name.to_string());
            }
            continue;
        };
        if output_name.is_empty() {
            continue;
        }
        pairs.push(OutputPair {
            name: output_name.to_string(),
            output: dir.join(output_name),
            txnlog: entry.path(),
        });
    }
    pairs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut untracked: Vec<String> = outputs
        .into_iter()
        .filter(|o| !pairs.iter().any(|p| &p.name == o))
        .collect();
    untracked.sort();
    Ok(SinkListing { pairs, untracked })
}
