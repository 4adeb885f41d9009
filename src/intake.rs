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

use crate::event::Event;
use crate::filter::{EventFilter, Verdict};
use crate::plan::Planner;
use crate::runner::{Accepted, Submission, SubmitError, TaskRunner};

/// Shared by every request.
pub struct Intake {
    filter: EventFilter,
    planner: Planner,
    runner: Arc<dyn TaskRunner>,
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

/// How the delivery as a whole should be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
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
    pub fn disposition(&self) -> Disposition {
        let mut worst = Disposition::Handled;
        for e in &self.events {
            let d = match &e.outcome {
                Outcome::Failed {
                    transient: true, ..
                } => Disposition::Retry,
                Outcome::Failed { .. } => Disposition::Failed,
                Outcome::Rejected { .. } => Disposition::Rejected,
                _ => Disposition::Handled,
            };
            worst = worst.max_by_rank(d);
        }
        worst
    }

    /// One human-readable line per event, for the Functions invocation log.
    pub fn log_lines(&self) -> Vec<String> {
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
    fn rank(self) -> u8 {
        match self {
            Disposition::Handled => 0,
            Disposition::Rejected => 1,
            Disposition::Failed => 2,
            Disposition::Retry => 3,
        }
    }

    fn max_by_rank(self, other: Disposition) -> Disposition {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

impl Intake {
    pub fn new(filter: EventFilter, planner: Planner, runner: Arc<dyn TaskRunner>) -> Intake {
        Intake {
            filter,
            planner,
            runner,
        }
    }

    /// Handles the events of one delivery; the ones we act on are submitted in one call, so a
    /// batched delivery becomes one Add Task Collection.
    pub async fn handle(&self, events: Vec<Event>) -> DeliveryReport {
        let started = Instant::now();
        let now = OffsetDateTime::now_utc();
        let mut reports = Vec::with_capacity(events.len());
        let mut submissions: Vec<Submission> = Vec::new();
        let mut submitted_at: Vec<usize> = Vec::new();
        for event in &events {
            match self.filter.classify(event) {
                Verdict::Act(blob) => {
                    let submission = self.planner.plan(&blob, now);
                    submitted_at.push(reports.len());
                    reports.push(EventReport {
                        id: event.id.clone(),
                        blob: Some(format!("{}/{}", blob.container, blob.blob)),
                        outcome: Outcome::Submitted {
                            task_id: submission.id().to_owned(),
                        },
                    });
                    submissions.push(submission);
                }
                Verdict::Ignore(reason) => reports.push(EventReport {
                    id: event.id.clone(),
                    blob: event.subject.clone(),
                    outcome: Outcome::Ignored {
                        reason: reason.to_string(),
                    },
                }),
                Verdict::Reject(reason) => reports.push(EventReport {
                    id: event.id.clone(),
                    blob: event.subject.clone(),
                    outcome: Outcome::Rejected {
                        reason: reason.to_string(),
                    },
                }),
            }
        }

        if !submissions.is_empty() {
            let span = tracing::info_span!("submit", tasks = submissions.len());
            let results = self.runner.submit(&submissions).instrument(span).await;
            for (index, result) in submitted_at.into_iter().zip(results) {
                let report = &mut reports[index];
                let task_id = match &report.outcome {
                    Outcome::Submitted { task_id } => task_id.clone(),
                    _ => unreachable!("only submitted reports are updated"),
                };
                report.outcome = match result {
                    Ok(Accepted::Submitted) => Outcome::Submitted { task_id },
                    Ok(Accepted::Duplicate) => Outcome::Duplicate { task_id },
                    Err(SubmitError::Transient(reason)) => Outcome::Failed {
                        task_id,
                        transient: true,
                        reason,
                    },
                    Err(error @ SubmitError::Rejected { .. }) => Outcome::Failed {
                        task_id,
                        transient: false,
                        reason: error.to_string(),
                    },
                };
            }
        }

        let latency_ms = started.elapsed().as_millis() as u64;
        for report in &reports {
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
        DeliveryReport { events: reports }
    }
}
