//! The worker's durable checkpoint state: the last committed checkpoint, the sink offset
//! it committed, every source stream's point of reference, and the decided transaction.
//!
//! It is the commit point of the worker's 2PC round: written atomically (temp file,
//! fsync, rename, fsync of the directory) after the sink voted commit and before PHASE2
//! is sent, so a worker restarted at any instant knows whether a transaction the sink
//! still has pending was committed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamState {
    pub name: String,
    /// Last checkpointed message id (inclusive); None before any checkpoint.
    pub por: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointState {
    /// Checkpoint id of the last committed transaction (0 = none).
    pub checkpoint: u64,
    /// Sink output offset committed by it.
    pub sink_committed: u64,
    /// Its txn id, to resolve the sink's uncommitted list after a crash.
    pub decided_txn: Option<String>,
    pub streams: BTreeMap<u64, StreamState>,
    /// Fault injection already done (so a restart does not inject twice).
    #[serde(default)]
    pub injected: bool,
    /// The worker this state belongs to, and its run: a worker handed another worker's
    /// (or another run's) state refuses it rather than corrupt both.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub run_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a worker state file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: the state of {owner} (run {run}), not of {name} (run {our_run}): give each worker its own --state-dir")]
    NotOurs {
        path: PathBuf,
        owner: String,
        run: String,
        name: String,
        our_run: String,
    },
}

/// Loads `name`'s state of run `run_id` from `dir`; refuses the state of another worker
/// or another run (state written before owners were recorded is taken as ours).
pub fn load_owned(
    dir: &Path,
    name: &str,
    run_id: Option<&str>,
) -> Result<CheckpointState, StateError> {
    let state = load(dir)?;
    let owner_differs = state.owner.as_deref().is_some_and(|o| o != name);
    let run_differs = state.owner.is_some() && state.run_id.as_deref() != run_id;
    if owner_differs || run_differs {
        let show = |r: Option<&str>| r.unwrap_or("none").to_string();
        return Err(StateError::NotOurs {
            path: state_path(dir),
            owner: show(state.owner.as_deref()),
            run: show(state.run_id.as_deref()),
            name: name.to_string(),
            our_run: show(run_id),
        });
    }
    Ok(CheckpointState {
        owner: Some(name.to_string()),
        run_id: run_id.map(str::to_string),
        ..state
    })
}

pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.json")
}

/// Loads the state, or the empty state when there is none yet.
pub fn load(dir: &Path) -> Result<CheckpointState, StateError> {
    let path = state_path(dir);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| StateError::Parse { path, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CheckpointState::default()),
        Err(source) => Err(StateError::Io { path, source }),
    }
}

/// Writes the state atomically and durably.
pub fn store(dir: &Path, state: &CheckpointState) -> Result<(), StateError> {
    let path = state_path(dir);
    let io = |source| StateError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join("checkpoint.json.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&serde_json::to_vec(state).expect("state serializes"))
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), CheckpointState::default());
        let mut s = CheckpointState {
            checkpoint: 3,
            sink_committed: 147,
            decided_txn: Some("T:c_id=3".into()),
            ..Default::default()
        };
        s.streams.insert(
            7,
            StreamState {
                name: "/tmp/input-file.A.txt".into(),
                por: Some(98),
            },
        );
        store(dir.path(), &s).unwrap();
        assert_eq!(load(dir.path()).unwrap(), s);
        // Taken by worker1 of run r1, it is refused to anyone else.
        let owned = load_owned(dir.path(), "worker1", Some("r1")).unwrap();
        store(dir.path(), &owned).unwrap();
        assert!(load_owned(dir.path(), "worker1", Some("r1")).is_ok());
        for (name, run) in [
            ("worker2", Some("r1")),
            ("worker1", Some("r2")),
            ("worker1", None),
        ] {
            let e = load_owned(dir.path(), name, run).unwrap_err().to_string();
            assert!(e.contains("the state of worker1 (run r1)"), "{e}");
        }
        assert!(!dir.path().join("checkpoint.json.tmp").exists());
        std::fs::write(state_path(dir.path()), b"{").unwrap();
        assert!(load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("not a worker state file"));
    }
}
