//! soakcheck: proves a stream processor kept its exactly-once promise while it is crashed
//! on purpose.
//!
//! The library holds everything; `src/main.rs` only parses arguments and maps outcomes to
//! exit codes (0 pass, 1 violation, 2 could not check).
//! - [`formats`]: what the system under test leaves on disk (txnlogs, sink directories,
//!   input files), read strictly and written byte-compatibly.
//! - [`verify`]: the incremental checker core and the offline verifier built on it.
//! - [`gen`]: input files and sink directories for tests, benches and demos.
//! - [`bench`]: throughput measurements reported as ratios to `cmp`.

pub mod bench;
pub mod demo;
pub mod driver;
pub mod duration;
pub mod formats;
pub mod gen;
pub mod verify;
pub mod watch;
pub mod wire;
