//! A split blob's job on this machine, as Batch handles it: recorded in the order the Batch side
//! submits it (the job, the parts, the merge, then the seal), and run by the rules a Batch job
//! with task dependencies follows.
//!
//! - A task runs once every task it depends on has completed successfully; a dependency that
//!   failed blocks it for good (Batch's default `dependencyAction` for a non-zero exit).
//! - A task that fails in a job whose `onTaskFailure` is `performexitoptionsjobaction` ends the
//!   job (the default job action for any failure): running tasks are stopped, tasks not started
//!   never run, and the job is completed (`TaskFailed`).
//! - A sealed job (`onAllTasksComplete` turned to `terminatejob`) completes once all of its
//!   tasks have (`AllTasksComplete`); a completed job takes no more tasks.
//!
//! This module decides; the runner (see `runner` and `job_runs`) carries the decisions out.

use std::collections::BTreeMap;

use super::job_dir::JobStore;
use super::task_dir::Recorded;
use crate::runner::{Accepted, SplitJob, SubmitError};
use crate::task_spec::{JobSpec, OnTaskFailure, TaskDependencies, TaskSpec, is_valid_id};

/// A task or job could not be recorded in the work directory.
#[derive(Debug, thiserror::Error)]
#[error("cannot record {what} {id} in the work directory")]
pub(crate) struct RecordError {
    pub what: &'static str,
    pub id: String,
    #[source]
    pub source: std::io::Error,
}

impl RecordError {
    pub(crate) fn task(id: &str, source: std::io::Error) -> SubmitError {
        SubmitError::transient(RecordError {
            what: "task",
            id: id.to_string(),
            source,
        })
    }

    fn job(id: &str, source: std::io::Error) -> SubmitError {
        SubmitError::transient(RecordError {
            what: "job",
            id: id.to_string(),
            source,
        })
    }
}

/// Records a split blob's job in the order Batch gets it, each step idempotent, so that a
/// submission that died half way is completed by the next: the job (one already sealed or
/// completed needs nothing more), each part, the merge (only once every part is in: it depends
/// on them all), then the seal. `Submitted` when this call recorded anything, `Duplicate` when
/// all of it was there or the job had completed (a completed job takes no more tasks).
pub(crate) fn record_split(jobs: &JobStore, split: &SplitJob) -> Result<Accepted, SubmitError> {
    check(split)?;
    let job_id = split.job.id.as_str();
    let dir = jobs.dir(job_id);
    let mut created = match jobs.record(&split.job) {
        Ok(Recorded::New) => true,
        Ok(Recorded::Exists) if dir.is_completed() || dir.is_sealed() => {
            return Ok(Accepted::Duplicate);
        }
        Ok(Recorded::Exists) => {
            tracing::info!(job_id, "split job exists but is not sealed: completing it");
            false
        }
        Err(e) => return Err(RecordError::job(job_id, e)),
    };
    let tasks = dir.tasks();
    for task in split.tasks() {
        if dir.is_completed() {
            tracing::info!(job_id, "the split job has ended: nothing more to add");
            return Ok(accepted(created));
        }
        match tasks.record(task) {
            Ok(recorded) => created |= recorded == Recorded::New,
            Err(e) => return Err(RecordError::task(&task.id, e)),
        }
    }
    dir.seal().map_err(|e| RecordError::job(job_id, e))?;
    Ok(accepted(created))
}

fn accepted(created: bool) -> Accepted {
    if created {
        Accepted::Submitted
    } else {
        Accepted::Duplicate
    }
}

