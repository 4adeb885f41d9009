//! Azure Batch REST client: authentication (Shared Key, Entra ID), wire models, errors and retries.
//! There is no Rust SDK for the Batch data plane, so the few calls we need are written here.

pub mod client;
pub mod credential;
pub mod error;
pub mod models;
pub mod retry;
mod shared_key;
pub mod task_runner;

pub use client::{API_VERSION, BatchClient, BatchClientOptions};
pub use credential::{
    BATCH_SCOPE, BatchCredential, EntraCredentialChoice, entra_credential_from_env,
    select_entra_credential,
};
pub use error::{BatchConfigError, BatchError, BatchErrorKind};
pub use retry::{MAX_RETRY_BUDGET, RetryOptions};
pub use task_runner::BatchTaskRunner;
