//! The task of a workload of one's own: its image, its constant command line, the blob fetched
//! to `input/data` or given as a read-only URL, the `BLOB2BATCH_*` environment and its own, and
//! its result: standard output to `{blob}{suffix}`, or the files it writes under
//! `{blob}.{name}/` with its standard output as `{blob}.{name}/stdout.txt`, the marker that the
//! result is complete (so a task that rightly writes no file is still done). Every result carries
//! the version it was made from and the task's id, as the word count's does.

use super::access::Access;
use super::task::{
    RESULT_FILE, constraints, container, display_name, input_file, logs, output_file,
    result_and_logs, result_headers, task_user,
};
use crate::config::TaskSettings;
use crate::filter::BlobCreated;
use crate::results::ResultNames;
use crate::task_spec::{
    ContainerRegistry, EnvironmentSetting, OutputFile, TaskSpec, UploadCondition,
};
use crate::workloads::{
    ENV_BLOB, ENV_CONTAINER, ENV_ETAG, ENV_INPUT_URL, ENV_WORKLOAD, Output, Run,
};

/// What one workload task is made of.
pub(super) struct ImageTask<'a> {
    pub id: String,
    pub workload: &'a str,
    pub run: &'a Run,
    pub image: &'a str,
    pub command: &'a str,
    pub registry: Option<ContainerRegistry>,
    pub blob: &'a BlobCreated,
    pub settings: &'a TaskSettings,
    pub access: Access,
    /// With `input = "url"`: the read-only URL of the blob; otherwise Batch fetches it.
    pub input_url: Option<String>,
    pub names: &'a ResultNames,
}

pub(super) fn task(plan: ImageTask<'_>) -> TaskSpec {
    let blob = plan.blob;
    let mut environment = vec![
        env(ENV_BLOB, &blob.blob),
        env(ENV_CONTAINER, &blob.container),
        env(ENV_ETAG, &blob.etag),
        env(ENV_WORKLOAD, plan.workload),
    ];
    let resource_files = match &plan.input_url {
        Some(url) => {
            environment.push(env(ENV_INPUT_URL, url));
            Vec::new()
        }
        None => vec![input_file(&plan.access)],
    };
    environment.extend(plan.run.env.iter().map(|(name, value)| env(name, value)));
    let output_files = outputs(
        &plan.access,
        plan.names,
        &plan.run.output,
        &blob.etag,
        &plan.id,
    );
    TaskSpec {
        display_name: Some(display_name(blob)),
        command_line: plan.command.to_string(),
        container_settings: Some(container(plan.image, plan.registry)),
        resource_files,
        output_files,
        environment_settings: environment,
        constraints: Some(constraints(plan.settings)),
        user_identity: Some(task_user()),
        required_slots: plan.run.slots,
        depends_on: None,
        id: plan.id,
    }
}

fn env(name: &str, value: &str) -> EnvironmentSetting {
    EnvironmentSetting {
        name: name.to_string(),
        value: value.to_string(),
    }
}

/// The result (standard output, or the files and the standard output as their marker) on
/// success; the logs on failure.
fn outputs(
    access: &Access,
    names: &ResultNames,
    output: &Output,
    etag: &str,
    id: &str,
) -> Vec<OutputFile> {
    match output {
        Output::Files { pattern } => vec![
            output_file(
                pattern,
                access,
                &files_destination(pattern, &names.folder()),
                result_headers(None, etag, id),
                UploadCondition::TaskSuccess,
            ),
            output_file(
                RESULT_FILE,
                access,
                &names.result,
                result_headers(Some("text/plain"), etag, id),
                UploadCondition::TaskSuccess,
            ),
            logs(access, names),
        ],
        Output::Stdout { content_type, .. } => {
            result_and_logs(access, names, content_type, etag, id)
        }
    }
}

/// Where a `files` pattern's matches go: for a pattern with a wildcard, Batch prefixes each
/// match's path (relative to the pattern's part before the wildcard) with the folder; for one
/// without, Batch takes the destination as the blob's own name, so it is the folder and the file's
/// name (`out/report.pdf` -> `{folder}/report.pdf`), as a wildcard would have named it.
fn files_destination(pattern: &str, folder: &str) -> String {
    if pattern.contains(['*', '?', '[']) {
        return folder.to_string();
    }
    let name = pattern.rsplit(['/', '\\']).next().unwrap_or(pattern);
    format!("{folder}/{name}")
}
