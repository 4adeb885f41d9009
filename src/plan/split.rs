//! A large blob's word count, split across the pool: a job of its own (`wcs-` + a hash of the
//! blob version and the split), parts `0` to `N-1` that each count the lines starting in their
//! byte range of the blob (read by the task itself, with a read-only URL), and a `merge` task
//! that depends on every part and sums their partial counts into the one result.
//!
//! The job is created with task dependencies (which cannot be turned on later, hence not the
//! long-lived job) and `onTaskFailure: performexitoptionsjobaction`, so a part that fails after
//! its retries ends the job instead of leaving the merge blocked; it completes when its tasks
//! have (the runner turns that on once the merge is in: a job created so would end at once).
//! Parts stage their partial counts in the staging container under `{job id}/parts/`; the merge
//! fetches that folder with one resource file, whatever the number of parts.

use super::access::{Access, Staging};
use super::task::{
    constraints, container, display_name, logs_to, output_file, result_and_logs, task_user,
    truncate_chars,
};
use crate::config::{SplitSettings, TaskSettings};
use crate::filter::BlobCreated;
use crate::results::ResultNames;
use crate::runner::{MERGE_TASK_ID, SplitJob};
use crate::task_spec::{
    ContainerRegistry, EnvironmentSetting, JobSpec, ResourceFile, TaskDependencies, TaskIdRange,
    TaskSpec, UploadCondition,
};
use crate::workloads::{ENV_ETAG, ENV_INPUT_URL};

use super::word_count::SOURCE_VARIABLE;

/// Where the merge finds the parts' partial counts in its working directory.
const PARTS_DIRECTORY: &str = "parts";

/// How a blob of `size` bytes is cut: `parts` parts of `part_size` bytes (the last one shorter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    pub part_size: u64,
    pub parts: u32,
}

impl Cut {
    /// The cut of a blob of `size` bytes under `settings`: parts of `SPLIT_PART_SIZE`, larger
    /// when that would give more than `SPLIT_MAX_PARTS`. `None` when the blob stays one task:
    /// under the threshold, or too small for two parts.
    pub fn of(size: u64, settings: &SplitSettings) -> Option<Cut> {
        if size < settings.threshold? {
            return None;
        }
        let max_parts = u64::from(settings.max_parts);
        let part_size = settings.part_size.max(size.div_ceil(max_parts));
        let parts = size.div_ceil(part_size);
        (parts >= 2).then(|| Cut {
            part_size,
            parts: u32::try_from(parts).unwrap_or(u32::MAX),
        })
    }

    /// The half-open byte range of part `index`.
    pub fn range(&self, index: u32, size: u64) -> (u64, u64) {
        let start = u64::from(index) * self.part_size;
        (start, (start + self.part_size).min(size))
    }
}

/// Gzip cannot be cut at line starts: such a blob stays one task.
pub(super) fn is_gzip(blob: &BlobCreated) -> bool {
    let name = blob.blob.to_ascii_lowercase();
    let content_type = blob
        .content_type
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    name.ends_with(".gz") || content_type.contains("gzip")
}

/// What one split word count is made of.
pub(super) struct SplitPlan<'a> {
    pub job_id: String,
    pub pool: &'a str,
    pub cut: Cut,
    pub blob: &'a BlobCreated,
    pub size: u64,
    pub image: &'a str,
    pub registry: Option<ContainerRegistry>,
    pub settings: &'a TaskSettings,
    pub slots: Option<u32>,
    /// The output container, for the result and the logs.
    pub access: Access,
    /// The blob, with a read-only SAS: each part reads its range itself.
    pub input_url: String,
    /// The staging container: written by the parts, read and listed by the merge.
    pub staging: Staging,
    pub names: &'a ResultNames,
}

pub(super) fn split(plan: SplitPlan<'_>) -> SplitJob {
    let parts = (0..plan.cut.parts).map(|i| part(&plan, i)).collect();
    let merge = merge(&plan);
    SplitJob {
        job: JobSpec {
            display_name: Some(display_name(plan.blob)),
            ..JobSpec::split(&plan.job_id, plan.pool)
        },
        parts,
        merge,
    }
}

/// The folder of the staging container a split job's parts write to.
pub(crate) fn parts_prefix(job_id: &str) -> String {
    format!("{job_id}/parts/")
}

/// Part `index`: the lines that start in its range, as a partial count on standard output,
/// staged on success; its logs beside the other tasks' on failure.
fn part(plan: &SplitPlan<'_>, index: u32) -> TaskSpec {
    let (start, end) = plan.cut.range(index, plan.size);
    let id = index.to_string();
    let staged = output_file(
        super::task::RESULT_FILE,
        &Access {
            input_url: String::new(),
            output_container_url: plan.staging.write_url.clone(),
            identity: plan.staging.identity.clone(),
        },
        &format!("{}{id}", parts_prefix(&plan.job_id)),
        vec![],
        UploadCondition::TaskSuccess,
    );
    TaskSpec {
        display_name: Some(task_display_name(
            plan.blob,
            &format!(" [part {index} of {}]", plan.cut.parts),
        )),
        command_line: format!("/wordcount --url-from-env --range {start}..{end} --partial"),
        container_settings: Some(container(plan.image, plan.registry.clone())),
        resource_files: Vec::new(),
        output_files: vec![staged, logs_to(&plan.access, &task_logs(plan.names, &id))],
        environment_settings: vec![
            env(ENV_INPUT_URL, &plan.input_url),
            env(ENV_ETAG, &plan.blob.etag),
            env(SOURCE_VARIABLE, &plan.blob.blob),
        ],
        constraints: Some(constraints(plan.settings)),
        user_identity: Some(task_user()),
        required_slots: plan.slots,
        depends_on: None,
        id,
    }
}

