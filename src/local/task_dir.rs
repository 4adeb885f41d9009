//! The local runner's task records: one directory per task under `{work_dir}/tasks/`, laid out
//! like a Batch node's task directory.
//!
//! ```text
//! tasks/{id}/task.json     the specification as submitted
//! tasks/{id}/started       written when a run begins
//! tasks/{id}/wd/           the working directory (resource files land here)
//! tasks/{id}/stdout.txt    the command's standard output (the result document)
//! tasks/{id}/stderr.txt
//! tasks/{id}/result.json   written when the run ends: exit code, failure, times
//! ```
//!
//! The directory name is the task id in lower case (ids are case-insensitive, like Batch's). A
//! record is created by renaming a complete staging directory into place, which either wins or
//! finds the id taken: two submissions of one id, even from two processes, give one task, and a
//! crash never leaves a record without its specification.
//!
//! A split blob's job keeps its tasks the same way in a folder of its own (see `job_dir`).

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::failure::TaskFailure;
use crate::runner::{FailureInfo, TaskState, TaskStatus};
use crate::task_spec::TaskSpec;

/// How a run ended, as kept in `result.json` (Batch's `executionInfo`, in the same names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    /// `success` or `failure`.
    pub result: RunResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_info: Option<TaskFailure>,
    #[serde(with = "time::serde::rfc3339")]
    pub start_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub end_time: OffsetDateTime,
    pub fetch_ms: u64,
    pub run_ms: u64,
    pub upload_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    Success,
    Failure,
}

/// Where a recorded task stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordState {
    /// Accepted, waiting for a slot.
    Active,
    /// Its command or its file transfers are under way.
    Running,
    /// Finished, one way or the other.
    Completed(TaskResult),
}

/// What [`TaskStore::record`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    New,
    /// A task with this id (in any case) was recorded before.
    Exists,
}

/// The `tasks/` directory of a work directory (which also knows where the work directory's
/// jobs are), or of one job.
#[derive(Clone, Debug)]
pub struct TaskStore {
    root: PathBuf,
    /// The work directory, for the store of its `tasks/`; `None` for a job's tasks.
    work_dir: Option<PathBuf>,
}

impl TaskStore {
    /// Opens `{work_dir}/tasks`, creating it when missing.
    pub fn open(work_dir: &Path) -> io::Result<TaskStore> {
        let root = work_dir.join("tasks");
        std::fs::create_dir_all(&root)?;
        Ok(TaskStore {
            root,
            work_dir: Some(work_dir.to_path_buf()),
        })
    }

    /// The tasks of one job, in `root` (created with the job's record).
    pub(crate) fn at(root: PathBuf) -> TaskStore {
        TaskStore {
            root,
            work_dir: None,
        }
    }

    /// The work directory whose `tasks/` this is.
    pub fn work_dir(&self) -> Option<&Path> {
        self.work_dir.as_deref()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> TaskDir {
        TaskDir {
            path: self.root.join(id.to_ascii_lowercase()),
        }
    }

    /// Records `task` (its id must already be valid) unless its id is taken.
    pub fn record(&self, task: &TaskSpec) -> io::Result<Recorded> {
        let spec = serde_json::to_vec_pretty(task).map_err(io::Error::other)?;
        record_once(
            &self.root,
            &self.dir(&task.id).path,
            "task.json",
            |staging| std::fs::write(staging.join("task.json"), &spec),
        )
    }

    /// Removes the task's record (`Ok(false)` when there was none): the id is free at once.
    pub fn delete(&self, id: &str) -> io::Result<bool> {
        remove_record(&self.root, &self.dir(id).path)
    }

    /// The ids of every recorded task (lower case), staging directories left out.
    pub fn ids(&self) -> io::Result<Vec<String>> {
        recorded_ids(&self.root, "task.json")
    }
}

impl RecordState {
    /// The state in Batch's terms.
    pub fn status(&self) -> TaskStatus {
        match self {
            RecordState::Active => TaskStatus::new(TaskState::Active),
            RecordState::Running => TaskStatus::new(TaskState::Running),
            RecordState::Completed(result) => TaskStatus {
                state: match result.result {
                    RunResult::Success => TaskState::Succeeded,
                    RunResult::Failure => TaskState::Failed,
                },
                exit_code: result.exit_code,
                // The local runner runs a task once.
                retries: Some(0),
                failure: result.failure_info.as_ref().map(|f| FailureInfo {
                    category: f.category.as_str().to_string(),
                    code: f.code.to_string(),
                    message: f.message.clone(),
                }),
                ..TaskStatus::new(TaskState::Active)
            },
        }
    }
}

/// Tells whether a directory may have changed since the last look, so that a runner looking for
/// records made by other processes every half second reads a large folder only when it moved.
#[derive(Debug, Default)]
pub(crate) struct ScanGate {
    last: Option<std::time::SystemTime>,
}

/// A directory changed this recently is looked at again whatever its time says: two changes
/// within one tick of the file system's clock leave the same time.
const RECENT: std::time::Duration = std::time::Duration::from_secs(2);

impl ScanGate {
    /// Whether `dir` may have changed (entries added, removed or renamed) since this last said so.
    pub(crate) fn changed(&mut self, dir: &Path) -> bool {
        let Ok(modified) = std::fs::metadata(dir).and_then(|m| m.modified()) else {
            return true;
        };
        let recent = std::time::SystemTime::now()
            .duration_since(modified)
            .map_or(true, |age| age < RECENT);
        let changed = self.last != Some(modified) || recent;
        self.last = Some(modified);
        changed
    }
}

/// See [`TaskDir::stamp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordStamp {
    inode: u64,
    modified: (i64, i64),
}

