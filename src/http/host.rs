//! The Azure Functions custom-handler protocol for the `BlobCreated` event-grid trigger.
//!
//! The host POSTs `{"Data": {"event": ...}, "Metadata": {...}}` to `/BlobCreated` and expects a
//! JSON object back: `{"Outputs": {}, "Logs": [...], "ReturnValue": ...}`. Any non-2xx answer
//! fails the invocation, which the Event Grid extension turns into a 500 for Event Grid (a
//! redelivery). The host checks the status before it reads the body, so the `Logs` of a failed
//! invocation never reach the invocation log: the reasons of a failure reach the host's logs only
//! through our own tracing on stdout, which is why every failed invocation logs them there too.
//!
//! The event arrives as an object or as a JSON string holding JSON, sometimes twice over,
//! depending on the host version: we unwrap up to three levels and never compare raw text.
//!
//! Whatever goes wrong, the answer keeps that shape, a body too large or too slow included.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

use super::body::{BodyError, ReadBody};
use super::error::close_after;
use super::state::AppState;
use crate::event::{EventError, parse_events};
use crate::headers::header_str;
use crate::intake::DeliveryReport;

/// The trigger's binding name in `BlobCreated/function.json`.
pub(crate) const BINDING_NAME: &str = "event";
/// How many times a string-encoded event is unwrapped before giving up.
const MAX_ENCODING_LEVELS: usize = 3;

#[derive(Debug, Deserialize)]
pub(crate) struct InvocationRequest {
    /// The bindings; `Metadata` is not read (the reference notes leave its contents unconfirmed).
    #[serde(rename = "Data", default)]
    pub data: serde_json::Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct InvocationResponse {
    #[serde(rename = "Outputs")]
    pub outputs: serde_json::Map<String, Value>,
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvocationError {
    #[error("the invocation body is not a custom-handler invocation: {0}")]
    NotAnInvocation(String),
    #[error("the invocation has no `Data.{BINDING_NAME}` binding")]
    MissingBinding,
    #[error("`Data.{BINDING_NAME}` holds a string that is not JSON: {0}")]
    NotJson(String),
    #[error("`Data.{BINDING_NAME}` is still a string after {MAX_ENCODING_LEVELS} decodings")]
    TooDeep,
    #[error(transparent)]
    Event(#[from] EventError),
}

impl InvocationError {
    pub fn status(&self) -> StatusCode {
        match self {
            InvocationError::Event(EventError::TooMany(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The event value inside a binding, whichever way the host encoded it.
pub(crate) fn decode_binding(mut value: Value) -> Result<Value, InvocationError> {
    for _ in 0..MAX_ENCODING_LEVELS {
        match value {
            Value::String(text) => {
                value = serde_json::from_str(&text)
                    .map_err(|e| InvocationError::NotJson(e.to_string()))?;
            }
            other => return Ok(other),
        }
    }
    match value {
        Value::String(_) => Err(InvocationError::TooDeep),
        other => Ok(other),
    }
}

/// `POST /BlobCreated`.
pub async fn invoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<ReadBody, BodyError>,
) -> Response {
    let invocation_id = header_str(&headers, "x-azure-functions-invocationid")
        .unwrap_or("-")
        .to_owned();
    let span =
        tracing::info_span!("invocation", invocation_id = %invocation_id, function = "BlobCreated");
    async move {
        let body = match body {
            Ok(ReadBody(body)) => body,
            Err(error) => {
                let mut response = reject(error.status(), &error);
                close_after(&mut response);
                return response;
            }
        };
        let events = match decode_invocation(&body) {
            Ok(events) => events,
            Err(error) => return reject(error.status(), &error),
        };
        let report = state.intake.handle(events).await;
        respond_with_report(report)
    }
    .instrument(span)
    .await
}

/// The events of a whole `POST /BlobCreated` body, or why there are none.
///
/// Public (the handler itself only calls it from [`invoke`]) so that the fuzz targets in `fuzz/`
/// can feed it arbitrary bodies.
pub fn decode_invocation(body: &[u8]) -> Result<Vec<crate::event::Event>, InvocationError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| InvocationError::NotAnInvocation(e.to_string()))?;
    if !value.is_object() {
        return Err(InvocationError::NotAnInvocation(
            "expected a JSON object with `Data`".into(),
        ));
    }
    let mut request: InvocationRequest = serde_json::from_value(value)
        .map_err(|e| InvocationError::NotAnInvocation(e.to_string()))?;
    let binding = request
        .data
        .remove(BINDING_NAME)
        .ok_or(InvocationError::MissingBinding)?;
    Ok(parse_events(decode_binding(binding)?)?)
}

fn reject(status: StatusCode, error: &dyn std::error::Error) -> Response {
    respond(
        status,
        vec![format!("rejected: {error}")],
        serde_json::json!({ "error": error.to_string() }),
    )
}

fn respond_with_report(report: DeliveryReport) -> Response {
    let status = report.disposition().status();
    let logs = report.log_lines();
    let value = serde_json::to_value(&report).unwrap_or(Value::Null);
    respond(status, logs, value)
}

/// Always a JSON object, whatever the status: the host cannot read anything else. A failed
/// invocation's `Logs` are also written to stdout, the only place the host will see them.
pub(super) fn respond(status: StatusCode, logs: Vec<String>, return_value: Value) -> Response {
    if !status.is_success() {
        tracing::warn!(
            status = status.as_u16(),
            reasons = %logs.join("; "),
            "invocation failed"
        );
    }
    let body = InvocationResponse {
        outputs: serde_json::Map::new(),
        logs,
        return_value,
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_decode_at_every_encoding_level() {
        let event = json!({"id": "e-1", "eventType": "x"});
        let once = Value::String(event.to_string());
        let twice = Value::String(once.to_string());
        let thrice = Value::String(twice.to_string());
        assert_eq!(decode_binding(event.clone()), Ok(event.clone()));
        assert_eq!(decode_binding(once), Ok(event.clone()));
        assert_eq!(decode_binding(twice), Ok(event.clone()));
        assert_eq!(decode_binding(thrice.clone()), Ok(event.clone()));
        let four = Value::String(thrice.to_string());
        assert_eq!(decode_binding(four), Err(InvocationError::TooDeep));
        assert!(matches!(
            decode_binding(Value::String("{not json".into())),
            Err(InvocationError::NotJson(_))
        ));
    }

    #[test]
    fn indented_host_text_decodes_too() {
        // The host hands the event over as indented .NET JSON text, newlines and all.
        let text =
            "{\r\n  \"id\": \"e-1\",\r\n  \"eventType\": \"Microsoft.Storage.BlobCreated\"\r\n}";
        let wire = Value::String(Value::String(text.into()).to_string());
        assert_eq!(
            decode_binding(wire).unwrap(),
            json!({"id": "e-1", "eventType": "Microsoft.Storage.BlobCreated"})
        );
    }

    #[test]
    fn invocations_without_the_binding_are_named() {
        assert_eq!(
            decode_invocation(br#"{"Data": {}, "Metadata": {}}"#).unwrap_err(),
            InvocationError::MissingBinding
        );
        assert!(matches!(
            decode_invocation(b"[]").unwrap_err(),
            InvocationError::NotAnInvocation(_)
        ));
    }
}
