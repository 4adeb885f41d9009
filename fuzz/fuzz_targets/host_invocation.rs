//! Fuzz target: the custom-handler invocation decoder, from a whole `POST /BlobCreated` body.
//!
//! Properties: it never panics; it finds at least one event or returns an error that says
//! something; and every event it finds decodes to the same event again when it is sent back the
//! way the host sends it (the event as JSON text inside a JSON string), so that no encoding level
//! loses or changes a field.

#![no_main]

use blob2batch::event::Event;
use blob2batch::http::host::decode_invocation;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

fuzz_target!(|body: &[u8]| {
    match decode_invocation(body) {
        Ok(events) => {
            assert!(!events.is_empty(), "an invocation decoded to no event");
            for event in events {
                let again = decode_invocation(&resend(&event));
                assert_eq!(again, Ok(vec![event]));
            }
        }
        Err(error) => assert!(!error.to_string().is_empty(), "an error without words"),
    }
});

/// The event alone, in the Event Grid schema, string-encoded once in a minimal invocation. A
/// single event nests no deeper than it did in any body it came from, so serde_json's depth limit
/// cannot refuse the copy where it took the original.
fn resend(event: &Event) -> Vec<u8> {
    let mut fields = Map::new();
    fields.insert("id".into(), event.id.clone().into());
    fields.insert("eventType".into(), event.event_type.clone().into());
    if let Some(subject) = &event.subject {
        fields.insert("subject".into(), subject.clone().into());
    }
    fields.insert("data".into(), event.data.clone());
    let text = Value::Object(fields).to_string();
    json!({"Data": {"event": text}, "Metadata": {}})
        .to_string()
        .into_bytes()
}
