//! Fuzzes the external channel: any bytes read as a stream of messages give messages or
//! errors, and every cluster-status reply decodes to a status or an error, never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soakcheck::wire::external::{decode_status_reply, read_message};

fuzz_target!(|data: &[u8]| {
    let mut reader = data;
    while let Ok((id, payload)) = read_message(&mut reader) {
        let _ = decode_status_reply(id, &payload);
    }
});
