//! Fuzz target: the dead-letter blob reader (`read_dead_letter_blob`), which `redrive` runs on
//! whatever it finds in the dead-letter container.
//!
//! Properties: it never panics; text that is not JSON is `NotJson`; otherwise it reads the same
//! events as a webhook delivery of the same items would give, each with the facts a plain reading
//! finds (the Event Grid schema's camel-case name first, then the CloudEvents attribute), or fails
//! on the first item that is not an event, by its index. Whatever the error says becomes a valid
//! metadata value once made header-safe, as a quarantined blob's reason is.

#![no_main]

use blob2batch::deadletter::{DeadLetterError, DeadLetterFacts, read_dead_letter_blob};
use blob2batch::event::parse_event;
use blob2batch::headers::header_safe;
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|bytes: &[u8]| {
    let read = read_dead_letter_blob(bytes);
    if let Err(error) = &read {
        assert!(HeaderValue::from_str(&header_safe(&error.to_string())).is_ok());
    }
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        assert!(matches!(read, Err(DeadLetterError::NotJson(_))), "{read:?}");
        return;
    };
    let items = match value {
        Value::Array(items) if items.is_empty() => {
            assert_eq!(read, Err(DeadLetterError::Empty));
            return;
        }
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut expected = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let facts = facts(&item);
        match parse_event(item) {
            Ok(event) => expected.push((event, facts)),
            Err(source) => {
                assert_eq!(read, Err(DeadLetterError::Event { index, source }));
                return;
            }
        }
    }
    let read = read.expect("every item is an event");
    assert_eq!(read.len(), expected.len());
    for (dead, (event, facts)) in read.into_iter().zip(expected) {
        assert_eq!(dead.event, event);
        assert_eq!(dead.facts, facts);
    }
});

/// The model of the facts: a field by either spelling, text as text, numbers as a JSON number or
/// a decimal string.
fn facts(item: &Value) -> DeadLetterFacts {
    let field = |camel: &str, lower: &str| match item.get(camel) {
        Some(v) => Some(v),
        None => item.get(lower),
    };
    let text = |camel, lower| field(camel, lower)?.as_str().map(String::from);
    let number = |camel, lower| match field(camel, lower)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    DeadLetterFacts {
        reason: text("deadLetterReason", "deadletterreason"),
        delivery_attempts: number("deliveryAttempts", "deliveryattempts"),
        last_outcome: text("lastDeliveryOutcome", "lastdeliveryoutcome"),
        last_http_status: number("lastHttpStatusCode", "lasthttpstatuscode"),
        publish_time: text("publishTime", "publishtime"),
        last_attempt_time: text("lastDeliveryAttemptTime", "lastdeliveryattempttime"),
    }
}
