//! How this process reaches the containers of its storage account: with the account key
//! (account SAS URLs) or, without one, with an Entra ID credential (https only). Every call is
//! bounded by `STORAGE_RETRY_BUDGET`.
//!
//! An account SAS lasts a day, and `serve` runs for weeks: clients are kept and renewed here,
//! the one place that decides when, long before their SAS expires. Token clients need no
//! renewal (the credential refreshes its tokens).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use tokio::time::Instant;
use url::Url;

use super::blob::{BlobError, ContainerClient, StorageAccount};
use super::key::StorageAccountKey;
use super::url::encode_blob_name;
use crate::sync::lock;

/// How long [`StorageAccount::container`]'s SAS is valid.
const ACCOUNT_SAS_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A client signed with the key is replaced once it is this old: far from the end of its SAS,
/// so that no call (and no listing of many pages) started with it runs into the expiry.
const RENEW_AFTER: Duration = Duration::from_secs(ACCOUNT_SAS_LIFETIME.as_secs() / 2);

/// The containers of the account, as the settings say to reach them.
pub struct Containers {
    access: Access,
    budget: Duration,
    signed: Mutex<HashMap<String, (ContainerClient, Instant)>>,
}

enum Access {
    /// `STORAGE_ACCOUNT_KEY`: account SAS URLs signed with it.
    Key(StorageAccount),
    /// No key: bearer tokens from the credential.
    Token {
        account_url: String,
        credential: Arc<dyn TokenCredential>,
    },
}

impl std::fmt::Debug for Containers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let access = match &self.access {
            Access::Key(account) => format!("key ({})", account.url()),
            Access::Token { account_url, .. } => format!("token ({account_url})"),
        };
        f.debug_struct("Containers")
            .field("access", &access)
            .field("budget", &self.budget)
            .finish()
    }
}

impl Containers {
    /// The containers of the account at `account_url` (its blob endpoint), reached with its
    /// key, each call given up after `budget`.
    pub(crate) fn with_key(
        account_url: &Url,
        key: StorageAccountKey,
        budget: Duration,
    ) -> Containers {
        let url = trimmed(account_url);
        Containers::new(Access::Key(StorageAccount::new(&url, key)), budget)
    }

    /// The containers of the account at `account_url`, reached with bearer tokens from
    /// `credential`, each call given up after `budget`.
    pub(crate) fn with_credential(
        account_url: &Url,
        credential: Arc<dyn TokenCredential>,
        budget: Duration,
    ) -> Containers {
        let access = Access::Token {
            account_url: trimmed(account_url),
            credential,
        };
        Containers::new(access, budget)
    }

    fn new(access: Access, budget: Duration) -> Containers {
        Containers {
            access,
            budget,
            signed: Mutex::new(HashMap::new()),
        }
    }

    /// A client of the container `name`, every call of it bounded by the retry budget.
    pub fn get(&self, name: &str) -> Result<ContainerClient, BlobError> {
        match &self.access {
            Access::Token {
                account_url,
                credential,
            } => ContainerClient::with_credential(
                &format!("{account_url}/{}", encode_blob_name(name)),
                credential.clone(),
            )?
            .with_retry_budget(self.budget),
            Access::Key(account) => {
                let now = Instant::now();
                let mut signed = lock(&self.signed);
                if let Some((client, at)) = signed.get(name)
                    && now.duration_since(*at) < RENEW_AFTER
                {
                    return Ok(client.clone());
                }
                let client = account.container(name)?.with_retry_budget(self.budget)?;
                signed.insert(name.to_string(), (client.clone(), now));
                Ok(client)
            }
        }
    }
}

fn trimmed(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::azurite::well_known_key;

    #[tokio::test(start_paused = true)]
    async fn key_clients_are_kept_then_renewed_before_their_sas_ends() {
        let url = Url::parse("http://127.0.0.1:10000/devstoreaccount1").unwrap();
        let containers = Containers::with_key(&url, well_known_key(), Duration::from_secs(5));
        let first = containers.get("input").unwrap();
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(containers.get("input").unwrap().is_same_client(&first));
        assert!(!containers.get("output").unwrap().is_same_client(&first));
        tokio::time::advance(RENEW_AFTER).await;
        let renewed = containers.get("input").unwrap();
        assert!(
            !renewed.is_same_client(&first),
            "a client past half its SAS life is signed again"
        );
    }
}
