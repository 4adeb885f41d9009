//! The storage account key: what service SAS tokens are signed with.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

/// A storage account name and its decoded account key. `Debug` never shows the key.
pub struct StorageAccountKey {
    account: String,
    key: SecretBox<Vec<u8>>,
}

/// The account key is not valid base64 (or is empty). The message never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the storage account key for `{account}` is not valid base64")]
pub struct InvalidAccountKey {
    pub account: String,
}

impl StorageAccountKey {
    pub fn new(account: impl Into<String>, base64_key: &str) -> Result<Self, InvalidAccountKey> {
        let account = account.into();
        match STANDARD.decode(base64_key.trim()) {
            Ok(bytes) if !bytes.is_empty() => Ok(Self {
                account,
                key: SecretBox::new(Box::new(bytes)),
            }),
            _ => Err(InvalidAccountKey { account }),
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Base64 of HMAC-SHA256(key, message): the signature scheme of SAS and Shared Key.
    pub fn sign(&self, message: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret())
            .expect("HMAC-SHA256 accepts keys of any length");
        mac.update(message.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }
}

impl Clone for StorageAccountKey {
    fn clone(&self) -> Self {
        Self {
            account: self.account.clone(),
            key: SecretBox::new(Box::new(self.key.expose_secret().clone())),
        }
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
    use crate::storage::azurite::{WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY};

    #[test]
    fn debug_never_shows_the_key() {
        let key = StorageAccountKey::new(WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY).unwrap();
        let shown = format!("{key:?} {:#?}", key.clone());
        assert!(shown.contains("devstoreaccount1"));
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains(&WELL_KNOWN_KEY[..12]), "{shown}");
        assert!(!shown.contains("Eby8"), "{shown}");
    }

    #[test]
    fn rejects_bad_base64_without_echoing_it() {
        let err = StorageAccountKey::new("acct", "not base64 !!").unwrap_err();
        assert_eq!(err.account, "acct");
        assert!(!err.to_string().contains("!!"));
        assert!(StorageAccountKey::new("acct", "").is_err());
    }

    #[test]
    fn hmac_matches_a_known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let key = StorageAccountKey::new("a", &STANDARD.encode(b"Jefe")).unwrap();
        let sig = key.sign("what do ya want for nothing?");
        let hex_sig = hex::encode(STANDARD.decode(sig).unwrap());
        assert_eq!(
            hex_sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
