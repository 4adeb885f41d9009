//! `POST /Reconcile`: the `Reconcile` function's timer invocation (custom-handler protocol).
//!
//! The host posts `{"Data": {"timer": <TimerInfo>}, "Metadata": {...}}` on `RECONCILE_SCHEDULE`;
//! TimerInfo (`{"Schedule": ..., "ScheduleStatus": ..., "IsPastDue": bool}`) arrives as a JSON
//! object (the host's `ScriptInvocationContextExtensions` converts it to one, and sends a JSON
//! string only when that conversion fails); both are accepted. Nothing in it changes what a run
//! does; `IsPastDue` is logged. The answer carries the counts in `Logs` and `ReturnValue`; a run that could not list
//! its containers answers 500, so that the host records the failure (the next tick runs anyway).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;
use time::OffsetDateTime;
use tracing::Instrument;

use super::host::{InvocationRequest, decode_binding, respond};
use super::state::AppState;
use crate::error_chain::error_chain;
use crate::headers::header_str;

/// The trigger's binding name in `Reconcile/function.json`.
pub(crate) const BINDING_NAME: &str = "timer";

/// `POST /Reconcile`.
pub async fn reconcile(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let invocation_id = header_str(&headers, "x-azure-functions-invocationid")
        .unwrap_or("-")
        .to_owned();
    let span =
        tracing::info_span!("invocation", invocation_id = %invocation_id, function = "Reconcile");
    async move {
        let past_due = is_past_due(&body);
        match state.timer.run(OffsetDateTime::now_utc()).await {
            Ok(report) => {
                let counts = &report.counts;
                let line = format!(
                    "reconcile: listed {}, current {}, submitted {}, duplicate {}, ignored {}, \
                     failed {}{}",
                    counts.listed,
                    report.current,
                    counts.submitted,
                    counts.duplicate,
                    counts.ignored,
                    counts.failed,
                    if report.more {
                        "; resumes at the next run"
                    } else {
                        ""
                    }
                );
                tracing::info!(
                    listed = counts.listed,
                    current = report.current,
                    submitted = counts.submitted,
                    duplicate = counts.duplicate,
                    ignored = counts.ignored,
                    failed = counts.failed,
                    more = report.more,
                    past_due,
                    "{line}"
                );
                let value = serde_json::to_value(report).unwrap_or(Value::Null);
                respond(StatusCode::OK, vec![line], value)
            }
            Err(error) => {
                let reason = error_chain(&error);
                respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    vec![format!("reconcile failed: {reason}")],
                    serde_json::json!({ "error": reason }),
                )
            }
        }
    }
    .instrument(span)
    .await
}

/// `IsPastDue` of the invocation's TimerInfo, when it can be read.
fn is_past_due(body: &[u8]) -> Option<bool> {
    let mut request: InvocationRequest = serde_json::from_slice(body).ok()?;
    let info = decode_binding(request.data.remove(BINDING_NAME)?).ok()?;
    info.get("IsPastDue").and_then(Value::as_bool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_is_past_due_however_the_host_encodes_the_timer_info() {
        let info = json!({"Schedule": {"AdjustForDST": true},
                          "ScheduleStatus": {"Last": "2026-03-14T09:15:00Z", "Next": "2026-03-14T09:30:00Z",
                                             "LastUpdated": "2026-03-14T09:15:00Z"},
                          "IsPastDue": true});
        let as_string = json!({"Data": {"timer": info.to_string()}, "Metadata": {}});
        assert_eq!(is_past_due(as_string.to_string().as_bytes()), Some(true));
        let as_object = json!({"Data": {"timer": {"IsPastDue": false, "ScheduleStatus": null}}});
        assert_eq!(is_past_due(as_object.to_string().as_bytes()), Some(false));
        assert_eq!(is_past_due(b"{}"), None);
        assert_eq!(is_past_due(b"not json"), None);
    }
}
