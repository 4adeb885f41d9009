//! Reconciliation: every blob version the filter acts on gets its task, whatever Event Grid did.
//!
//! The input container is listed page by page (5,000 blobs a page, in name order); a blob counts
//! when the filter accepts its name and, for a windowed run, it was modified inside the window.
//! A blob whose result is current (the result blob's `source_etag` metadata is this version's
//! eTag) needs nothing; every other one is planned exactly as its event would be and submitted
//! through the runner, whose idempotent ids make a version that already has a task a duplicate.
//! So a second run right after submits nothing, an overwrite gives one new task, and an event
//! arriving later for a reconciled version is a duplicate.
//!
//! Whether results are current is read one of two ways: a run over everything lists the output
//! container once (5,000 results per call); a windowed run (`--since`, the timer) asks for the
//! properties of the few results its window concerns, and lists the output container instead
//! once a page brings more than [`PROBE_LIMIT`] candidates, so a run never costs more than the
//! cheaper of the two. A run may stop at a deadline between pages and say where to resume (the
//! listing's continuation marker).

pub mod cursor;
pub mod timer;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt as _;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::filter::EventFilter;
use crate::plan::{Planner, SOURCE_ETAG_METADATA, result_blob_name};
use crate::runner::{Accepted, Submission, TaskLookup, TaskRunner};
use crate::storage::blob::{BlobEntry, ListOptions};
use crate::storage::{BlobError, ContainerClient};

/// Result properties read at once in a windowed run.
const PROBES_IN_FLIGHT: usize = 16;

/// A page with more candidates than this has their results found by listing the output container
/// (5,000 a call) rather than by reading each one's properties.
const PROBE_LIMIT: usize = 200;

/// Where results of names too long for the natural result name go (see `plan`).
const LONG_NAMES_PREFIX: &str = crate::plan::LONG_NAMES_PREFIX;

/// What one run looks at.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Only blobs whose name starts with this.
    pub prefix: Option<String>,
    /// Only blobs modified at or after this.
    pub modified_after: Option<OffsetDateTime>,
    /// Only blobs modified before this (the timer leaves the newest to Event Grid).
    pub modified_before: Option<OffsetDateTime>,
}

impl Scope {
    fn windowed(&self) -> bool {
        self.modified_after.is_some() || self.modified_before.is_some()
    }

    fn contains(&self, entry: &BlobEntry) -> bool {
        let Some(modified) = entry.last_modified else {
            return !self.windowed();
        };
        self.modified_after.is_none_or(|after| modified >= after)
            && self.modified_before.is_none_or(|before| modified < before)
    }
}

/// How far one run may go.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Stop between pages once this has passed.
    pub deadline: Option<Instant>,
    /// Resume the listing here (a marker an earlier run returned).
    pub resume_at: Option<String>,
}

/// What reconciling did with one blob version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlobAction {
    pub blob: String,
    pub etag: String,
    #[serde(rename = "taskId")]
    pub task_id: String,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// Submitted now (with `--dry-run`: would be submitted).
    Submitted,
    /// Its task was already there.
    Duplicate,
    /// The submission failed; `transient` ones are worth another run.
    Failed { transient: bool, reason: String },
}

/// The counts of a run, as `--json` prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Blobs listed in the scope.
    pub listed: u64,
    pub submitted: u64,
    pub duplicate: u64,
    /// Blobs the filter does not act on (folder markers, outside `INPUT_PREFIX`/`INPUT_SUFFIX`).
    pub ignored: u64,
    pub failed: u64,
}

/// What a run ends with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub counts: Counts,
    /// Blobs whose result is current: nothing to do.
    pub current: u64,
    /// `Some(marker)` when the run stopped at its deadline: where the next one resumes.
    pub resume_at: Option<String>,
}

/// A listing failed after the retries: the run stops there (what it submitted stays submitted,
/// and a later run picks up from the start or from the marker it was given).
#[derive(Debug, thiserror::Error)]
#[error("cannot list the {container} container")]
pub struct ReconcileError {
    container: &'static str,
    #[source]
    source: BlobError,
}

/// Whether a run submits, or only says what it would submit.
#[derive(Clone, Copy)]
pub enum Mode<'a> {
    Submit,
    /// Submits nothing; tells a version that has a task from one that has none with `lookup`.
    DryRun(&'a dyn TaskLookup),
}

/// Everything a run needs; cheap to build per run.
pub struct Reconciler {
    pub filter: EventFilter,
    pub planner: Planner,
    pub runner: Arc<dyn TaskRunner>,
    pub input: ContainerClient,
    pub output: ContainerClient,
}

