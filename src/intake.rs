//! What happens to the events of one delivery: classify each, plan the ones we act on, submit
//! them together, and report an outcome per event.
//!
//! Both entry points (the Functions host's invocation and the direct webhook) end here, so they
//! cannot disagree about what an event means.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::context::{Context, DelegatedReads};
use crate::event::Event;
use crate::filter::{EventFilter, Verdict, clip};
use crate::per_item::PerItem;
use crate::plan::{Plan, Planner, ReadSigner};
use crate::runner::{Accepted, Submission, SubmitResult, TaskRunner, submit_each};

/// A blob subject is its prefix and a name of at most 1,024 characters; what is longer is an
/// event's own invention and is not repeated in full.
const MAX_SUBJECT_CHARS: usize = 1100;

/// Shared by every request.
pub struct Intake {
    filter: EventFilter,
    planner: Planner,
    runner: Arc<dyn TaskRunner>,
    /// Signs the input URLs of tasks that read their input themselves, without a key.
    reads: Option<DelegatedReads>,
}

/// What became of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    Submitted {
        #[serde(rename = "taskId")]
        task_id: String,
    },
    Duplicate {
        #[serde(rename = "taskId")]
        task_id: String,
    },
    Ignored {
        reason: String,
    },
    Rejected {
        reason: String,
    },
    Failed {
        #[serde(rename = "taskId")]
        task_id: String,
        transient: bool,
        reason: String,
    },
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Submitted { .. } => "submitted",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::Ignored { .. } => "ignored",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Failed { .. } => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventReport {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub events: Vec<EventReport>,
}

/// How the delivery as a whole should be answered, from best to worst: the worst outcome of its
/// events decides (the order of the variants is that ranking).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Disposition {
    /// Every event was submitted, a duplicate, or deliberately ignored.
    Handled,
    /// Some event can never be handled (malformed, foreign): dead-letter material.
    Rejected,
    /// Batch refused a task for a reason retrying now will not fix (credentials, a completed
    /// job); a redelivery later may succeed once an operator fixes it.
    Failed,
    /// A transient failure: Event Grid should redeliver.
    Retry,
}

impl DeliveryReport {
    /// The worst outcome decides, and a retry beats the rest: a redelivery is harmless
    /// (submission is idempotent) while a dead-letter would drop the good events with the bad.
    pub(crate) fn disposition(&self) -> Disposition {
        self.events
            .iter()
            .map(|e| match &e.outcome {
                Outcome::Failed {
                    transient: true, ..
                } => Disposition::Retry,
                Outcome::Failed { .. } => Disposition::Failed,
                Outcome::Rejected { .. } => Disposition::Rejected,
                _ => Disposition::Handled,
            })
            .max()
            .unwrap_or(Disposition::Handled)
    }

    /// One human-readable line per event, for the Functions invocation log.
    pub(crate) fn log_lines(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| {
                let blob = e.blob.as_deref().unwrap_or("-");
                match &e.outcome {
                    Outcome::Submitted { task_id } => {
                        format!("event {}: submitted task {task_id} for {blob}", e.id)
                    }
                    Outcome::Duplicate { task_id } => format!(
                        "event {}: task {task_id} for {blob} already exists (redelivery)",
                        e.id
                    ),
                    Outcome::Ignored { reason } => format!("event {}: ignored: {reason}", e.id),
                    Outcome::Rejected { reason } => format!("event {}: rejected: {reason}", e.id),
                    Outcome::Failed {
                        task_id, reason, ..
                    } => format!("event {}: task {task_id} failed: {reason}", e.id),
                }
            })
            .collect()
    }
}

