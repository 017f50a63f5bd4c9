//! The embedded system under test: wire-compatible sink, passthrough workers and
//! feeds (spec sections 3-6), so soakcheck works out of the box.

pub mod cluster;
pub mod control;
pub mod feed;
pub mod log;
pub mod sink;
pub mod state;
pub mod worker;
