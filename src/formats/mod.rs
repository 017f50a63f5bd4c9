//! Readers and writers of what the system under test leaves on disk: txnlog records
//! (strict Python-literal parsing, never eval), sink directory discovery, input files,
//! and the two rules every reader follows: only regular files are opened ([`regular`]),
//! and lines are framed with a bound ([`lines`]).

pub mod input;
pub mod lines;
pub mod mapped;
pub mod pyliteral;
pub mod regular;
pub mod sinkdir;
pub mod text;
pub mod txnlog;
