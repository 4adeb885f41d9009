//! Errors answered over HTTP: a status and a short message for the caller, nothing internal.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::event::EventError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request can never succeed as sent.
    #[error("{0}")]
    BadRequest(String),
    /// `WEBHOOK_KEY` is set and the request did not carry it.
    #[error("a valid `code` query parameter is required")]
    Unauthorized,
    /// The body, or the number of events in it, is more than is accepted.
    #[error("{0}")]
    TooLarge(String),
    /// The body did not arrive in time.
    #[error("{0}")]
    TimedOut(String),
}

impl From<EventError> for ApiError {
    fn from(error: EventError) -> ApiError {
        match error {
            EventError::TooMany(_) => ApiError::TooLarge(error.to_string()),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
        };
        if status != StatusCode::UNAUTHORIZED {
            tracing::warn!(status = status.as_u16(), error = %self, "request rejected");
        }
        let mut response = (status, Json(json!({ "error": self.to_string() }))).into_response();
        if matches!(self, ApiError::TooLarge(_) | ApiError::TimedOut(_)) {
            close_after(&mut response);
        }
        response
    }
}

/// Marks `response` as the last on its connection: after a refused or late body, what the client
/// still sends is not a next request, and waiting for it to finish would only help it.
pub(crate) fn close_after(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}
