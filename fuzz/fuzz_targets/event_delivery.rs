//! Fuzz target: the webhook delivery parser (`parse_delivery`), Event Grid schema and CloudEvents.
//!
//! Properties: it never panics, and it agrees with a plain reading of the same JSON: one event per
//! array item (or the single object; no more items than a delivery may hold), the type from
//! `eventType` when present and else from `type`, `id`, `subject` and `data` as they stand, and
//! otherwise the error of the first item that lacks what an event needs.

#![no_main]

use blob2batch::event::{Event, EventError, MAX_EVENTS_PER_DELIVERY, parse_delivery};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|body: &[u8]| {
    let parsed = parse_delivery(body);
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        assert!(matches!(parsed, Err(EventError::NotJson(_))), "{parsed:?}");
        return;
    };
    assert_eq!(parsed, expected(value));
});

/// The model: what the delivery should parse to.
fn expected(value: Value) -> Result<Vec<Event>, EventError> {
    let items = match value {
        Value::Array(items) if items.is_empty() => return Err(EventError::Empty),
        Value::Array(items) if items.len() > MAX_EVENTS_PER_DELIVERY => {
            return Err(EventError::TooMany(items.len()));
        }
        Value::Array(items) => items,
        other => vec![other],
    };
    items.into_iter().map(expected_event).collect()
}

fn expected_event(item: Value) -> Result<Event, EventError> {
    let kind = match &item {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let Value::Object(object) = item else {
        return Err(EventError::NotAnObject(kind));
    };
    let text = |field: &'static str| match object.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(EventError::MissingField(field)),
    };
    let event_type = if object.contains_key("eventType") {
        text("eventType")?
    } else if object.contains_key("type") {
        text("type")?
    } else {
        return Err(EventError::UnknownSchema);
    };
    Ok(Event {
        id: text("id")?,
        event_type,
        subject: text("subject").ok(),
        data: object.get("data").cloned().unwrap_or(Value::Null),
    })
}
