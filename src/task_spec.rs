//! The task specification: what one blob version asks to run, in the wire form of Azure Batch's
//! `BatchTaskCreateOptions` (and `BatchJobCreateOptions` for a job per blob), api-version 2025-06-01.
//!
//! This is the seam between "what to run" and "where it runs": the planner writes it, the Batch
//! client sends it as is, and the local runner executes it the way a Batch node would. Only the
//! fields we use are modelled; names follow the service's JSON (camelCase), and optional fields are
//! left out of the body when unset so that the service applies its own defaults.

use serde::{Deserialize, Serialize};

/// Batch's rule for job, pool and task ids: letters, digits, `-` and `_`, 1 to 64 characters.
/// Ids are case-insensitive in the service (two ids may not differ only by case).
pub(crate) fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

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
    /// Scheduling slots the task takes on a node (the service's default is 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_slots: Option<u32>,
}

impl TaskSpec {
    /// A task with only what Batch requires, an id and a command line; the rest is left out.
    pub fn new(id: impl Into<String>, command_line: impl Into<String>) -> TaskSpec {
        TaskSpec {
            id: id.into(),
            display_name: None,
            command_line: command_line.into(),
            container_settings: None,
            resource_files: Vec::new(),
            output_files: Vec::new(),
            environment_settings: Vec::new(),
            constraints: None,
            user_identity: None,
            required_slots: None,
        }
    }
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

impl JobSpec {
    /// A long-lived job on pool `pool`: `noaction` when all tasks complete, since it keeps
    /// receiving tasks.
    pub fn long_lived(id: &str, pool: &str) -> JobSpec {
        JobSpec {
            id: id.to_string(),
            display_name: None,
            pool_info: PoolInfo {
                pool_id: Some(pool.to_string()),
                auto_pool_specification: None,
            },
            on_all_tasks_complete: Some(OnAllTasksComplete::NoAction),
            job_manager_task: None,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules() {
        assert!(is_valid_id("wc-0f_A"));
        assert!(is_valid_id(&"a".repeat(64)));
        assert!(!is_valid_id(&"a".repeat(65)));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a.b"));
        assert!(!is_valid_id("a b"));
    }

    #[test]
    fn optional_fields_stay_out_of_the_body() {
        let task = TaskSpec::new("t", "/wordcount input/data");
        assert_eq!(
            serde_json::to_string(&task).unwrap(),
            r#"{"id":"t","commandLine":"/wordcount input/data"}"#
        );
    }
}
