//! `blob2batch status [--json] [--prefix P] [NAME...]`: what became of each blob's current version.
//!
//! For each blob the filter acts on (the named ones, or all under the prefix, or all): its eTag,
//! the task id its version gets, the task's state as the runner reports it (Batch's Get Task, or
//! the local runner's records), the result blob and whether it was counted from this very version
//! (its `source_etag` metadata), and where a failed task left its logs.

use std::collections::HashMap;
use std::io::Write;

use futures_util::StreamExt as _;
use serde::Serialize;
use time::OffsetDateTime;

use super::console::{Palette, Tone, json_line, line};
use crate::config::Settings;
use crate::error_chain::error_chain;
use crate::filter::EventFilter;
use crate::ops::{OpsError, Storage, cli_runner};
use crate::plan::{
    LONG_NAMES_PREFIX, Planner, SOURCE_ETAG_METADATA, logs_folder, result_blob_name,
};
use crate::runner::{FailureInfo, Submission, TaskState, TaskStatus};
use crate::storage::blob::{BlobEntry, ListOptions};
use crate::storage::{BlobError, ContainerClient};

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
pub struct BlobStatus {
    pub blob: String,
    pub etag: String,
    pub task_id: String,
    pub state: State,
    pub exit_code: Option<i32>,
    pub retries: Option<i32>,
    pub failure: Option<FailureInfo>,
    pub output: Option<String>,
    pub output_current: bool,
    pub logs: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// No task for this version.
    Unsubmitted,
    Active,
    Preparing,
    Running,
    Succeeded,
    Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Setup(#[from] OpsError),
    #[error("cannot list the {container} container")]
    List {
        container: &'static str,
        #[source]
        source: BlobError,
    },
}

/// What a run found wrong without stopping: named on stderr, exit code 1.
#[derive(Debug, Default)]
pub struct StatusReport {
    pub rows: usize,
    pub problems: Vec<String>,
}

pub async fn run(
    settings: &Settings,
    options: &StatusOptions,
    out: &mut impl Write,
) -> Result<StatusReport, StatusError> {
    let storage = Storage::from_settings(settings)?;
    let input = storage
        .container(&settings.input_container)
        .map_err(OpsError::from)?;
    let output = storage
        .container(&settings.output_container)
        .map_err(OpsError::from)?;
    let filter = EventFilter::from_settings(settings);
    let planner = Planner::from_settings(settings);
    let lookup = cli_runner(settings)?.lookup;
    let mut report = StatusReport::default();

    let blobs = if options.names.is_empty() {
        input
            .list(options.prefix.as_deref())
            .await
            .map_err(|source| StatusError::List {
                container: "input",
                source,
            })?
    } else {
        named_blobs(&input, &options.names, &mut report).await
    };
    let blobs: Vec<BlobEntry> = blobs
        .into_iter()
        .filter(|blob| match filter.accepts_name(&blob.name) {
            Ok(()) => true,
            Err(reason) => {
                if !options.names.is_empty() {
                    report
                        .problems
                        .push(format!("{}: not counted: {reason}", blob.name));
                }
                false
            }
        })
        .collect();

    let now = OffsetDateTime::now_utc();
    let submissions: Vec<Submission> = blobs
        .iter()
        .map(|b| planner.plan_listed(&settings.input_container, &b.name, &b.etag, now))
        .collect();
    let states = lookup.lookup(&submissions).await;
    let outputs = if options.names.is_empty() {
        Outputs::listed(&output, options.prefix.as_deref()).await?
    } else {
        Outputs::probed(&output, &submissions).await
    };

    let palette = Palette::for_stdout();
    if !options.json && !blobs.is_empty() {
        line(out, &header());
    }
    for ((blob, submission), state) in blobs.iter().zip(&submissions).zip(states) {
        let status = match state {
            Ok(status) => status,
            Err(e) => {
                report
                    .problems
                    .push(format!("{}: {}", blob.name, error_chain(&e)));
                continue;
            }
        };
        let row = row(blob, submission, status, &outputs);
        if options.json {
            json_line(out, &row);
        } else {
            line(out, &table_line(&row, palette));
        }
        report.rows += 1;
    }
    Ok(report)
}

/// The named blobs that exist; a missing one is a problem.
async fn named_blobs(
    input: &ContainerClient,
    names: &[String],
    report: &mut StatusReport,
) -> Vec<BlobEntry> {
    let reads: Vec<_> = names.iter().map(|name| input.properties(name)).collect();
    let found: Vec<_> = futures_util::stream::iter(reads)
        .buffered(READS_IN_FLIGHT)
        .collect()
        .await;
    let mut blobs = Vec::new();
    for (name, found) in names.iter().zip(found) {
        match found {
            Ok(Some(blob)) => blobs.push(blob),
            Ok(None) => report
                .problems
                .push(format!("{name}: no such blob in the input container")),
            Err(e) => report.problems.push(format!("{name}: {}", error_chain(&e))),
        }
    }
    blobs
}

fn row(
    blob: &BlobEntry,
    submission: &Submission,
    status: Option<TaskStatus>,
    outputs: &Outputs,
) -> BlobStatus {
    let task = submission.task();
    let result = task.and_then(result_blob_name);
    let recorded = result.and_then(|name| outputs.results.get(name));
    let output_current = recorded.is_some_and(|etag| etag.as_deref() == Some(&blob.etag));
    let logs = task
        .and_then(logs_folder)
        .filter(|folder| outputs.has_folder(folder))
        .map(|folder| format!("{folder}/"));
    let (state, exit_code, retries, failure) = match status {
        Some(status) => (
            match status.state {
                TaskState::Active => State::Active,
                TaskState::Preparing => State::Preparing,
                TaskState::Running => State::Running,
                TaskState::Succeeded => State::Succeeded,
                TaskState::Failed => State::Failed,
            },
            status.exit_code,
            status.retries,
            status.failure,
        ),
        // The task record may be gone (its job deleted); the current result is the durable fact.
        None if output_current => (State::Succeeded, None, None, None),
        None => (State::Unsubmitted, None, None, None),
    };
    BlobStatus {
        blob: blob.name.clone(),
        etag: blob.etag.clone(),
        task_id: submission.id().to_string(),
        state,
        exit_code,
        retries,
        failure,
        output: recorded.and(result).map(str::to_string),
        output_current,
        logs,
    }
}

/// Result blobs (name -> the version they record, if they say) and every output blob name.
struct Outputs {
    results: HashMap<String, Option<String>>,
    /// Every output blob's name, sorted, to find logs folders.
    names: Vec<String>,
}

impl Outputs {
    /// From listings of the output container under `prefix` and under `long-names/`.
    async fn listed(
        output: &ContainerClient,
        prefix: Option<&str>,
    ) -> Result<Outputs, StatusError> {
        let mut prefixes = vec![prefix];
        if prefix.is_some_and(|p| !p.is_empty() && !LONG_NAMES_PREFIX.starts_with(p)) {
            prefixes.push(Some(LONG_NAMES_PREFIX));
        }
        let mut results = HashMap::new();
        let mut names = Vec::new();
        for prefix in prefixes {
            let mut marker = None;
            loop {
                let page = output
                    .list_page(&ListOptions {
                        prefix,
                        marker,
                        metadata: true,
                    })
                    .await
                    .map_err(|source| StatusError::List {
                        container: "output",
                        source,
                    })?;
                for entry in page.entries {
                    results.insert(
                        entry.name.clone(),
                        entry.metadata.get(SOURCE_ETAG_METADATA).cloned(),
                    );
                    names.push(entry.name);
                }
                marker = page.next_marker;
                if marker.is_none() {
                    break;
                }
            }
        }
        names.sort();
        Ok(Outputs { results, names })
    }

