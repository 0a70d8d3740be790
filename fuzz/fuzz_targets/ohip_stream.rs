//! OHIP Streaming: any bytes as a `next` frame, through the frame's JSON and the event's
//! normalization, and any text as an Oracle timestamp. Nothing may panic; an event that
//! normalizes carries a digit-string offset.
#![no_main]

use jiff::Timestamp;
use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;
use porter_providers::event::Origin;
use porter_providers::oracle_ohip_stream::{is_offset, normalize, oracle_time};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = oracle_time(text, &TimeZone::UTC);
    }
    let Ok(frame) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let origin = Origin {
        source_name: "opera",
        provider: "oracle_ohip_stream",
        received_at: Timestamp::UNIX_EPOCH,
    };
    for event in [&frame["payload"]["data"]["newEvent"], &frame] {
        if let Ok(stream) = normalize(&origin, event, "CHAIN1", &TimeZone::UTC) {
            assert!(is_offset(&stream.offset));
            assert!(!stream.normalized.dedupe_key.is_empty());
        }
    }
});
