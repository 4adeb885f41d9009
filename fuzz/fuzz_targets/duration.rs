//! Fuzz target: the ISO 8601 duration parser and formatter.
//!
//! Properties: parsing any text never panics; whatever parses, formats to text that parses back
//! to the same duration, and that text is a fixed point of format-after-parse; and any whole
//! number of seconds (the first eight bytes) survives a format-parse round trip, up to `u64::MAX`.

#![no_main]

use blob2batch::duration::{format_iso8601, parse_iso8601};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(duration) = parse_iso8601(text)
    {
        round_trip(duration);
    }
    if let Some(seconds) = data.first_chunk::<8>() {
        round_trip(Duration::from_secs(u64::from_le_bytes(*seconds)));
    }
});

fn round_trip(duration: Duration) {
    let text = format_iso8601(duration);
    let back = parse_iso8601(&text);
    assert_eq!(
        back,
        Some(Duration::from_secs(duration.as_secs())),
        "{text}"
    );
    assert_eq!(format_iso8601(back.unwrap()), text);
}
