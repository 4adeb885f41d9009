//! A task's output files, uploaded the way a Batch node uploads them: per `uploadCondition`,
//! `filePattern` (relative to the working directory; `../` reaches the task directory) and
//! `destination` (a container URL with a SAS; `path` is the blob name, or a prefix for a pattern
//! with wildcards), with the `uploadHeaders` the task asks for.

use std::path::PathBuf;

use super::failure::{FailureCode, TaskFailure};
use super::paths::{OutputPattern, destination_blob_name};
use super::task_dir::TaskDir;
use crate::storage::blob::{BlobHttpHeaders, ContainerClient};
use crate::task_spec::{TaskSpec, UploadCondition};

/// An uploaded output file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedOutput {
    pub file: PathBuf,
    /// Blob name in the destination container.
    pub blob: String,
    /// Container URL without its SAS.
    pub container: String,
    pub bytes: u64,
}

/// What was uploaded, and the failure that stopped the uploads, if one did.
pub(crate) struct Uploads {
    pub(crate) done: Vec<UploadedOutput>,
    pub(crate) failure: Option<TaskFailure>,
}

/// Uploads the output files whose condition holds for a task that `succeeded` or not; stops at
/// the first failure.
pub(crate) async fn upload_outputs(task: &TaskSpec, dir: &TaskDir, succeeded: bool) -> Uploads {
    let mut done = Vec::new();
    let failure = upload_each(task, dir, succeeded, &mut done).await.err();
    Uploads { done, failure }
}

async fn upload_each(
    task: &TaskSpec,
    dir: &TaskDir,
    succeeded: bool,
    done: &mut Vec<UploadedOutput>,
) -> Result<(), TaskFailure> {
    let fail = |message: String| TaskFailure::new(FailureCode::FileUploadError, message);
    for output in &task.output_files {
        let wanted = match output.upload_options.upload_condition {
            UploadCondition::TaskSuccess => succeeded,
            UploadCondition::TaskFailure => !succeeded,
            UploadCondition::TaskCompletion => true,
        };
        if !wanted {
            continue;
        }
        let dest = &output.destination.container;
        if dest.identity_reference.is_some() && !has_sas(&dest.container_url) {
            return Err(fail(format!(
                "output `{}` uses identityReference, which cannot work on this machine; set \
                 STORAGE_ACCOUNT_KEY so that tasks get SAS URLs",
                output.file_pattern
            )));
        }
        let pattern =
            OutputPattern::new(dir.path(), &dir.wd(), &output.file_pattern).map_err(fail)?;
        let files = pattern.matches();
        if !pattern.is_wildcard() && files.is_empty() {
            return Err(fail(format!(
                "no file matches filePattern `{}` (relative to the working directory)",
                output.file_pattern
            )));
        }
        let mut headers = BlobHttpHeaders::default();
        for h in &dest.upload_headers {
            if !headers.set(&h.name, &h.value) {
                tracing::warn!(header = %h.name, "upload header not supported locally; ignored");
            }
        }
        let container =
            ContainerClient::from_sas_url(&dest.container_url).map_err(|e| fail(e.to_string()))?;
        let container_plain = without_query(&dest.container_url);
        for file in files {
            let blob = destination_blob_name(dest.path.as_deref(), pattern.is_wildcard(), &file);
            let uploaded = container
                .upload_file(&blob, &file.path, &headers, None)
                .await
                .map_err(|e| {
                    fail(format!(
                        "uploading {} to `{blob}` in {container_plain} failed: {e}",
                        file.relative
                    ))
                })?;
            done.push(UploadedOutput {
                file: file.path.clone(),
                blob,
                container: container_plain.clone(),
                bytes: uploaded.size,
            });
        }
    }
    Ok(())
}

/// Whether a URL carries a SAS signature.
pub(crate) fn has_sas(url: &str) -> bool {
    url.split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("sig=")))
}

fn without_query(url: &str) -> String {
    url.split_once('?')
        .map(|(b, _)| b)
        .unwrap_or(url)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sas_detection() {
        assert!(has_sas("http://h/c/b?sv=1&sig=abc"));
        assert!(!has_sas("http://h/c/b"));
        assert!(!has_sas("http://h/c/b?sv=1"));
        assert_eq!(without_query("http://h/c?sv=1&sig=x"), "http://h/c");
    }
}
