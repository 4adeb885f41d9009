//! What every request handler shares: the intake the events go to, the webhook key, and the
//! timer's reconcile run.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::context::Context;
use crate::intake::Intake;
use crate::reconcile::scheduled::ScheduledReconcile;

#[derive(Clone)]
pub struct AppState {
    pub intake: Arc<Intake>,
    pub webhook_key: Option<WebhookKey>,
    /// What `POST /Reconcile` runs.
    pub timer: Arc<ScheduledReconcile>,
}

impl AppState {
    /// The state of a handler on `context`. Reaches nothing yet.
    pub fn new(context: Arc<Context>) -> AppState {
        AppState {
            intake: Arc::new(Intake::new(&context)),
            webhook_key: context.settings().webhook_key.clone().map(WebhookKey::new),
            timer: Arc::new(ScheduledReconcile::new(context)),
        }
    }
}

/// `WEBHOOK_KEY`: the `code` a direct Event Grid delivery must carry.
#[derive(Clone)]
pub struct WebhookKey(SecretString);

impl WebhookKey {
    pub fn new(key: SecretString) -> WebhookKey {
        WebhookKey(key)
    }

    /// Compares in constant time. Both sides are hashed first, so that neither the position of
    /// the first difference nor the length of the key shows in the time taken.
    pub fn matches(&self, given: &str) -> bool {
        let expected = Sha256::digest(self.0.expose_secret().as_bytes());
        let given = Sha256::digest(given.as_bytes());
        expected.ct_eq(&given).into()
    }
}

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_key_matches() {
        let key = WebhookKey::new(SecretString::from("s3cret-key"));
        assert!(key.matches("s3cret-key"));
        for wrong in ["", "s3cret-ke", "s3cret-key ", "S3CRET-KEY", "x3cret-key"] {
            assert!(!key.matches(wrong), "{wrong:?}");
        }
        assert!(!format!("{key:?}").contains("s3cret"));
    }
}
