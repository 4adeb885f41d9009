//! The `Reconcile` function's timer runs: every `RECONCILE_SCHEDULE`, reconcile the blobs
//! modified between `RECONCILE_LOOKBACK` and `RECONCILE_GRACE` ago (Event Grid gets the first
//! chance, and retries for 24 hours), for at most `RECONCILE_BUDGET`, resuming where the last
//! run stopped.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::cursor::{CursorError, CursorStore, FileCursor, JobMetadataCursor, MemoryCursor};
use super::{Counts, ReconcileError, Reconciler, Resume, Scope};
use crate::config::{RunnerSettings, SubmitMode};
use crate::context::Context;
use crate::storage::BlobError;

/// What one timer run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TimerReport {
    #[serde(flatten)]
    pub counts: Counts,
    /// Blobs in the window whose result is current.
    pub current: u64,
    /// The run stopped at its budget; the next one resumes there.
    pub more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    #[error("cannot reach the containers")]
    Storage(#[from] BlobError),
    #[error("the resume marker")]
    Cursor(#[from] CursorError),
}

/// Built once at start-up, on the process's context.
pub struct ScheduledReconcile {
    context: Arc<Context>,
    cursor: Box<dyn CursorStore>,
}

impl ScheduledReconcile {
    /// With Batch in task mode the resume marker lives in the long-lived job's metadata; with the
    /// local runner, in its work directory; in job-per-blob mode (no long-lived job) only in
    /// memory.
    pub fn new(context: Arc<Context>) -> ScheduledReconcile {
        let cursor: Box<dyn CursorStore> = match (&context.settings().runner, context.batch()) {
            (RunnerSettings::Batch(batch), Some(client))
                if batch.submit_mode == SubmitMode::Task =>
            {
                Box::new(JobMetadataCursor {
                    client: client.clone(),
                    job_id: batch.job_id.clone(),
                })
            }
            (RunnerSettings::Local(local), _) => Box::new(FileCursor {
                path: local.work_dir.join("reconcile.cursor"),
            }),
            (RunnerSettings::Batch(_), _) => Box::new(MemoryCursor::default()),
        };
        ScheduledReconcile { context, cursor }
    }

    /// One run, as of `now`.
    pub async fn run(&self, now: OffsetDateTime) -> Result<TimerReport, TimerError> {
        let settings = &self.context.settings().reconcile;
        let reconciler = Reconciler::new(&self.context, self.context.runner().clone())?;
        let scope = Scope {
            prefix: None,
            modified_after: Some(now - settings.lookback),
            modified_before: Some(now - settings.grace),
        };
        let resume = Resume {
            deadline: Some(Instant::now() + settings.budget),
            at: self.cursor.load().await?,
        };
        let run = reconciler
            .run(&scope, &resume, |action| {
                tracing::info!(
                    blob = %action.blob,
                    task_id = %action.task_id,
                    action = ?action.action,
                    "reconciled"
                );
            })
            .await;
        let summary = match run {
            Ok(summary) => summary,
            Err(e) => {
                // A marker the service no longer takes must not wedge every later run.
                if resume.at.is_some() {
                    let _ = self.cursor.save(None).await;
                }
                return Err(e.into());
            }
        };
        self.cursor.save(summary.resume_at.as_deref()).await?;
        Ok(TimerReport {
            counts: summary.counts,
            current: summary.current,
            more: summary.resume_at.is_some(),
        })
    }
}
