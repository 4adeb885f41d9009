//! `blob2batch reconcile [--prefix P] [--since DURATION] [--retry-failed] [--dry-run] [--json]`:
//! makes sure every blob version the filter acts on has its task (see [`crate::reconcile`]). A
//! dry run is the same run with a runner that only looks tasks up. `--retry-failed` removes the
//! task (or the split job) of a version whose task failed and submits it again, under the same
//! ids, so that a later redelivery of its event is still a duplicate.

use std::io::Write;
use std::time::Duration;

use time::OffsetDateTime;

use super::CommandError;
use super::console::{json_line, line};
use crate::context::Context;
use crate::reconcile::{Action, Reconciler, Resume, RetryFailed, Scope, Summary};

#[derive(Clone, Debug, Default)]
pub struct ReconcileOptions {
    pub prefix: Option<String>,
    /// Only blobs modified within this much of now.
    pub since: Option<Duration>,
    pub dry_run: bool,
    pub json: bool,
    /// Remove the task (or split job) of a version whose task failed, and submit it again.
    pub retry_failed: bool,
}

/// Runs it; the reasons of the blobs whose submission failed are returned for stderr.
pub async fn run(
    context: &Context,
    options: &ReconcileOptions,
    out: &mut impl Write,
) -> Result<Vec<String>, CommandError> {
    let runner = if options.dry_run {
        context.dry_runner()
    } else {
        context.runner().clone()
    };
    let mut reconciler = Reconciler::new(context, runner)?;
    if options.retry_failed {
        let remover = match (options.dry_run, context.remover()) {
            (true, _) => None,
            (false, Some(remover)) => Some(remover.clone()),
            (false, None) => {
                return Err(CommandError::usage(
                    "--retry-failed cannot remove tasks with this runner",
                ));
            }
        };
        reconciler = reconciler.retrying_failed(RetryFailed {
            lookup: context.lookup().clone(),
            remover,
        });
    }
    let scope = Scope {
        prefix: options.prefix.clone(),
        modified_after: options.since.map(|since| OffsetDateTime::now_utc() - since),
        modified_before: None,
    };
    let mut problems = Vec::new();
    let summary = reconciler
        .run(&scope, &Resume::default(), |action| {
            if options.json {
                json_line(out, action);
            } else {
                let verb = match (&action.action, options.dry_run) {
                    (Action::Submitted, false) => "submitted",
                    (Action::Submitted, true) => "would submit",
                    (Action::Duplicate, _) => "has a task",
                    (Action::Retried, false) => "retried",
                    (Action::Retried, true) => "would retry",
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
        .await
        .map_err(CommandError::runtime)?;
    if options.json {
        json_line(out, &summary.counts);
    } else {
        line(out, &summary_line(&summary, options.dry_run));
    }
    Ok(problems)
}

fn summary_line(summary: &Summary, dry_run: bool) -> String {
    let counts = &summary.counts;
    let retried = match (counts.retried, dry_run) {
        (0, _) => String::new(),
        (n, false) => format!(", {n} retried"),
        (n, true) => format!(", {n} to retry"),
    };
    format!(
        "{} {} blob(s): {} current, {} {}{retried}, {} with a task already, {} ignored, {} failed",
        if dry_run { "dry run," } else { "reconciled" },
        counts.listed,
        summary.current,
        counts.submitted,
        if dry_run { "to submit" } else { "submitted" },
        counts.duplicate,
        counts.ignored,
        counts.failed,
    )
}
