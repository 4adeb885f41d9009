//! A split blob on Batch: its job, its parts, its merge, in an order that survives redelivery
//! and a crash between any two calls.
//!
//! 1. Add Job (`JobExists`: an earlier delivery got this far; a job already sealed or ended
//!    needs nothing more).
//! 2. Add the parts (`TaskExists` is fine: a delivery that died half way is completed).
//! 3. Add the merge, only once every part is confirmed: it depends on them all, and Batch's
//!    handling of a dependency that does not exist yet is not documented.
//! 4. Seal the job (`onAllTasksComplete: terminatejob`): a job created so would have ended at
//!    once, empty. A sealed job has every task, so a later delivery stops at step 1.
//!
//! A job that has completed (a part failed, or everything ran) refuses new tasks with
//! `JobCompleted`: the version was handled, so that is a duplicate, not an error. The account's
//! quota of active jobs refuses step 1 with `ActiveJobAndScheduleQuotaReached`: transient, so
//! the event comes back when split jobs have finished.

use tokio::time::Instant;
use tracing::{info, warn};

use super::client::BatchClient;
use super::error::{BatchError, BatchErrorKind};
use super::models::{BatchJob, JobState};
use crate::runner::{Accepted, SplitJob};
use crate::task_spec::TaskSpec;

/// Codes with which Batch refuses to add to a job that has ended or is ending.
const JOB_ENDED: &[&str] = &["JobCompleted", "JobBeingTerminated"];
const QUOTA_REACHED: &str = "ActiveJobAndScheduleQuotaReached";

/// Submits a split blob (see the module's documentation): `Submitted` when this call created
/// its job or any of its tasks, `Duplicate` when all of it was there.
pub(crate) async fn submit_split(
    client: &BatchClient,
    split: &SplitJob,
    deadline: Instant,
) -> Result<Accepted, BatchError> {
    let job_id = split.job.id.as_str();
    let mut created = match client.add_job_until(&split.job, deadline).await {
        Ok(Accepted::Submitted) => true,
        Ok(Accepted::Duplicate) => {
            let job = client.get_job_state(job_id, deadline).await?;
            if is_sealed_or_ended(&job)? {
                return Ok(Accepted::Duplicate);
            }
            info!(job_id, "split job exists but is not sealed: completing it");
            false
        }
        Err(error) if error.has_code("JobBeingDeleted") => {
            return Err(BatchError {
                kind: BatchErrorKind::Transient,
                message: format!(
                    "the split job {job_id} is being deleted; the blob is submitted again once it \
                     is gone"
                ),
                ..error
            });
        }
        Err(error) if error.has_code(QUOTA_REACHED) => {
            warn!(
                job_id,
                batch_message = %error.message_line(),
                "the Batch account has reached its quota of active jobs: the split blob waits for \
                 a redelivery (raise the quota, or let running split jobs finish)"
            );
            return Err(BatchError {
                kind: BatchErrorKind::Transient,
                ..error
            });
        }
        Err(error) => return Err(error),
    };
    let parts: Vec<&TaskSpec> = split.parts.iter().collect();
    for result in client
        .add_task_collection_until(job_id, &parts, deadline)
        .await
    {
        match result {
            Ok(accepted) => created |= accepted == Accepted::Submitted,
            Err(error) if has_any_code(&error, JOB_ENDED) => return Ok(ended(job_id, created)),
            Err(error) => return Err(error),
        }
    }
    match client.add_task_until(job_id, &split.merge, deadline).await {
        Ok(accepted) => created |= accepted == Accepted::Submitted,
        Err(error) if has_any_code(&error, JOB_ENDED) => return Ok(ended(job_id, created)),
        Err(error) => return Err(error),
    }
    match client.terminate_job_when_done(job_id, deadline).await {
        Ok(()) => {}
        Err(error) if has_any_code(&error, JOB_ENDED) => {}
        Err(error) => return Err(error),
    }
    Ok(if created {
        Accepted::Submitted
    } else {
        Accepted::Duplicate
    })
}

/// A job that has every task (sealed) or has ended needs nothing more; one being deleted (a
/// retry of a failed blob under way) cannot take tasks yet.
fn is_sealed_or_ended(job: &BatchJob) -> Result<bool, BatchError> {
    let sealed = job
        .on_all_tasks_complete
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("terminatejob"));
    match job.state {
        Some(JobState::Deleting) => Err(BatchError::transient(format!(
            "the split job {} is being deleted; the blob is submitted again once it is gone",
            job.id
        ))),
        Some(JobState::Completed | JobState::Terminating) => Ok(true),
        _ => Ok(sealed),
    }
}

fn ended(job_id: &str, created: bool) -> Accepted {
    info!(job_id, "the split job has ended: nothing more to add");
    if created {
        Accepted::Submitted
    } else {
        Accepted::Duplicate
    }
}

fn has_any_code(error: &BatchError, codes: &[&str]) -> bool {
    codes.iter().any(|code| error.has_code(code))
}

/// How often a job being deleted is looked at until it is gone.
const DELETION_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Deletes a job and waits (until `deadline`) for it to be gone, so that the same id can be
/// created again: the service deletes a job in the background.
pub(crate) async fn delete_job_and_wait(
    client: &BatchClient,
    job_id: &str,
    deadline: Instant,
) -> Result<(), BatchError> {
    match client.delete_job(job_id, deadline).await {
        Ok(()) => {}
        Err(e) if e.has_code("JobNotFound") => return Ok(()),
        Err(e) if e.has_code("JobBeingDeleted") => {}
        Err(e) => return Err(e),
    }
    loop {
        match client.get_job_state(job_id, deadline).await {
            Err(e) if e.has_code("JobNotFound") => return Ok(()),
            Err(e) => return Err(e),
            Ok(_) if Instant::now() + DELETION_POLL >= deadline => {
                return Err(BatchError::transient(format!(
                    "the job {job_id} is still being deleted; run again in a minute"
                )));
            }
            Ok(_) => tokio::time::sleep(DELETION_POLL).await,
        }
    }
}
