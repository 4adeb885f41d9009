//! Event Grid deliveries, in either schema, reduced to what the rest of the handler needs.
//!
//! Event Grid schema events carry `eventType`/`topic`/`eventTime`; CloudEvents 1.0 events carry
//! `type`/`source`/`time`/`specversion`. Both carry `id`, `subject` and `data`. Parsing is strict
//! about what we rely on and lenient about everything else (unknown fields are ignored).

use serde_json::Value;

pub const BLOB_CREATED: &str = "Microsoft.Storage.BlobCreated";
pub(crate) const SUBSCRIPTION_VALIDATION: &str = "Microsoft.EventGrid.SubscriptionValidationEvent";
/// The most events one delivery may hold: Event Grid never batches more (its `maxEventsPerBatch`
/// stops at 5,000), so a longer array did not come from Event Grid.
pub const MAX_EVENTS_PER_DELIVERY: usize = 5_000;

/// One event, either schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub subject: Option<String>,
    pub data: Value,
}

/// Why an event (or a delivery) could not be understood at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the delivery is not JSON: {0}")]
    NotJson(String),
    #[error("the delivery is empty")]
    Empty,
    #[error("the delivery holds {0} events; at most {MAX_EVENTS_PER_DELIVERY} are accepted")]
    TooMany(usize),
    #[error("an event must be a JSON object, found {0}")]
    NotAnObject(&'static str),
    #[error("the event has neither `eventType` (Event Grid schema) nor `type` (CloudEvents)")]
    UnknownSchema,
    #[error("the event lacks the string field `{0}`")]
    MissingField(&'static str),
}

/// Parses a delivery body: an array of events or a single event, in either schema.
pub fn parse_delivery(body: &[u8]) -> Result<Vec<Event>, EventError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| EventError::NotJson(e.to_string()))?;
    parse_events(value)
}

/// Parses an already decoded JSON value: an array of events or a single event.
pub(crate) fn parse_events(value: Value) -> Result<Vec<Event>, EventError> {
    match value {
        Value::Array(items) if items.is_empty() => Err(EventError::Empty),
        Value::Array(items) if items.len() > MAX_EVENTS_PER_DELIVERY => {
            Err(EventError::TooMany(items.len()))
        }
        Value::Array(items) => items.into_iter().map(parse_event).collect(),
        other => Ok(vec![parse_event(other)?]),
    }
}

pub fn parse_event(value: Value) -> Result<Event, EventError> {
    let Value::Object(mut map) = value else {
        return Err(EventError::NotAnObject(kind(&value)));
    };
    // Event Grid schema: `eventType`; CloudEvents: `type` (without `specversion` a CloudEvent is
    // malformed, but its type is unambiguous).
    let type_field = if map.contains_key("eventType") {
        "eventType"
    } else if map.contains_key("type") {
        "type"
    } else {
        return Err(EventError::UnknownSchema);
    };
    let mut string = |field: &'static str| match map.remove(field) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(EventError::MissingField(field)),
    };
    let event_type = string(type_field)?;
    let id = string("id")?;
    let subject = string("subject").ok();
    let data = map.remove("data").unwrap_or(Value::Null);
    Ok(Event {
        id,
        event_type,
        subject,
        data,
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Container and blob name from a blob event's subject,
/// `/blobServices/default/containers/{container}/blobs/{blob}`. The subject carries the raw
/// name (no percent-encoding); the blob part may itself contain `/blobs/`, so split on the first.
pub(crate) fn parse_blob_subject(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix("/blobServices/default/containers/")?;
    let (container, blob) = rest.split_once("/blobs/")?;
    (!container.is_empty() && !container.contains('/') && !blob.is_empty())
        .then_some((container, blob))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_grid_array_and_single_cloudevent() {
        let eg = json!([{"id": "e-1", "eventType": BLOB_CREATED, "subject": "/s", "data": {"a": 1},
                         "topic": "/t", "eventTime": "2026-03-14T09:26:53.5897931Z", "dataVersion": "",
                         "metadataVersion": "1"}]);
        let events = parse_delivery(eg.to_string().as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, BLOB_CREATED);
        assert_eq!(events[0].id, "e-1");
        assert_eq!(events[0].data, json!({"a": 1}));

        let ce = json!({"id": "c-1", "type": BLOB_CREATED, "specversion": "1.0", "source": "/t",
                        "subject": "/s", "data": {}});
        let events = parse_delivery(ce.to_string().as_bytes()).unwrap();
        assert_eq!(events[0].id, "c-1");
        assert_eq!(events[0].event_type, BLOB_CREATED);
        assert_eq!(events[0].subject.as_deref(), Some("/s"));
    }

    #[test]
    fn malformed_deliveries_are_named() {
        assert!(matches!(
            parse_delivery(b"nope"),
            Err(EventError::NotJson(_))
        ));
        assert_eq!(parse_delivery(b"[]"), Err(EventError::Empty));
        // The count is checked before any event is read: 5,000 get as far as the first event.
        let objects = |n: usize| format!("[{}{{}}]", "{},".repeat(n - 1));
        assert_eq!(
            parse_delivery(objects(MAX_EVENTS_PER_DELIVERY).as_bytes()),
            Err(EventError::UnknownSchema)
        );
        assert_eq!(
            parse_delivery(objects(MAX_EVENTS_PER_DELIVERY + 1).as_bytes()),
            Err(EventError::TooMany(MAX_EVENTS_PER_DELIVERY + 1))
        );
        assert_eq!(
            parse_delivery(b"[1]"),
            Err(EventError::NotAnObject("a number"))
        );
        assert_eq!(
            parse_delivery(b"{\"id\": \"x\"}"),
            Err(EventError::UnknownSchema)
        );
        assert_eq!(
            parse_delivery(b"{\"eventType\": \"x\"}"),
            Err(EventError::MissingField("id"))
        );
    }

    #[test]
    fn subjects_split_on_the_first_blobs_segment() {
        assert_eq!(
            parse_blob_subject("/blobServices/default/containers/input/blobs/docs/a b.txt"),
            Some(("input", "docs/a b.txt"))
        );
        assert_eq!(
            parse_blob_subject("/blobServices/default/containers/input/blobs/x/blobs/y"),
            Some(("input", "x/blobs/y"))
        );
        assert_eq!(
            parse_blob_subject("/blobServices/default/containers/input/blobs/"),
            None
        );
        assert_eq!(
            parse_blob_subject("/blobServices/default/containers/input"),
            None
        );
        assert_eq!(parse_blob_subject("/other/input/blobs/a"), None);
    }
}
