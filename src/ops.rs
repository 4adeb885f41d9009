//! What the operations (`status`, `reconcile`, `redrive`, and the `Reconcile` timer) share: the
//! containers, reached with the account key or with Entra ID exactly as the settings say, and,
//! for the command line, the runner and the task lookup of `RUNNER`.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;

use crate::batch::{
    BatchClient, BatchClientOptions, BatchConfigError, BatchCredential, BatchTaskRunner,
    RetryOptions,
};
use crate::config::{BatchAuth, BatchSettings, RunnerSettings, Settings};
use crate::entra::{EntraError, entra_credential_from_env};
use crate::local::{LocalRunnerError, LocalSubmitter};
use crate::runner::{TaskLookup, TaskRunner};
use crate::storage::url::encode_blob_name;
use crate::storage::{BlobError, ContainerClient, StorageAccount};

/// How the containers of the storage account are reached.
#[derive(Clone)]
pub enum Storage {
    /// `STORAGE_ACCOUNT_KEY`: account SAS URLs signed with it (valid for a day, so build the
    /// clients again for long-lived work).
    Key(StorageAccount),
    /// No key: an Entra ID credential from the environment (managed identity in Azure, the Azure
    /// CLI on a developer's machine). Needs https.
    Token {
        account_url: String,
        credential: Arc<dyn TokenCredential>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("storage access")]
    Entra(#[from] EntraError),
    #[error("storage")]
    Storage(#[from] BlobError),
    #[error("Batch client")]
    Batch(#[from] BatchConfigError),
    #[error("local task records")]
    Local(#[from] LocalRunnerError),
}

impl OpsError {
    /// A settings problem (exit code 2) rather than a failure at run time.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            OpsError::Entra(EntraError::MissingEnvironment { .. })
                | OpsError::Batch(BatchConfigError::Entra(
                    EntraError::MissingEnvironment { .. }
                ))
        )
    }
}

impl Storage {
    pub fn from_settings(settings: &Settings) -> Result<Storage, OpsError> {
        let url = settings
            .storage
            .account_url
            .as_str()
            .trim_end_matches('/')
            .to_string();
        Ok(match &settings.storage.account_key {
            Some(key) => Storage::Key(StorageAccount::new(&url, key.clone())),
            None => Storage::Token {
                account_url: url,
                credential: entra_credential_from_env()?,
            },
        })
    }

    /// A client of the container `name`.
    pub fn container(&self, name: &str) -> Result<ContainerClient, BlobError> {
        match self {
            Storage::Key(account) => account.container(name),
            Storage::Token {
                account_url,
                credential,
            } => ContainerClient::with_credential(
                &format!("{account_url}/{}", encode_blob_name(name)),
                credential.clone(),
            ),
        }
    }
}

/// How the command line submits tasks and reads them back.
pub struct CliRunner {
    pub runner: Arc<dyn TaskRunner>,
    pub lookup: Arc<dyn TaskLookup>,
}

/// The runner and the lookup the command line uses: Batch's for `RUNNER=batch`; for
/// `RUNNER=local`, the task records of `LOCAL_WORK_DIR`, written for the `dev` (or `serve`) that
/// executes them.
pub fn cli_runner(settings: &Settings) -> Result<CliRunner, OpsError> {
    let (runner, lookup): (Arc<dyn TaskRunner>, Arc<dyn TaskLookup>) = match &settings.runner {
        RunnerSettings::Batch(batch) => {
            let runner = Arc::new(BatchTaskRunner::new(
                batch_client(batch)?,
                batch.job_id.clone(),
                batch.pool_id.clone(),
            ));
            (runner.clone(), runner)
        }
        RunnerSettings::Local(local) => {
            let submitter = LocalSubmitter::open(&local.work_dir)?;
            let lookup = Arc::new(submitter.store().clone());
            (Arc::new(submitter), lookup)
        }
    };
    Ok(CliRunner { runner, lookup })
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
