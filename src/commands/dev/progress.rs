//! What `dev` prints as files move: one line when a blob version is delivered, when its task
//! starts, and when it is done (with its word counts and where the result went) or failed (with
//! the end of its stderr and where its logs are).
//!
//! A split blob's job shows each part and the merge the same way (named by their display names,
//! which say which part they are; the delivery's line names the job) while it has a screenful of
//! tasks at most; a larger one shows a line when its parts start, one every tenth of them done,
//! its merge, and any task that failed, so that a thousand parts do not flood the console. Its
//! last line says how the job ended.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::commands::dev::feed::FeedEvent;
use crate::commands::put::human_bytes;
use crate::local::{
    FailureCode, Phases, RunnerEvent, TaskFailure, TerminateReason, UploadedOutput,
};
use crate::runner::MERGE_TASK_ID;

/// A job with at most this many tasks shows a line for each of them.
const TASK_LINES_UP_TO: usize = 16;

/// What a `dev` run saw, for its last line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevSummary {
    /// Blob versions delivered.
    pub seen: usize,
    pub done: usize,
    pub failed: usize,
}

/// The console of one `dev` run.
pub(super) struct Progress {
    /// Task id (lower case: ids are case-insensitive) -> blob name, from the deliveries (a split
    /// blob's delivery names its job).
    names: HashMap<String, String>,
    /// The split blobs' jobs seen running, by lower-case id.
    jobs: HashMap<String, JobProgress>,
    summary: DevSummary,
    /// Lines kept instead of printed (tests).
    kept: Option<Vec<String>>,
}

/// How far one split blob's job is, for its lines.
#[derive(Default)]
struct JobProgress {
    parts: usize,
    tasks: usize,
    parts_done: usize,
    /// Parts done at the last progress line.
    reported: usize,
    started: Option<Instant>,
}

impl JobProgress {
    /// Whether each task gets its lines: a screenful of tasks at most.
    fn per_task(&self) -> bool {
        self.tasks <= TASK_LINES_UP_TO
    }
}

