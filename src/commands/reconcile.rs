//! `blob2batch reconcile [--prefix P] [--since DURATION] [--dry-run] [--json]`: makes sure every
//! blob version the filter acts on has its task (see [`crate::reconcile`]).

use std::io::Write;
use std::time::Duration;

use time::OffsetDateTime;

use super::console::{json_line, line};
use crate::config::Settings;
use crate::filter::EventFilter;
use crate::ops::{OpsError, Storage, cli_runner};
use crate::plan::Planner;
use crate::reconcile::{Action, Counts, Limits, Mode, ReconcileError, Reconciler, Scope};

#[derive(Clone, Debug, Default)]
pub struct ReconcileOptions {
    pub prefix: Option<String>,
    /// Only blobs modified within this much of now.
    pub since: Option<Duration>,
    pub dry_run: bool,
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileCommandError {
    #[error(transparent)]
    Setup(#[from] OpsError),
    #[error(transparent)]
    Run(#[from] ReconcileError),
}

/// The counts, and the reasons of the blobs whose submission failed (for stderr).
#[derive(Debug, Default)]
pub struct ReconcileReport {
    pub counts: Counts,
    pub problems: Vec<String>,
}

pub async fn run(
    settings: &Settings,
    options: &ReconcileOptions,
    out: &mut impl Write,
) -> Result<ReconcileReport, ReconcileCommandError> {
    let storage = Storage::from_settings(settings)?;
    let cli = cli_runner(settings)?;
    let reconciler = Reconciler {
        filter: EventFilter::from_settings(settings),
        planner: Planner::from_settings(settings),
        runner: cli.runner.clone(),
        input: storage
            .container(&settings.input_container)
            .map_err(OpsError::from)?,
        output: storage
            .container(&settings.output_container)
            .map_err(OpsError::from)?,
    };
    let scope = Scope {
        prefix: options.prefix.clone(),
        modified_after: options.since.map(|since| OffsetDateTime::now_utc() - since),
        modified_before: None,
    };
    let mode = if options.dry_run {
        Mode::DryRun(cli.lookup.as_ref())
    } else {
        Mode::Submit
    };
    let mut problems = Vec::new();
    let summary = reconciler
        .run(&scope, mode, &Limits::default(), |action| {
            if options.json {
                json_line(out, action);
            } else {
                let verb = match (&action.action, options.dry_run) {
                    (Action::Submitted, false) => "submitted",
                    (Action::Submitted, true) => "would submit",
                    (Action::Duplicate, _) => "has a task",
                    (Action::Failed { .. }, _) => "FAILED",
                };
                line(
                    out,
                    &format!("{verb:<13} {} (task {})", action.blob, action.task_id),
                );
            }
            if let Action::Failed { reason, .. } = &action.action {
                problems.push(format!("{}: {reason}", action.blob));
            }
        })
        .await?;
    let counts = summary.counts;
    if options.json {
        json_line(out, &counts);
    } else {
        line(
            out,
            &format!(
                "{} {} blob(s): {} current, {} {}, {} with a task already, {} ignored, {} failed",
                if options.dry_run {
                    "dry run,"
                } else {
                    "reconciled"
                },
                counts.listed,
                summary.current,
                counts.submitted,
                if options.dry_run {
                    "to submit"
                } else {
                    "submitted"
                },
                counts.duplicate,
                counts.ignored,
                counts.failed,
            ),
        );
    }
    Ok(ReconcileReport { counts, problems })
}

impl super::console::Problems for ReconcileReport {
    fn problems(self) -> Vec<String> {
        self.problems
    }
}

impl super::console::UsageError for ReconcileCommandError {
    fn is_usage(&self) -> bool {
        matches!(self, ReconcileCommandError::Setup(e) if e.is_usage())
    }
}