impl Reconciler {
    /// Reconciles `scope`; `on_action` hears of every blob version submitted, found duplicate,
    /// or failed, as it happens.
    pub async fn run(
        &self,
        scope: &Scope,
        mode: Mode<'_>,
        limits: &Limits,
        mut on_action: impl FnMut(&BlobAction),
    ) -> Result<Summary, ReconcileError> {
        let mut listed_results = if scope.windowed() {
            None
        } else {
            Some(self.list_results(scope.prefix.as_deref()).await?)
        };
        let mut summary = Summary::default();
        let mut marker = limits.resume_at.clone();
        loop {
            let page = self
                .input
                .list_page(&ListOptions {
                    prefix: scope.prefix.as_deref(),
                    marker: marker.clone(),
                    metadata: false,
                })
                .await
                .map_err(|source| ReconcileError {
                    container: "input",
                    source,
                })?;
            let now = OffsetDateTime::now_utc();
            let mut candidates: Vec<(BlobEntry, Submission)> = Vec::new();
            for entry in page.entries {
                if !scope.contains(&entry) {
                    continue;
                }
                summary.counts.listed += 1;
                if self.filter.accepts_name(&entry.name).is_err() {
                    summary.counts.ignored += 1;
                    continue;
                }
                let submission = self.planner.plan_listed(
                    self.filter.input_container(),
                    &entry.name,
                    &entry.etag,
                    now,
                );
                candidates.push((entry, submission));
            }
            if listed_results.is_none() && candidates.len() > PROBE_LIMIT {
                listed_results = Some(self.list_results(scope.prefix.as_deref()).await?);
            }
            let current = match &listed_results {
                Some(results) => candidates
                    .iter()
                    .map(|(entry, submission)| is_current(results, entry, submission))
                    .collect(),
                None => self.probe_results(&candidates).await,
            };
            let mut todo = Vec::new();
            for (candidate, current) in candidates.into_iter().zip(current) {
                if current {
                    summary.current += 1;
                } else {
                    todo.push(candidate);
                }
            }
            self.act(&todo, mode, &mut summary.counts, &mut on_action)
                .await;
            marker = page.next_marker;
            match &marker {
                None => return Ok(summary),
                Some(next) if limits.deadline.is_some_and(|d| Instant::now() >= d) => {
                    summary.resume_at = Some(next.clone());
                    return Ok(summary);
                }
                Some(_) => {}
            }
        }
    }

    async fn act(
        &self,
        todo: &[(BlobEntry, Submission)],
        mode: Mode<'_>,
        counts: &mut Counts,
        on_action: &mut impl FnMut(&BlobAction),
    ) {
        if todo.is_empty() {
            return;
        }
        let submissions: Vec<Submission> = todo.iter().map(|(_, s)| s.clone()).collect();
        let actions: Vec<Action> = if let Mode::DryRun(lookup) = mode {
            lookup
                .lookup(&submissions)
                .await
                .into_iter()
                .map(|found| match found {
                    Ok(Some(_)) => Action::Duplicate,
                    Ok(None) => Action::Submitted,
                    Err(e) => Action::Failed {
                        transient: true,
                        reason: crate::error_chain::error_chain(&e),
                    },
                })
                .collect()
        } else {
            self.runner
                .submit(&submissions)
                .await
                .into_iter()
                .map(|result| match result {
                    Ok(Accepted::Submitted) => Action::Submitted,
                    Ok(Accepted::Duplicate) => Action::Duplicate,
                    Err(e) => Action::Failed {
                        transient: e.is_transient(),
                        reason: e.reason(),
                    },
                })
                .collect()
        };
        // A runner owes one result per item; a missing one is a failure, never a success.
        let mut actions = actions.into_iter();
        for (entry, submission) in todo {
            let action = actions.next().unwrap_or(Action::Failed {
                transient: true,
                reason: "the runner returned no result for this task".into(),
            });
            match &action {
                Action::Submitted => counts.submitted += 1,
                Action::Duplicate => counts.duplicate += 1,
                Action::Failed { .. } => counts.failed += 1,
            }
            on_action(&BlobAction {
                blob: entry.name.clone(),
                etag: entry.etag.clone(),
                task_id: submission.id().to_string(),
                action,
            });
        }
    }

    /// Every result blob under `prefix` (and under `long-names/`), with the version it records.
    async fn list_results(
        &self,
        prefix: Option<&str>,
    ) -> Result<HashMap<String, String>, ReconcileError> {
        let mut results = HashMap::new();
        let prefixes = match prefix {
            Some(p) if !p.is_empty() && !LONG_NAMES_PREFIX.starts_with(p) => {
                vec![Some(p), Some(LONG_NAMES_PREFIX)]
            }
            other => vec![other],
        };
        for prefix in prefixes {
            let mut marker = None;
            loop {
                let page = self
                    .output
                    .list_page(&ListOptions {
                        prefix,
                        marker,
                        metadata: true,
                    })
                    .await
                    .map_err(|source| ReconcileError {
                        container: "output",
                        source,
                    })?;
                for entry in page.entries {
                    if let Some(etag) = entry.metadata.get(SOURCE_ETAG_METADATA) {
                        results.insert(entry.name, etag.clone());
                    }
                }
                marker = page.next_marker;
                if marker.is_none() {
                    break;
                }
            }
        }
        Ok(results)
    }

    /// Whether each candidate's result is current, from the result blobs' properties. A result
    /// that cannot be read counts as not current: the submission that follows is idempotent.
    async fn probe_results(&self, candidates: &[(BlobEntry, Submission)]) -> Vec<bool> {
        let probes: Vec<_> = candidates
            .iter()
            .map(|(entry, submission)| async move {
                let Some(name) = submission.task().and_then(result_blob_name) else {
                    return false;
                };
                match self.output.properties(name).await {
                    Ok(Some(result)) => {
                        result.metadata.get(SOURCE_ETAG_METADATA) == Some(&entry.etag)
                    }
                    Ok(None) => false,
                    Err(e) => {
                        tracing::warn!(
                            result = name,
                            error = %crate::error_chain::error_chain(&e),
                            "cannot read a result's properties; treating it as missing"
                        );
                        false
                    }
                }
            })
            .collect();
        futures_util::stream::iter(probes)
            .buffered(PROBES_IN_FLIGHT)
            .collect()
            .await
    }
}

fn is_current(
    results: &HashMap<String, String>,
    entry: &BlobEntry,
    submission: &Submission,
) -> bool {
    submission
        .task()
        .and_then(result_blob_name)
        .and_then(|name| results.get(name))
        .is_some_and(|etag| *etag == entry.etag)
}