impl Disposition {
    /// The HTTP answer, the same for the Functions host and for Event Grid: 200 success; 400 is
    /// dead-lettered at once by a direct subscription; 500 and 503 are retried.
    pub fn status(self) -> http::StatusCode {
        match self {
            Disposition::Handled => http::StatusCode::OK,
            Disposition::Rejected => http::StatusCode::BAD_REQUEST,
            Disposition::Failed => http::StatusCode::INTERNAL_SERVER_ERROR,
            Disposition::Retry => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl Intake {
    /// The intake of `context`, submitting through its runner.
    pub fn new(context: &Context) -> Intake {
        Intake::with_runner(context, context.runner().clone())
    }

    /// The intake of `context`, submitting through `runner` (a dry run's, for one).
    pub fn with_runner(context: &Context, runner: Arc<dyn TaskRunner>) -> Intake {
        Intake {
            reads: context.delegated_reads().cloned(),
            ..Intake::from_parts(context.filter().clone(), context.planner().clone(), runner)
        }
    }

    pub(crate) fn from_parts(
        filter: EventFilter,
        planner: Planner,
        runner: Arc<dyn TaskRunner>,
    ) -> Intake {
        Intake {
            filter,
            planner,
            runner,
            reads: None,
        }
    }

    /// Handles the events of one delivery; the ones we act on are submitted in one call, so a
    /// batched delivery becomes one Add Task Collection.
    pub async fn handle(&self, events: Vec<Event>) -> DeliveryReport {
        let started = Instant::now();
        let now = OffsetDateTime::now_utc();
        let mut outcomes = PerItem::new(events.len());
        let mut blobs = Vec::with_capacity(events.len());
        // The events acted on: where each one's report goes, and its work.
        let mut at = Vec::new();
        let mut submissions = Vec::new();
        let verdicts: Vec<Verdict> = events.iter().map(|e| self.filter.classify(e)).collect();
        let signer = match &self.reads {
            Some(reads) if verdicts.iter().any(|v| matches!(v, Verdict::Act(_))) => {
                Some(reads.signer().await)
            }
            _ => None,
        };
        for (index, (event, verdict)) in events.iter().zip(verdicts).enumerate() {
            let (blob, decision) = self.decide(event, verdict, now, signer.as_deref());
            blobs.push(blob);
            match decision {
                Decision::Submit(submission) => {
                    at.push(index);
                    submissions.push(*submission);
                }
                Decision::Settled(outcome) => outcomes.set(index, outcome),
            }
        }
        if !submissions.is_empty() {
            let span = tracing::info_span!("submit", tasks = submissions.len());
            let results = submit_each(self.runner.as_ref(), &submissions)
                .instrument(span)
                .await;
            for ((index, submission), result) in at.into_iter().zip(&submissions).zip(results) {
                outcomes.set(index, outcome_of(submission, result));
            }
        }
        let outcomes = outcomes.finish(|| Outcome::Failed {
            task_id: String::new(),
            transient: true,
            reason: "the event was neither settled nor submitted".into(),
        });
        let reports = events
            .into_iter()
            .zip(blobs)
            .zip(outcomes)
            .map(|((event, blob), outcome)| EventReport {
                id: event.id,
                blob,
                outcome,
            })
            .collect();
        let report = DeliveryReport { events: reports };
        report.log(started.elapsed().as_millis() as u64);
        report
    }
}

/// What the intake does with one event.
enum Decision {
    Submit(Box<Submission>),
    /// Nothing to submit: ignored, rejected, or not plannable now.
    Settled(Outcome),
}

impl Intake {
    /// The blob an event's report names, and what becomes of the event.
    fn decide(
        &self,
        event: &Event,
        verdict: Verdict,
        now: OffsetDateTime,
        signer: Option<&dyn ReadSigner>,
    ) -> (Option<String>, Decision) {
        let blob = match verdict {
            Verdict::Act(blob) => blob,
            Verdict::Ignore(reason) => {
                let outcome = Outcome::Ignored {
                    reason: reason.to_string(),
                };
                return (subject_of(event), Decision::Settled(outcome));
            }
            Verdict::Reject(reason) => {
                let outcome = Outcome::Rejected {
                    reason: reason.to_string(),
                };
                return (subject_of(event), Decision::Settled(outcome));
            }
        };
        let decision = match self.planner.plan(&blob, now, signer) {
            Ok(Plan::Run(planned)) => Decision::Submit(Box::new(planned.submission)),
            Ok(Plan::Ignored(reason)) => Decision::Settled(Outcome::Ignored { reason }),
            Err(error) => Decision::Settled(Outcome::Failed {
                task_id: String::new(),
                transient: true,
                reason: error.to_string(),
            }),
        };
        (Some(format!("{}/{}", blob.container, blob.blob)), decision)
    }
}

/// The event's subject, as far as a report repeats it.
fn subject_of(event: &Event) -> Option<String> {
    event.subject.as_deref().map(|s| clip(s, MAX_SUBJECT_CHARS))
}

fn outcome_of(submission: &Submission, result: SubmitResult) -> Outcome {
    let task_id = submission.id().to_owned();
    match result {
        Ok(Accepted::Submitted) => Outcome::Submitted { task_id },
        Ok(Accepted::Duplicate) => Outcome::Duplicate { task_id },
        Err(error) => Outcome::Failed {
            task_id,
            transient: error.is_transient(),
            reason: error.reason(),
        },
    }
}

impl DeliveryReport {
    /// One log line per event: problems at `warn`, the rest at `info`.
    fn log(&self, latency_ms: u64) {
        for report in &self.events {
            let (task_id, reason) = match &report.outcome {
                Outcome::Submitted { task_id } | Outcome::Duplicate { task_id } => {
                    (Some(task_id.as_str()), None)
                }
                Outcome::Ignored { reason } | Outcome::Rejected { reason } => {
                    (None, Some(reason.as_str()))
                }
                Outcome::Failed {
                    task_id, reason, ..
                } => (Some(task_id.as_str()), Some(reason.as_str())),
            };
            let outcome = report.outcome.label();
            let blob = report.blob.as_deref().unwrap_or("");
            match &report.outcome {
                Outcome::Failed { .. } | Outcome::Rejected { .. } => tracing::warn!(
                    event_id = %report.id, blob, task_id, outcome, reason, latency_ms,
                    "event not handled"
                ),
                _ => tracing::info!(
                    event_id = %report.id, blob, task_id, outcome, reason, latency_ms,
                    "event handled"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;
    use crate::runner::{BoxFuture, SubmitResult};
    use serde_json::json;

    /// Accepts the first item only and forgets the rest, as a faulty runner might.
    struct ShortRunner;

    impl TaskRunner for ShortRunner {
        fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
            let results = items
                .iter()
                .take(1)
                .map(|_| Ok(Accepted::Submitted))
                .collect();
            Box::pin(async move { results })
        }
    }

    fn intake(runner: Arc<dyn TaskRunner>) -> Intake {
        let settings = crate::config::Settings::from_lookup(|name| match name {
            "STORAGE_ACCOUNT_URL" => Some("https://acct.blob.core.windows.net".into()),
            "BATCH_ACCOUNT_URL" => Some("https://b.westeurope.batch.azure.com".into()),
            "WORDCOUNT_IMAGE" => Some("example.azurecr.io/wordcount:1".into()),
            "BATCH_NODE_IDENTITY" => Some("/subscriptions/s/uami".into()),
            _ => None,
        })
        .unwrap();
        Intake::from_parts(
            EventFilter::from_settings(&settings),
            Planner::from_settings(&settings),
            runner,
        )
    }

    fn event(id: &str, name: &str) -> Event {
        parse_event(json!({
            "id": id, "eventType": "Microsoft.Storage.BlobCreated",
            "subject": format!("/blobServices/default/containers/input/blobs/{name}"),
            "data": {"api": "PutBlob", "eTag": "0x1", "url": format!("https://acct.blob.core.windows.net/input/{name}")}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn events_a_runner_leaves_without_a_result_ask_for_a_redelivery() {
        let report = intake(Arc::new(ShortRunner))
            .handle(vec![event("e-1", "a"), event("e-2", "b")])
            .await;
        assert!(matches!(
            report.events[0].outcome,
            Outcome::Submitted { .. }
        ));
        match &report.events[1].outcome {
            Outcome::Failed {
                transient, reason, ..
            } => {
                assert!(*transient);
                assert!(reason.contains("no result"), "{reason}");
            }
            other => panic!("expected a transient failure, got {other:?}"),
        }
        assert_eq!(report.disposition(), Disposition::Retry);
    }

    #[test]
    fn the_worst_outcome_decides_and_a_retry_beats_the_rest() {
        let report = |outcomes: Vec<Outcome>| DeliveryReport {
            events: outcomes
                .into_iter()
                .map(|outcome| EventReport {
                    id: "e".into(),
                    blob: None,
                    outcome,
                })
                .collect(),
        };
        let ignored = || Outcome::Ignored { reason: "r".into() };
        let rejected = || Outcome::Rejected { reason: "r".into() };
        let failed = |transient| Outcome::Failed {
            task_id: "t".into(),
            transient,
            reason: "r".into(),
        };
        assert_eq!(report(vec![]).disposition(), Disposition::Handled);
        assert_eq!(report(vec![ignored()]).disposition(), Disposition::Handled);
        assert_eq!(
            report(vec![ignored(), rejected()]).disposition(),
            Disposition::Rejected
        );
        assert_eq!(
            report(vec![rejected(), failed(false)]).disposition(),
            Disposition::Failed
        );
        assert_eq!(
            report(vec![failed(true), rejected(), failed(false)]).disposition(),
            Disposition::Retry
        );
    }
}
