//! Why a local task failed, in the shape of Batch's `failureInfo`: a category, a code and a
//! message, so that the console, the task record and `status` read it the way they read Batch's.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Whose fault it is, as Batch classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureCategory {
    /// The task or its inputs (exit code, a resource file, an output pattern, a limit).
    UserError,
    /// This machine (a directory that cannot be written, a program that cannot be started).
    ServerError,
}

impl FailureCategory {
    /// The name Batch uses (`usererror`, `servererror`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCategory::UserError => "usererror",
            FailureCategory::ServerError => "servererror",
        }
    }
}

/// What failed. The names follow the codes Batch reports where it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureCode {
    /// The command exited with a non-zero code.
    FailureExitCode,
    /// A resource file could not be fetched (or its path or access is not possible).
    ResourceFileError,
    /// An output file could not be uploaded (or its pattern matched nothing).
    FileUploadError,
    /// The command ran longer than its `maxWallClockTime`.
    MaxWallClockTimeExceeded,
    /// The command line cannot be parsed or the program cannot be started.
    CommandLineError,
    /// The task directory cannot be prepared.
    TaskDirectoryError,
    /// The task runs an image, and this machine has no container engine (podman) to run it.
    ContainerEngineMissing,
    /// The task was stopped while it ran: its job ended (another task failed), or its record
    /// was removed.
    TaskEnded,
}

impl FailureCode {
    pub fn category(self) -> FailureCategory {
        match self {
            FailureCode::TaskDirectoryError | FailureCode::ContainerEngineMissing => {
                FailureCategory::ServerError
            }
            _ => FailureCategory::UserError,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::FailureExitCode => "FailureExitCode",
            FailureCode::ResourceFileError => "ResourceFileError",
            FailureCode::FileUploadError => "FileUploadError",
            FailureCode::MaxWallClockTimeExceeded => "MaxWallClockTimeExceeded",
            FailureCode::CommandLineError => "CommandLineError",
            FailureCode::TaskDirectoryError => "TaskDirectoryError",
            FailureCode::ContainerEngineMissing => "ContainerEngineMissing",
            FailureCode::TaskEnded => "TaskEnded",
        }
    }
}

/// A task's failure: Batch's `failureInfo` (category, code, message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFailure {
    pub category: FailureCategory,
    pub code: FailureCode,
    /// What happened, without any SAS signature.
    pub message: String,
}

impl TaskFailure {
    pub fn new(code: FailureCode, message: impl Into<String>) -> TaskFailure {
        TaskFailure {
            category: code.category(),
            code,
            message: message.into(),
        }
    }

    /// The same failure with more said after it (an upload that also failed, say).
    pub fn and(mut self, other: &TaskFailure) -> TaskFailure {
        self.message = format!("{}; {}: {}", self.message, other.code, other.message);
        self
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_like_batch_failure_info() {
        let failure = TaskFailure::new(FailureCode::FailureExitCode, "exit code 3");
        assert_eq!(failure.category, FailureCategory::UserError);
        assert_eq!(failure.to_string(), "FailureExitCode: exit code 3");
        assert_eq!(
            serde_json::to_value(&failure).unwrap(),
            serde_json::json!({"category": "usererror", "code": "FailureExitCode", "message": "exit code 3"})
        );
        let both = failure.and(&TaskFailure::new(FailureCode::FileUploadError, "403"));
        assert_eq!(both.message, "exit code 3; FileUploadError: 403");
        assert_eq!(
            FailureCode::TaskDirectoryError.category(),
            FailureCategory::ServerError
        );
    }
}