/// Refuses what Batch would refuse: invalid ids, two tasks whose ids differ only by case, and
/// dependencies in a job created without them.
fn check(split: &SplitJob) -> Result<(), SubmitError> {
    let invalid = |message: String| SubmitError::rejected("InvalidPropertyValue", message);
    if !is_valid_id(&split.job.id) {
        return Err(invalid(format!(
            "the id `{}` is not a valid Batch job id",
            split.job.id
        )));
    }
    let mut ids = std::collections::HashSet::new();
    for task in split.tasks() {
        if !is_valid_id(&task.id) {
            return Err(invalid(format!(
                "the id `{}` is not a valid Batch task id",
                task.id
            )));
        }
        if !ids.insert(task.id.to_ascii_lowercase()) {
            return Err(SubmitError::rejected(
                "TaskExists",
                format!(
                    "two tasks of job `{}` have the id `{}`",
                    split.job.id, task.id
                ),
            ));
        }
        if task.depends_on.is_some() && split.job.uses_task_dependencies != Some(true) {
            return Err(SubmitError::rejected(
                "TaskDependenciesNotSpecifiedOnJob",
                format!(
                    "task `{}` has dependencies, and job `{}` was not created with \
                     usesTaskDependencies",
                    task.id, split.job.id
                ),
            ));
        }
    }
    Ok(())
}

/// Where one task of a job stands, for the job's next step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Recorded, not started by this runner.
    Waiting,
    /// Queued or running.
    Launched,
    Succeeded,
    Failed,
}

impl Progress {
    pub(crate) fn is_done(self) -> bool {
        matches!(self, Progress::Succeeded | Progress::Failed)
    }
}

/// One task of a job, as the scheduler sees it.
#[derive(Clone, Debug)]
pub(crate) struct JobTask {
    pub spec: TaskSpec,
    pub progress: Progress,
}

/// What a job does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A task failed and the job ends with it (`TaskFailed`).
    Terminate { failed_task: String },
    /// Sealed, and every task completed (`AllTasksComplete`).
    Complete,
    /// Start these tasks (lower-case ids); none when nothing can start now.
    Launch(Vec<String>),
}

/// The next step of an active job whose tasks (by lower-case id) stand as `tasks` say.
pub(crate) fn next_step(spec: &JobSpec, sealed: bool, tasks: &BTreeMap<String, JobTask>) -> Step {
    if ends_on_failure(spec)
        && let Some((id, _)) = tasks.iter().find(|(_, t)| t.progress == Progress::Failed)
    {
        return Step::Terminate {
            failed_task: id.clone(),
        };
    }
    if sealed && tasks.values().all(|t| t.progress.is_done()) {
        return Step::Complete;
    }
    Step::Launch(
        tasks
            .iter()
            .filter(|(_, t)| t.progress == Progress::Waiting)
            .filter(|(_, t)| {
                t.spec
                    .depends_on
                    .as_ref()
                    .is_none_or(|deps| dependencies_met(deps, tasks))
            })
            .map(|(id, _)| id.clone())
            .collect(),
    )
}

/// Whether a failed task ends the job: `performexitoptionsjobaction`, whose default job action
/// for any failure is to terminate the job (our tasks set no exit conditions).
pub(crate) fn ends_on_failure(spec: &JobSpec) -> bool {
    spec.on_task_failure == Some(OnTaskFailure::PerformExitOptionsJobAction)
}

