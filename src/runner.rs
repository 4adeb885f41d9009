//! The seam between "what to run" and "where it runs".
//!
//! The planner turns events into [`Submission`]s; a [`TaskRunner`] puts them somewhere they will run:
//! Azure Batch (`crate::batch`) or this machine (`crate::local`). Both honour the same contract: an id
//! seen before is a duplicate, never a second run.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error_chain::error_chain;
use crate::per_item::one_per_item;
use crate::task_spec::{JobSpec, TaskSpec};

/// One unit of work, as planned for one blob version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submission {
    /// A task added to a long-lived job (`BATCH_JOB_ID`, or a workload's own), which is created
    /// on its pool on first use.
    Task { job: JobRef, task: TaskSpec },
    /// A job of its own, with the task as its job manager and an auto pool (job-per-blob mode).
    Job(JobSpec),
    /// A large blob's word count, split: a job of its own holding the parts and the merge that
    /// depends on them.
    Split(Box<SplitJob>),
}

/// The task id of a split blob's merge; its parts' ids are their numbers, `0` to `N-1`.
pub(crate) const MERGE_TASK_ID: &str = "merge";

/// A split word count: its job (created with task dependencies and ended by a failed task),
/// the parts (ids `0` to `N-1`), and the merge, added only once every part is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitJob {
    pub job: JobSpec,
    pub parts: Vec<TaskSpec>,
    pub merge: TaskSpec,
}

impl SplitJob {
    /// Every task: the parts, then the merge.
    pub fn tasks(&self) -> impl Iterator<Item = &TaskSpec> {
        self.parts.iter().chain(std::iter::once(&self.merge))
    }
}

/// A long-lived job tasks are added to, and the pool it runs on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JobRef {
    pub id: String,
    pub pool: String,
}

impl JobRef {
    pub fn new(id: impl Into<String>, pool: impl Into<String>) -> JobRef {
        JobRef {
            id: id.into(),
            pool: pool.into(),
        }
    }
}

impl Submission {
    /// A task for the job `job`.
    pub fn task(job: &JobRef, task: TaskSpec) -> Submission {
        Submission::Task {
            job: job.clone(),
            task,
        }
    }

    /// The deterministic id (task id, or job id in job-per-blob mode and for a split blob).
    pub fn id(&self) -> &str {
        match self {
            Submission::Task { task, .. } => &task.id,
            Submission::Job(job) => &job.id,
            Submission::Split(split) => &split.job.id,
        }
    }

    /// The one task that does the work, whichever way it is submitted (none for a split blob,
    /// whose work is many tasks).
    pub fn work(&self) -> Option<&TaskSpec> {
        match self {
            Submission::Task { task, .. } => Some(task),
            Submission::Job(job) => job.job_manager_task.as_ref().map(|m| &m.task),
            Submission::Split(_) => None,
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

/// The cause of a failed submission, shared because one failed request fails every item it carried.
pub(crate) type Cause = Arc<dyn Error + Send + Sync>;

/// Why a submission failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SubmitError {
    /// Throttling, a server error, a timeout or an unreachable service, still failing when the retry
    /// budget ran out. Worth a redelivery.
    #[error("transient failure")]
    Transient(#[source] Cause),
    /// The service refused the request for a reason retrying will not fix (bad credentials, a
    /// completed job, a malformed task). `code` is the service's error code when it gave one.
    #[error("rejected ({code})")]
    Rejected {
        code: String,
        #[source]
        cause: Cause,
    },
}

impl SubmitError {
    pub fn transient(cause: impl Into<Box<dyn Error + Send + Sync>>) -> SubmitError {
        SubmitError::Transient(Arc::from(cause.into()))
    }

    pub fn rejected(
        code: impl Into<String>,
        cause: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> SubmitError {
        SubmitError::Rejected {
            code: code.into(),
            cause: Arc::from(cause.into()),
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, SubmitError::Transient(_))
    }

    /// The error and its causes on one line, for reports and logs.
    pub fn reason(&self) -> String {
        error_chain(self)
    }
}

/// Two failures are equal when they are of one kind and give the same reason.
impl PartialEq for SubmitError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.reason() == other.reason()
    }
}

pub type SubmitResult = Result<Accepted, SubmitError>;

/// Boxed so that runners can be chosen at start-up and shared as `Arc<dyn TaskRunner>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait TaskRunner: Send + Sync + 'static {
    /// Submits every item; returns one result per item, in the same order.
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>>;
}

/// Submits `items` through `runner`, holding it to its contract: exactly one result per item,
/// in order. An item it left without one was not submitted as far as anyone can tell, so it
/// fails transiently and asks for a redelivery.
pub(crate) async fn submit_each(
    runner: &dyn TaskRunner,
    items: &[Submission],
) -> Vec<SubmitResult> {
    let results = runner.submit(items).await;
    one_per_item(results, items.len(), || {
        Err(SubmitError::transient(
            "the runner returned no result for this task",
        ))
    })
}

/// Looks `items` up through `lookup`, one result per item, in order; an item left without one
/// could not be read.
pub(crate) async fn lookup_each(
    lookup: &dyn TaskLookup,
    items: &[Submission],
) -> Vec<LookupResult> {
    let results = lookup.lookup(items).await;
    one_per_item(results, items.len(), || {
        Err(LookupError(Arc::new(NoAnswer)))
    })
}

#[derive(Debug, thiserror::Error)]
#[error("the lookup returned no result for this task")]
struct NoAnswer;

/// Where a submitted task stands, in Batch's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Active,
    Preparing,
    Running,
    /// Completed with exit code 0.
    Succeeded,
    /// Completed with a non-zero exit code or a failure (Batch's `executionInfo.result` is
    /// `failure`).
    Failed,
}

