//! Every outbound HTTP client is built here, the one way: with our user agent, the timeouts its
//! user asks for, and an error (never a silent fallback to a client without them) when the TLS
//! backend cannot be initialised.

use std::time::Duration;

/// What a client needs beyond the defaults; `None` leaves reqwest's default (no limit for the
/// timeouts, 90 s for idle connections).
#[derive(Clone, Debug, Default)]
pub(crate) struct HttpClientOptions {
    /// Limit for establishing a connection.
    pub connect_timeout: Option<Duration>,
    /// Limit for a whole request, the response body included.
    pub request_timeout: Option<Duration>,
    /// How long an idle pooled connection is kept for reuse.
    pub pool_idle_timeout: Option<Duration>,
}

/// The HTTP client could not be created (the TLS backend failed to initialise).
#[derive(Debug, thiserror::Error)]
#[error("cannot create an HTTP client")]
pub struct HttpClientError(#[source] reqwest::Error);

/// A client with `options`.
pub(crate) fn http_client(options: &HttpClientOptions) -> Result<reqwest::Client, HttpClientError> {
    let mut builder =
        reqwest::Client::builder().user_agent(concat!("blob2batch/", env!("CARGO_PKG_VERSION")));
    if let Some(timeout) = options.connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(timeout) = options.request_timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(timeout) = options.pool_idle_timeout {
        builder = builder.pool_idle_timeout(timeout);
    }
    builder.build().map_err(HttpClientError)
}
