//! A storage account's name and key: what service SAS tokens are signed with.

use std::fmt;

use crate::account_key::{AccountKey, InvalidKey};

/// A storage account name and its decoded account key. `Debug` never shows the key.
#[derive(Clone)]
pub struct StorageAccountKey {
    account: String,
    key: AccountKey,
}

/// The account key is not valid base64 (or is empty). The message never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the storage account key for `{account}` is not valid base64")]
pub struct InvalidAccountKey {
    pub account: String,
    #[source]
    source: InvalidKey,
}

impl StorageAccountKey {
    pub fn new(account: impl Into<String>, key: AccountKey) -> Self {
        StorageAccountKey {
            account: account.into(),
            key,
        }
    }

    /// Decodes a base64 account key, as the portal shows it.
    pub fn from_base64(
        account: impl Into<String>,
        base64_key: &str,
    ) -> Result<Self, InvalidAccountKey> {
        let account = account.into();
        match AccountKey::from_base64(base64_key) {
            Ok(key) => Ok(StorageAccountKey { account, key }),
            Err(source) => Err(InvalidAccountKey { account, source }),
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Base64 of HMAC-SHA256(key, message).
    pub fn sign(&self, message: &str) -> String {
        self.key.sign(message)
    }
}

impl fmt::Debug for StorageAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageAccountKey")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    #[test]
    fn debug_never_shows_the_key() {
        let key = StorageAccountKey::from_base64("devstoreaccount1", KEY).unwrap();
        let shown = format!("{key:?} {:#?}", key.clone());
        assert!(shown.contains("devstoreaccount1"));
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("Eby8"), "{shown}");
    }

    #[test]
    fn rejects_bad_base64_without_echoing_it() {
        let err = StorageAccountKey::from_base64("acct", "not base64 !!").unwrap_err();
        assert_eq!(err.account, "acct");
        assert!(!err.to_string().contains("!!"));
        assert!(StorageAccountKey::from_base64("acct", "").is_err());
    }
}