/// The merge: every part's partial count, fetched as one folder, summed into the result, which
/// records the version it counts and the split job as its task.
fn merge(plan: &SplitPlan<'_>) -> TaskSpec {
    let mut output_files = result_and_logs(
        &plan.access,
        plan.names,
        "application/json",
        &plan.blob.etag,
        &plan.job_id,
    );
    output_files[1] = logs_to(&plan.access, &task_logs(plan.names, MERGE_TASK_ID));
    TaskSpec {
        id: MERGE_TASK_ID.into(),
        display_name: Some(task_display_name(plan.blob, " [merge]")),
        command_line: format!(
            "/wordcount --merge --expect-parts {} {PARTS_DIRECTORY}",
            plan.cut.parts
        ),
        container_settings: Some(container(plan.image, plan.registry.clone())),
        resource_files: vec![ResourceFile::container(
            plan.staging.read_url.clone(),
            &parts_prefix(&plan.job_id),
            PARTS_DIRECTORY,
            plan.staging.identity.clone(),
        )],
        output_files,
        environment_settings: vec![env(SOURCE_VARIABLE, &plan.blob.blob)],
        constraints: Some(constraints(plan.settings)),
        user_identity: Some(task_user()),
        required_slots: plan.slots,
        depends_on: Some(TaskDependencies {
            task_ids: Vec::new(),
            task_id_ranges: vec![TaskIdRange {
                start: 0,
                end: plan.cut.parts - 1,
            }],
        }),
    }
}

/// Where a failed task of a split job leaves its logs: a folder per task in the job's.
pub(crate) fn task_logs(names: &ResultNames, task_id: &str) -> String {
    format!("{}/{task_id}", names.logs)
}

/// The blob's display name with `suffix`, within the service's limit.
fn task_display_name(blob: &BlobCreated, suffix: &str) -> String {
    let room = super::task::MAX_DISPLAY_NAME_CHARS - suffix.chars().count();
    format!("{}{suffix}", truncate_chars(&display_name(blob), room))
}

fn env(name: &str, value: &str) -> EnvironmentSetting {
    EnvironmentSetting {
        name: name.to_string(),
        value: value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(threshold: Option<u64>, part_size: u64, max_parts: u32) -> SplitSettings {
        SplitSettings {
            threshold,
            part_size,
            max_parts,
            staging_container: "staging".into(),
            off_because: None,
        }
    }

    #[test]
    fn blobs_under_the_threshold_or_too_small_for_two_parts_stay_one_task() {
        let s = settings(Some(1000), 600, 1000);
        assert_eq!(Cut::of(999, &s), None);
        assert_eq!(Cut::of(600, &settings(Some(100), 600, 1000)), None);
        assert_eq!(
            Cut::of(1000, &s),
            Some(Cut {
                part_size: 600,
                parts: 2
            })
        );
        assert_eq!(Cut::of(u64::MAX, &settings(None, 600, 1000)), None);
    }

    #[test]
    fn a_blob_too_large_for_the_most_parts_gets_larger_parts() {
        let s = settings(Some(1), 100, 10);
        assert_eq!(
            Cut::of(1000, &s),
            Some(Cut {
                part_size: 100,
                parts: 10
            })
        );
        let cut = Cut::of(1001, &s).unwrap();
        assert_eq!(
            cut,
            Cut {
                part_size: 101,
                parts: 10
            }
        );
        // The ranges tile the blob exactly.
        let mut next = 0;
        for i in 0..cut.parts {
            let (start, end) = cut.range(i, 1001);
            assert_eq!(start, next);
            assert!(end > start);
            next = end;
        }
        assert_eq!(next, 1001);
    }

    #[test]
    fn gzip_by_name_or_content_type() {
        let blob = |name: &str, content_type: Option<&str>| BlobCreated {
            container: "input".into(),
            blob: name.into(),
            url: String::new(),
            etag: "0x1".into(),
            api: "PutBlob".into(),
            content_type: content_type.map(str::to_string),
            size: Some(1),
        };
        assert!(is_gzip(&blob("logs.TXT.GZ", None)));
        assert!(is_gzip(&blob("logs", Some("application/gzip"))));
        assert!(is_gzip(&blob("logs", Some("application/x-gzip"))));
        assert!(!is_gzip(&blob("logs.txt", Some("text/plain"))));
        assert!(!is_gzip(&blob("gz.txt", None)));
    }
}
