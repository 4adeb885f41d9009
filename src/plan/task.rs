//! What every planned task is made of, whatever its workload: its display name, its container,
//! its limits and user, and its outputs (the result, carrying the version it was made from, on
//! success; the logs on failure).

use super::access::Access;
use crate::config::TaskSettings;
use crate::filter::BlobCreated;
use crate::results::{ResultNames, SOURCE_ETAG_METADATA, TASK_ID_METADATA};
use crate::task_spec::{
    AutoUserScope, AutoUserSpecification, ContainerRegistry, ContainerSettings,
    ContainerWorkingDirectory, ElevationLevel, HttpHeader, OutputFile,
    OutputFileBlobContainerDestination, OutputFileDestination, OutputFileUploadOptions,
    ResourceFile, TaskConstraints, UploadCondition, UserIdentity,
};

/// The result is the program's standard output, which Batch captures beside the working
/// directory: the container needs no write access to the task directory (the image runs as a
/// non-root user that does not own it).
pub(crate) const RESULT_FILE: &str = "../stdout.txt";
/// What a failed task leaves in its logs folder: its standard output and error.
pub(super) const LOGS_FILES: &str = "../std*.txt";
/// Where an input fetched by Batch lands in the task's working directory.
pub(crate) const INPUT_PATH: &str = "input/data";
/// Readable by the image's non-root user, whatever user Batch downloads the file as.
const INPUT_FILE_MODE: &str = "0644";

/// The blob, fetched by Batch to [`INPUT_PATH`] and readable by the image's user.
pub(super) fn input_file(access: &Access) -> ResourceFile {
    ResourceFile {
        file_mode: Some(INPUT_FILE_MODE.into()),
        ..ResourceFile::blob(
            access.input_url.clone(),
            INPUT_PATH,
            access.identity.clone(),
        )
    }
}

/// Display names are cut to the service's limit.
pub(super) const MAX_DISPLAY_NAME_CHARS: usize = 1024;

/// `container/blob`, cut to the service's limit.
pub(super) fn display_name(blob: &BlobCreated) -> String {
    truncate_chars(
        &format!("{}/{}", blob.container, blob.blob),
        MAX_DISPLAY_NAME_CHARS,
    )
}

/// The image, run in the task's working directory.
pub(super) fn container(image: &str, registry: Option<ContainerRegistry>) -> ContainerSettings {
    ContainerSettings {
        image_name: image.to_string(),
        container_run_options: None,
        registry,
        working_directory: Some(ContainerWorkingDirectory::TaskWorkingDirectory),
    }
}

/// Standard output to the result blob on success, with its content type and the version it
/// records; the task's `stdout.txt` and `stderr.txt` to the logs folder on failure.
pub(super) fn result_and_logs(
    access: &Access,
    names: &ResultNames,
    content_type: &str,
    etag: &str,
    unique_id: &str,
) -> Vec<OutputFile> {
    vec![
        output_file(
            RESULT_FILE,
            access,
            &names.result,
            result_headers(Some(content_type), etag, unique_id),
            UploadCondition::TaskSuccess,
        ),
        logs(access, names),
    ]
}

/// The task's `stdout.txt` and `stderr.txt` to the logs folder on failure.
pub(super) fn logs(access: &Access, names: &ResultNames) -> OutputFile {
    logs_to(access, &names.logs)
}

/// The task's `stdout.txt` and `stderr.txt` to `folder` on failure.
pub(super) fn logs_to(access: &Access, folder: &str) -> OutputFile {
    output_file(
        LOGS_FILES,
        access,
        folder,
        vec![],
        UploadCondition::TaskFailure,
    )
}

/// The headers of a result blob: its content type, and the metadata that make it current.
pub(super) fn result_headers(
    content_type: Option<&str>,
    etag: &str,
    unique_id: &str,
) -> Vec<HttpHeader> {
    let header = |name: String, value: &str| HttpHeader {
        name,
        value: value.to_string(),
    };
    let mut headers = Vec::with_capacity(3);
    if let Some(content_type) = content_type {
        headers.push(header("Content-Type".into(), content_type));
    }
    headers.push(header(format!("x-ms-meta-{SOURCE_ETAG_METADATA}"), etag));
    headers.push(header(format!("x-ms-meta-{TASK_ID_METADATA}"), unique_id));
    headers
}

pub(super) fn output_file(
    pattern: &str,
    access: &Access,
    path: &str,
    headers: Vec<HttpHeader>,
    condition: UploadCondition,
) -> OutputFile {
    OutputFile {
        file_pattern: pattern.into(),
        destination: OutputFileDestination {
            container: OutputFileBlobContainerDestination {
                container_url: access.output_container_url.clone(),
                path: Some(path.to_string()),
                identity_reference: access.identity.clone(),
                upload_headers: headers,
            },
        },
        upload_options: OutputFileUploadOptions {
            upload_condition: condition,
        },
    }
}

pub(super) fn constraints(settings: &TaskSettings) -> TaskConstraints {
    TaskConstraints {
        max_wall_clock_time: Some(settings.max_wall_clock_time_iso()),
        retention_time: Some(settings.retention_time_iso()),
        max_task_retry_count: Some(settings.max_retry_count),
    }
}

/// Every task runs as a non-admin auto user of its own.
pub(super) fn task_user() -> UserIdentity {
    UserIdentity {
        auto_user: Some(AutoUserSpecification {
            scope: AutoUserScope::Task,
            elevation_level: ElevationLevel::NonAdmin,
        }),
    }
}

pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}
