//! [`TaskRunner`] on Azure Batch: tasks go to the long-lived job (created on first use), jobs of
//! the job-per-blob mode go in as jobs of their own.
//!
//! One deadline bounds a whole `submit` call, job creation and the retried add included, so that
//! an invocation answers before Event Grid gives up on it.

use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::client::BatchClient;
use super::error::BatchError;
use crate::error_chain::error_chain;
use crate::runner::{Accepted, BoxFuture, Submission, SubmitError, SubmitResult, TaskRunner};
use crate::task_spec::{JobSpec, OnAllTasksComplete, PoolInfo, TaskSpec};

/// Submits to one Batch account: tasks into `job_id` on `pool_id`.
#[derive(Clone, Debug)]
pub struct BatchTaskRunner {
    client: BatchClient,
    job_id: String,
    pool_id: String,
}

impl BatchTaskRunner {
    pub fn new(client: BatchClient, job_id: impl Into<String>, pool_id: impl Into<String>) -> Self {
        BatchTaskRunner {
            client,
            job_id: job_id.into(),
            pool_id: pool_id.into(),
        }
    }

    /// The long-lived job: `noaction` when all tasks complete, since it keeps receiving tasks.
    fn long_lived_job(&self) -> JobSpec {
        JobSpec {
            id: self.job_id.clone(),
            display_name: None,
            pool_info: PoolInfo {
                pool_id: Some(self.pool_id.clone()),
                auto_pool_specification: None,
            },
            on_all_tasks_complete: Some(OnAllTasksComplete::NoAction),
            job_manager_task: None,
        }
    }

    async fn add_tasks(
        &self,
        tasks: &[&TaskSpec],
        deadline: Instant,
    ) -> Vec<Result<Accepted, BatchError>> {
        let mut results = self.add_tasks_once(tasks, deadline).await;
        let missing_job: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, Err(e) if e.has_code("JobNotFound")))
            .map(|(i, _)| i)
            .collect();
        if missing_job.is_empty() {
            return results;
        }

        info!(job_id = %self.job_id, pool_id = %self.pool_id, "Batch job not found; creating it");
        match self
            .client
            .add_job_until(&self.long_lived_job(), deadline)
            .await
        {
            Ok(outcome) => {
                info!(job_id = %self.job_id, ?outcome, "Batch job ensured");
                let retry: Vec<&TaskSpec> = missing_job.iter().map(|&i| tasks[i]).collect();
                let again = self.add_tasks_once(&retry, deadline).await;
                for (i, result) in missing_job.into_iter().zip(again) {
                    results[i] = result;
                }
            }
            Err(e) => {
                error!(
                    job_id = %self.job_id,
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
        tasks: &[&TaskSpec],
        deadline: Instant,
    ) -> Vec<Result<Accepted, BatchError>> {
        match tasks {
            [] => Vec::new(),
            [task] => vec![
                self.client
                    .add_task_until(&self.job_id, task, deadline)
                    .await,
            ],
            _ => {
                self.client
                    .add_task_collection_until(&self.job_id, tasks, deadline)
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
        let mut results: Vec<Option<Result<Accepted, BatchError>>> = vec![None; jobs.len()];
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, result)) => results[i] = Some(result),
                Err(e) => warn!(error = %e, "Add Job task did not finish"),
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(BatchError::transient("Add Job did not finish"))))
            .collect()
    }
}

impl TaskRunner for BatchTaskRunner {
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
        Box::pin(self.submit_until(items, self.client.deadline()))
    }
}

impl BatchTaskRunner {
    /// [`TaskRunner::submit`] with the deadline given: a caller that queued the items first
    /// passes what is left of their budget.
    pub async fn submit_until(&self, items: &[Submission], deadline: Instant) -> Vec<SubmitResult> {
        let mut task_items = Vec::new();
        let mut tasks = Vec::new();
        let mut job_items = Vec::new();
        let mut jobs = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Submission::Task(task) => {
                    task_items.push(i);
                    tasks.push(task);
                }
                Submission::Job(job) => {
                    job_items.push(i);
                    jobs.push(job);
                }
            }
        }

        let (task_results, job_results) = tokio::join!(
            self.add_tasks(&tasks, deadline),
            self.add_jobs(&jobs, deadline)
        );

        let mut results: Vec<Option<SubmitResult>> = vec![None; items.len()];
        for (i, result) in task_items
            .into_iter()
            .zip(task_results)
            .chain(job_items.into_iter().zip(job_results))
        {
            results[i] = Some(to_submit_result(items[i].id(), result));
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(SubmitError::transient(
                        "the Batch client returned no result",
                    ))
                })
            })
            .collect()
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
