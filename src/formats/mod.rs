//! Readers and writers of what the system under test leaves on disk: txnlog records
//! (strict Python-literal parsing, never eval), sink directory discovery, input files.

pub mod input;
pub mod mapped;
pub mod pyliteral;
pub mod sinkdir;
pub mod txnlog;
