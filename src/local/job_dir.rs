//! The local runner's job records: one directory per job of its own (a split blob's) under
//! `{work_dir}/jobs/`, beside the flat `tasks/` of the tasks added to long-lived jobs.
//!
//! ```text
//! jobs/{id}/job.json        the job as submitted, and the record's own id
//! jobs/{id}/tasks/          its tasks, laid out as `tasks/` is (see `task_dir`)
//! jobs/{id}/sealed          written once every task is in (Batch's onAllTasksComplete turned
//!                           to terminatejob)
//! jobs/{id}/completed.json  written when the job ends: why, which task failed, when
//! ```
//!
//! The directory name is the job id in lower case. Each fact is a file of its own, written
//! once: the process that records a job (`reconcile`) and the one that runs it (`dev`) never
//! rewrite each other's files, so neither can undo what the other wrote. A job record is made
//! by renaming a complete staging directory into place, as a task record is.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::task_dir::{Recorded, TaskStore, record_once, recorded_ids, remove_record};
use crate::task_spec::JobSpec;

/// What `job.json` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    /// Unique to this record: a job removed and submitted again under the same id is another
    /// record, which a runner must not take for the one it was running.
    pub record_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    pub spec: JobSpec,
}

/// Why a job ended, in Batch's terms (`executionInfo.terminateReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TerminateReason {
    /// Sealed, and every task completed.
    AllTasksComplete,
    /// A task failed in a job whose `onTaskFailure` is `performexitoptionsjobaction`.
    TaskFailed,
}

impl TerminateReason {
    pub fn as_str(self) -> &'static str {
        match self {
            TerminateReason::AllTasksComplete => "AllTasksComplete",
            TerminateReason::TaskFailed => "TaskFailed",
        }
    }
}

/// What `completed.json` holds: how the job ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobCompletion {
    pub terminate_reason: TerminateReason,
    /// The task whose failure ended the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_task: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub end_time: OffsetDateTime,
}

/// The `jobs/` directory of a work directory.
#[derive(Clone, Debug)]
pub struct JobStore {
    root: PathBuf,
}

impl JobStore {
    /// Opens `{work_dir}/jobs`, creating it when missing.
    pub fn open(work_dir: &Path) -> io::Result<JobStore> {
        let root = work_dir.join("jobs");
        std::fs::create_dir_all(&root)?;
        Ok(JobStore { root })
    }

    /// The `jobs/` directory of a work directory, as it is (for reading).
    pub(crate) fn at(root: PathBuf) -> JobStore {
        JobStore { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> JobDir {
        JobDir {
            path: self.root.join(id.to_ascii_lowercase()),
        }
    }

    /// Records `job` (its id must already be valid) unless its id is taken: a new record with
    /// no task, not sealed.
    pub fn record(&self, job: &JobSpec) -> io::Result<Recorded> {
        let record = JobRecord {
            record_id: uuid::Uuid::new_v4().to_string(),
            recorded_at: OffsetDateTime::now_utc(),
            spec: job.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&record).map_err(io::Error::other)?;
        record_once(&self.root, &self.dir(&job.id).path, "job.json", |staging| {
            std::fs::create_dir(staging.join("tasks"))?;
            std::fs::write(staging.join("job.json"), &bytes)
        })
    }

    /// The ids of every recorded job (lower case), staging and removed directories left out.
    pub fn ids(&self) -> io::Result<Vec<String>> {
        recorded_ids(&self.root, "job.json")
    }

    /// Removes the job's record and its tasks' (`Ok(false)` when there was none): the id is
    /// free at once.
    pub fn delete(&self, id: &str) -> io::Result<bool> {
        remove_record(&self.root, &self.dir(id).path)
    }
}

/// One job's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobDir {
    path: PathBuf,
}

impl JobDir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record_path(&self) -> PathBuf {
        self.path.join("job.json")
    }

    fn sealed_path(&self) -> PathBuf {
        self.path.join("sealed")
    }

    fn completion_path(&self) -> PathBuf {
        self.path.join("completed.json")
    }

