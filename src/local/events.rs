//! What the local runner tells whoever watches it (the `dev` console, tests): each task as it
//! is received, starts and ends, and each job of its own (a split blob's) as it ends.

use std::path::PathBuf;
use std::time::Duration;

use super::failure::TaskFailure;
use super::job_dir::TerminateReason;
use super::outputs::UploadedOutput;

/// Where a task's time went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phases {
    /// Downloading the resource files.
    pub fetch: Duration,
    /// The command.
    pub run: Duration,
    /// Uploading the output files.
    pub upload: Duration,
}

/// What happens to tasks and jobs. A task's `job` is the job of its own it belongs to (a split
/// blob's), `None` for a task of a long-lived job; task ids are unique only within their job.
#[derive(Clone, Debug)]
pub enum RunnerEvent {
    Received {
        id: String,
        job: Option<String>,
        display_name: Option<String>,
    },
    Running {
        id: String,
        job: Option<String>,
        display_name: Option<String>,
    },
    Done {
        id: String,
        job: Option<String>,
        display_name: Option<String>,
        exit_code: i32,
        duration: Duration,
        phases: Phases,
        outputs: Vec<UploadedOutput>,
        task_dir: PathBuf,
    },
    Failed {
        id: String,
        job: Option<String>,
        display_name: Option<String>,
        exit_code: Option<i32>,
        duration: Duration,
        failure: TaskFailure,
        stderr_tail: String,
        /// Outputs uploaded anyway (e.g. the logs on `taskfailure`).
        outputs: Vec<UploadedOutput>,
        task_dir: PathBuf,
    },
    /// A job of its own ended: every task completed, or one failed and ended it.
    JobCompleted {
        job: String,
        display_name: Option<String>,
        reason: TerminateReason,
        /// The task whose failure ended the job.
        failed_task: Option<String>,
        /// Its tasks by how they stood when it ended: those unfinished then were stopped, or
        /// never ran.
        succeeded: usize,
        failed: usize,
        unfinished: usize,
    },
}

impl RunnerEvent {
    /// The task's id (the job's, for `JobCompleted`).
    pub fn id(&self) -> &str {
        match self {
            RunnerEvent::Received { id, .. }
            | RunnerEvent::Running { id, .. }
            | RunnerEvent::Done { id, .. }
            | RunnerEvent::Failed { id, .. } => id,
            RunnerEvent::JobCompleted { job, .. } => job,
        }
    }

    /// The job of its own the event's task belongs to, or the job that completed.
    pub fn job(&self) -> Option<&str> {
        match self {
            RunnerEvent::Received { job, .. }
            | RunnerEvent::Running { job, .. }
            | RunnerEvent::Done { job, .. }
            | RunnerEvent::Failed { job, .. } => job.as_deref(),
            RunnerEvent::JobCompleted { job, .. } => Some(job),
        }
    }
}
