//! Building the application from its context and running it until it is told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::HttpSettings;
use crate::context::Context;
use crate::http::{AppState, app_with_body_limit, server};

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}")]
pub struct BindError {
    address: SocketAddr,
    #[source]
    source: std::io::Error,
}

/// A bound, not yet serving, handler. Knows its port before it runs, so tests can use port 0.
pub struct Application {
    listener: TcpListener,
    port: u16,
    router: axum::Router,
    http: HttpSettings,
}

impl Application {
    /// Binds `LISTEN_ADDRESS`:`FUNCTIONS_CUSTOMHANDLER_PORT` of the context's settings.
    pub async fn build(context: Arc<Context>) -> Result<Application, BindError> {
        let settings = context.settings();
        let address = SocketAddr::new(settings.listen_address, settings.port);
        let http = settings.http.clone();
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| BindError { address, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| BindError { address, source })?
            .port();
        let router = app_with_body_limit(AppState::new(context), http.max_body_bytes);
        Ok(Application {
            listener,
            port,
            router,
            http,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        tracing::info!(port = self.port, "listening");
        server::serve(self.listener, self.router, &self.http, shutdown).await;
    }
}
