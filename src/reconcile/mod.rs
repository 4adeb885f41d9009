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
//! Whether results are current is read (see [`crate::results`]) one of two ways: a run over
//! everything lists the output container once (5,000 results per call); a windowed run
//! (`--since`, the timer) reads the properties of the few results its window concerns, and lists
//! the output container instead once a page brings more than [`PROBE_LIMIT`] candidates, so a
//! run never costs more than the cheaper of the two. A run may stop at a deadline between pages
//! and say where to resume (the listing's continuation marker). A dry run is the same run with
//! the context's dry runner.

pub(crate) mod cursor;
pub(crate) mod scheduled;

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::context::Context;
use crate::context::DelegatedReads;
use crate::error_chain::error_chain;
use crate::filter::EventFilter;
use crate::plan::{Plan, Planned, Planner, ReadSigner};
use crate::results::{Listing, Results, ResultsError};
use crate::runner::{
    Accepted, Submission, SubmitResult, TaskLookup, TaskRemover, TaskRunner, TaskState,
    lookup_each, submit_each,
};
use crate::storage::blob::{BlobEntry, ListOptions};
use crate::storage::{BlobError, ContainerClient};

/// A page with more candidates than this has their results found by listing the output container
/// (5,000 a call) rather than by reading each one's properties.
const PROBE_LIMIT: usize = 200;

/// What one run looks at.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scope {
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

/// Where a run stops and starts: a run may stop between pages once its deadline has passed,
/// and say where the next one resumes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Resume {
    /// Stop between pages once this has passed.
    pub deadline: Option<Instant>,
    /// Resume the listing here (a marker an earlier run returned).
    pub at: Option<String>,
}

/// What reconciling did with one blob version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct BlobAction {
    pub blob: String,
    pub etag: String,
    #[serde(rename = "taskId")]
    pub task_id: String,
    /// The workload that took the blob (none when it could not be planned).
    pub workload: Option<String>,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub(crate) enum Action {
    /// Submitted now (in a dry run: would be submitted).
    Submitted,
    /// Its task was already there.
    Duplicate,
    /// Its task (or split job) had failed: removed, then submitted again (in a dry run: would
    /// be).
    Retried,
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
    /// Blobs the filter does not act on (folder markers, outside `INPUT_PREFIX`/`INPUT_SUFFIX`),
    /// that no workload takes, or that an ignore rule takes.
    pub ignored: u64,
    pub failed: u64,
    /// Failed versions submitted again (`--retry-failed`; left out when none).
    #[serde(skip_serializing_if = "is_zero")]
    pub retried: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a run ends with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub counts: Counts,
    /// Blobs whose result is current: nothing to do.
    pub current: u64,
    /// `Some(marker)` when the run stopped at its deadline: where the next one resumes.
    pub resume_at: Option<String>,
}

