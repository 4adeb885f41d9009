//! `blob2batch redrive [--dry-run] [--json]`: passes Event Grid's dead-lettered events through
//! the intake again.
//!
//! Each dead-letter blob of `DEADLETTER_CONTAINER` (outside `redriven/` and `quarantine/`) is
//! shown event by event (blob, reason, attempts, last outcome), then handled exactly as a delivery
//! of its events would be. A blob whose events all settled (submitted, duplicate or ignored) moves
//! to `redriven/` under the same name; one holding an event that can never be handled (a foreign
//! account, a malformed event), or that is not a dead-letter blob at all, moves to `quarantine/`
//! with the reason in its metadata; one whose submission failed stays for the next run.

use std::io::Write;

use serde::Serialize;

use super::CommandError;
use super::console::{json_line, line};
use crate::context::Context;
use crate::deadletter::{
    DeadLetteredEvent, QUARANTINE_PREFIX, REDRIVEN_PREFIX, is_pending, read_dead_letter_blob,
};
use crate::error_chain::error_chain;
use crate::event::parse_blob_subject;
use crate::headers::header_safe;
use crate::intake::{EventReport, Intake, Outcome};
use crate::storage::blob::BlobHttpHeaders;
use crate::storage::{BlobError, ContainerClient};

/// The metadata name of a quarantined blob's reason.
pub(crate) const QUARANTINE_REASON_METADATA: &str = "quarantine_reason";

#[derive(Clone, Debug, Default)]
pub struct RedriveOptions {
    pub dry_run: bool,
    pub json: bool,
}

/// The counts `--json` ends with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RedriveCounts {
    /// Dead-letter blobs read.
    pub dead_lettered: u64,
    pub events: u64,
    pub submitted: u64,
    pub duplicate: u64,
    pub ignored: u64,
    pub rejected: u64,
    pub failed: u64,
}

/// The dead-letter container could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list the dead-letter container")]
struct ListFailed(#[source] BlobError);

#[derive(Debug, Default)]
struct RedriveReport {
    counts: RedriveCounts,
    /// What failed (a submission, a move), for stderr.
    problems: Vec<String>,
}

/// What becomes of a dead-letter blob.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fate {
    Redriven,
    Quarantined(String),
    /// Left for the next run: a submission failed.
    Stays,
}

/// One event as `redrive` shows it.
#[derive(Serialize)]
struct EventLine<'a> {
    #[serde(rename = "deadLetterBlob")]
    dead_letter_blob: &'a str,
    id: &'a str,
    blob: Option<String>,
    #[serde(rename = "deadLetterReason")]
    reason: Option<&'a str>,
    #[serde(rename = "deliveryAttempts")]
    attempts: Option<u64>,
    #[serde(rename = "lastDeliveryOutcome")]
    last_outcome: Option<&'a str>,
    #[serde(flatten)]
    outcome: &'a Outcome,
}

/// Runs it; what failed (a submission, a read, a move) is returned for stderr.
pub async fn run(
    context: &Context,
    options: &RedriveOptions,
    out: &mut impl Write,
) -> Result<Vec<String>, CommandError> {
    let container = context
        .containers()
        .get(&context.settings().deadletter_container)?;
    // A dry run goes through the same intake, with a runner that only looks tasks up.
    let runner = if options.dry_run {
        context.dry_runner()
    } else {
        context.runner().clone()
    };
    let intake = Intake::with_runner(context, runner);
    let names: Vec<String> = container
        .list(None)
        .await
        .map_err(|e| CommandError::runtime(ListFailed(e)))?
        .into_iter()
        .map(|entry| entry.name)
        .filter(|name| is_pending(name))
        .collect();
    let mut report = RedriveReport::default();
    for name in names {
        report.counts.dead_lettered += 1;
        redrive_blob(&container, &intake, &name, options, out, &mut report).await;
    }
    if options.json {
        json_line(out, &report.counts);
    } else {
        line(out, &summary_line(&report.counts, options.dry_run));
    }
    Ok(report.problems)
}

/// Reads one dead-letter blob, passes its events through the intake, and moves it where its
/// fate says (not in a dry run).
async fn redrive_blob(
    container: &ContainerClient,
    intake: &Intake,
    name: &str,
    options: &RedriveOptions,
    out: &mut impl Write,
    report: &mut RedriveReport,
) {
    let bytes = match container.read(name).await {
        Ok(bytes) => bytes,
        Err(e) => {
            report.problems.push(format!("{name}: {}", error_chain(&e)));
            return;
        }
    };
    let fate = match read_dead_letter_blob(&bytes) {
        Err(e) => {
            let reason = e.to_string();
            if options.json {
                json_line(
                    out,
                    &serde_json::json!({"deadLetterBlob": name, "unreadable": reason}),
                );
            } else {
                line(out, &format!("{name}: unreadable: {reason}"));
            }
            Fate::Quarantined(reason)
        }
        Ok(events) => {
            report.counts.events += events.len() as u64;
            let outcomes = intake
                .handle(events.iter().map(|d| d.event.clone()).collect())
                .await
                .events;
            show(out, options.json, name, &events, &outcomes);
            fate_of(&outcomes, report)
        }
    };
    if options.dry_run {
        return;
    }
    match settle(container, name, &bytes, &fate).await {
        Err(e) => report
            .problems
            .push(format!("{name}: cannot move it: {}", error_chain(&e))),
        Ok(()) if options.json => {}
        Ok(()) => line(
            out,
            &match &fate {
                Fate::Redriven => format!("{name}: moved to {REDRIVEN_PREFIX}"),
                Fate::Quarantined(reason) => {
                    format!("{name}: moved to {QUARANTINE_PREFIX} ({reason})")
                }
                Fate::Stays => format!("{name}: stays for the next run"),
            },
        ),
    }
}

