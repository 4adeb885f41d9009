//! Azure Batch REST client: authentication (Shared Key, Entra ID), wire models, errors and retries.
//! There is no Rust SDK for the Batch data plane, so the few calls we need are written here.
//!
//! The context (`crate::context`) builds one [`BatchClient`] per process and hands a
//! [`BatchTaskRunner`] to the handler; by hand:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use blob2batch::account_key::AccountKey;
//! use blob2batch::batch::{BatchClient, BatchClientOptions, BatchCredential, BatchTaskRunner};
//!
//! let endpoint = url::Url::parse("https://acct.westeurope.batch.azure.com")?;
//! let credential = match std::env::var("BATCH_ACCOUNT_KEY") {
//!     Ok(key) => BatchCredential::shared_key("acct", AccountKey::from_base64(&key)?),
//!     Err(_) => BatchCredential::Token(azure_identity::AzureCliCredential::new(None)?),
//! };
//! let client = BatchClient::new(BatchClientOptions::new(endpoint, credential))?;
//! let runner = BatchTaskRunner::new(client);
//! # let _ = runner;
//! # Ok(())
//! # }
//! ```
//!
//! Module by module: `client` holds the operations (`jobs` those on a split blob's job), `collection` the Add Task Collection
//! chunking and per-item retries, `transport` one logical request and its attempts, `shared_key`
//! and `credential` the two ways to authorize, `retry` the backoff and budget, `error` what a
//! failed call says, `models` the answers we read, `task_runner` the [`crate::runner::TaskRunner`]
//! on top of it all, and `group_commit` the queue in front of it that lets concurrent invocations
//! share Add Task Collection calls.

pub mod client;
pub mod collection;
pub mod credential;
pub mod error;
pub(crate) mod group_commit;
mod jobs;
pub mod models;
pub mod retry;
mod shared_key;
mod split;
pub(crate) mod task_runner;
mod transport;

pub use client::{API_VERSION, BatchClient, BatchClientOptions};
pub use credential::{BATCH_SCOPE, BatchCredential};
pub use error::{BatchConfigError, BatchError, BatchErrorKind};
pub(crate) use group_commit::{GroupCommitOptions, GroupCommitRunner};
pub(crate) use retry::MAX_RETRY_BUDGET;
pub use retry::RetryOptions;
pub use task_runner::BatchTaskRunner;