/// A listing failed after the retries: the run stops there (what it submitted stays submitted,
/// and a later run picks up from the start or from the marker it was given).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("cannot list the input container")]
    Input(#[source] BlobError),
    #[error(transparent)]
    Output(#[from] ResultsError),
}

/// Everything a run needs; cheap to build per run.
pub(crate) struct Reconciler {
    filter: EventFilter,
    planner: Planner,
    /// Signs the input URLs of tasks that read their input themselves, without a key.
    reads: Option<DelegatedReads>,
    runner: Arc<dyn TaskRunner>,
    input: ContainerClient,
    results: Results,
    /// With `--retry-failed`: how failed versions are found and removed.
    retry: Option<RetryFailed>,
}

/// What `--retry-failed` needs: the tasks' states, and what removes a failed one (none in a dry
/// run, which only says what it would retry).
pub(crate) struct RetryFailed {
    pub lookup: Arc<dyn TaskLookup>,
    pub remover: Option<Arc<dyn TaskRemover>>,
}

/// What becomes of a version that has no current result, before it is submitted.
enum Before {
    /// Submitted as it is (a version with a task gets a duplicate).
    Submit,
    /// Its task had failed and is gone now: submitted again.
    Resubmit,
    /// Its task had failed; a dry run stops here.
    WouldRetry,
    /// Its failed task could not be removed.
    Stuck(String),
}

impl Reconciler {
    /// A reconciler submitting through `runner` (the context's own, or a dry run's).
    pub fn new(context: &Context, runner: Arc<dyn TaskRunner>) -> Result<Reconciler, BlobError> {
        let settings = context.settings();
        Ok(Reconciler {
            filter: context.filter().clone(),
            planner: context.planner().clone(),
            reads: context.delegated_reads().cloned(),
            runner,
            input: context.containers().get(&settings.input_container)?,
            results: Results::new(context.containers().get(&settings.output_container)?),
            retry: None,
        })
    }

    /// Versions whose task (or split job) failed are removed and submitted again.
    pub(crate) fn retrying_failed(self, retry: RetryFailed) -> Reconciler {
        Reconciler {
            retry: Some(retry),
            ..self
        }
    }

    /// Reconciles `scope`; `on_action` hears of every blob version submitted, found duplicate,
    /// or failed, as it happens.
    pub async fn run(
        &self,
        scope: &Scope,
        resume: &Resume,
        mut on_action: impl FnMut(&BlobAction),
    ) -> Result<Summary, ReconcileError> {
        let mut listing = if scope.windowed() {
            None
        } else {
            Some(self.results.list(scope.prefix.as_deref()).await?)
        };
        let mut summary = Summary::default();
        let mut marker = resume.at.clone();
        loop {
            let page = self
                .input
                .list_page(&ListOptions {
                    prefix: scope.prefix.as_deref(),
                    marker: marker.clone(),
                    metadata: false,
                })
                .await
                .map_err(ReconcileError::Input)?;
            let signer = match &self.reads {
                Some(reads) => Some(reads.signer().await),
                None => None,
            };
            let (candidates, unplanned) =
                self.candidates(scope, page.entries, signer.as_deref(), &mut summary.counts);
            for action in &unplanned {
                summary.counts.failed += 1;
                on_action(action);
            }
            if listing.is_none() && candidates.len() > PROBE_LIMIT {
                listing = Some(self.results.list(scope.prefix.as_deref()).await?);
            }
            let current = self.current(&candidates, listing.as_ref()).await;
            let mut todo = Vec::new();
            for (candidate, current) in candidates.into_iter().zip(current) {
                if current {
                    summary.current += 1;
                } else {
                    todo.push(candidate);
                }
            }
            self.act(&todo, &mut summary.counts, &mut on_action).await;
            marker = page.next_marker;
            match &marker {
                None => return Ok(summary),
                Some(next) if resume.deadline.is_some_and(|d| Instant::now() >= d) => {
                    summary.resume_at = Some(next.clone());
                    return Ok(summary);
                }
                Some(_) => {}
            }
        }
    }

    /// The blobs of a page that are in scope, that the filter acts on and a workload takes,
    /// planned as their events would be; and the ones that could not be planned, as failures.
    fn candidates(
        &self,
        scope: &Scope,
        entries: Vec<BlobEntry>,
        signer: Option<&dyn ReadSigner>,
        counts: &mut Counts,
    ) -> (Vec<Planned>, Vec<BlobAction>) {
        let now = OffsetDateTime::now_utc();
        let mut candidates = Vec::new();
        let mut failed = Vec::new();
        for entry in entries {
            if !scope.contains(&entry) {
                continue;
            }
            counts.listed += 1;
            if self.filter.accepts_name(&entry.name).is_err() {
                counts.ignored += 1;
                continue;
            }
            let container = self.filter.input_container();
            match self.planner.plan_listed(container, &entry, now, signer) {
                Ok(Plan::Run(planned)) => candidates.push(*planned),
                Ok(Plan::Ignored(_)) => counts.ignored += 1,
                Err(error) => failed.push(BlobAction {
                    blob: entry.name,
                    etag: entry.etag,
                    task_id: String::new(),
                    workload: None,
                    action: Action::Failed {
                        transient: true,
                        reason: error.to_string(),
                    },
                }),
            }
        }
        (candidates, failed)
    }

    /// Whether each candidate's result is current: from the listing when there is one, else
    /// read blob by blob. A result that cannot be read counts as not current: the submission
    /// that follows is idempotent, so the worst case is a duplicate.
    async fn current(&self, candidates: &[Planned], listing: Option<&Listing>) -> Vec<bool> {
        if let Some(listing) = listing {
            return candidates
                .iter()
                .map(|c| listing.find(&c.names, &c.etag).current)
                .collect();
        }
        let versions: Vec<_> = candidates
            .iter()
            .map(|c| (&c.names, c.etag.as_str()))
            .collect();
        let found = self.results.probe(&versions, false).await;
        candidates
            .iter()
            .zip(found)
            .map(|(candidate, found)| match found {
                Ok(found) => found.current,
                Err(e) => {
                    tracing::warn!(
                        result = %candidate.names.result,
                        error = %error_chain(&e),
                        "cannot read a result's properties; treating it as missing"
                    );
                    false
                }
            })
            .collect()
    }

    /// With `--retry-failed`, the versions whose task failed: removed (unless this is a dry
    /// run) so that they can be submitted again. A state that cannot be read counts as not
    /// failed: the submission that follows is a duplicate at worst.
    async fn before_submitting(&self, todo: &[Planned]) -> Vec<Before> {
        let Some(retry) = &self.retry else {
            return todo.iter().map(|_| Before::Submit).collect();
        };
        let items: Vec<Submission> = todo.iter().map(|p| p.submission.clone()).collect();
        let states = lookup_each(retry.lookup.as_ref(), &items).await;
        let mut before = Vec::with_capacity(todo.len());
        for (item, state) in items.iter().zip(states) {
            let failed = matches!(state, Ok(Some(ref s)) if s.state == TaskState::Failed);
            before.push(match (failed, &retry.remover) {
                (false, _) => Before::Submit,
                (true, None) => Before::WouldRetry,
                (true, Some(remover)) => match remover.remove(item).await {
                    Ok(()) => Before::Resubmit,
                    Err(e) => Before::Stuck(error_chain(&e)),
                },
            });
        }
        before
    }

    async fn act(
        &self,
        todo: &[Planned],
        counts: &mut Counts,
        on_action: &mut impl FnMut(&BlobAction),
    ) {
        if todo.is_empty() {
            return;
        }
        let before = self.before_submitting(todo).await;
        let at: Vec<usize> = (0..todo.len())
            .filter(|&i| matches!(before[i], Before::Submit | Before::Resubmit))
            .collect();
        let submissions: Vec<Submission> = at.iter().map(|&i| todo[i].submission.clone()).collect();
        let mut results: Vec<Option<SubmitResult>> = todo.iter().map(|_| None).collect();
        for (i, result) in at
            .into_iter()
            .zip(submit_each(self.runner.as_ref(), &submissions).await)
        {
            results[i] = Some(result);
        }
        for ((planned, before), result) in todo.iter().zip(before).zip(results) {
            let action = match (before, result) {
                (Before::Stuck(reason), _) => Action::Failed {
                    transient: true,
                    reason,
                },
                (Before::WouldRetry, _) | (Before::Resubmit, Some(Ok(Accepted::Submitted))) => {
                    Action::Retried
                }
                (_, Some(Ok(Accepted::Submitted))) => Action::Submitted,
                (_, Some(Ok(Accepted::Duplicate))) => Action::Duplicate,
                (_, Some(Err(e))) => Action::Failed {
                    transient: e.is_transient(),
                    reason: e.reason(),
                },
                (_, None) => Action::Failed {
                    transient: true,
                    reason: "the runner returned no result for this task".into(),
                },
            };
            match &action {
                Action::Submitted => counts.submitted += 1,
                Action::Retried => counts.retried += 1,
                Action::Duplicate => counts.duplicate += 1,
                Action::Failed { .. } => counts.failed += 1,
            }
            on_action(&BlobAction {
                blob: planned.blob.clone(),
                etag: planned.etag.clone(),
                task_id: planned.submission.id().to_string(),
                workload: Some(planned.workload.clone()),
                action,
            });
        }
    }
}
