//! [`TaskRunner`] on Azure Batch: tasks go to the long-lived job (created on first use), jobs of
//! the job-per-blob mode go in as jobs of their own, split blobs as described in
//! [`super::split`].
//!
//! One deadline bounds a whole `submit` call, job creation and the retried add included, so that
//! an invocation answers before Event Grid gives up on it.

use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::client::BatchClient;
use super::error::BatchError;
use super::models::{BatchTask, TaskState as BatchTaskState};
use super::split::{delete_job_and_wait, submit_split};
use crate::error_chain::error_chain;
use crate::fail_fast::map_fail_fast;
use crate::per_item::PerItem;
use crate::runner::{
    Accepted, BoxFuture, FailureInfo, JobRef, LookupError, LookupResult, MERGE_TASK_ID,
    RemoveError, SplitJob, Submission, SubmitError, SubmitResult, TaskLookup, TaskRemover,
    TaskRunner, TaskState, TaskStatus, split_status,
};
use crate::task_spec::{JobSpec, TaskSpec};

/// Get Task requests in flight at once when reading many tasks' states.
const LOOKUPS_IN_FLIGHT: usize = 16;

/// Submits to one Batch account: tasks into the long-lived job each names (created on its pool
/// on first use), and jobs of their own.
#[derive(Clone, Debug)]
pub struct BatchTaskRunner {
    client: BatchClient,
}

impl BatchTaskRunner {
    pub fn new(client: BatchClient) -> Self {
        BatchTaskRunner { client }
    }

    /// The client it submits with.
    pub fn client(&self) -> &BatchClient {
        &self.client
    }

    /// Adds `tasks` to `job`, creating the job when the service says it is not there yet.
    async fn add_tasks(
        &self,
        job: &JobRef,
        tasks: &[&TaskSpec],
        deadline: Instant,
    ) -> Vec<Result<Accepted, BatchError>> {
        let mut results = self.add_tasks_once(&job.id, tasks, deadline).await;
        let missing_job: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, Err(e) if e.has_code("JobNotFound")))
            .map(|(i, _)| i)
            .collect();
        if missing_job.is_empty() {
            return results;
        }

        info!(job_id = %job.id, pool_id = %job.pool, "Batch job not found; creating it");
        match self
            .client
            .add_job_until(&JobSpec::long_lived(&job.id, &job.pool), deadline)
            .await
        {
            Ok(outcome) => {
                info!(job_id = %job.id, ?outcome, "Batch job ensured");
                let retry: Vec<&TaskSpec> = missing_job.iter().map(|&i| tasks[i]).collect();
                let again = self.add_tasks_once(&job.id, &retry, deadline).await;
                for (i, result) in missing_job.into_iter().zip(again) {
                    results[i] = result;
                }
            }
            Err(e) => {
                error!(
                    job_id = %job.id,
                    code = e.code.as_deref(),
                    batch_message = %e.message_line(),
                    "cannot create the Batch job"
                );
                for i in missing_job {
                    results[i] = Err(e.clone());
                }
            }
        }
        results
    }

    async fn add_tasks_once(
        &self,
        job_id: &str,
        tasks: &[&TaskSpec],
        deadline: Instant,
    ) -> Vec<Result<Accepted, BatchError>> {
        match tasks {
            [] => Vec::new(),
            [task] => vec![self.client.add_task_until(job_id, task, deadline).await],
            _ => {
                self.client
                    .add_task_collection_until(job_id, tasks, deadline)
                    .await
            }
        }
    }

    /// Jobs are independent requests; sending them together keeps one slow job from eating the
    /// budget of the others.
    async fn add_jobs(
        &self,
        jobs: &[&JobSpec],
        deadline: Instant,
    ) -> Vec<Result<Accepted, BatchError>> {
        if let [job] = jobs {
            return vec![self.client.add_job_until(job, deadline).await];
        }
        let mut set = JoinSet::new();
        for (i, job) in jobs.iter().enumerate() {
            let client = self.client.clone();
            let job = (*job).clone();
            set.spawn(async move { (i, client.add_job_until(&job, deadline).await) });
        }
        let mut results = PerItem::new(jobs.len());
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, result)) => results.set(i, result),
                Err(e) => warn!(error = %e, "Add Job task did not finish"),
            }
        }
        results.finish(|| Err(BatchError::transient("Add Job did not finish")))
    }
}

impl TaskRunner for BatchTaskRunner {
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
        Box::pin(self.submit_until(items, self.client.deadline()))
    }
}

