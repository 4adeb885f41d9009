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
    /// Tasks of the same job that must have completed successfully before this one runs (only
    /// in a job created with `usesTaskDependencies`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<TaskDependencies>,
}

/// The service's `BatchTaskDependencies`. Integer task ids can be named as ranges, which keeps a
/// task that depends on a thousand others small.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDependencies {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_id_ranges: Vec<TaskIdRange>,
}

/// Integer task ids from `start` to `end`, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskIdRange {
    pub start: u32,
    pub end: u32,
}

impl TaskDependencies {
    /// Whether the task `id` is one of these.
    pub(crate) fn includes(&self, id: &str) -> bool {
        self.task_ids.iter().any(|t| t.eq_ignore_ascii_case(id))
            || id.parse::<u32>().is_ok_and(|n| {
                // Only canonical integers: Batch's ranges select `7`, not `07`.
                n.to_string() == id
                    && self
                        .task_id_ranges
                        .iter()
                        .any(|r| (r.start..=r.end).contains(&n))
            })
    }
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
            depends_on: None,
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

/// A file Batch downloads into the task's working directory before the command runs: one blob
/// (`httpUrl`), or every blob of a container under a prefix (`storageContainerUrl`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceFile {
    /// Used verbatim: the node fetches exactly this URL (a SAS URL, or a plain one with an identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_url: Option<String>,
    /// A container (a SAS with read and list, or a plain URL with an identity): each of its
    /// blobs is fetched to `{file_path}/{blob name}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_container_url: Option<String>,
    /// With `storage_container_url`: only the blobs whose names start with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_prefix: Option<String>,
    /// Relative to the working directory: the file (file name included) for `http_url`, the
    /// directory for a container; may not leave the working directory.
    pub file_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_reference: Option<IdentityReference>,
}

impl ResourceFile {
    /// One blob, fetched to `file_path`.
    pub fn blob(
        http_url: String,
        file_path: &str,
        identity_reference: Option<IdentityReference>,
    ) -> ResourceFile {
        ResourceFile {
            http_url: Some(http_url),
            storage_container_url: None,
            blob_prefix: None,
            file_path: file_path.to_string(),
            file_mode: None,
            identity_reference,
        }
    }

    /// The blobs of a container whose names start with `prefix`, fetched under `directory`.
    pub fn container(
        container_url: String,
        prefix: &str,
        directory: &str,
        identity_reference: Option<IdentityReference>,
    ) -> ResourceFile {
        ResourceFile {
            http_url: None,
            storage_container_url: Some(container_url),
            blob_prefix: Some(prefix.to_string()),
            file_path: directory.to_string(),
            file_mode: None,
            identity_reference,
        }
    }
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
    /// `performexitoptionsjobaction`: a task that fails (after its retries) ends the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_task_failure: Option<OnTaskFailure>,
    /// Whether tasks may depend on others; fixed when the job is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses_task_dependencies: Option<bool>,
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
    pub(crate) fn long_lived(id: &str, pool: &str) -> JobSpec {
        JobSpec {
            id: id.to_string(),
            display_name: None,
            pool_info: PoolInfo {
                pool_id: Some(pool.to_string()),
                auto_pool_specification: None,
            },
            on_all_tasks_complete: Some(OnAllTasksComplete::NoAction),
            on_task_failure: None,
            uses_task_dependencies: None,
            job_manager_task: None,
        }
    }
}

impl JobSpec {
    /// A split blob's job of its own on pool `pool`: task dependencies allowed, ended by a task
    /// that fails, and `noaction` when all tasks complete until every task is in (a job created
    /// with `terminatejob` and no task ends at once).
    pub fn split(id: &str, pool: &str) -> JobSpec {
        JobSpec {
            on_task_failure: Some(OnTaskFailure::PerformExitOptionsJobAction),
            uses_task_dependencies: Some(true),
            ..JobSpec::long_lived(id, pool)
        }
    }
}

/// What the service does when a task of the job fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTaskFailure {
    NoAction,
    /// The task's exit conditions decide; the default for any failure is to terminate the job.
    PerformExitOptionsJobAction,
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
    fn dependency_ranges_select_integer_ids_only() {
        let deps = TaskDependencies {
            task_ids: vec!["prep".into()],
            task_id_ranges: vec![TaskIdRange { start: 1, end: 10 }],
        };
        for id in ["1", "7", "10", "PREP"] {
            assert!(deps.includes(id), "{id}");
        }
        for id in ["0", "11", "07", "5flamingoes", "merge", ""] {
            assert!(!deps.includes(id), "{id}");
        }
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