/// A line on stdout, flushed at once (the console of a long-running command).
pub(super) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl Progress {
    pub(super) fn new() -> Progress {
        Progress {
            names: HashMap::new(),
            jobs: HashMap::new(),
            summary: DevSummary::default(),
            kept: None,
        }
    }

    pub(super) fn summary(&self) -> DevSummary {
        self.summary
    }

    fn say(&mut self, line: &str) {
        match &mut self.kept {
            Some(kept) => kept.push(line.to_string()),
            None => say(line),
        }
    }

    pub(super) fn on_feed_event(&mut self, event: FeedEvent) {
        match event {
            FeedEvent::Delivered {
                blob,
                size,
                outcome,
                task_id,
                detail,
                ..
            } => {
                self.summary.seen += 1;
                if let Some(id) = &task_id {
                    self.names.insert(id.to_ascii_lowercase(), blob.clone());
                }
                let outcome = outcome
                    .unwrap_or_else(|| "delivered".into())
                    .to_ascii_lowercase();
                let task = task_id.map(|id| format!(" task {id}")).unwrap_or_default();
                let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
                self.say(&format!(
                    "received  {blob} ({}) ->{task} [{outcome}{detail}]",
                    human_bytes(size)
                ));
            }
            FeedEvent::Retrying { blob, error, .. } => {
                self.say(&format!(
                    "retrying  {blob}: delivery failed ({error}); will retry"
                ));
            }
            FeedEvent::ListFailed { error } => {
                self.say(&format!("listing the input container failed: {error}"))
            }
        }
    }

    pub(super) fn on_runner_event(&mut self, event: RunnerEvent) {
        if let Some(job) = event.job().map(str::to_string) {
            return self.on_job_event(&job, event);
        }
        match event {
            RunnerEvent::Received { .. } | RunnerEvent::JobCompleted { .. } => {}
            RunnerEvent::Running {
                id, display_name, ..
            } => {
                let name = self.name(&id, display_name.as_deref());
                self.say(&format!("running   {name} (task {id})"));
            }
            RunnerEvent::Done {
                id,
                display_name,
                duration,
                phases,
                outputs,
                ..
            } => {
                self.summary.done += 1;
                let name = self.name(&id, display_name.as_deref());
                self.say(&done_line(&name, duration, phases, &outputs));
            }
            RunnerEvent::Failed {
                id,
                display_name,
                failure,
                stderr_tail,
                outputs,
                task_dir,
                ..
            } => {
                self.summary.failed += 1;
                let name = self.name(&id, display_name.as_deref());
                let task = format!("task {id}");
                let failed = Failed {
                    task: &task,
                    failure: &failure,
                    stderr_tail: &stderr_tail,
                    outputs: &outputs,
                    task_dir: &task_dir,
                };
                self.say(&failed_line(&name, failed));
            }
        }
    }

    /// An event of a split blob's job: its tasks' lines (see the module's documentation), and
    /// the job's end, which is what the summary counts.
    fn on_job_event(&mut self, job: &str, event: RunnerEvent) {
        let key = job.to_ascii_lowercase();
        let progress = self.jobs.entry(key.clone()).or_default();
        match event {
            RunnerEvent::Received { id, .. } => {
                progress.tasks += 1;
                progress.parts += usize::from(id != MERGE_TASK_ID);
            }
            RunnerEvent::Running {
                id, display_name, ..
            } => {
                let first = progress.started.is_none();
                progress.started.get_or_insert_with(Instant::now);
                if progress.per_task() || id == MERGE_TASK_ID {
                    let name = display_name.unwrap_or_else(|| id.clone());
                    self.say(&format!("running   {name} (task {id})"));
                } else if first {
                    let parts = progress.parts;
                    let name = self.name(job, None);
                    self.say(&format!(
                        "running   {name}: {parts} parts and a merge (job {job}); a line every \
                         tenth of the parts done"
                    ));
                }
            }
            RunnerEvent::Done { .. } => self.job_task_done(job, &key, event),
            RunnerEvent::Failed { .. } => self.job_task_failed(job, &key, event),
            RunnerEvent::JobCompleted { .. } => self.job_completed(job, &key, event),
        }
    }

    fn job_task_done(&mut self, job: &str, key: &str, event: RunnerEvent) {
        let RunnerEvent::Done {
            id,
            display_name,
            duration,
            phases,
            outputs,
            ..
        } = event
        else {
            return;
        };
        let progress = self.jobs.entry(key.to_string()).or_default();
        if id != MERGE_TASK_ID {
            progress.parts_done += 1;
        }
        if progress.per_task() || id == MERGE_TASK_ID {
            let name = format!("{} (task {id})", display_name.unwrap_or_else(|| id.clone()));
            return self.say(&done_line(&name, duration, phases, &outputs));
        }
        // A line every tenth of the parts, and one when they are all done.
        let step = progress.parts.div_ceil(10).max(1);
        let (done, parts) = (progress.parts_done, progress.parts);
        if done >= progress.reported + step || done == parts {
            progress.reported = done;
            let line = format!(
                "progress  {}: {done} of {parts} parts done",
                self.name(job, None)
            );
            self.say(&line);
        }
    }

    fn job_task_failed(&mut self, job: &str, key: &str, event: RunnerEvent) {
        let RunnerEvent::Failed {
            id,
            display_name,
            failure,
            stderr_tail,
            outputs,
            task_dir,
            ..
        } = event
        else {
            return;
        };
        let per_task = self.jobs.get(key).is_none_or(JobProgress::per_task);
        let name = display_name.unwrap_or_else(|| id.clone());
        if failure.code == FailureCode::TaskEnded {
            // Stopped because another task failed: the job's last line counts them.
            if per_task {
                self.say(&format!(
                    "stopped   {name} (task {id}): {}",
                    failure.message
                ));
            }
            return;
        }
        let task = format!("job {job}, task {id}");
        let failed = Failed {
            task: &task,
            failure: &failure,
            stderr_tail: &stderr_tail,
            outputs: &outputs,
            task_dir: &task_dir,
        };
        self.say(&failed_line(&name, failed));
    }

    fn job_completed(&mut self, job: &str, key: &str, event: RunnerEvent) {
        let RunnerEvent::JobCompleted {
            reason,
            failed_task,
            succeeded,
            unfinished,
            ..
        } = event
        else {
            return;
        };
        let took = self
            .jobs
            .remove(key)
            .and_then(|p| p.started)
            .map(|at| format!(" in {:.1} s", at.elapsed().as_secs_f64()))
            .unwrap_or_default();
        let name = self.name(job, None);
        let line = match reason {
            TerminateReason::AllTasksComplete => {
                self.summary.done += 1;
                format!("completed {name} (job {job}): {succeeded} tasks succeeded{took}")
            }
            TerminateReason::TaskFailed => {
                self.summary.failed += 1;
                format!(
                    "FAILED    {name} (job {job}): task {} failed and ended the job{took}; \
                     {unfinished} other tasks were stopped or never ran",
                    failed_task.as_deref().unwrap_or("?")
                )
            }
        };
        self.say(&line);
    }

    /// The blob a task (or job) counts: from its delivery, else its display name, else its id.
    fn name(&self, id: &str, display_name: Option<&str>) -> String {
        self.names
            .get(&id.to_ascii_lowercase())
            .cloned()
            .or_else(|| display_name.map(str::to_string))
            .unwrap_or_else(|| id.to_string())
    }
}