impl BatchTaskRunner {
    /// [`TaskRunner::submit`] with the deadline given: a caller that queued the items first
    /// passes what is left of their budget. Tasks of different jobs go in calls of their own, at
    /// the same time.
    pub(crate) async fn submit_until(
        &self,
        items: &[Submission],
        deadline: Instant,
    ) -> Vec<SubmitResult> {
        let mut by_job: Vec<(&JobRef, Vec<usize>)> = Vec::new();
        let (mut job_items, mut split_items) = (Vec::new(), Vec::new());
        for (i, item) in items.iter().enumerate() {
            match item {
                Submission::Task { job, .. } => match by_job.iter_mut().find(|(j, _)| *j == job) {
                    Some((_, at)) => at.push(i),
                    None => by_job.push((job, vec![i])),
                },
                Submission::Job(_) => job_items.push(i),
                Submission::Split(_) => split_items.push(i),
            }
        }
        let task_calls = by_job.iter().map(|(job, at)| {
            let tasks: Vec<&TaskSpec> = at.iter().filter_map(|&i| items[i].work()).collect();
            async move { self.add_tasks(job, &tasks, deadline).await }
        });
        let jobs: Vec<&JobSpec> = job_items
            .iter()
            .filter_map(|&i| match &items[i] {
                Submission::Job(job) => Some(job),
                _ => None,
            })
            .collect();
        let splits = split_items.iter().filter_map(|&i| match &items[i] {
            Submission::Split(split) => Some(submit_split(&self.client, split, deadline)),
            _ => None,
        });
        let (task_results, job_results, split_results) = tokio::join!(
            futures_util::future::join_all(task_calls),
            self.add_jobs(&jobs, deadline),
            futures_util::future::join_all(splits),
        );

        let mut results = PerItem::new(items.len());
        let task_at = by_job.into_iter().flat_map(|(_, at)| at);
        for (i, result) in task_at
            .zip(task_results.into_iter().flatten())
            .chain(job_items.into_iter().zip(job_results))
            .chain(split_items.into_iter().zip(split_results))
        {
            results.set(i, to_submit_result(items[i].id(), result));
        }
        results.finish(|| {
            Err(SubmitError::transient(
                "the Batch client returned no result",
            ))
        })
    }
}

