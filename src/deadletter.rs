//! Event Grid's dead-letter blobs: what they hold and where they are.
//!
//! Event Grid writes an event it could not deliver to
//! `{container}/{SUBSCRIPTION-NAME-UPPER}/{yyyy}/{M}/{d}/{H}/{guid}.json`: a JSON array of one or
//! more events, each carrying beside its own fields why it was dead-lettered. Event Grid schema
//! events spell those facts in camel case (`deadLetterReason`, `deliveryAttempts`,
//! `lastDeliveryOutcome`, `lastHttpStatusCode`, `publishTime`, `lastDeliveryAttemptTime`);
//! CloudEvents carry them as lower-case extension attributes (`deadletterreason`, ...). Blobs
//! `redrive` has dealt with move under `redriven/` or `quarantine/`, which are never read again.

use serde_json::Value;

use crate::event::{Event, EventError, parse_event};

/// Where settled dead-letter blobs go, under the same name.
pub(crate) const REDRIVEN_PREFIX: &str = "redriven/";
/// Where dead-letter blobs go that hold an event that can never be handled, or are unreadable.
pub(crate) const QUARANTINE_PREFIX: &str = "quarantine/";

/// One dead-lettered event and why Event Grid gave up on it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetteredEvent {
    pub event: Event,
    pub facts: DeadLetterFacts,
}

/// What Event Grid says about a dead-lettered event; whatever it left out is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadLetterFacts {
    /// e.g. `MaxDeliveryAttemptsExceeded`, `TimeToLiveExceeded`, `DeliveryFailed`.
    pub reason: Option<String>,
    pub delivery_attempts: Option<u64>,
    /// e.g. `Busy`, `NotFound`, `Unauthorized`, `TimedOut`.
    pub last_outcome: Option<String>,
    pub last_http_status: Option<u64>,
    pub publish_time: Option<String>,
    pub last_attempt_time: Option<String>,
}

/// Why a dead-letter blob cannot be read as one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeadLetterError {
    #[error("the dead-letter blob is not JSON: {0}")]
    NotJson(String),
    #[error("the dead-letter blob holds no event")]
    Empty,
    #[error("event {index} of the dead-letter blob cannot be read: {source}")]
    Event {
        index: usize,
        #[source]
        source: EventError,
    },
}

/// Whether a blob of the dead-letter container is one to read (not already moved aside).
pub(crate) fn is_pending(name: &str) -> bool {
    !name.starts_with(REDRIVEN_PREFIX) && !name.starts_with(QUARANTINE_PREFIX)
}

/// Reads a dead-letter blob: its events (either schema) with their dead-letter facts.
pub fn read_dead_letter_blob(bytes: &[u8]) -> Result<Vec<DeadLetteredEvent>, DeadLetterError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| DeadLetterError::NotJson(e.to_string()))?;
    let items = match value {
        Value::Array(items) if items.is_empty() => return Err(DeadLetterError::Empty),
        Value::Array(items) => items,
        single => vec![single],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let facts = DeadLetterFacts::of(&item);
            let event =
                parse_event(item).map_err(|source| DeadLetterError::Event { index, source })?;
            Ok(DeadLetteredEvent { event, facts })
        })
        .collect()
}

impl DeadLetterFacts {
    fn of(item: &Value) -> DeadLetterFacts {
        // The Event Grid schema's name, then the CloudEvents extension attribute's.
        let field = |camel: &str| {
            item.get(camel)
                .or_else(|| item.get(camel.to_ascii_lowercase()))
        };
        let text = |camel: &str| field(camel).and_then(Value::as_str).map(str::to_string);
        let number = |camel: &str| {
            field(camel).and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
        };
        DeadLetterFacts {
            reason: text("deadLetterReason"),
            delivery_attempts: number("deliveryAttempts"),
            last_outcome: text("lastDeliveryOutcome"),
            last_http_status: number("lastHttpStatusCode"),
            publish_time: text("publishTime"),
            last_attempt_time: text("lastDeliveryAttemptTime"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn blob_created(id: &str) -> Value {
        json!({
            "id": id, "eventType": "Microsoft.Storage.BlobCreated",
            "subject": "/blobServices/default/containers/input/blobs/a.txt",
            "topic": "/t", "eventTime": "2026-03-14T09:26:53Z", "dataVersion": "", "metadataVersion": "1",
            "data": {"api": "PutBlob", "eTag": "0x1", "url": "https://acct.blob.core.windows.net/input/a.txt"}
        })
    }

    #[test]
    fn event_grid_schema_blobs_with_several_events() {
        let mut first = blob_created("e-1");
        first["deadLetterReason"] = json!("MaxDeliveryAttemptsExceeded");
        first["deliveryAttempts"] = json!(30);
        first["lastDeliveryOutcome"] = json!("Busy");
        first["lastHttpStatusCode"] = json!(503);
        first["publishTime"] = json!("2026-03-14T09:26:54Z");
        first["lastDeliveryAttemptTime"] = json!("2026-03-15T09:26:54Z");
        let second = blob_created("e-2");
        let events = read_dead_letter_blob(json!([first, second]).to_string().as_bytes()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event.id, "e-1");
        assert_eq!(
            events[0].facts,
            DeadLetterFacts {
                reason: Some("MaxDeliveryAttemptsExceeded".into()),
                delivery_attempts: Some(30),
                last_outcome: Some("Busy".into()),
                last_http_status: Some(503),
                publish_time: Some("2026-03-14T09:26:54Z".into()),
                last_attempt_time: Some("2026-03-15T09:26:54Z".into()),
            }
        );
        assert_eq!(events[1].facts, DeadLetterFacts::default());
    }

    #[test]
    fn cloudevents_carry_the_facts_as_extension_attributes() {
        let event = json!([{
            "id": "c-1", "specversion": "1.0", "type": "Microsoft.Storage.BlobCreated",
            "source": "/t", "subject": "/blobServices/default/containers/input/blobs/a.txt",
            "data": {"api": "PutBlob", "eTag": "0x1", "url": "https://acct.blob.core.windows.net/input/a.txt"},
            "deadletterreason": "TimeToLiveExceeded", "deliveryattempts": "12",
            "lastdeliveryoutcome": "TimedOut", "lasthttpstatuscode": "0"
        }]);
        let events = read_dead_letter_blob(event.to_string().as_bytes()).unwrap();
        assert_eq!(events[0].event.event_type, "Microsoft.Storage.BlobCreated");
        assert_eq!(
            events[0].facts.reason.as_deref(),
            Some("TimeToLiveExceeded")
        );
        assert_eq!(events[0].facts.delivery_attempts, Some(12));
        assert_eq!(events[0].facts.last_outcome.as_deref(), Some("TimedOut"));
        assert_eq!(events[0].facts.last_http_status, Some(0));
    }

    #[test]
    fn unreadable_blobs_are_named() {
        assert!(matches!(
            read_dead_letter_blob(b"not json"),
            Err(DeadLetterError::NotJson(_))
        ));
        assert_eq!(read_dead_letter_blob(b"[]"), Err(DeadLetterError::Empty));
        assert!(matches!(
            read_dead_letter_blob(br#"[{"id": "x"}]"#),
            Err(DeadLetterError::Event { index: 0, .. })
        ));
    }

    #[test]
    fn moved_blobs_are_not_pending() {
        assert!(is_pending("SUB/2026/3/14/9/0b5e.json"));
        assert!(!is_pending("redriven/SUB/2026/3/14/9/0b5e.json"));
        assert!(!is_pending("quarantine/SUB/2026/3/14/9/0b5e.json"));
    }
}