/// Whether every task `deps` names exists in the job and has succeeded. Batch's handling of a
/// dependency that does not exist (yet) is not documented: waiting for it is the safe reading,
/// and the Batch side adds a merge only after its parts anyway.
pub(crate) fn dependencies_met(deps: &TaskDependencies, tasks: &BTreeMap<String, JobTask>) -> bool {
    let included_succeeded = tasks
        .iter()
        .filter(|(id, _)| deps.includes(id))
        .all(|(_, t)| t.progress == Progress::Succeeded);
    let ids_exist = deps
        .task_ids
        .iter()
        .all(|id| tasks.contains_key(&id.to_ascii_lowercase()));
    // A range longer than the job has tasks cannot be all there (and is not walked).
    let ranges_exist = deps.task_id_ranges.iter().all(|r| {
        r.start > r.end
            || ((r.end - r.start) as usize) < tasks.len()
                && (r.start..=r.end).all(|n| tasks.contains_key(&n.to_string()))
    });
    included_succeeded && ids_exist && ranges_exist
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::job_dir::{JobCompletion, TerminateReason};
    use crate::runner::MERGE_TASK_ID;
    use crate::task_spec::TaskIdRange;

    fn job(id: &str) -> JobSpec {
        JobSpec::split(id, "pool")
    }

    fn split(id: &str, parts: u32) -> SplitJob {
        let mut merge = TaskSpec::new(MERGE_TASK_ID, "/wordcount --merge parts");
        merge.depends_on = Some(TaskDependencies {
            task_ids: Vec::new(),
            task_id_ranges: vec![TaskIdRange {
                start: 0,
                end: parts - 1,
            }],
        });
        SplitJob {
            job: job(id),
            parts: (0..parts)
                .map(|i| TaskSpec::new(i.to_string(), "/wordcount --partial"))
                .collect(),
            merge,
        }
    }

    fn tasks(states: &[(&str, Progress)], merge: Option<Progress>) -> BTreeMap<String, JobTask> {
        let parts = states.len() as u32;
        let s = split("wcs-x", parts.max(1));
        let mut out: BTreeMap<String, JobTask> = states
            .iter()
            .map(|(id, progress)| {
                (
                    id.to_string(),
                    JobTask {
                        spec: TaskSpec::new(*id, "/wordcount"),
                        progress: *progress,
                    },
                )
            })
            .collect();
        if let Some(progress) = merge {
            out.insert(
                MERGE_TASK_ID.into(),
                JobTask {
                    spec: s.merge,
                    progress,
                },
            );
        }
        out
    }

    use Progress::{Failed, Launched, Succeeded, Waiting};

    #[test]
    fn a_dependent_task_waits_for_every_dependency_to_succeed() {
        let spec = job("wcs-x");
        let waiting = tasks(&[("0", Succeeded), ("1", Launched)], Some(Waiting));
        assert_eq!(next_step(&spec, true, &waiting), Step::Launch(vec![]));
        let ready = tasks(&[("0", Succeeded), ("1", Succeeded)], Some(Waiting));
        assert_eq!(
            next_step(&spec, true, &ready),
            Step::Launch(vec![MERGE_TASK_ID.into()])
        );
        // Parts without dependencies start at once, the merge does not.
        let fresh = tasks(&[("0", Waiting), ("1", Waiting)], Some(Waiting));
        assert_eq!(
            next_step(&spec, false, &fresh),
            Step::Launch(vec!["0".into(), "1".into()])
        );
    }

    #[test]
    fn a_dependency_not_recorded_yet_keeps_the_task_waiting() {
        let spec = job("wcs-x");
        // The merge names 0..=2; only 0 and 1 are in the job.
        let mut partial = tasks(&[("0", Succeeded), ("1", Succeeded)], Some(Waiting));
        partial.get_mut(MERGE_TASK_ID).unwrap().spec.depends_on = Some(TaskDependencies {
            task_ids: vec!["prep".into()],
            task_id_ranges: vec![TaskIdRange { start: 0, end: 1 }],
        });
        assert_eq!(next_step(&spec, false, &partial), Step::Launch(vec![]));
        partial.insert(
            "prep".into(),
            JobTask {
                spec: TaskSpec::new("prep", "/wordcount"),
                progress: Succeeded,
            },
        );
        assert_eq!(
            next_step(&spec, false, &partial),
            Step::Launch(vec![MERGE_TASK_ID.into()])
        );
        // A range far longer than the job is not walked: it cannot be all there.
        partial.get_mut(MERGE_TASK_ID).unwrap().spec.depends_on = Some(TaskDependencies {
            task_ids: vec![],
            task_id_ranges: vec![TaskIdRange {
                start: 0,
                end: u32::MAX,
            }],
        });
        assert_eq!(next_step(&spec, false, &partial), Step::Launch(vec![]));
    }

    #[test]
    fn a_failed_task_ends_the_job_or_blocks_its_dependents() {
        let spec = job("wcs-x");
        let failed = tasks(
            &[("0", Succeeded), ("1", Failed), ("2", Waiting)],
            Some(Waiting),
        );
        assert_eq!(
            next_step(&spec, true, &failed),
            Step::Terminate {
                failed_task: "1".into()
            }
        );
        // Without the job action, the failure blocks the merge for good; the rest runs.
        let keep_going = JobSpec {
            on_task_failure: Some(OnTaskFailure::NoAction),
            ..spec
        };
        assert_eq!(
            next_step(&keep_going, true, &failed),
            Step::Launch(vec!["2".into()])
        );
    }

    #[test]
    fn only_a_sealed_job_completes() {
        let spec = job("wcs-x");
        let done = tasks(&[("0", Succeeded), ("1", Succeeded)], Some(Succeeded));
        assert_eq!(next_step(&spec, false, &done), Step::Launch(vec![]));
        assert_eq!(next_step(&spec, true, &done), Step::Complete);
        // A sealed job with nothing left to run but a task still running waits.
        let running = tasks(&[("0", Succeeded), ("1", Succeeded)], Some(Launched));
        assert_eq!(next_step(&spec, true, &running), Step::Launch(vec![]));
    }

    #[test]
    fn a_split_is_recorded_in_order_and_once() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = JobStore::open(dir.path()).unwrap();
        let s = split("wcs-Once", 3);
        assert_eq!(record_split(&jobs, &s), Ok(Accepted::Submitted));
        let jd = jobs.dir("wcs-once");
        assert!(jd.is_sealed());
        assert_eq!(jd.tasks().ids().unwrap(), ["0", "1", "2", "merge"]);
        assert_eq!(record_split(&jobs, &s), Ok(Accepted::Duplicate));
        // Another case of the same id is the same job.
        let shouted = SplitJob {
            job: job("WCS-ONCE"),
            ..s
        };
        assert_eq!(record_split(&jobs, &shouted), Ok(Accepted::Duplicate));
    }

    #[test]
    fn a_submission_that_died_half_way_is_completed_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = JobStore::open(dir.path()).unwrap();
        let s = split("wcs-half", 4);
        // The job and two parts made it; the rest did not.
        jobs.record(&s.job).unwrap();
        let tasks = jobs.dir("wcs-half").tasks();
        tasks.record(&s.parts[0]).unwrap();
        tasks.record(&s.parts[1]).unwrap();
        assert_eq!(record_split(&jobs, &s), Ok(Accepted::Submitted));
        assert_eq!(tasks.ids().unwrap(), ["0", "1", "2", "3", "merge"]);
        assert!(jobs.dir("wcs-half").is_sealed());
        // Everything recorded but the seal: completing it records nothing new.
        let s2 = split("wcs-unsealed", 2);
        jobs.record(&s2.job).unwrap();
        for task in s2.tasks() {
            jobs.dir("wcs-unsealed").tasks().record(task).unwrap();
        }
        assert_eq!(record_split(&jobs, &s2), Ok(Accepted::Duplicate));
        assert!(jobs.dir("wcs-unsealed").is_sealed());
    }

    #[test]
    fn a_completed_job_takes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = JobStore::open(dir.path()).unwrap();
        let s = split("wcs-ended", 3);
        jobs.record(&s.job).unwrap();
        jobs.dir("wcs-ended").tasks().record(&s.parts[0]).unwrap();
        jobs.dir("wcs-ended")
            .complete(&JobCompletion {
                terminate_reason: TerminateReason::TaskFailed,
                failed_task: Some("0".into()),
                end_time: time::OffsetDateTime::UNIX_EPOCH,
            })
            .unwrap();
        assert_eq!(record_split(&jobs, &s), Ok(Accepted::Duplicate));
        assert_eq!(jobs.dir("wcs-ended").tasks().ids().unwrap(), ["0"]);
        assert!(!jobs.dir("wcs-ended").is_sealed());
    }

    #[test]
    fn what_batch_refuses_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = JobStore::open(dir.path()).unwrap();
        let mut no_deps = split("wcs-nodeps", 2);
        no_deps.job.uses_task_dependencies = None;
        let refused = record_split(&jobs, &no_deps).unwrap_err();
        assert!(
            refused
                .reason()
                .contains("TaskDependenciesNotSpecifiedOnJob"),
            "{refused:?}"
        );
        let bad_id = split("wcs bad", 2);
        assert!(!record_split(&jobs, &bad_id).unwrap_err().is_transient());
        let mut twice = split("wcs-twice", 2);
        twice.parts[1].id = "0".into();
        assert!(record_split(&jobs, &twice).is_err());
        assert!(jobs.ids().unwrap().is_empty(), "nothing was recorded");
    }
}
