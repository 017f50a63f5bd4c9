//! The embedded system under test.
