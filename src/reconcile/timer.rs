//! The `Reconcile` function's timer: every `RECONCILE_SCHEDULE`, reconcile the blobs modified
//! between `RECONCILE_LOOKBACK` and `RECONCILE_GRACE` ago (Event Grid gets the first chance, and
//! retries for 24 hours), for at most `RECONCILE_BUDGET`, resuming where the last run stopped.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::cursor::{CursorError, CursorStore, FileCursor, JobMetadataCursor, MemoryCursor};
use super::{Counts, Limits, Mode, ReconcileError, Reconciler, Scope};
use crate::config::{ReconcileSettings, RunnerSettings, Settings, SubmitMode};
use crate::filter::EventFilter;
use crate::ops::{OpsError, Storage, batch_client};
use crate::plan::Planner;
use crate::runner::TaskRunner;
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

/// Built once at start-up; each run builds its container clients afresh (SAS URLs signed with
/// the account key last a day).
pub struct Timer {
    settings: ReconcileSettings,
    storage: Storage,
    filter: EventFilter,
    planner: Planner,
    input_container: String,
    output_container: String,
    runner: Arc<dyn TaskRunner>,
    cursor: Box<dyn CursorStore>,
}

impl Timer {
    pub fn from_settings(
        settings: &Settings,
        runner: Arc<dyn TaskRunner>,
    ) -> Result<Timer, OpsError> {
        let cursor: Box<dyn CursorStore> = match &settings.runner {
            RunnerSettings::Batch(batch) if batch.submit_mode == SubmitMode::Task => {
                Box::new(JobMetadataCursor {
                    client: batch_client(batch)?,
                    job_id: batch.job_id.clone(),
                })
            }
            RunnerSettings::Batch(_) => Box::new(MemoryCursor::default()),
            RunnerSettings::Local(local) => Box::new(FileCursor {
                path: local.work_dir.join("reconcile.cursor"),
            }),
        };
        Ok(Timer {
            settings: settings.reconcile.clone(),
            storage: Storage::from_settings(settings)?,
            filter: EventFilter::from_settings(settings),
            planner: Planner::from_settings(settings),
            input_container: settings.input_container.clone(),
            output_container: settings.output_container.clone(),
            runner,
            cursor,
        })
    }

    /// One run, as of `now`.
    pub async fn run(&self, now: OffsetDateTime) -> Result<TimerReport, TimerError> {
        let reconciler = Reconciler {
            filter: self.filter.clone(),
            planner: self.planner.clone(),
            runner: self.runner.clone(),
            input: self.storage.container(&self.input_container)?,
            output: self.storage.container(&self.output_container)?,
        };
        let scope = Scope {
            prefix: None,
            modified_after: Some(now - self.settings.lookback),
            modified_before: Some(now - self.settings.grace),
        };
        let limits = Limits {
            deadline: Some(Instant::now() + self.settings.budget),
            resume_at: self.cursor.load().await?,
        };
        let run = reconciler
            .run(&scope, Mode::Submit, &limits, |action| {
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
                if limits.resume_at.is_some() {
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
