//! Direct Event Grid delivery to `POST /api/events`, for hosting without the Functions host.
//!
//! Handles both schemas, batched or not, and both validation handshakes: the Event Grid schema's
//! `SubscriptionValidation` event (answered with its code) and the CloudEvents `OPTIONS` request
//! (answered with `WebHook-Allowed-Origin`). Status codes follow Event Grid's retry rules: 200 is
//! success, 400 and 413 are dead-lettered at once, 503 and 500 are retried.

use axum::Json;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

use super::body::ReadBody;
use super::error::ApiError;
use super::state::AppState;
use crate::event::{SUBSCRIPTION_VALIDATION, parse_delivery};
use crate::headers::header_str;

#[derive(Debug, Deserialize)]
pub(crate) struct KeyQuery {
    code: Option<String>,
}

/// The `WEBHOOK_KEY` check, as an extractor: it runs before the body is read, so that a caller
/// without the key cannot make the handler receive and buffer a body.
pub struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = &state.webhook_key else {
            return Ok(Authorized);
        };
        // A query string that does not parse carries no key.
        let code = Query::<KeyQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|Query(query)| query.code);
        if expected.matches(code.as_deref().unwrap_or("")) {
            Ok(Authorized)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// `POST /api/events`.
pub async fn deliver(
    _: Authorized,
    State(state): State<AppState>,
    headers: HeaderMap,
    ReadBody(body): ReadBody,
) -> Result<Response, ApiError> {
    let kind = header_str(&headers, "aeg-event-type").unwrap_or("Notification");
    let delivery_count = header_str(&headers, "aeg-delivery-count").unwrap_or("-");
    let subscription = header_str(&headers, "aeg-subscription-name").unwrap_or("-");
    let span = tracing::info_span!("delivery", kind, delivery_count, subscription);
    async move {
        if kind.eq_ignore_ascii_case("SubscriptionDeletion")
            || kind.eq_ignore_ascii_case("Unsubscribe")
        {
            tracing::info!("subscription deleted");
            return Ok(Json(json!({})).into_response());
        }
        let events = parse_delivery(&body)?;
        if kind.eq_ignore_ascii_case("SubscriptionValidation")
            || events
                .iter()
                .any(|e| e.event_type == SUBSCRIPTION_VALIDATION)
        {
            let code = events
                .iter()
                .find(|e| e.event_type == SUBSCRIPTION_VALIDATION)
                .and_then(|e| e.data.get("validationCode"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ApiError::BadRequest("a validation delivery without a validationCode".into())
                })?;
            tracing::info!("subscription validated");
            return Ok(Json(json!({ "validationResponse": code })).into_response());
        }
        let report = state.intake.handle(events).await;
        let status = report.disposition().status();
        if !status.is_success() {
            tracing::warn!(
                status = status.as_u16(),
                reasons = %report.log_lines().join("; "),
                "delivery failed"
            );
        }
        Ok((status, Json(report)).into_response())
    }
    .instrument(span)
    .await
}

/// `OPTIONS /api/events`: the CloudEvents abuse-protection handshake.
pub async fn handshake(_: Authorized, headers: HeaderMap) -> Result<Response, ApiError> {
    let origin = header_str(&headers, "webhook-request-origin")
        .ok_or_else(|| ApiError::BadRequest("WebHook-Request-Origin is missing".into()))?;
    let origin = HeaderValue::from_str(origin)
        .map_err(|_| ApiError::BadRequest("WebHook-Request-Origin is not a header value".into()))?;
    tracing::info!(origin = ?origin, "webhook handshake");
    Ok((
        StatusCode::OK,
        [
            (
                header::HeaderName::from_static("webhook-allowed-origin"),
                origin,
            ),
            (
                header::HeaderName::from_static("webhook-allowed-rate"),
                HeaderValue::from_static("*"),
            ),
            (header::ALLOW, HeaderValue::from_static("POST, OPTIONS")),
        ],
    )
        .into_response())
}
