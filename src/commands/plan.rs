//! `blob2batch plan [--json] [--etag E] [--size N] [--content-type T] NAME` and
//! `blob2batch plan [--json] --event FILE`: what `serve` would do with a blob version, without
//! reaching anything: which workload takes it, and the exact Batch request bodies `serve` would
//! send (the job, should it not exist yet, and the tasks), every SAS signature redacted.
//!
//! `--event` takes an Event Grid or CloudEvents event, a delivery (an array of them), or a
//! Functions host invocation, as `serve` takes them. Without `--etag` the version is a
//! placeholder one (the output names it); without `--size`, 0 bytes.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::CommandError;
use super::console::line;
use crate::config::Settings;
use crate::event::{Event, parse_delivery};
use crate::filter::{BlobCreated, EventFilter, Verdict};
use crate::http::host::decode_invocation;
use crate::plan::{Plan, Planner, Unsigned};
use crate::runner::Submission;
use crate::storage::sas::redact_sas;
use crate::storage::url::encode_blob_name;
use crate::task_spec::{JobSpec, TaskSpec};

/// The eTag of a blob named without `--etag`.
pub(crate) const PLACEHOLDER_ETAG: &str = "0xPLACEHOLDER";

#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    pub json: bool,
    pub etag: Option<String>,
    pub size: Option<u64>,
    pub content_type: Option<String>,
    /// A blob of the input container, by name...
    pub name: Option<String>,
    /// ... or the event(s) in this file.
    pub event: Option<PathBuf>,
}

/// What `serve` would do with one blob version (or one event).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanLine {
    pub blob: Option<String>,
    pub etag: Option<String>,
    pub workload: Option<String>,
    /// `act`, `ignored` or `rejected`.
    pub outcome: &'static str,
    pub reason: Option<String>,
    pub job: Option<String>,
    pub pool: Option<String>,
    /// What `serve` sends to create the job, when it does not exist yet.
    pub job_body: Option<JobSpec>,
    /// The Add Task bodies, fields in the order `serve` sends them.
    pub tasks: Vec<TaskSpec>,
}

/// Prints one line (`--json`: one object) per blob version; no call is made.
pub fn run(
    settings: &Settings,
    options: &PlanOptions,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let filter = EventFilter::from_settings(settings);
    let planner = Planner::from_settings(settings);
    let now = OffsetDateTime::now_utc();
    let lines: Vec<PlanLine> = match (&options.name, &options.event) {
        (Some(name), None) => vec![plan_blob(
            &planner,
            &blob_named(settings, name, options),
            now,
        )],
        (None, Some(path)) => events(path)?
            .iter()
            .map(|event| match filter.classify(event) {
                Verdict::Act(blob) => plan_blob(&planner, &blob, now),
                Verdict::Ignore(reason) => settled(event, "ignored", reason.to_string()),
                Verdict::Reject(reason) => settled(event, "rejected", reason.to_string()),
            })
            .collect(),
        _ => {
            return Err(CommandError::usage(
                "give a blob NAME or --event FILE (one of the two)",
            ));
        }
    };
    for plan in &lines {
        show(out, plan, options.json);
    }
    Ok(())
}

/// The blob `name` of the input container, as its event would name it.
fn blob_named(settings: &Settings, name: &str, options: &PlanOptions) -> BlobCreated {
    let container = &settings.input_container;
    BlobCreated {
        container: container.clone(),
        blob: name.to_string(),
        url: format!(
            "{}/{}/{}",
            settings.storage.account_url.as_str().trim_end_matches('/'),
            encode_blob_name(container),
            encode_blob_name(name)
        ),
        etag: options
            .etag
            .as_deref()
            .map(|e| e.trim_matches('"').to_string())
            .unwrap_or_else(|| PLACEHOLDER_ETAG.into()),
        api: "PutBlob".into(),
        content_type: options.content_type.clone(),
        size: Some(options.size.unwrap_or(0)),
    }
}

