//! What every request handler shares: the intake the events go to, and the webhook key.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Settings;
use crate::intake::Intake;
use crate::ops::OpsError;
use crate::reconcile::timer::Timer;
use crate::runner::TaskRunner;

#[derive(Clone)]
pub struct AppState {
    pub intake: Arc<Intake>,
    pub webhook_key: Option<WebhookKey>,
    /// What `POST /Reconcile` runs.
    pub timer: Arc<Timer>,
}

impl AppState {
    /// The state the settings describe, submitting through `runner`. Builds credentials but
    /// reaches nothing yet.
    pub fn from_settings(
        settings: &Settings,
        runner: Arc<dyn TaskRunner>,
    ) -> Result<AppState, OpsError> {
        Ok(AppState {
            intake: Arc::new(Intake::from_settings(settings, runner.clone())),
            webhook_key: settings.webhook_key.clone().map(WebhookKey::new),
            timer: Arc::new(Timer::from_settings(settings, runner)?),
        })
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
