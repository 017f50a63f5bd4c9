//! Fuzzes the 2PC inner frames (the payloads of stream-0 messages between a worker and
//! the sink): any payload gives a message or an error, and every message that decodes
//! encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soakcheck::wire::connector::TwoPc;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = TwoPc::decode(data) {
        assert_eq!(msg.encode(), data, "{msg:?} re-encodes to its own bytes");
    }
});