    /// From the properties of each submission's result blob, and a listing of its logs folder.
    async fn probed(output: &ContainerClient, submissions: &[Submission]) -> Outputs {
        let mut results = HashMap::new();
        let mut names = Vec::new();
        for submission in submissions {
            let Some(task) = submission.task() else {
                continue;
            };
            if let Some(name) = result_blob_name(task)
                && let Ok(Some(entry)) = output.properties(name).await
            {
                results.insert(
                    name.to_string(),
                    entry.metadata.get(SOURCE_ETAG_METADATA).cloned(),
                );
            }
            if let Some(folder) = logs_folder(task)
                && let Ok(logs) = output.list(Some(&format!("{folder}/"))).await
            {
                names.extend(logs.into_iter().map(|entry| entry.name));
            }
        }
        names.sort();
        Outputs { results, names }
    }

    fn has_folder(&self, folder: &str) -> bool {
        let prefix = format!("{folder}/");
        let at = self
            .names
            .partition_point(|name| name.as_str() < prefix.as_str());
        self.names
            .get(at)
            .is_some_and(|name| name.starts_with(&prefix))
    }
}

fn header() -> String {
    format!(
        "{:<12} {:<9} {:<6} {:<8} {}",
        "STATE", "EXIT", "TRIES", "RESULT", "BLOB"
    )
}

/// `STATE EXIT TRIES RESULT BLOB [failure] [logs]`, one blob per line.
fn table_line(row: &BlobStatus, palette: Palette) -> String {
    let (state, tone) = match row.state {
        State::Unsubmitted => ("unsubmitted", Tone::Bad),
        State::Active => ("active", Tone::Busy),
        State::Preparing => ("preparing", Tone::Busy),
        State::Running => ("running", Tone::Busy),
        State::Succeeded => ("succeeded", Tone::Good),
        State::Failed => ("failed", Tone::Bad),
    };
    let result = match (&row.output, row.output_current) {
        (Some(_), true) => palette.paint("current", Tone::Good, 8),
        (Some(_), false) => palette.paint("stale", Tone::Bad, 8),
        (None, _) => palette.paint("-", Tone::Quiet, 8),
    };
    let mut text = format!(
        "{} {:<9} {:<6} {} {}",
        palette.paint(state, tone, 12),
        row.exit_code.map_or("-".to_string(), |c| c.to_string()),
        row.retries.map_or("-".to_string(), |r| r.to_string()),
        result,
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

impl super::console::Problems for StatusReport {
    fn problems(self) -> Vec<String> {
        self.problems
    }
}

impl super::console::UsageError for StatusError {
    fn is_usage(&self) -> bool {
        matches!(self, StatusError::Setup(e) if e.is_usage())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: State) -> BlobStatus {
        BlobStatus {
            blob: "docs/a b.txt".into(),
            etag: "0x1".into(),
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
        }
    }

    #[test]
    fn json_lines_use_exactly_the_contract_names() {
        let value = serde_json::to_value(row(State::Failed)).unwrap();
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
                "retries",
                "state",
                "taskId"
            ]
        );
        assert_eq!(value["state"], "failed");
        assert_eq!(value["failure"]["code"], "FailureExitCode");
    }

    #[test]
    fn table_lines_say_it_all_without_colour_off_a_terminal() {
        let text = table_line(&row(State::Failed), Palette::plain());
        assert_eq!(
            text,
            "failed       3         2      -        docs/a b.txt  [usererror FailureExitCode: \
             exit code 3]  logs: docs/a b.txt.wordcount.logs/wc-1/"
        );
        assert!(!text.contains('\x1b'));
    }
}