/// One task's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskDir {
    path: PathBuf,
}

impl TaskDir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn wd(&self) -> PathBuf {
        self.path.join("wd")
    }

    pub fn stdout(&self) -> PathBuf {
        self.path.join("stdout.txt")
    }

    pub fn stderr(&self) -> PathBuf {
        self.path.join("stderr.txt")
    }

    pub(crate) fn spec_path(&self) -> PathBuf {
        self.path.join("task.json")
    }

    fn result_path(&self) -> PathBuf {
        self.path.join("result.json")
    }

    pub fn spec(&self) -> io::Result<TaskSpec> {
        let bytes = std::fs::read(self.spec_path())?;
        serde_json::from_slice(&bytes).map_err(io::Error::other)
    }

    /// What tells this record from another of the same id made after it was removed: its
    /// specification file's inode and time of writing (never rewritten while the record
    /// lives). `None` when there is no record.
    pub(crate) fn stamp(&self) -> Option<RecordStamp> {
        use std::os::unix::fs::MetadataExt as _;
        let metadata = std::fs::metadata(self.spec_path()).ok()?;
        Some(RecordStamp {
            inode: metadata.ino(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
        })
    }

    pub(crate) fn mark_started(&self) -> io::Result<()> {
        std::fs::write(self.path.join("started"), b"")
    }

    pub(crate) fn write_result(&self, result: &TaskResult) -> io::Result<()> {
        let temporary = self.path.join("result.json.tmp");
        std::fs::write(
            &temporary,
            serde_json::to_vec_pretty(result).map_err(io::Error::other)?,
        )?;
        std::fs::rename(temporary, self.result_path())
    }

    pub fn result(&self) -> Option<TaskResult> {
        let bytes = std::fs::read(self.result_path()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn state(&self) -> RecordState {
        match self.result() {
            Some(result) => RecordState::Completed(result),
            None if self.path.join("started").exists() => RecordState::Running,
            None => RecordState::Active,
        }
    }

    /// The last `max` bytes of the task's standard error, as text.
    pub fn stderr_tail(&self, max: u64) -> String {
        tail(&self.stderr(), max)
    }
}

/// Creates the record directory `path` under `root` unless `path/{marker}` exists: `fill`
/// writes the record into a staging directory (the marker last or alone), which is then renamed
/// into place. Of two concurrent calls, even from two processes, one gives `New`, the other
/// `Exists`, and a crash leaves at most a staging directory that listings skip.
pub(crate) fn record_once(
    root: &Path,
    path: &Path,
    marker: &str,
    fill: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<Recorded> {
    if path.join(marker).exists() {
        return Ok(Recorded::Exists);
    }
    let staging = root.join(format!(".incoming-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&staging)?;
    match fill(&staging).and_then(|()| std::fs::rename(&staging, path)) {
        Ok(()) => Ok(Recorded::New),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            // rename(2) refuses a non-empty target: someone recorded this id first.
            if path.join(marker).exists() {
                Ok(Recorded::Exists)
            } else {
                Err(e)
            }
        }
    }
}

/// The names (lower-case ids) of the record directories under `root` that hold `marker`, sorted;
/// staging and removed directories left out.
pub(crate) fn recorded_ids(root: &Path, marker: &str) -> io::Result<Vec<String>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str()
            && !name.starts_with('.')
            && entry.path().join(marker).is_file()
        {
            ids.push(name.to_string());
        }
    }
    ids.sort();
    Ok(ids)
}

/// Renames `path` (a record directory under `root`) aside, then deletes it: the name is free at
/// once, even if deleting its files takes a while or fails half way.
pub(crate) fn remove_record(root: &Path, path: &Path) -> io::Result<bool> {
    let aside = root.join(format!(".removed-{}", uuid::Uuid::new_v4()));
    match std::fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    // The record is gone once renamed; what is left aside (a run still writing into it, say)
    // is only litter, under a name listings skip.
    if let Err(error) = std::fs::remove_dir_all(&aside) {
        tracing::warn!(path = %aside.display(), %error, "cannot delete a removed record's files");
    }
    Ok(true)
}

/// The last `max` bytes of a file, as text.
fn tail(path: &Path, max: u64) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::failure::FailureCode;

    fn task(id: &str) -> TaskSpec {
        TaskSpec::new(id, "/wordcount input/data")
    }

    #[test]
    fn an_id_is_recorded_once_whatever_its_case() {
        let dir = tempfile::tempdir().unwrap();
        let store = TaskStore::open(dir.path()).unwrap();
        assert_eq!(store.record(&task("wc-A")).unwrap(), Recorded::New);
        assert_eq!(store.record(&task("WC-a")).unwrap(), Recorded::Exists);
        assert_eq!(store.ids().unwrap(), ["wc-a"]);
        assert_eq!(store.dir("WC-A").spec().unwrap().id, "wc-A");
        // No staging directory is left behind.
        let names: Vec<_> = std::fs::read_dir(store.root()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn concurrent_records_of_one_id_give_one_task() {
        let dir = tempfile::tempdir().unwrap();
        let store = TaskStore::open(dir.path()).unwrap();
        let outcomes: Vec<Recorded> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| s.spawn(|| store.record(&task("wc-race")).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(outcomes.iter().filter(|o| **o == Recorded::New).count(), 1);
        assert_eq!(store.ids().unwrap(), ["wc-race"]);
    }

    #[test]
    fn a_deleted_task_frees_its_id_and_is_told_from_a_new_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = TaskStore::open(dir.path()).unwrap();
        store.record(&task("wc-d")).unwrap();
        let first = store.dir("wc-d").stamp().unwrap();
        assert!(store.delete("WC-D").unwrap());
        assert!(!store.delete("wc-d").unwrap(), "already gone");
        assert_eq!(store.dir("wc-d").stamp(), None);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(store.record(&task("wc-d")).unwrap(), Recorded::New);
        assert_ne!(store.dir("wc-d").stamp(), Some(first));
        let names: Vec<_> = std::fs::read_dir(store.root()).unwrap().collect();
        assert_eq!(names.len(), 1, "nothing is left aside");
    }

    #[test]
    fn the_scan_gate_opens_when_a_folder_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut gate = ScanGate::default();
        assert!(gate.changed(dir.path()), "the first look");
        // Older than a clock tick's doubt: unchanged means nothing to read.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::open(dir.path())
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(gate.changed(dir.path()), "its time moved");
        assert!(!gate.changed(dir.path()));
        std::fs::create_dir(dir.path().join("new")).unwrap();
        assert!(gate.changed(dir.path()), "an entry was added");
    }

    #[test]
    fn states_follow_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = TaskStore::open(dir.path()).unwrap();
        store.record(&task("wc-s")).unwrap();
        let task_dir = store.dir("wc-s");
        assert_eq!(task_dir.state(), RecordState::Active);
        task_dir.mark_started().unwrap();
        assert_eq!(task_dir.state(), RecordState::Running);
        let result = TaskResult {
            result: RunResult::Failure,
            exit_code: Some(2),
            failure_info: Some(TaskFailure::new(
                FailureCode::FailureExitCode,
                "exit code 2",
            )),
            start_time: OffsetDateTime::UNIX_EPOCH,
            end_time: OffsetDateTime::UNIX_EPOCH,
            fetch_ms: 1,
            run_ms: 2,
            upload_ms: 3,
        };
        task_dir.write_result(&result).unwrap();
        assert_eq!(task_dir.state(), RecordState::Completed(result));
    }
}
