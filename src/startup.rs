//! Building the application from settings and running it until it is told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::batch::{BatchConfigError, BatchTaskRunner, GroupCommitOptions, GroupCommitRunner};
use crate::config::{BatchSettings, HttpSettings, RunnerSettings, Settings};
use crate::http::{AppState, app_with_body_limit, server};
use crate::local::{LocalRunner, LocalRunnerError, LocalRunnerOptions};
use crate::ops::batch_client;
use crate::runner::TaskRunner;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("Batch client")]
    Batch(#[from] BatchConfigError),
    #[error("local runner")]
    Local(#[from] LocalRunnerError),
    #[error("reconcile timer")]
    Timer(#[from] crate::ops::OpsError),
}

/// The runner `RUNNER` asks for. Builds credentials but fetches no token: start-up stays fast
/// (the Functions host gives a handler seconds to answer its first probe).
pub fn runner_from_settings(settings: &Settings) -> Result<Arc<dyn TaskRunner>, StartupError> {
    match &settings.runner {
        // Concurrent invocations share Add Task Collection calls, at most `max_in_flight` at once.
        RunnerSettings::Batch(batch) => Ok(Arc::new(GroupCommitRunner::new(
            batch_runner(batch)?,
            GroupCommitOptions {
                max_in_flight: batch.max_in_flight,
                budget: batch.retry_budget,
            },
        ))),
        RunnerSettings::Local(local) => Ok(Arc::new(LocalRunner::new(
            LocalRunnerOptions::from_settings(local)?,
        )?)),
    }
}

fn batch_runner(batch: &BatchSettings) -> Result<BatchTaskRunner, BatchConfigError> {
    Ok(BatchTaskRunner::new(
        batch_client(batch)?,
        batch.job_id.clone(),
        batch.pool_id.clone(),
    ))
}

/// A bound, not yet serving, handler. Knows its port before it runs, so tests can use port 0.
pub struct Application {
    listener: TcpListener,
    port: u16,
    router: axum::Router,
    http: HttpSettings,
}

impl Application {
    pub async fn build(
        settings: Settings,
        runner: Arc<dyn TaskRunner>,
    ) -> Result<Application, StartupError> {
        let state = AppState::from_settings(&settings, runner)?;
        let address = SocketAddr::new(settings.listen_address, settings.port);
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| StartupError::Bind { address, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { address, source })?
            .port();
        Ok(Application {
            listener,
            port,
            router: app_with_body_limit(state, settings.http.max_body_bytes),
            http: settings.http,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), std::io::Error> {
        tracing::info!(port = self.port, "listening");
        server::serve(self.listener, self.router, &self.http, shutdown).await;
        Ok(())
    }
}
