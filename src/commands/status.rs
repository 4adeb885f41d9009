//! `blob2batch status [--json] [--prefix P] [NAME...]`: what became of each blob's current version.
//!
//! For each blob the filter acts on (the named ones, or all under the prefix, or all): its eTag,
//! the task id its version gets, the task's state as the runner reports it (Batch's Get Task, or
//! the local runner's records), the result blob and whether it was counted from this very version
//! (see [`crate::results`]), and where a failed task left its logs. A split blob is one row: its
//! job's id, a state that covers its tasks (`running 37/64 parts`; failed as soon as one part
//! or the merge has, with that task's failure and logs), and its parts by state.
//!
//! A read that fails after its retries is never shown as a state: the blob's row is left out and
//! the failure named on stderr (exit code 1). Rows whose reads all succeeded are printed.

use std::io::Write;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use super::CommandError;
use super::console::{Palette, Tone, json_line, line};
use crate::context::Context;
use crate::error_chain::error_chain;
use crate::fail_fast::map_fail_fast;
use crate::plan::{Plan, Planned, Unsigned};
use crate::results::{Found, Results, ResultsError};
use crate::runner::{
    FailureInfo, LookupResult, PartCounts, Submission, TaskState, TaskStatus, lookup_each,
};
use crate::storage::{BlobEntry, BlobError, ContainerClient};

/// Blob properties read at once for named blobs.
const READS_IN_FLIGHT: usize = 16;

#[derive(Clone, Debug, Default)]
pub struct StatusOptions {
    pub json: bool,
    pub prefix: Option<String>,
    pub names: Vec<String>,
}

/// One blob's line, with exactly the field names of the `--json` contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BlobStatus {
    pub blob: String,
    pub etag: String,
    /// The workload that takes the blob.
    pub workload: String,
    pub task_id: String,
    /// The task's state; `None` (shown as `unsubmitted`) when this version has no task.
    #[serde(serialize_with = "state_or_unsubmitted")]
    pub state: Option<TaskState>,
    pub exit_code: Option<i32>,
    pub retries: Option<i32>,
    pub failure: Option<FailureInfo>,
    pub output: Option<String>,
    pub output_current: bool,
    pub logs: Option<String>,
    /// A split blob's parts by state (`null` for a blob counted by one task).
    pub parts: Option<PartCounts>,
}

fn state_or_unsubmitted<S: Serializer>(
    state: &Option<TaskState>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match state {
        Some(state) => state.serialize(serializer),
        None => serializer.serialize_str("unsubmitted"),
    }
}

