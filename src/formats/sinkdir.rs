//! Sink directory discovery (spec 6.1): every `*.txnlog` file names an output file, the
//! txnlog path without its `.txnlog` suffix, exactly as the original verifier finds them.
//! Renamed pairs of workers that left (`output.<W>.<time>` and `.txnlog`) are found the
//! same way and read like any other pair.

use std::path::{Path, PathBuf};

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

/// Lists the output/txnlog pairs of `dir`, sorted by output name (the order the original
/// tie-breaks commits in).
pub fn discover(dir: &Path) -> Result<Vec<OutputPair>, SinkDirError> {
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
    Ok(pairs)
}
