//! An account key as the portal shows it (base64), decoded once and kept secret.
//!
//! Storage (service SAS) and Batch (Shared Key) both sign with HMAC-SHA256 over the decoded key,
//! so both hold an [`AccountKey`]: the base64 text is checked when the settings are read, and the
//! decoded bytes never leave this type. `Debug` shows nothing of the key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

/// A decoded account key.
#[derive(Clone)]
pub struct AccountKey {
    key: SecretSlice<u8>,
}

/// The text is not base64, or decodes to nothing. The message never holds the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a base64 account key")]
pub struct InvalidKey;

impl AccountKey {
    /// Decodes the base64 key (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<AccountKey, InvalidKey> {
        match STANDARD.decode(text.trim()) {
            Ok(bytes) if !bytes.is_empty() => Ok(AccountKey { key: bytes.into() }),
            _ => Err(InvalidKey),
        }
    }

    /// Base64 of HMAC-SHA256(key, message): the signature of both SAS tokens and Shared Key.
    pub fn sign(&self, message: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(message.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_a_known_hmac_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let key = AccountKey::from_base64(&STANDARD.encode(b"Jefe")).unwrap();
        let signature = STANDARD
            .decode(key.sign("what do ya want for nothing?"))
            .unwrap();
        assert_eq!(
            hex::encode(signature),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn refuses_what_is_not_a_key_without_echoing_it() {
        for text in ["not base64 !!", "", "  "] {
            assert!(
                matches!(AccountKey::from_base64(text), Err(InvalidKey)),
                "{text:?}"
            );
        }
        assert!(!InvalidKey.to_string().contains("!!"));
    }

    #[test]
    fn debug_shows_nothing_of_the_key() {
        let text = "c2VjcmV0LWtleS1ieXRlcw==";
        let key = AccountKey::from_base64(text).unwrap();
        let shown = format!("{key:?} {:#?}", key.clone());
        assert!(!shown.contains(text), "{shown}");
        assert!(!shown.contains("115, 101"), "{shown}");
    }
}