    pub fn exists(&self) -> bool {
        self.record_path().is_file()
    }

    pub fn record(&self) -> io::Result<JobRecord> {
        let bytes = std::fs::read(self.record_path())?;
        serde_json::from_slice(&bytes).map_err(io::Error::other)
    }

    /// The job's tasks.
    pub fn tasks(&self) -> TaskStore {
        TaskStore::at(self.path.join("tasks"))
    }

    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed_path().exists()
    }

    /// Marks the job as holding every task: it completes once they all have. Idempotent.
    pub fn seal(&self) -> io::Result<()> {
        if !self.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the job's record is gone",
            ));
        }
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.sealed_path())
            .map(drop)
    }

    /// How the job ended, when it has.
    pub fn completion(&self) -> Option<JobCompletion> {
        let bytes = std::fs::read(self.completion_path()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub(crate) fn is_completed(&self) -> bool {
        self.completion_path().exists()
    }

    /// Records how the job ended (written whole, by rename).
    pub(crate) fn complete(&self, completion: &JobCompletion) -> io::Result<()> {
        let temporary = self.path.join("completed.json.tmp");
        std::fs::write(
            &temporary,
            serde_json::to_vec_pretty(completion).map_err(io::Error::other)?,
        )?;
        std::fs::rename(temporary, self.completion_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> JobSpec {
        JobSpec::split(id, "pool")
    }

    #[test]
    fn a_job_is_recorded_once_whatever_its_case() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        assert_eq!(store.record(&job("wcs-A")).unwrap(), Recorded::New);
        assert_eq!(store.record(&job("WCS-a")).unwrap(), Recorded::Exists);
        assert_eq!(store.ids().unwrap(), ["wcs-a"]);
        let dir = store.dir("WCS-A");
        assert_eq!(dir.record().unwrap().spec.id, "wcs-A");
        assert!(dir.tasks().ids().unwrap().is_empty());
        assert!(!dir.is_sealed() && !dir.is_completed());
        dir.seal().unwrap();
        dir.seal().unwrap();
        assert!(dir.is_sealed());
        let names: Vec<_> = std::fs::read_dir(store.root()).unwrap().collect();
        assert_eq!(names.len(), 1, "no staging directory is left behind");
    }

    #[test]
    fn concurrent_records_of_one_job_give_one_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        let outcomes: Vec<Recorded> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| s.spawn(|| store.record(&job("wcs-race")).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(outcomes.iter().filter(|o| **o == Recorded::New).count(), 1);
        assert_eq!(store.ids().unwrap(), ["wcs-race"]);
    }

    #[test]
    fn a_removed_job_frees_its_id_for_another_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        store.record(&job("wcs-r")).unwrap();
        let first = store.dir("wcs-r").record().unwrap().record_id;
        store.dir("wcs-r").seal().unwrap();
        assert!(store.delete("wcs-r").unwrap());
        assert!(!store.delete("wcs-r").unwrap(), "already gone");
        assert!(store.ids().unwrap().is_empty());
        assert!(store.dir("wcs-r").seal().is_err(), "no record to seal");
        assert_eq!(store.record(&job("wcs-r")).unwrap(), Recorded::New);
        let again = store.dir("wcs-r");
        assert_ne!(again.record().unwrap().record_id, first);
        assert!(!again.is_sealed());
        let names: Vec<_> = std::fs::read_dir(store.root()).unwrap().collect();
        assert_eq!(names.len(), 1, "nothing is left aside");
    }

    #[test]
    fn completion_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        store.record(&job("wcs-c")).unwrap();
        let jd = store.dir("wcs-c");
        let done = JobCompletion {
            terminate_reason: TerminateReason::TaskFailed,
            failed_task: Some("3".into()),
            end_time: OffsetDateTime::UNIX_EPOCH,
        };
        jd.complete(&done).unwrap();
        assert_eq!(jd.completion(), Some(done));
        assert_eq!(
            serde_json::to_value(jd.completion().unwrap()).unwrap()["terminateReason"],
            "TaskFailed"
        );
    }
}
