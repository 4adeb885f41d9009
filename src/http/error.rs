//! Errors answered over HTTP: a status and a short message for the caller, nothing internal.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request can never succeed as sent.
    #[error("{0}")]
    BadRequest(String),
    /// `WEBHOOK_KEY` is set and the request did not carry it.
    #[error("a valid `code` query parameter is required")]
    Unauthorized,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
        };
        if status == StatusCode::BAD_REQUEST {
            tracing::warn!(error = %self, "request rejected");
        }
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}
