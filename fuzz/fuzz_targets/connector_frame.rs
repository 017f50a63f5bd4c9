//! Fuzzes the connector framing and frame decoder: any bytes read as a stream of
//! length-prefixed frames must give frames or errors (never a panic, a hang or an
//! allocation past the frame limit), and every frame that decodes must re-encode to
//! bytes that decode to the same frame (readers accept a few spec'd variants, such as a
//! RESTART with an empty body, that writers never send).
#![no_main]

use libfuzzer_sys::fuzz_target;
use soakcheck::wire::connector::Frame;
use soakcheck::wire::read_frame;

fuzz_target!(|data: &[u8]| {
    let _ = Frame::decode(data);
    let mut reader = data;
    while let Ok(body) = read_frame(&mut reader) {
        if let Ok(frame) = Frame::decode(&body) {
            let again = Frame::decode(&frame.encode()).expect("an encoded frame decodes");
            assert_eq!(again, frame);
        }
    }
});