/// The events of a file: an event, a delivery, or a Functions host invocation.
fn events(path: &PathBuf) -> Result<Vec<Event>, CommandError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CommandError::usage(format!("cannot read {}: {e}", path.display())))?;
    let is_invocation =
        serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| v.get("Data").is_some());
    let events = if is_invocation {
        decode_invocation(&bytes).map_err(|e| e.to_string())
    } else {
        parse_delivery(&bytes).map_err(|e| e.to_string())
    };
    events.map_err(|e| CommandError::usage(format!("{}: {e}", path.display())))
}

fn settled(event: &Event, outcome: &'static str, reason: String) -> PlanLine {
    PlanLine {
        blob: event.subject.clone(),
        etag: None,
        workload: None,
        outcome,
        reason: Some(reason),
        job: None,
        pool: None,
        job_body: None,
        tasks: Vec::new(),
    }
}

fn plan_blob(planner: &Planner, blob: &BlobCreated, now: OffsetDateTime) -> PlanLine {
    let mut line = PlanLine {
        blob: Some(format!("{}/{}", blob.container, blob.blob)),
        etag: Some(blob.etag.clone()),
        workload: None,
        outcome: "act",
        reason: None,
        job: None,
        pool: None,
        job_body: None,
        tasks: Vec::new(),
    };
    let planned = match planner.plan(blob, now, Some(&Unsigned)) {
        Ok(Plan::Run(planned)) => planned,
        Ok(Plan::Ignored(reason)) => {
            line.outcome = "ignored";
            line.reason = Some(reason);
            return line;
        }
        Err(error) => {
            line.outcome = "rejected";
            line.reason = Some(error.to_string());
            return line;
        }
    };
    line.workload = Some(planned.workload.clone());
    match &planned.submission {
        Submission::Task { job, task } => {
            line.job = Some(job.id.clone());
            line.pool = Some(job.pool.clone());
            line.job_body = Some(JobSpec::long_lived(&job.id, &job.pool));
            line.tasks.push(task.clone());
        }
        Submission::Job(job) => {
            line.job = Some(job.id.clone());
            line.job_body = Some(job.clone());
        }
        Submission::Split(split) => {
            line.job = Some(split.job.id.clone());
            line.pool = split.job.pool_info.pool_id.clone();
            line.job_body = Some(split.job.clone());
            line.tasks.extend(split.tasks().cloned());
        }
    }
    line
}

/// The line, signatures redacted: one JSON object, or a readable block.
fn show(out: &mut impl Write, plan: &PlanLine, json: bool) {
    if json {
        if let Ok(text) = serde_json::to_string(plan) {
            line(out, &redact_sas(&text));
        }
        return;
    }
    let blob = plan.blob.as_deref().unwrap_or("-");
    let mut head = match (plan.outcome, &plan.workload) {
        ("act", Some(workload)) => format!("{blob}: workload {workload}"),
        (outcome, _) => format!(
            "{blob}: {outcome} ({})",
            plan.reason.as_deref().unwrap_or("")
        ),
    };
    if plan.etag.as_deref() == Some(PLACEHOLDER_ETAG) {
        head.push_str(" (a placeholder eTag: give --etag for the task id of a real version)");
    }
    line(out, &head);
    if let (Some(job), Some(pool)) = (&plan.job, &plan.pool) {
        line(out, &format!("  job {job} on pool {pool}"));
    }
    if let Some(body) = &plan.job_body {
        line(out, "  job body (sent when the job does not exist yet):");
        line(out, &indent(&redact_sas(&pretty(body))));
    }
    match plan.tasks.as_slice() {
        [task] => {
            line(out, "  task body:");
            line(out, &indent(&redact_sas(&pretty(task))));
        }
        // A split blob: the parts differ only in their id, display name and range.
        [first, .., merge] => {
            let parts = &plan.tasks[..plan.tasks.len() - 1];
            line(out, &format!("  {} parts, then the merge", parts.len()));
            line(out, "  first part's body:");
            line(out, &indent(&redact_sas(&pretty(first))));
            for part in parts {
                line(
                    out,
                    &format!("  part {:>4}: {}", part.id, part.command_line),
                );
            }
            line(out, "  merge body:");
            line(out, &indent(&redact_sas(&pretty(merge))));
        }
        [] => {}
    }
}

fn pretty(body: &impl Serialize) -> String {
    serde_json::to_string_pretty(body).unwrap_or_default()
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