impl BatchTaskRunner {
    async fn lookup_one(&self, item: &Submission) -> LookupResult {
        let (job_id, task_id) = match item {
            Submission::Task { job, task } => (job.id.as_str(), task.id.as_str()),
            Submission::Job(job) => (
                job.id.as_str(),
                job.job_manager_task
                    .as_ref()
                    .map_or("", |manager| manager.task.id.as_str()),
            ),
            Submission::Split(split) => return self.lookup_split(split).await,
        };
        match self.client.get_task_state(job_id, task_id).await {
            Ok(task) => Ok(Some(status_of(&task))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(LookupError(std::sync::Arc::new(e))),
        }
    }

    /// A split blob's state, from its job's tasks (one listing, whatever their number).
    async fn lookup_split(&self, split: &SplitJob) -> LookupResult {
        let tasks = match self
            .client
            .list_task_states(&split.job.id, self.client.deadline())
            .await
        {
            Ok(tasks) => tasks,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(LookupError(std::sync::Arc::new(e))),
        };
        let mut merge = None;
        let mut parts = Vec::with_capacity(tasks.len());
        for task in &tasks {
            if task.id.eq_ignore_ascii_case(MERGE_TASK_ID) {
                merge = Some(status_of(task));
            } else {
                parts.push((task.id.clone(), status_of(task)));
            }
        }
        let total = u32::try_from(split.parts.len()).unwrap_or(u32::MAX);
        Ok(Some(split_status(total, parts, merge)))
    }
}

fn is_not_found(error: &BatchError) -> bool {
    error.has_code("TaskNotFound") || error.has_code("JobNotFound")
}

impl TaskLookup for BatchTaskRunner {
    /// Get Task per item, several at once. Once one read has failed after its retries, the items
    /// not yet started fail with that error instead of each spending the retry budget again:
    /// against an unreachable service, `status` over thousands of blobs would otherwise take
    /// hours to say so.
    fn lookup<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<LookupResult>> {
        Box::pin(map_fail_fast(items, LOOKUPS_IN_FLIGHT, |item| {
            self.lookup_one(item)
        }))
    }
}

impl TaskRemover for BatchTaskRunner {
    /// Delete Task for a task of a long-lived job; Delete Job, then waiting until it is gone,
    /// for a job of its own (job per blob, split blob).
    fn remove<'a>(&'a self, item: &'a Submission) -> BoxFuture<'a, Result<(), RemoveError>> {
        Box::pin(async move {
            let deadline = self.client.deadline();
            let (what, result) = match item {
                Submission::Task { job, task } => (
                    format!("task {} of job {}", task.id, job.id),
                    match self.client.delete_task(&job.id, &task.id, deadline).await {
                        Err(e) if is_not_found(&e) => Ok(()),
                        other => other,
                    },
                ),
                Submission::Job(_) | Submission::Split(_) => (
                    format!("job {}", item.id()),
                    delete_job_and_wait(&self.client, item.id(), deadline).await,
                ),
            };
            result.map_err(|e| RemoveError::new(what, e))
        })
    }
}

/// A task as Get Task returns it, in the runner's terms. A state this version does not know
/// reads as `active`: the task exists and has not been seen to finish.
fn status_of(task: &BatchTask) -> TaskStatus {
    let info = task.execution_info.clone().unwrap_or_default();
    let state = match task.state {
        Some(BatchTaskState::Preparing) => TaskState::Preparing,
        Some(BatchTaskState::Running) => TaskState::Running,
        Some(BatchTaskState::Completed) => {
            let failed = info.result.as_deref() == Some("failure")
                || info.failure_info.is_some()
                || info.exit_code.is_some_and(|code| code != 0);
            if failed {
                TaskState::Failed
            } else {
                TaskState::Succeeded
            }
        }
        Some(BatchTaskState::Active | BatchTaskState::Unknown) | None => TaskState::Active,
    };
    TaskStatus {
        state,
        exit_code: info.exit_code,
        retries: info.retry_count,
        failure: info.failure_info.map(|f| FailureInfo {
            category: f.category.unwrap_or_default(),
            code: f.code.unwrap_or_default(),
            message: f.message.unwrap_or_default(),
        }),
        parts: None,
        failed_task: None,
    }
}

fn to_submit_result(id: &str, result: Result<Accepted, BatchError>) -> SubmitResult {
    match result {
        Ok(accepted) => Ok(accepted),
        Err(e) if e.is_transient() => {
            warn!(id, error = %error_chain(&e), "Batch submission failed transiently");
            Err(SubmitError::transient(e))
        }
        Err(e) => {
            let code = e
                .code
                .clone()
                .or_else(|| e.status.map(|s| format!("HTTP{s}")))
                .unwrap_or_else(|| "Unknown".to_string());
            error!(
                id,
                code = %code,
                batch_message = %e.message_line(),
                status = e.status,
                request_id = e.request_id.as_deref(),
                "Batch rejected the submission"
            );
            Err(SubmitError::rejected(code, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(value: serde_json::Value) -> BatchTask {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn states_read_like_batch_reports_them() {
        let running = status_of(&task(serde_json::json!({"id": "t", "state": "running"})));
        assert_eq!(running.state, TaskState::Running);
        let ok = status_of(&task(serde_json::json!({"id": "t", "state": "completed",
            "executionInfo": {"exitCode": 0, "result": "success", "retryCount": 1}})));
        assert_eq!(
            (ok.state, ok.exit_code, ok.retries),
            (TaskState::Succeeded, Some(0), Some(1))
        );
        let failed = status_of(&task(serde_json::json!({"id": "t", "state": "completed",
            "executionInfo": {"exitCode": 3, "result": "failure", "retryCount": 2,
                "failureInfo": {"category": "usererror", "code": "FailureExitCode", "message": "m"}}})));
        assert_eq!(failed.state, TaskState::Failed);
        assert_eq!(failed.failure.unwrap().code, "FailureExitCode");
        // A task that never ran (its resource file could not be fetched) has no exit code.
        let never_ran = status_of(&task(serde_json::json!({"id": "t", "state": "completed",
            "executionInfo": {"result": "failure",
                "failureInfo": {"category": "usererror", "code": "BlobAccessDenied", "message": "m"}}})));
        assert_eq!(
            (never_ran.state, never_ran.exit_code),
            (TaskState::Failed, None)
        );
        let future = status_of(&task(
            serde_json::json!({"id": "t", "state": "hibernating"}),
        ));
        assert_eq!(future.state, TaskState::Active);
    }
}