fn done_line(name: &str, duration: Duration, phases: Phases, outputs: &[UploadedOutput]) -> String {
    let counts = outputs
        .iter()
        .find(|o| o.blob.ends_with(".json"))
        .and_then(|o| read_counts(&o.file))
        .map(|c| format!(": {} words, {} distinct", c.words, c.unique_words))
        .unwrap_or_default();
    format!(
        "done      {name} in {} ms (fetch {}, run {}, upload {}){counts} -> {}",
        duration.as_millis(),
        phases.fetch.as_millis(),
        phases.run.as_millis(),
        phases.upload.as_millis(),
        blobs(outputs).join(", "),
    )
}

fn failed_line(name: &str, failed: Failed<'_>) -> String {
    let mut text = format!("FAILED    {name} ({}): {}", failed.task, failed.failure);
    let tail: Vec<&str> = failed.stderr_tail.lines().rev().take(5).collect();
    for line in tail.into_iter().rev() {
        text.push_str(&format!("\n    stderr| {line}"));
    }
    let logs = blobs(failed.outputs);
    if logs.is_empty() {
        text.push_str(&format!("\n    logs: {}", failed.task_dir.display()));
    } else {
        text.push_str(&format!(
            "\n    logs: {} (local copy in {})",
            logs.join(", "),
            failed.task_dir.display()
        ));
    }
    text
}

/// Uploaded outputs as `container/blob` (a part's partial count goes to the staging container,
/// a result and logs to the output container).
fn blobs(outputs: &[UploadedOutput]) -> Vec<String> {
    outputs
        .iter()
        .map(|o| {
            let container = o.container.rsplit('/').next().unwrap_or_default();
            format!("{container}/{}", o.blob)
        })
        .collect()
}

/// What a failed task's line shows.
struct Failed<'a> {
    /// `task ID`, or `job JOB, task ID`.
    task: &'a str,
    failure: &'a TaskFailure,
    stderr_tail: &'a str,
    outputs: &'a [UploadedOutput],
    task_dir: &'a PathBuf,
}

/// The totals of a word-count document.
#[derive(serde::Deserialize)]
struct Counts {
    words: u64,
    unique_words: u64,
}

