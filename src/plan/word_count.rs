//! The built-in word count's task: `/wordcount input/data` on the blob fetched to `input/data`,
//! its standard output uploaded as `{blob}.wordcount.json` with the version it counts. Without
//! a workloads file this is the body of every task, as it was before workloads existed (the
//! golden tests hold it byte for byte); in job-per-blob mode it is the job manager of a job of
//! its own, on an auto pool.

use super::access::Access;
use super::task::{constraints, container, display_name, input_file, result_and_logs, task_user};
use crate::config::{AutoPool, TaskSettings};
use crate::filter::BlobCreated;
use crate::results::ResultNames;
use crate::task_spec::{
    ContainerRegistry, EnvironmentSetting, JobManagerTask, JobSpec, PoolInfo, TaskSpec,
};

/// Constant: no part of it comes from an event.
pub(crate) const COMMAND_LINE: &str = "/wordcount input/data";
/// Environment variable carrying the blob name into the task (the `source` of the result).
pub(crate) const SOURCE_VARIABLE: &str = "WORDCOUNT_SOURCE";
/// The one task of a job-per-blob job.
pub(crate) const JOB_MANAGER_TASK_ID: &str = "wordcount";

/// What one word-count task is made of.
pub(super) struct WordCountTask<'a> {
    /// The task's id.
    pub id: String,
    /// What names its outputs: the task's id, or the job's in job-per-blob mode.
    pub unique_id: &'a str,
    pub blob: &'a BlobCreated,
    pub image: &'a str,
    pub registry: Option<ContainerRegistry>,
    pub settings: &'a TaskSettings,
    pub slots: Option<u32>,
    pub access: Access,
    pub names: &'a ResultNames,
}

pub(super) fn task(plan: WordCountTask<'_>) -> TaskSpec {
    let WordCountTask {
        id,
        unique_id,
        blob,
        access,
        ..
    } = plan;
    TaskSpec {
        display_name: Some(display_name(blob)),
        id,
        command_line: COMMAND_LINE.into(),
        container_settings: Some(container(plan.image, plan.registry)),
        resource_files: vec![input_file(&access)],
        output_files: result_and_logs(
            &access,
            plan.names,
            "application/json",
            &blob.etag,
            unique_id,
        ),
        environment_settings: vec![EnvironmentSetting {
            name: SOURCE_VARIABLE.into(),
            value: blob.blob.clone(),
        }],
        constraints: Some(constraints(plan.settings)),
        user_identity: Some(task_user()),
        required_slots: plan.slots,
        depends_on: None,
    }
}

/// Job-per-blob mode: a job of its own with `task` as its job manager, on an auto pool.
pub(super) fn job_per_blob(
    id: String,
    task: TaskSpec,
    auto_pool: &AutoPool,
    image: &str,
) -> JobSpec {
    JobSpec {
        id,
        display_name: task.display_name.clone(),
        pool_info: PoolInfo {
            pool_id: None,
            auto_pool_specification: Some(auto_pool_spec(auto_pool, image)),
        },
        on_all_tasks_complete: None,
        on_task_failure: None,
        uses_task_dependencies: None,
        job_manager_task: Some(JobManagerTask {
            task,
            kill_job_on_completion: true,
        }),
    }
}

fn auto_pool_spec(auto_pool: &AutoPool, image: &str) -> serde_json::Value {
    let (dedicated, low_priority) = if auto_pool.low_priority {
        (0, 1)
    } else {
        (1, 0)
    };
    serde_json::json!({
        "autoPoolIdPrefix": "wc",
        "poolLifetimeOption": "job",
        "keepAlive": false,
        "pool": {
            "vmSize": auto_pool.vm_size,
            "taskSlotsPerNode": 1,
            "targetDedicatedNodes": dedicated,
            "targetLowPriorityNodes": low_priority,
            "virtualMachineConfiguration": {
                "imageReference": {
                    "publisher": "microsoft-dsvm",
                    "offer": "ubuntu-hpc",
                    "sku": "2204",
                    "version": "latest"
                },
                "nodeAgentSKUId": "batch.node.ubuntu 22.04",
                "containerConfiguration": {
                    "type": "dockerCompatible",
                    "containerImageNames": [image]
                }
            }
        }
    })
}
