//! How the client proves who it is: the account's Shared Key, or an Entra ID token (from a
//! credential [`crate::entra`] chooses).

use std::fmt;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;

use crate::account_key::AccountKey;

/// The v2 scope of the Batch data plane. The double slash is deliberate: the resource is
/// `https://batch.core.windows.net/` and a token for the audience without the slash is refused.
pub const BATCH_SCOPE: &str = "https://batch.core.windows.net//.default";

/// Credentials the Batch client signs or authorizes requests with.
#[derive(Clone)]
pub enum BatchCredential {
    /// The account name and one of its two keys.
    SharedKey { account: String, key: AccountKey },
    /// An Entra ID credential; tokens are requested for [`BATCH_SCOPE`] on every attempt and
    /// cached by the credential.
    Token(Arc<dyn TokenCredential>),
}

impl BatchCredential {
    pub fn shared_key(account: impl Into<String>, key: AccountKey) -> Self {
        BatchCredential::SharedKey {
            account: account.into(),
            key,
        }
    }
}

impl fmt::Debug for BatchCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchCredential::SharedKey { account, .. } => f
                .debug_struct("SharedKey")
                .field("account", account)
                .field("key", &"[redacted]")
                .finish(),
            // A third-party credential's Debug is not ours to trust.
            BatchCredential::Token(_) => f.write_str("Token(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_shared_key_credential_hides_the_key() {
        let credential = BatchCredential::shared_key(
            "acct",
            AccountKey::from_base64("c2VjcmV0LWtleS1ieXRlcw==").unwrap(),
        );
        let printed = format!("{credential:?}");
        assert!(printed.contains("acct"));
        assert!(!printed.contains("c2VjcmV0LWtleS1ieXRlcw=="), "{printed}");
    }
}
