//! Building the application from settings and running it until it is told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::batch::{
    BatchClient, BatchClientOptions, BatchConfigError, BatchCredential, BatchTaskRunner,
    GroupCommitOptions, GroupCommitRunner, RetryOptions, entra_credential_from_env,
};
use crate::config::{BatchAuth, BatchSettings, RunnerSettings, Settings};
use crate::http::{AppState, WebhookKey, app};
use crate::intake::Intake;
use crate::local::{LocalRunner, LocalRunnerError, LocalRunnerOptions};
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

/// The Batch client the settings describe.
pub fn batch_client(batch: &BatchSettings) -> Result<BatchClient, BatchConfigError> {
    let credential = match &batch.auth {
        BatchAuth::SharedKey { account, key } => {
            BatchCredential::shared_key(account.clone(), key.clone())
        }
        BatchAuth::EntraId => BatchCredential::Token(entra_credential_from_env()?),
    };
    let mut options = BatchClientOptions::new(batch.account_url.clone(), credential);
    options.retry = RetryOptions {
        budget: batch.retry_budget,
        ..RetryOptions::default()
    };
    // A request that never answers must leave time for another attempt within the budget.
    options.request_timeout = options.request_timeout.min(batch.retry_budget / 2);
    BatchClient::new(options)
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
}

impl Application {
    pub async fn build(
        settings: Settings,
        runner: Arc<dyn TaskRunner>,
    ) -> Result<Application, StartupError> {
        let state = AppState {
            intake: Arc::new(Intake::from_settings(&settings, runner)),
            webhook_key: settings.webhook_key.clone().map(WebhookKey::new),
        };
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
            router: app(state),
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
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
