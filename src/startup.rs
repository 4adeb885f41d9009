//! Building the application from settings and running it until it is told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::app::{AppState, app};
use crate::batch::{
    BatchClient, BatchClientOptions, BatchConfigError, BatchCredential, BatchTaskRunner,
    RetryOptions, entra_credential_from_env,
};
use crate::config::{RunnerKind, Settings};
use crate::filter::EventFilter;
use crate::intake::Intake;
use crate::local::dev::find_wordcount;
use crate::local::runner::default_concurrency;
use crate::local::{Engine, LocalRunner, LocalRunnerOptions};
use crate::plan::Planner;
use crate::runner::TaskRunner;
use crate::storage::key::InvalidAccountKey;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("STORAGE_ACCOUNT_KEY: {0}")]
    StorageKey(#[from] InvalidAccountKey),
    #[error("Batch client: {0}")]
    Batch(#[from] BatchConfigError),
    #[error("local runner: {0}")]
    Local(String),
}

/// The runner `RUNNER` asks for. Builds credentials but fetches no token: start-up stays fast
/// (the Functions host gives a handler seconds to answer its first probe).
pub fn runner_from_settings(settings: &Settings) -> Result<Arc<dyn TaskRunner>, StartupError> {
    match settings.runner {
        RunnerKind::Batch => Ok(Arc::new(batch_runner(settings)?)),
        RunnerKind::Local => Ok(Arc::new(local_runner(settings)?)),
    }
}

fn local_runner(settings: &Settings) -> Result<LocalRunner, StartupError> {
    let local = &settings.local;
    let engine = match &local.podman_image {
        Some(image) => Engine::Podman {
            image: image.clone(),
        },
        None => Engine::Process {
            wordcount_bin: find_wordcount(local.wordcount_bin.as_deref())
                .map_err(|e| StartupError::Local(e.to_string()))?,
        },
    };
    LocalRunner::new(LocalRunnerOptions {
        work_dir: local
            .work_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("blob2batch-serve")),
        concurrency: local.concurrency.unwrap_or_else(default_concurrency),
        engine,
    })
    .map_err(|e| StartupError::Local(e.to_string()))
}

fn batch_runner(settings: &Settings) -> Result<BatchTaskRunner, StartupError> {
    use secrecy::ExposeSecret;
    let batch = &settings.batch;
    let endpoint = batch
        .account_url
        .clone()
        .expect("settings validation requires BATCH_ACCOUNT_URL with RUNNER=batch");
    let credential = match (&batch.account_key, &batch.account_name) {
        (Some(key), Some(account)) => {
            BatchCredential::shared_key(account.clone(), key.expose_secret())
        }
        _ => BatchCredential::Token(entra_credential_from_env()?),
    };
    let mut options = BatchClientOptions::new(endpoint, credential);
    options.retry = RetryOptions {
        budget: batch.retry_budget,
        ..RetryOptions::default()
    };
    let client = BatchClient::new(options)?;
    Ok(BatchTaskRunner::new(
        client,
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
        let filter = EventFilter::new(
            &settings.storage.account_url,
            settings.input_container.clone(),
            settings.input_prefix.clone(),
            settings.input_suffix.clone(),
        );
        let planner = Planner::from_settings(&settings)?;
        let state = AppState {
            intake: Arc::new(Intake::new(filter, planner, runner)),
            webhook_key: settings.webhook_key.clone(),
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

/// Completes on Ctrl-C or SIGTERM (what the Functions host and container runtimes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
