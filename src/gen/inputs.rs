//! `soakcheck gen inputs`: one input file per key in the original layout (spec section
//! 2): the key byte in front of every line of `od -x` over N bytes of seeded
//! pseudo-random data (or of a given file), ending with od's final address line.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{write_atomically, Rng};
use crate::formats::input::{input_path, OdWriter};

/// Where the binary data comes from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// Seeded pseudo-random bytes; each key gets its own stream.
    Seeded(u64),
    /// The first N bytes of a file, the same for every key (as the original does).
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum GenInputsError {
    #[error("{path}: cannot read source data: {source}")]
    Source {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: has only {have} bytes, {want} were asked for")]
    ShortSource { path: PathBuf, have: u64, want: u64 },
    #[error("{path}: cannot write input file: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes `dir/input-file.K.txt` for every key; returns the paths.
pub fn generate_inputs(
    keys: &[u8],
    bytes: u64,
    dir: &Path,
    source: &DataSource,
) -> Result<Vec<PathBuf>, GenInputsError> {
    std::fs::create_dir_all(dir).map_err(|source| GenInputsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let data_file = match source {
        DataSource::File(path) => {
            let mut data = Vec::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(bytes).read_to_end(&mut data))
                .map_err(|source| GenInputsError::Source {
                    path: path.clone(),
                    source,
                })?;
            if (data.len() as u64) < bytes {
                return Err(GenInputsError::ShortSource {
                    path: path.clone(),
                    have: data.len() as u64,
                    want: bytes,
                });
            }
            Some(data)
        }
        DataSource::Seeded(_) => None,
    };
    keys.iter()
        .map(|&key| {
            let path = input_path(dir, key);
            write_atomically(&path, |out| {
                let mut od = OdWriter::new(out, key);
                match (&data_file, source) {
                    (Some(data), _) => od.write_data(data)?,
                    (None, DataSource::Seeded(seed)) => {
                        let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(u64::from(key)));
                        let mut block = vec![0u8; 1 << 16];
                        let mut left = bytes;
                        while left > 0 {
                            let n = left.min(block.len() as u64) as usize;
                            rng.fill(&mut block[..n]);
                            od.write_data(&block[..n])?;
                            left -= n as u64;
                        }
                    }
                    (None, DataSource::File(_)) => unreachable!("file data was read above"),
                }
                od.finish()?.flush()
            })
            .map_err(|source| GenInputsError::Write {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_input_has_the_original_size_and_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let paths = generate_inputs(b"A", 4_000_000, dir.path(), &DataSource::Seeded(7)).unwrap();
        let text = std::fs::read(&paths[0]).unwrap();
        assert_eq!(text.len(), 12_368_938);
        assert_eq!(&text[12_368_928..], b"A17204400\n");
        assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), 250_001);
        assert_eq!(&text[49 * 131_071..49 * 131_071 + 8], b"A7777760");
        assert_eq!(&text[6_422_528..6_422_528 + 9], b"A10000000");
    }

    #[test]
    fn matches_od_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let data_path = dir.path().join("data.bin");
        let mut data = vec![0u8; 5000];
        Rng::new(3).fill(&mut data);
        data[1000..1064].fill(0); // a repeated row for od's `*`
        std::fs::write(&data_path, &data).unwrap();
        let Ok(od) = std::process::Command::new("od")
            .arg("-x")
            .arg(&data_path)
            .output()
        else {
            // od is not installed: the layout unit tests still cover this, but CI must
            // compare with the real thing (scripts/test installs it).
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "od is needed in CI"
            );
            return;
        };
        let expected: Vec<u8> = od
            .stdout
            .split_inclusive(|&b| b == b'\n')
            .flat_map(|line| std::iter::once(b'K').chain(line.iter().copied()))
            .collect();
        let paths =
            generate_inputs(b"K", 4999, dir.path(), &DataSource::File(data_path.clone())).unwrap();
        let od_odd = std::process::Command::new("od")
            .args(["-x", "-N", "4999"])
            .arg(&data_path)
            .output()
            .unwrap();
        let expected_odd: Vec<u8> = od_odd
            .stdout
            .split_inclusive(|&b| b == b'\n')
            .flat_map(|line| std::iter::once(b'K').chain(line.iter().copied()))
            .collect();
        assert_eq!(std::fs::read(&paths[0]).unwrap(), expected_odd);
        generate_inputs(b"K", 5000, dir.path(), &DataSource::File(data_path)).unwrap();
        assert_eq!(std::fs::read(&paths[0]).unwrap(), expected);
    }
}
