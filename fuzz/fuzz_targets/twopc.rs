//! Fuzzes the 2PC inner frames (the payloads of stream-0 messages between a worker and
//! the sink): any payload gives a message or an error, and every message that decodes
//! re-encodes to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soakcheck::wire::connector::TwoPc;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = TwoPc::decode(data) {
        let again = TwoPc::decode(&msg.encode()).expect("an encoded message decodes");
        assert_eq!(again, msg);
    }
});
