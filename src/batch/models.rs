//! Wire models of the Azure Batch REST API (api-version 2025-06-01) that blob2batch sends and reads.
//!
//! Only the fields we use are modelled. Field names follow the service's JSON exactly (camelCase);
//! optional fields are omitted from the body when unset so that the service applies its own defaults.
//! `TaskSpec` (the service's `BatchTaskCreateOptions`) is the one seam between "what to run" (the
//! planner) and "where it runs" (Azure Batch or the local runner).

use serde::{Deserialize, Serialize};

/// The service's `BatchTaskCreateOptions`: the body of Add Task and one item of Add Task Collection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    /// Letters, digits, `-` and `_`, at most 64 characters; case-insensitive in the service.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Not run through a shell by Batch.
    pub command_line: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_settings: Option<ContainerSettings>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_files: Vec<ResourceFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_files: Vec<OutputFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_settings: Vec<EnvironmentSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<TaskConstraints>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<UserIdentity>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSettings {
    /// Full image reference, e.g. `example.azurecr.io/wordcount:1.0.0`.
    pub image_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_run_options: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<ContainerRegistry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<ContainerWorkingDirectory>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContainerWorkingDirectory {
    TaskWorkingDirectory,
    ContainerImageDefault,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRegistry {
    pub registry_server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_reference: Option<IdentityReference>,
}

/// A user-assigned managed identity attached to the pool, by ARM resource id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityReference {
    pub resource_id: String,
}

/// A file Batch downloads into the task's working directory before the command runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceFile {
    /// Used verbatim: the node fetches exactly this URL (a SAS URL, or a plain one with an identity).
    pub http_url: String,
    /// Relative to the working directory, file name included; may not leave the directory.
    pub file_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_reference: Option<IdentityReference>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputFile {
    /// Relative to the working directory; `*`, `**`, `?`, `[abc]`; `../std*.txt` reaches stdout/stderr.
    pub file_pattern: String,
    pub destination: OutputFileDestination,
    pub upload_options: OutputFileUploadOptions,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputFileDestination {
    pub container: OutputFileBlobContainerDestination,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputFileBlobContainerDestination {
    /// Container URL: with a SAS granting write, or plain with `identityReference`.
    pub container_url: String,
    /// The blob name when the pattern has no wildcard, else a virtual-directory prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_reference: Option<IdentityReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upload_headers: Vec<HttpHeader>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputFileUploadOptions {
    pub upload_condition: UploadCondition,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadCondition {
    TaskSuccess,
    TaskFailure,
    TaskCompletion,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentSetting {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskConstraints {
    /// ISO 8601 duration, e.g. `PT1H`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wall_clock_time: Option<String>,
    /// ISO 8601 duration, e.g. `P1D`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_time: Option<String>,
    /// 0 = no retries, -1 = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_task_retry_count: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_user: Option<AutoUserSpecification>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoUserSpecification {
    pub scope: AutoUserScope,
    pub elevation_level: ElevationLevel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoUserScope {
    Task,
    Pool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElevationLevel {
    NonAdmin,
    Admin,
}

/// The service's `BatchTaskGroup`: the body of Add Task Collection (at most 100 tasks, under 1 MB).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskGroup {
    pub value: Vec<TaskSpec>,
}

/// The service's `BatchJobCreateOptions`, reduced to what we send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub pool_info: PoolInfo,
    /// `noaction` on the long-lived job; `terminatejob` for a job per blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_all_tasks_complete: Option<OnAllTasksComplete>,
    /// Job per blob: the word-count task itself, run as the job manager so that the job (and its
    /// auto pool) ends when it completes. Created atomically with the job, in one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_manager_task: Option<JobManagerTask>,
}

/// The service's `BatchJobManagerTask`: a task spec plus what its completion does to the job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobManagerTask {
    #[serde(flatten)]
    pub task: TaskSpec,
    /// `true`: the job terminates when this task completes.
    pub kill_job_on_completion: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnAllTasksComplete {
    NoAction,
    TerminateJob,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_pool_specification: Option<serde_json::Value>,
}

/// Error body of the Batch service: `{"code", "message": {"lang", "value"}, "values": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct BatchErrorBody {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<ErrorMessage>,
    #[serde(default)]
    pub values: Vec<ErrorDetail>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorMessage {
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// Response of Add Task Collection: one result per task, possibly out of order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct TaskAddCollectionResult {
    #[serde(default)]
    pub value: Vec<TaskAddResult>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskAddResult {
    pub status: TaskAddStatus,
    pub task_id: String,
    #[serde(default)]
    pub error: Option<BatchErrorBody>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskAddStatus {
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
