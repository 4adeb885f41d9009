//! The commands: `serve` (the handler; see [`crate::startup`]), `dev` (the whole pipeline on this
//! machine), `put` (uploads into the input container), and the operations `status`, `reconcile`
//! and `redrive`. [`cli`] parses the command line and runs one; this module holds the one path
//! from any command's failure to its exit code.

pub mod cli;
pub mod console;
pub mod dev;
pub mod plan;
pub mod put;
pub mod reconcile;
pub mod redrive;
pub mod status;
pub mod workloads;

use std::error::Error;
use std::fmt;

use crate::config::ConfigError;
use crate::context::ContextError;
use crate::entra::EntraError;
use crate::error_chain::error_chain;

/// Exit code of a command that did what it was asked.
pub(crate) const SUCCESS: u8 = 0;
/// Exit code of a command that failed at run time: a storage or Batch failure after its retries,
/// or anything else that is not the caller's mistake (an internal error included).
pub(crate) const FAILURE: u8 = 1;
/// Exit code of a usage or settings error: the caller can fix it.
pub(crate) const USAGE: u8 = 2;

/// Why a command failed, which decides its exit code.
#[derive(Debug)]
pub struct CommandError {
    usage: bool,
    error: Box<dyn Error + Send + Sync + 'static>,
}

impl CommandError {
    /// The caller's mistake: a bad setting, a missing file (exit code 2).
    pub fn usage(error: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> CommandError {
        CommandError {
            usage: true,
            error: error.into(),
        }
    }

    /// A failure at run time (exit code 1).
    pub fn runtime(error: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> CommandError {
        CommandError {
            usage: false,
            error: error.into(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        if self.usage { USAGE } else { FAILURE }
    }
}

/// The error and its causes on one line.
impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&error_chain(self.error.as_ref()))
    }
}

impl From<ConfigError> for CommandError {
    fn from(error: ConfigError) -> CommandError {
        CommandError::usage(error)
    }
}

impl From<ContextError> for CommandError {
    /// An environment that does not describe a credential is a settings problem; anything else
    /// (a work directory that cannot be used, another runner holding it) happens at run time.
    fn from(error: ContextError) -> CommandError {
        let usage = matches!(
            &error,
            ContextError::Entra(EntraError::MissingEnvironment { .. })
        );
        CommandError {
            usage,
            error: Box::new(error),
        }
    }
}

impl From<crate::storage::BlobError> for CommandError {
    fn from(error: crate::storage::BlobError) -> CommandError {
        CommandError::runtime(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_kind_of_failure() {
        let settings = ConfigError {
            problems: vec!["STORAGE_ACCOUNT_URL is required".into()],
        };
        assert_eq!(CommandError::from(settings).exit_code(), USAGE);
        let missing = ContextError::Entra(EntraError::MissingEnvironment {
            credential: "WorkloadIdentityCredential",
            missing: vec!["AZURE_TENANT_ID"],
        });
        assert_eq!(CommandError::from(missing).exit_code(), USAGE);
        let busy = ContextError::Local(crate::local::LocalRunnerError::Busy("/w".into()));
        assert_eq!(CommandError::from(busy).exit_code(), FAILURE);
        let storage = crate::storage::BlobError::Url("x".into());
        let error = CommandError::from(storage);
        assert_eq!(error.exit_code(), FAILURE);
        assert_eq!(error.to_string(), "invalid storage URL: x");
    }
}
