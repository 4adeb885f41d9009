//! The job operations a split blob needs beyond adding: reading a job's state, turning on its
//! termination once every task is in, listing its tasks' states, and deleting a failed job or
//! task so that it can be submitted again.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use super::client::BatchClient;
use super::error::BatchError;
use super::models::{BatchJob, BatchTask, TaskListPage};
use super::transport::Call;

/// What List Tasks returns of each task: where it stands and how it ended, not its body (the
/// SAS URLs in it).
const TASK_STATE_FIELDS: &str = "id,state,executionInfo";
/// The most pages one listing follows: a split job holds at most 10,001 tasks, 1,000 a page.
const MAX_PAGES: usize = 64;

impl BatchClient {
    /// Get Job with `$select=id,state,onAllTasksComplete,executionInfo`.
    pub(crate) async fn get_job_state(
        &self,
        job_id: &str,
        deadline: Instant,
    ) -> Result<BatchJob, BatchError> {
        let mut url = self.url(&["jobs", job_id]);
        url.query_pairs_mut()
            .append_pair("$select", "id,state,onAllTasksComplete,executionInfo");
        self.get_json("get_job", url, deadline).await
    }

    /// Update Job (`PATCH`) `{"onAllTasksComplete": "terminatejob"}`: the job ends when all its
    /// tasks have. Only once every task is in: a job with no task left to run ends at once.
    pub(crate) async fn terminate_job_when_done(
        &self,
        job_id: &str,
        deadline: Instant,
    ) -> Result<(), BatchError> {
        let body = br#"{"onAllTasksComplete":"terminatejob"}"#.to_vec();
        let call = Call::new(
            "update_job",
            Method::PATCH,
            self.url(&["jobs", job_id]),
            Some(body),
        );
        let reply = self.transport().execute(&call, deadline).await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(call.refused(&reply))
        }
    }

    /// Every task of the job, with its state and execution information only.
    pub(crate) async fn list_task_states(
        &self,
        job_id: &str,
        deadline: Instant,
    ) -> Result<Vec<BatchTask>, BatchError> {
        let mut url = self.url(&["jobs", job_id, "tasks"]);
        url.query_pairs_mut()
            .append_pair("$select", TASK_STATE_FIELDS);
        let mut tasks = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: TaskListPage = self.get_json("list_tasks", url.clone(), deadline).await?;
            tasks.extend(page.value);
            match page.next_link.as_deref().map(|link| self.next_page(link)) {
                Some(next) => url = next?,
                None => return Ok(tasks),
            }
        }
        Err(BatchError::permanent(
            "InvalidResponse",
            format!("List Tasks of {job_id} went on for more than {MAX_PAGES} pages"),
        ))
    }

    /// Delete Job: the service deletes it (and its tasks) in the background; a job being
    /// deleted is still there, in the state `deleting`, for a while.
    pub async fn delete_job(&self, job_id: &str, deadline: Instant) -> Result<(), BatchError> {
        self.delete("delete_job", self.url(&["jobs", job_id]), deadline)
            .await
    }

    /// Delete Task.
    pub async fn delete_task(
        &self,
        job_id: &str,
        task_id: &str,
        deadline: Instant,
    ) -> Result<(), BatchError> {
        let url = self.url(&["jobs", job_id, "tasks", task_id]);
        self.delete("delete_task", url, deadline).await
    }

    async fn delete(
        &self,
        operation: &'static str,
        url: Url,
        deadline: Instant,
    ) -> Result<(), BatchError> {
        let call = Call::new(operation, Method::DELETE, url, None);
        let reply = self.transport().execute(&call, deadline).await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(call.refused(&reply))
        }
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: Url,
        deadline: Instant,
    ) -> Result<T, BatchError> {
        let call = Call::new(operation, Method::GET, url, None);
        let reply = self.transport().execute(&call, deadline).await?;
        if reply.status != StatusCode::OK {
            return Err(call.refused(&reply));
        }
        serde_json::from_slice(&reply.body).map_err(|e| {
            call.failure(
                BatchError::permanent("InvalidResponse", format!("unreadable {operation} answer"))
                    .with_source(e),
                reply.attempt,
            )
        })
    }

    /// The next page's URL: only ever on the account's own endpoint, so that a signed request
    /// never goes anywhere else.
    fn next_page(&self, link: &str) -> Result<Url, BatchError> {
        let next = Url::parse(link).ok().filter(|next| {
            let endpoint = self.endpoint();
            next.scheme() == endpoint.scheme()
                && next.host_str() == endpoint.host_str()
                && next.port_or_known_default() == endpoint.port_or_known_default()
        });
        next.ok_or_else(|| {
            BatchError::permanent(
                "InvalidResponse",
                "List Tasks gave a next page outside the Batch account's endpoint",
            )
        })
    }
}