/// The totals of the word-count document at `path`; its `counts` are read past, not kept.
fn read_counts(path: &Path) -> Option<Counts> {
    let file = std::fs::File::open(path).ok()?;
    serde_json::from_reader(std::io::BufReader::new(file)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "wcs-0123";

    /// A console that keeps its lines, which saw the delivery of `big.txt` as job `JOB`.
    fn console() -> Progress {
        let mut progress = Progress {
            kept: Some(Vec::new()),
            ..Progress::new()
        };
        progress.on_feed_event(FeedEvent::Delivered {
            blob: "big.txt".into(),
            etag: "0x1".into(),
            size: 100_000,
            outcome: Some("submitted".into()),
            task_id: Some(JOB.into()),
            detail: None,
        });
        progress
    }

    fn display_name(id: &str, parts: usize) -> Option<String> {
        Some(match id {
            MERGE_TASK_ID => "input/big.txt [merge]".to_string(),
            part => format!("input/big.txt [part {part} of {parts}]"),
        })
    }

    /// The events of a split job of `parts` parts that succeeds.
    fn succeeding(parts: usize) -> Vec<RunnerEvent> {
        let ids: Vec<String> = (0..parts)
            .map(|i| i.to_string())
            .chain([MERGE_TASK_ID.to_string()])
            .collect();
        let job = Some(JOB.to_string());
        let mut events: Vec<RunnerEvent> = ids
            .iter()
            .map(|id| RunnerEvent::Received {
                id: id.clone(),
                job: job.clone(),
                display_name: display_name(id, parts),
            })
            .collect();
        for id in &ids {
            events.push(RunnerEvent::Running {
                id: id.clone(),
                job: job.clone(),
                display_name: display_name(id, parts),
            });
            events.push(RunnerEvent::Done {
                id: id.clone(),
                job: job.clone(),
                display_name: display_name(id, parts),
                exit_code: 0,
                duration: Duration::from_millis(5),
                phases: Phases::default(),
                outputs: Vec::new(),
                task_dir: PathBuf::from("/work/jobs/x"),
            });
        }
        events.push(RunnerEvent::JobCompleted {
            job: JOB.into(),
            display_name: Some("input/big.txt".into()),
            reason: TerminateReason::AllTasksComplete,
            failed_task: None,
            succeeded: parts + 1,
            failed: 0,
            unfinished: 0,
        });
        events
    }

    fn shown(progress: Progress) -> (Vec<String>, DevSummary) {
        let summary = progress.summary();
        (progress.kept.unwrap(), summary)
    }

    #[test]
    fn a_few_parts_show_each_part_and_the_merge() {
        let mut progress = console();
        for event in succeeding(8) {
            progress.on_runner_event(event);
        }
        let (lines, summary) = shown(progress);
        assert_eq!(lines.len(), 1 + 2 * 9 + 1, "{lines:#?}");
        assert!(lines[1].starts_with("running   input/big.txt [part 0 of 8] (task 0)"));
        assert!(lines[2].starts_with("done      input/big.txt [part 0 of 8] (task 0) in 5 ms"));
        assert!(
            lines[17].starts_with("running   input/big.txt [merge]"),
            "{lines:#?}"
        );
        assert_eq!(
            lines.last().unwrap(),
            "completed big.txt (job wcs-0123): 9 tasks succeeded in 0.0 s"
        );
        assert_eq!((summary.seen, summary.done, summary.failed), (1, 1, 0));
    }

    #[test]
    fn a_thousand_parts_show_a_line_every_tenth() {
        let mut progress = console();
        for event in succeeding(1000) {
            progress.on_runner_event(event);
        }
        let (lines, summary) = shown(progress);
        assert!(lines.len() <= 16, "{lines:#?}");
        assert_eq!(
            lines[1],
            "running   big.txt: 1000 parts and a merge (job wcs-0123); a line every tenth of the \
             parts done"
        );
        let progress_lines: Vec<&String> =
            lines.iter().filter(|l| l.starts_with("progress")).collect();
        assert_eq!(progress_lines.len(), 10, "{lines:#?}");
        assert_eq!(
            progress_lines[9],
            "progress  big.txt: 1000 of 1000 parts done"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("done      input/big.txt [merge]"))
        );
        assert_eq!(summary.done, 1);
    }

    #[test]
    fn a_failed_part_is_shown_and_the_parts_it_stopped_are_counted() {
        let mut progress = console();
        let job = Some(JOB.to_string());
        let failed = |id: &str, code: FailureCode| RunnerEvent::Failed {
            id: id.into(),
            job: job.clone(),
            display_name: display_name(id, 100),
            exit_code: Some(1),
            duration: Duration::from_millis(5),
            failure: TaskFailure::new(code, "exit code 1"),
            stderr_tail: "wordcount: the input is gzip-compressed".into(),
            outputs: Vec::new(),
            task_dir: PathBuf::from("/work/jobs/x/tasks/3"),
        };
        for event in succeeding(100).into_iter().take(101) {
            progress.on_runner_event(event);
        }
        for id in ["3", "4", "5"] {
            progress.on_runner_event(RunnerEvent::Running {
                id: id.into(),
                job: job.clone(),
                display_name: display_name(id, 100),
            });
        }
        progress.on_runner_event(failed("3", FailureCode::FailureExitCode));
        for id in ["4", "5"] {
            progress.on_runner_event(failed(id, FailureCode::TaskEnded));
        }
        progress.on_runner_event(RunnerEvent::JobCompleted {
            job: JOB.into(),
            display_name: None,
            reason: TerminateReason::TaskFailed,
            failed_task: Some("3".into()),
            succeeded: 0,
            failed: 3,
            unfinished: 97,
        });
        let (lines, summary) = shown(progress);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[2].starts_with(
            "FAILED    input/big.txt [part 3 of 100] (job wcs-0123, task 3): FailureExitCode"
        ));
        assert!(lines[2].contains("stderr| wordcount: the input is gzip-compressed"));
        assert!(
            lines[3]
                .starts_with("FAILED    big.txt (job wcs-0123): task 3 failed and ended the job")
        );
        assert!(
            lines[3].ends_with("97 other tasks were stopped or never ran"),
            "{}",
            lines[3]
        );
        assert_eq!((summary.done, summary.failed), (0, 1));
    }

    #[test]
    fn counts_come_from_the_document_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        // A word that looks like a field must not be taken for it.
        std::fs::write(
            &path,
            r#"{"source":"\"words\": 7","mode":"unicode","bytes":9,"lines":1,"words":2,"unique_words":1,"counts":[["words",2]]}"#,
        )
        .unwrap();
        let counts = read_counts(&path).unwrap();
        assert_eq!((counts.words, counts.unique_words), (2, 1));
        std::fs::write(&path, "not json").unwrap();
        assert!(read_counts(&path).is_none());
    }
}
