//! The seam between "what to run" and "where it runs".
//!
//! The planner turns events into [`Submission`]s; a [`TaskRunner`] puts them somewhere they will run:
//! Azure Batch (`crate::batch`) or this machine (`crate::local`). Both honour the same contract: an id
//! seen before is a duplicate, never a second run.

use std::future::Future;
use std::pin::Pin;

use crate::batch::models::{JobSpec, TaskSpec};

/// One unit of work, as planned for one blob version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submission {
    /// A task added to the long-lived job (`BATCH_JOB_ID`).
    Task(TaskSpec),
    /// A job of its own, with the task as its job manager and an auto pool (job-per-blob mode).
    Job(JobSpec),
}

impl Submission {
    /// The deterministic id (task id, or job id in job-per-blob mode).
    pub fn id(&self) -> &str {
        match self {
            Submission::Task(task) => &task.id,
            Submission::Job(job) => &job.id,
        }
    }

    /// The task that does the work, whichever way it is submitted.
    pub fn task(&self) -> Option<&TaskSpec> {
        match self {
            Submission::Task(task) => Some(task),
            Submission::Job(job) => job.job_manager_task.as_ref().map(|m| &m.task),
        }
    }
}

/// What became of one submission that did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Created now.
    Submitted,
    /// Already there (`TaskExists` / `JobExists`): an earlier delivery of the same blob version.
    Duplicate,
}

/// Why a submission failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Throttling, a server error, a timeout or an unreachable service, still failing when the retry
    /// budget ran out. Worth a redelivery.
    #[error("transient failure: {0}")]
    Transient(String),
    /// The service refused the request for a reason retrying will not fix (bad credentials, a
    /// completed job, a malformed task). `code` is the service's error code when it gave one.
    #[error("rejected ({code}): {message}")]
    Rejected { code: String, message: String },
}

pub type SubmitResult = Result<Accepted, SubmitError>;

/// Boxed so that runners can be chosen at start-up and shared as `Arc<dyn TaskRunner>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait TaskRunner: Send + Sync + 'static {
    /// Submits every item; returns one result per item, in the same order.
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>>;
}
