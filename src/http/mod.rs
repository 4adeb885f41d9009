//! The HTTP surface: one router for the Functions host's calls and direct Event Grid deliveries.

pub mod error;
pub mod host;
pub mod state;
pub mod timer;
pub mod webhook;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};

pub use state::{AppState, WebhookKey};

/// Event Grid batches are at most 1 MB; the host's double encoding can nearly double that.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The router, without a listener: tests drive it with `oneshot`.
pub fn app(state: AppState) -> Router {
    Router::new()
        // The host's readiness probe: any answer will do, so answer at once.
        .route("/", get(|| async { StatusCode::OK }))
        .route("/BlobCreated", post(host::invoke))
        .route("/Reconcile", post(timer::reconcile))
        .route(
            "/api/events",
            post(webhook::deliver).options(webhook::handshake),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