/// Why a task failed: Batch's `failureInfo`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FailureInfo {
    /// `usererror` or `servererror`.
    pub category: String,
    pub code: String,
    pub message: String,
}

/// What a runner knows of one submitted task (for a split blob: of its tasks as one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStatus {
    pub state: TaskState,
    pub exit_code: Option<i32>,
    /// Batch's retry count.
    pub retries: Option<i32>,
    pub failure: Option<FailureInfo>,
    /// A split blob's parts, by state (`None` for one task).
    pub parts: Option<PartCounts>,
    /// A split blob's task whose failure `failure` is (its logs are in a folder of that name).
    pub failed_task: Option<String>,
}

impl TaskStatus {
    /// A task in `state` with nothing more to say.
    pub fn new(state: TaskState) -> TaskStatus {
        TaskStatus {
            state,
            exit_code: None,
            retries: None,
            failure: None,
            parts: None,
            failed_task: None,
        }
    }
}

/// How far a split blob's parts are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartCounts {
    pub total: u32,
    /// Waiting for a node (Batch's `active` and `preparing`).
    pub active: u32,
    pub running: u32,
    pub succeeded: u32,
    pub failed: u32,
}

impl PartCounts {
    pub fn add(&mut self, state: TaskState) {
        match state {
            TaskState::Active | TaskState::Preparing => self.active += 1,
            TaskState::Running => self.running += 1,
            TaskState::Succeeded => self.succeeded += 1,
            TaskState::Failed => self.failed += 1,
        }
    }
}

/// A split blob's state from its tasks': failed when a part or the merge failed (the status
/// names the first that did), succeeded when the merge did, running while any task runs, else
/// waiting. Parts not added (yet) count as waiting.
pub(crate) fn split_status(
    total_parts: u32,
    parts: impl IntoIterator<Item = (String, TaskStatus)>,
    merge: Option<TaskStatus>,
) -> TaskStatus {
    let mut counts = PartCounts {
        total: total_parts,
        ..PartCounts::default()
    };
    let mut failed_part: Option<(String, TaskStatus)> = None;
    for (id, part) in parts {
        counts.add(part.state);
        if part.state == TaskState::Failed && failed_part.is_none() {
            failed_part = Some((id, part));
        }
    }
    let seen = counts.active + counts.running + counts.succeeded + counts.failed;
    counts.active += total_parts.saturating_sub(seen);
    let merge_running = merge
        .as_ref()
        .is_some_and(|m| m.state == TaskState::Running);
    let mut status = match (failed_part, merge) {
        (Some((id, part)), _) => TaskStatus {
            failed_task: Some(id),
            ..part
        },
        (None, Some(merge)) if merge.state == TaskState::Failed => TaskStatus {
            failed_task: Some(MERGE_TASK_ID.to_string()),
            ..merge
        },
        (None, Some(merge)) if merge.state == TaskState::Succeeded => merge,
        (None, _) if counts.running > 0 || merge_running => TaskStatus::new(TaskState::Running),
        (None, _) => TaskStatus::new(TaskState::Active),
    };
    status.parts = Some(counts);
    status
}

/// A task's status could not be read (the service stayed unreachable, refused the request).
#[derive(Clone, Debug, thiserror::Error)]
#[error("cannot read the task's state")]
pub struct LookupError(#[source] pub Cause);

/// `None` when no task has this id.
pub(crate) type LookupResult = Result<Option<TaskStatus>, LookupError>;

/// Reads back what became of submissions, by their ids (the same ids `submit` used).
pub trait TaskLookup: Send + Sync + 'static {
    /// One result per item, in the same order.
    fn lookup<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<LookupResult>>;
}

/// Removes what a submission left in its runner, so that the same blob version can be
/// submitted again under the same ids (`reconcile --retry-failed`): its task, or its job with
/// every task in it. Something already gone is removed.
pub trait TaskRemover: Send + Sync + 'static {
    fn remove<'a>(&'a self, item: &'a Submission) -> BoxFuture<'a, Result<(), RemoveError>>;
}

/// A submission's task or job could not be removed.
#[derive(Clone, Debug, thiserror::Error)]
#[error("cannot remove {what}")]
pub struct RemoveError {
    /// What was to be removed (`task X of job Y`, `job Y`).
    pub what: String,
    #[source]
    pub cause: Cause,
}

impl RemoveError {
    pub fn new(what: impl Into<String>, cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        RemoveError {
            what: what.into(),
            cause: Arc::from(cause.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_carry_the_cause() {
        let transient = SubmitError::transient("Batch answered 503 three times");
        assert!(transient.is_transient());
        assert_eq!(
            transient.reason(),
            "transient failure: Batch answered 503 three times"
        );
        let rejected = SubmitError::rejected("AuthenticationFailed", "the signature is wrong");
        assert!(!rejected.is_transient());
        assert_eq!(
            rejected.reason(),
            "rejected (AuthenticationFailed): the signature is wrong"
        );
    }
}