/// The rows printed, and the failures named on stderr (exit code 1 when there are any).
pub async fn run(
    context: &Context,
    options: &StatusOptions,
    out: &mut impl Write,
) -> Result<Vec<String>, CommandError> {
    let settings = context.settings();
    let input = context.containers().get(&settings.input_container)?;
    let results = Results::new(context.containers().get(&settings.output_container)?);
    let mut problems = Vec::new();

    let blobs = if options.names.is_empty() {
        input
            .list(options.prefix.as_deref())
            .await
            .map_err(|e| CommandError::runtime(Listing("input", e)))?
    } else {
        named_blobs(&input, &options.names, &mut problems).await
    };
    let planned = plan(context, blobs, !options.names.is_empty(), &mut problems);

    let submissions: Vec<Submission> = planned.iter().map(|p| p.submission.clone()).collect();
    // Batch and storage are read at once: a failing one costs its own budget, not the sum.
    let (states, found) = tokio::join!(
        lookup_each(context.lookup().as_ref(), &submissions),
        find_results(&results, &planned, options)
    );
    let found = found.map_err(CommandError::runtime)?;

    let palette = Palette::for_stdout();
    let mut header = !options.json;
    for ((planned, state), found) in planned.iter().zip(states).zip(found) {
        let row = match row(planned, state, found) {
            Ok(row) => row,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        if std::mem::take(&mut header) {
            line(out, &table_header());
        }
        if options.json {
            json_line(out, &row);
        } else {
            line(out, &table_line(&row, palette));
        }
    }
    Ok(problems)
}

/// The blobs the filter acts on and a workload takes, planned as their events would be; the
/// others are problems when they were named.
fn plan(
    context: &Context,
    blobs: Vec<BlobEntry>,
    named: bool,
    problems: &mut Vec<String>,
) -> Vec<Planned> {
    let now = OffsetDateTime::now_utc();
    let container = &context.settings().input_container;
    let mut planned = Vec::new();
    for blob in blobs {
        if let Err(reason) = context.filter().accepts_name(&blob.name) {
            if named {
                problems.push(format!("{}: not counted: {reason}", blob.name));
            }
            continue;
        }
        // Only the task's id and outputs matter here: no input URL is signed.
        match context
            .planner()
            .plan_listed(container, &blob, now, Some(&Unsigned))
        {
            Ok(Plan::Run(one)) => planned.push(*one),
            Ok(Plan::Ignored(reason)) if named => {
                problems.push(format!("{}: not counted: {reason}", blob.name))
            }
            Ok(Plan::Ignored(_)) => {}
            Err(error) => problems.push(format!("{}: {error}", blob.name)),
        }
    }
    planned
}

/// A container could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list the {0} container")]
struct Listing(&'static str, #[source] BlobError);

/// What the output container holds for each planned version: one listing for a prefix (or
/// everything), one read per blob for named blobs.
async fn find_results(
    results: &Results,
    planned: &[Planned],
    options: &StatusOptions,
) -> Result<Vec<Result<Found, ResultsError>>, ResultsError> {
    if options.names.is_empty() {
        let listing = results.list(options.prefix.as_deref()).await?;
        return Ok(planned
            .iter()
            .map(|p| Ok(listing.find(&p.names, &p.etag)))
            .collect());
    }
    let versions: Vec<_> = planned
        .iter()
        .map(|p| (&p.names, p.etag.as_str()))
        .collect();
    Ok(results.probe(&versions, true).await)
}

/// The named blobs that exist; a missing one, or one that could not be read, is a problem.
async fn named_blobs(
    input: &ContainerClient,
    names: &[String],
    problems: &mut Vec<String>,
) -> Vec<BlobEntry> {
    let found = map_fail_fast(names, READS_IN_FLIGHT, |name| async move {
        input.properties(name).await.map_err(std::sync::Arc::new)
    })
    .await;
    let mut blobs = Vec::new();
    for (name, found) in names.iter().zip(found) {
        match found {
            Ok(Some(blob)) => blobs.push(blob),
            Ok(None) => problems.push(format!("{name}: no such blob in the input container")),
            Err(e) => problems.push(format!("{name}: {}", error_chain(e.as_ref()))),
        }
    }
    blobs
}

/// One blob's row, or the problem that keeps it from being shown.
fn row(
    planned: &Planned,
    state: LookupResult,
    found: Result<Found, ResultsError>,
) -> Result<BlobStatus, String> {
    let problem =
        |e: &(dyn std::error::Error + 'static)| format!("{}: {}", planned.blob, error_chain(e));
    let status = state.map_err(|e| problem(&e))?;
    let found = found.map_err(|e| problem(&e))?;
    let status = match status {
        Some(status) => Some(status),
        // The task record may be gone (its job deleted); the current result is the durable fact.
        None if found.current => Some(TaskStatus::new(TaskState::Succeeded)),
        None => None,
    };
    let (state, exit_code, retries, failure, parts, failed_task) = match status {
        Some(s) => (
            Some(s.state),
            s.exit_code,
            s.retries,
            s.failure,
            s.parts,
            s.failed_task,
        ),
        None => (None, None, None, None, None, None),
    };
    // A split blob's logs folder holds one folder per failed task: name the one that failed.
    let logs = match (found.logs, failed_task) {
        (Some(folder), Some(task)) => Some(format!("{folder}{task}/")),
        (logs, _) => logs,
    };
    Ok(BlobStatus {
        blob: planned.blob.clone(),
        etag: planned.etag.clone(),
        workload: planned.workload.clone(),
        task_id: planned.submission.id().to_string(),
        state,
        exit_code,
        retries,
        failure,
        output: found.output,
        output_current: found.current,
        logs,
        parts,
    })
}

/// Wide enough for a split blob's state, `running 999/1000 parts`.
const STATE_WIDTH: usize = 22;

fn table_header() -> String {
    format!(
        "{:<STATE_WIDTH$} {:<9} {:<6} {:<8} {:<12} {}",
        "STATE", "EXIT", "TRIES", "RESULT", "WORKLOAD", "BLOB"
    )
}

/// `STATE EXIT TRIES RESULT WORKLOAD BLOB [failure] [logs]`, one blob per line.
fn table_line(row: &BlobStatus, palette: Palette) -> String {
    let (state, tone) = match row.state {
        None => ("unsubmitted", Tone::Bad),
        Some(TaskState::Active) => ("active", Tone::Busy),
        Some(TaskState::Preparing) => ("preparing", Tone::Busy),
        Some(TaskState::Running) => ("running", Tone::Busy),
        Some(TaskState::Succeeded) => ("succeeded", Tone::Good),
        Some(TaskState::Failed) => ("failed", Tone::Bad),
    };
    // A split blob: how many of its parts are done.
    let state = match &row.parts {
        Some(parts) => format!("{state} {}/{} parts", parts.succeeded, parts.total),
        None => state.to_string(),
    };
    let result = match (&row.output, row.output_current) {
        (Some(_), true) => palette.paint("current", Tone::Good, 8),
        (Some(_), false) => palette.paint("stale", Tone::Bad, 8),
        (None, _) => palette.paint("-", Tone::Quiet, 8),
    };
    let mut text = format!(
        "{} {:<9} {:<6} {} {:<12} {}",
        palette.paint(&state, tone, STATE_WIDTH),
        row.exit_code.map_or("-".to_string(), |c| c.to_string()),
        row.retries.map_or("-".to_string(), |r| r.to_string()),
        result,
        row.workload,
        row.blob
    );
    if let Some(failure) = &row.failure {
        text.push_str(&format!(
            "  [{} {}: {}]",
            failure.category, failure.code, failure.message
        ));
    }
    if let Some(logs) = &row.logs {
        text.push_str(&format!("  logs: {logs}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: Option<TaskState>) -> BlobStatus {
        BlobStatus {
            blob: "docs/a b.txt".into(),
            etag: "0x1".into(),
            workload: "wordcount".into(),
            task_id: "wc-1".into(),
            state,
            exit_code: Some(3),
            retries: Some(2),
            failure: Some(FailureInfo {
                category: "usererror".into(),
                code: "FailureExitCode".into(),
                message: "exit code 3".into(),
            }),
            output: None,
            output_current: false,
            logs: Some("docs/a b.txt.wordcount.logs/wc-1/".into()),
            parts: None,
        }
    }

    #[test]
    fn json_lines_use_exactly_the_contract_names() {
        let value = serde_json::to_value(row(Some(TaskState::Failed))).unwrap();
        let mut names: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "blob",
                "etag",
                "exitCode",
                "failure",
                "logs",
                "output",
                "outputCurrent",
                "parts",
                "retries",
                "state",
                "taskId",
                "workload"
            ]
        );
        assert_eq!(value["state"], "failed");
        assert_eq!(value["failure"]["code"], "FailureExitCode");
        let unsubmitted = serde_json::to_value(row(None)).unwrap();
        assert_eq!(unsubmitted["state"], "unsubmitted");
    }

    #[test]
    fn table_lines_say_it_all_without_colour_off_a_terminal() {
        let text = table_line(&row(Some(TaskState::Failed)), Palette::plain());
        assert_eq!(
            text,
            "failed                 3         2      -        wordcount    docs/a b.txt  \
             [usererror FailureExitCode: exit code 3]  logs: docs/a b.txt.wordcount.logs/wc-1/"
        );
        assert!(!text.contains('\x1b'));
        let mut split = row(Some(TaskState::Running));
        split.parts = Some(PartCounts {
            total: 64,
            active: 20,
            running: 7,
            succeeded: 37,
            failed: 0,
        });
        assert!(
            table_line(&split, Palette::plain()).starts_with("running 37/64 parts    3 "),
            "{}",
            table_line(&split, Palette::plain())
        );
    }
}
