//! Reading back and removing what submissions left in a work directory, whether or not a runner
//! is executing it: `status` reads a blob's task (or its split job's tasks as one), and
//! `reconcile --retry-failed` removes a failed blob version's records so that the same ids can
//! be submitted again.

use std::io;
use std::sync::Arc;

use super::job_dir::JobStore;
use super::task_dir::TaskStore;
use crate::runner::{
    BoxFuture, LookupError, LookupResult, RemoveError, SplitJob, Submission, TaskLookup,
    TaskRemover, TaskStatus, split_status,
};

impl TaskStore {
    /// The `jobs/` beside this `tasks/`, as it is on disk.
    fn jobs(&self) -> Option<JobStore> {
        self.work_dir().map(|dir| JobStore::at(dir.join("jobs")))
    }

    fn lookup_one(&self, item: &Submission) -> LookupResult {
        let found = match item {
            Submission::Split(split) => self.lookup_split(split),
            _ => {
                let dir = self.dir(item.id());
                match std::fs::metadata(dir.spec_path()) {
                    Ok(_) => Ok(Some(dir.state().status())),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            }
        };
        found.map_err(|e| LookupError(Arc::new(e)))
    }

    /// A split blob's state from its job's task records (`None` when the job is not recorded).
    /// The task whose failure ended the job comes first, so that it is the one named: tasks
    /// stopped because of it fail too, for another reason.
    fn lookup_split(&self, split: &SplitJob) -> io::Result<Option<TaskStatus>> {
        let Some(jobs) = self.jobs() else {
            return Ok(None);
        };
        let job = jobs.dir(&split.job.id);
        if !job.exists() {
            return Ok(None);
        }
        let culprit = job
            .completion()
            .and_then(|c| c.failed_task)
            .map(|id| id.to_ascii_lowercase());
        let tasks = job.tasks();
        let recorded = |id: &str| {
            let dir = tasks.dir(id);
            dir.spec_path()
                .is_file()
                .then(|| (id.to_string(), dir.state().status()))
        };
        let mut parts: Vec<(String, TaskStatus)> =
            split.parts.iter().filter_map(|p| recorded(&p.id)).collect();
        if let Some(culprit) = culprit
            && let Some(at) = parts
                .iter()
                .position(|(id, _)| id.eq_ignore_ascii_case(&culprit))
        {
            let first = parts.remove(at);
            parts.insert(0, first);
        }
        let merge = recorded(&split.merge.id).map(|(_, status)| status);
        let total = u32::try_from(split.parts.len()).unwrap_or(u32::MAX);
        Ok(Some(split_status(total, parts, merge)))
    }

    /// Removes a submission's records: its task (a job per blob runs under the job's id), or
    /// its split job with every task in it. A runner that is running one of them gives it up:
    /// it sees the record gone and neither uploads nor records what the run did (Batch deletes
    /// a running task the same way, stopping it).
    pub(crate) fn remove_records(&self, item: &Submission) -> Result<(), RemoveError> {
        let (what, removed) = match item {
            Submission::Task { job, task } => (
                format!("task {} of job {}", task.id, job.id),
                self.delete(&task.id),
            ),
            Submission::Job(job) => (format!("job {}", job.id), self.delete(&job.id)),
            Submission::Split(split) => {
                let removed = match self.jobs() {
                    Some(jobs) => jobs.delete(&split.job.id),
                    None => Ok(false),
                };
                (format!("job {}", split.job.id), removed)
            }
        };
        removed.map(drop).map_err(|e| RemoveError::new(what, e))
    }
}

/// Reads task records, whether or not a runner is executing them.
impl TaskLookup for TaskStore {
    fn lookup<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<LookupResult>> {
        let results = items.iter().map(|item| self.lookup_one(item)).collect();
        Box::pin(async move { results })
    }
}

impl TaskRemover for TaskStore {
    fn remove<'a>(&'a self, item: &'a Submission) -> BoxFuture<'a, Result<(), RemoveError>> {
        let removed = self.remove_records(item);
        Box::pin(async move { removed })
    }
}
