//! Wire models of the Azure Batch answers blob2batch reads (api-version 2025-06-01): Add Task
//! Collection results and the task as Get Task returns it. Error bodies are read leniently in
//! `error`; what we send is the task specification in [`crate::task_spec`].
//!
//! Everything but the ids is optional, so that a field the service adds or omits never breaks a read.

use serde::Deserialize;

/// Response of Add Task Collection: one result per task, possibly out of order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct TaskAddCollectionResult {
    #[serde(default)]
    pub value: Vec<TaskAddResult>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskAddResult {
    pub status: TaskAddStatus,
    pub task_id: String,
    /// The service's error body for this item (read leniently, like any error body).
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TaskAddStatus {
    Success,
    ClientError,
    ServerError,
}

/// The parts of the service's `BatchTask` (Get Task) that we look at. Everything is optional
/// except the id, so that a field the service adds or omits never breaks the read.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchTask {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub state: Option<TaskState>,
    #[serde(default)]
    pub execution_info: Option<TaskExecutionInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Active,
    Preparing,
    Running,
    Completed,
    /// A state this version does not know.
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskExecutionInfo {
    /// RFC 3339 timestamps, kept as text.
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// `success` or `failure`.
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub failure_info: Option<TaskFailureInfo>,
    #[serde(default)]
    pub retry_count: Option<i32>,
    #[serde(default)]
    pub requeue_count: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailureInfo {
    /// `usererror` or `servererror`.
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The parts of the service's `BatchJob` (Get Job) that a split blob's submission and status
/// look at.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchJob {
    pub id: String,
    #[serde(default)]
    pub state: Option<JobState>,
    /// `noaction` or `terminatejob`.
    #[serde(default)]
    pub on_all_tasks_complete: Option<String>,
    #[serde(default)]
    pub execution_info: Option<JobExecutionInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Active,
    Disabling,
    Disabled,
    Enabling,
    Terminating,
    Completed,
    Deleting,
    /// A state this version does not know.
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionInfo {
    /// Why the job ended: `AllTasksComplete`, `TaskFailed`, `UserTerminate`, ...
    #[serde(default)]
    pub terminate_reason: Option<String>,
}

/// One page of List Tasks.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct TaskListPage {
    #[serde(default)]
    pub value: Vec<BatchTask>,
    #[serde(default, rename = "odata.nextLink")]
    pub next_link: Option<String>,
}
