//! What `dev` prints as files move: one line when a blob version is delivered, when its task
//! starts, and when it is done (with its word counts and where the result went) or failed (with
//! the end of its stderr and where its logs are).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::commands::dev::feed::FeedEvent;
use crate::commands::put::human_bytes;
use crate::local::{Phases, RunnerEvent, TaskFailure, UploadedOutput};

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
    /// Task id (lower case: ids are case-insensitive) -> blob name, from the deliveries.
    names: HashMap<String, String>,
    /// The output container's name, to show where results went.
    output: String,
    summary: DevSummary,
}

/// A line on stdout, flushed at once (the console of a long-running command).
pub(super) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl Progress {
    pub(super) fn new(output: String) -> Progress {
        Progress {
            names: HashMap::new(),
            output,
            summary: DevSummary::default(),
        }
    }

    pub(super) fn summary(&self) -> DevSummary {
        self.summary
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
                say(&format!(
                    "received  {blob} ({}) ->{task} [{outcome}{detail}]",
                    human_bytes(size)
                ));
            }
            FeedEvent::Retrying { blob, error, .. } => {
                say(&format!(
                    "retrying  {blob}: delivery failed ({error}); will retry"
                ));
            }
            FeedEvent::ListFailed { error } => {
                say(&format!("listing the input container failed: {error}"))
            }
        }
    }

    pub(super) fn on_runner_event(&mut self, event: RunnerEvent) {
        match event {
            RunnerEvent::Received { .. } | RunnerEvent::JobCompleted { .. } => {}
            RunnerEvent::Running {
                id, display_name, ..
            } => say(&format!(
                "running   {} (task {id})",
                self.name(&id, display_name.as_deref())
            )),
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
                say(&self.done_line(&name, duration, phases, &outputs));
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
                let failed = Failed {
                    id: &id,
                    failure: &failure,
                    stderr_tail: &stderr_tail,
                    outputs: &outputs,
                    task_dir: &task_dir,
                };
                say(&self.failed_line(&name, failed));
            }
        }
    }

    /// The blob a task counts: from its delivery, else its display name, else its id.
    fn name(&self, id: &str, display_name: Option<&str>) -> String {
        self.names
            .get(&id.to_ascii_lowercase())
            .cloned()
            .or_else(|| display_name.map(str::to_string))
            .unwrap_or_else(|| id.to_string())
    }

    fn done_line(
        &self,
        name: &str,
        duration: Duration,
        phases: Phases,
        outputs: &[UploadedOutput],
    ) -> String {
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
            self.blobs(outputs).join(", "),
        )
    }

    fn failed_line(&self, name: &str, failed: Failed<'_>) -> String {
        let mut text = format!("FAILED    {name} (task {}): {}", failed.id, failed.failure);
        let tail: Vec<&str> = failed.stderr_tail.lines().rev().take(5).collect();
        for line in tail.into_iter().rev() {
            text.push_str(&format!("\n    stderr| {line}"));
        }
        let logs = self.blobs(failed.outputs);
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

    fn blobs(&self, outputs: &[UploadedOutput]) -> Vec<String> {
        outputs
            .iter()
            .map(|o| format!("{}/{}", self.output, o.blob))
            .collect()
    }
}

/// What a failed task's line shows.
struct Failed<'a> {
    id: &'a str,
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
