//! The HTTP surface: one router for the Functions host's calls and direct Event Grid deliveries.

pub mod body;
pub mod error;
pub mod host;
pub mod server;
pub mod state;
pub mod timer;
pub mod webhook;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension};
use axum::http::StatusCode;
use axum::routing::{get, post};

pub use state::{AppState, WebhookKey};

use body::BodyLimit;

/// The router with the default body limit, without a listener: tests drive it with `oneshot`.
pub fn app(state: AppState) -> Router {
    app_with_body_limit(state, BodyLimit::default().0)
}

/// The router, refusing request bodies above `max_body_bytes` (`HTTP_MAX_BODY_BYTES`).
pub fn app_with_body_limit(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        // The host's readiness probe: any answer will do, so answer at once.
        .route("/", get(|| async { StatusCode::OK }))
        .route("/BlobCreated", post(host::invoke))
        .route("/Reconcile", post(timer::reconcile))
        .route(
            "/api/events",
            post(webhook::deliver).options(webhook::handshake),
        )
        // `ReadBody` reads the limit from here; `DefaultBodyLimit` holds any other extractor to it.
        .layer(Extension(BodyLimit(max_body_bytes)))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}
