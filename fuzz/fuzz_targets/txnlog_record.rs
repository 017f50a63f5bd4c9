//! Fuzzes the strict txnlog parser: any bytes must give a record or an error (never a
//! panic, a hang or unbounded memory), and every record that parses must be written back
//! by `format_record` as a line that parses to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soakcheck::formats::txnlog::{format_record, parse_record, parse_txnlog};

fuzz_target!(|data: &[u8]| {
    let _ = parse_txnlog(std::path::Path::new("fuzz.txnlog"), data);
    if let Ok((time, record)) = parse_record(data) {
        let line = format_record(time, &record);
        let (time2, record2) = parse_record(line.trim_end_matches('\n').as_bytes()).expect("written records parse");
        assert_eq!(record, record2);
        assert!(time2 == time || (time.is_nan() && time2.is_nan()));
        assert_eq!(format_record(time2, &record2), line);
    }
});