fn summary_line(c: &RedriveCounts, dry_run: bool) -> String {
    format!(
        "{}{} dead-letter blob(s), {} event(s): {} submitted, {} duplicate, {} ignored, \
         {} rejected, {} failed",
        if dry_run { "dry run: " } else { "" },
        c.dead_lettered,
        c.events,
        c.submitted,
        c.duplicate,
        c.ignored,
        c.rejected,
        c.failed
    )
}

fn show(
    out: &mut impl Write,
    json: bool,
    name: &str,
    events: &[DeadLetteredEvent],
    outcomes: &[EventReport],
) {
    for (dead, report) in events.iter().zip(outcomes) {
        let blob = dead
            .event
            .subject
            .as_deref()
            .and_then(parse_blob_subject)
            .map(|(container, blob)| format!("{container}/{blob}"));
        if json {
            json_line(
                out,
                &EventLine {
                    dead_letter_blob: name,
                    id: &dead.event.id,
                    blob,
                    reason: dead.facts.reason.as_deref(),
                    attempts: dead.facts.delivery_attempts,
                    last_outcome: dead.facts.last_outcome.as_deref(),
                    outcome: &report.outcome,
                },
            );
        } else {
            line(
                out,
                &format!(
                    "{name}: event {} for {} (dead-lettered: {}, {} attempts, last {}): {}",
                    dead.event.id,
                    blob.as_deref().unwrap_or("?"),
                    dead.facts.reason.as_deref().unwrap_or("reason not given"),
                    dead.facts
                        .delivery_attempts
                        .map_or("?".to_string(), |n| n.to_string()),
                    dead.facts.last_outcome.as_deref().unwrap_or("?"),
                    outcome_text(&report.outcome)
                ),
            );
        }
    }
}

fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Submitted { task_id } => format!("submitted task {task_id}"),
        Outcome::Duplicate { task_id } => format!("task {task_id} already there"),
        Outcome::Ignored { reason } => format!("ignored ({reason})"),
        Outcome::Rejected { reason } => format!("rejected ({reason})"),
        Outcome::Failed { reason, .. } => format!("failed ({reason})"),
    }
}

/// Counts the outcomes; a failure keeps the blob, else a rejection quarantines it.
fn fate_of(outcomes: &[EventReport], report: &mut RedriveReport) -> Fate {
    let mut rejected = None;
    let mut failed = false;
    for event in outcomes {
        let counts = &mut report.counts;
        match &event.outcome {
            Outcome::Submitted { .. } => counts.submitted += 1,
            Outcome::Duplicate { .. } => counts.duplicate += 1,
            Outcome::Ignored { .. } => counts.ignored += 1,
            Outcome::Rejected { reason } => {
                counts.rejected += 1;
                rejected.get_or_insert_with(|| format!("event {}: {reason}", event.id));
            }
            Outcome::Failed { reason, .. } => {
                counts.failed += 1;
                failed = true;
                report
                    .problems
                    .push(format!("event {}: {reason}", event.id));
            }
        }
    }
    match (failed, rejected) {
        (true, _) => Fate::Stays,
        (false, Some(reason)) => Fate::Quarantined(reason),
        (false, None) => Fate::Redriven,
    }
}

/// Moves the blob where its fate says: the copy is written first, so a crash in between leaves
/// the original for the next run, never nothing.
async fn settle(
    container: &ContainerClient,
    name: &str,
    bytes: &[u8],
    fate: &Fate,
) -> Result<(), BlobError> {
    let (target, headers) = match fate {
        Fate::Stays => return Ok(()),
        Fate::Redriven => (
            format!("{REDRIVEN_PREFIX}{name}"),
            BlobHttpHeaders::content_type("application/json"),
        ),
        Fate::Quarantined(reason) => {
            let mut headers = BlobHttpHeaders::content_type("application/json");
            headers
                .metadata
                .insert(QUARANTINE_REASON_METADATA.to_string(), header_safe(reason));
            (format!("{QUARANTINE_PREFIX}{name}"), headers)
        }
    };
    container
        .upload_bytes(&target, bytes.to_vec(), &headers)
        .await?;
    container.delete(name).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: Outcome) -> EventReport {
        EventReport {
            id: "e".into(),
            blob: None,
            outcome,
        }
    }

    #[test]
    fn a_failure_keeps_the_blob_and_a_rejection_quarantines_it() {
        let submitted = || {
            report(Outcome::Submitted {
                task_id: "t".into(),
            })
        };
        let rejected = || {
            report(Outcome::Rejected {
                reason: "foreign".into(),
            })
        };
        let failed = || {
            report(Outcome::Failed {
                task_id: "t".into(),
                transient: true,
                reason: "503".into(),
            })
        };
        let mut counts = RedriveReport::default();
        assert_eq!(fate_of(&[submitted()], &mut counts), Fate::Redriven);
        assert_eq!(
            fate_of(&[submitted(), rejected()], &mut counts),
            Fate::Quarantined("event e: foreign".into())
        );
        assert_eq!(fate_of(&[rejected(), failed()], &mut counts), Fate::Stays);
        assert_eq!(
            (
                counts.counts.submitted,
                counts.counts.rejected,
                counts.counts.failed
            ),
            (2, 2, 1)
        );
    }
}
