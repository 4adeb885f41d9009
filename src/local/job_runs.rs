//! The jobs of their own (split blobs') a runner executes: which of their tasks start next,
//! which stop, when a job ends (by the rules in `split`).
//!
//! The records on disk are the truth (see `job_dir`): a job is loaded from them when the runner
//! opens (an unfinished task runs again, a blocked one waits again, a job whose failed task did
//! not get to end it is ended now), when the runner records one, and when another process
//! records one or adds to it (`reconcile`). This keeps what the runner needs between two looks,
//! and hands back what the runner is to do as [`Changes`]; it starts nothing itself.

use std::collections::{BTreeMap, HashMap};
use std::io;

use time::OffsetDateTime;
use tokio::sync::watch;

use super::job_dir::{JobCompletion, JobDir, JobRecord, JobStore, TerminateReason};
use super::split::{JobTask, Progress, Step, ends_on_failure, next_step};
use super::task_dir::{RunResult, ScanGate, TaskDir};
use crate::task_spec::{JobSpec, TaskSpec};

/// Why a task is told to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Its job ended: another task failed.
    JobEnded,
    /// Its record was removed.
    Removed,
}

/// Tells a launched task to stop (it does at its next step: before it starts, or by killing
/// its command).
pub(crate) type StopSender = watch::Sender<Option<StopReason>>;
pub(crate) type StopSignal = watch::Receiver<Option<StopReason>>;

/// A task of a job that is to start.
pub(crate) struct Launch {
    /// The job's id, as submitted.
    pub job: String,
    /// The job's record: a task of an earlier record of the same id reports to nobody.
    pub record_id: String,
    pub task: TaskSpec,
    pub dir: TaskDir,
    pub stop: StopSignal,
}

/// A job that ended now.
pub(crate) struct Completed {
    pub job: String,
    pub display_name: Option<String>,
    pub completion: JobCompletion,
    pub succeeded: usize,
    pub failed: usize,
    pub unfinished: usize,
}

/// What the runner is to do after a look or an event.
#[derive(Default)]
pub(crate) struct Changes {
    /// Tasks seen for the first time and not finished: (job id, task).
    pub received: Vec<(String, TaskSpec)>,
    pub launch: Vec<Launch>,
    pub completed: Vec<Completed>,
}

/// How a launched task ended, for its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskEnd {
    Succeeded,
    Failed,
    /// Stopped before it started, or its record went away: nothing was recorded.
    NotRun,
}

/// The jobs of a work directory (keyed by lower-case id).
pub(crate) struct JobRuns {
    store: JobStore,
    jobs: HashMap<String, JobRun>,
    gate: ScanGate,
}

struct JobRun {
    dir: JobDir,
    record_id: String,
    spec: JobSpec,
    sealed: bool,
    completed: bool,
    /// By lower-case id; emptied once the job has ended.
    tasks: BTreeMap<String, JobTask>,
    /// The launched tasks' stop senders, by lower-case id.
    stops: HashMap<String, StopSender>,
    tasks_gate: ScanGate,
}

impl JobRuns {
    /// Every job of the store, and what to do about them now.
    pub(crate) fn open(store: JobStore) -> io::Result<(JobRuns, Changes)> {
        let mut runs = JobRuns {
            store,
            jobs: HashMap::new(),
            gate: ScanGate::default(),
        };
        let mut changes = Changes::default();
        for id in runs.store.ids()? {
            runs.refresh_one(&id, &mut changes);
        }
        runs.gate.changed(runs.store.root());
        Ok((runs, changes))
    }

    /// Looks at job `id` on disk again: after this runner recorded (some of) it, say.
    pub(crate) fn refresh(&mut self, id: &str) -> Changes {
        let mut changes = Changes::default();
        self.refresh_one(&id.to_ascii_lowercase(), &mut changes);
        changes
    }

    /// Looks for what other processes did: jobs recorded or removed, tasks added to active
    /// jobs, jobs sealed.
    pub(crate) fn scan(&mut self) -> Changes {
        let mut changes = Changes::default();
        let keys: Vec<String> = if self.gate.changed(self.store.root()) {
            let Ok(on_disk) = self.store.ids() else {
                return changes;
            };
            let gone: Vec<String> = self
                .jobs
                .keys()
                .filter(|k| on_disk.binary_search(k).is_err())
                .cloned()
                .collect();
            gone.into_iter().chain(on_disk).collect()
        } else {
            self.jobs
                .iter()
                .filter(|(_, run)| !run.completed)
                .map(|(key, _)| key.clone())
                .collect()
        };
        for key in keys {
            self.refresh_one(&key, &mut changes);
        }
        changes
    }

    /// Records how a launched task ended and decides what follows: a failure ends its job
    /// (when the job says so), a success may unblock a dependent or complete the job.
    pub(crate) fn finished(
        &mut self,
        job: &str,
        record_id: &str,
        task: &str,
        outcome: TaskEnd,
    ) -> Changes {
        let mut changes = Changes::default();
        let Some(run) = self.jobs.get_mut(&job.to_ascii_lowercase()) else {
            return changes;
        };
        if run.record_id != record_id {
            return changes;
        }
        let key = task.to_ascii_lowercase();
        run.stops.remove(&key);
        let progress = match outcome {
            TaskEnd::Succeeded => Progress::Succeeded,
            TaskEnd::Failed => Progress::Failed,
            TaskEnd::NotRun => Progress::Waiting,
        };
        if let Some(entry) = run.tasks.get_mut(&key) {
            entry.progress = progress;
        }
        if run.completed || outcome == TaskEnd::NotRun {
            return changes;
        }
        if outcome == TaskEnd::Failed && ends_on_failure(&run.spec) {
            run.end(
                TerminateReason::TaskFailed,
                Some(task.to_string()),
                &mut changes,
            );
        } else {
            run.settle(&mut changes);
        }
        changes
    }

    /// Forgets job `id`, stopping its launched tasks: its record is about to be removed.
    pub(crate) fn forget(&mut self, id: &str) {
        if let Some(run) = self.jobs.remove(&id.to_ascii_lowercase()) {
            run.stop_all(StopReason::Removed);
        }
    }

    /// Loads, updates, replaces or drops the job `key` as its record on disk says, then
    /// settles it.
    fn refresh_one(&mut self, key: &str, changes: &mut Changes) {
        let dir = self.store.dir(key);
        let record = dir.record().ok();
        let same = match (self.jobs.get(key), &record) {
            (Some(run), Some(record)) => run.record_id == record.record_id,
            _ => false,
        };
        if !same && let Some(old) = self.jobs.remove(key) {
            // Removed, or removed and recorded again: what ran for the old record stops.
            old.stop_all(StopReason::Removed);
        }
        match (self.jobs.get_mut(key), record) {
            (Some(run), _) => run.update(changes),
            (None, Some(record)) => {
                let mut run = JobRun::new(dir, record);
                run.update(changes);
                self.jobs.insert(key.to_string(), run);
            }
            (None, None) => return,
        }
        if let Some(run) = self.jobs.get_mut(key) {
            run.settle(changes);
        }
    }
}

impl JobRun {
    fn new(dir: JobDir, record: JobRecord) -> JobRun {
        JobRun {
            completed: dir.is_completed(),
            sealed: false,
            dir,
            record_id: record.record_id,
            spec: record.spec,
            tasks: BTreeMap::new(),
            stops: HashMap::new(),
            tasks_gate: ScanGate::default(),
        }
    }

    /// Reads what is new on disk: the seal, tasks recorded since the last look.
    fn update(&mut self, changes: &mut Changes) {
        if self.completed {
            return;
        }
        // The seal first: it is written after the last task, so a listing made after it has
        // seen the seal holds every task.
        self.sealed = self.sealed || self.dir.is_sealed();
        let store = self.dir.tasks();
        if !self.tasks_gate.changed(store.root()) {
            return;
        }
        let Ok(ids) = store.ids() else { return };
        for id in ids {
            if self.tasks.contains_key(&id) {
                continue;
            }
            let task_dir = store.dir(&id);
            let Ok(spec) = task_dir.spec() else { continue };
            let progress = match task_dir.result().map(|r| r.result) {
                Some(RunResult::Success) => Progress::Succeeded,
                Some(RunResult::Failure) => Progress::Failed,
                None => {
                    changes.received.push((self.spec.id.clone(), spec.clone()));
                    Progress::Waiting
                }
            };
            self.tasks.insert(id, JobTask { spec, progress });
        }
    }

    /// Takes the job's next step.
    fn settle(&mut self, changes: &mut Changes) {
        if self.completed {
            return;
        }
        match next_step(&self.spec, self.sealed, &self.tasks) {
            Step::Terminate { failed_task } => {
                let id = self.tasks[&failed_task].spec.id.clone();
                self.end(TerminateReason::TaskFailed, Some(id), changes);
            }
            Step::Complete => self.end(TerminateReason::AllTasksComplete, None, changes),
            Step::Launch(keys) => {
                for key in keys {
                    let (stop, signal) = watch::channel(None);
                    let entry = self.tasks.get_mut(&key).expect("a listed task");
                    entry.progress = Progress::Launched;
                    self.stops.insert(key.clone(), stop);
                    changes.launch.push(Launch {
                        job: self.spec.id.clone(),
                        record_id: self.record_id.clone(),
                        task: entry.spec.clone(),
                        dir: self.dir.tasks().dir(&key),
                        stop: signal,
                    });
                }
            }
        }
    }

    /// Ends the job: its completion recorded, its launched tasks stopped (those not started
    /// never run).
    fn end(&mut self, reason: TerminateReason, failed_task: Option<String>, changes: &mut Changes) {
        let completion = JobCompletion {
            terminate_reason: reason,
            failed_task,
            end_time: OffsetDateTime::now_utc(),
        };
        if let Err(error) = self.dir.complete(&completion) {
            // It ends here all the same; the next start decides again from the task records.
            tracing::warn!(job_id = %self.spec.id, %error, "cannot record the job's completion");
        }
        self.completed = true;
        let count =
            |p: fn(&Progress) -> bool| self.tasks.values().filter(|t| p(&t.progress)).count();
        changes.completed.push(Completed {
            job: self.spec.id.clone(),
            display_name: self.spec.display_name.clone(),
            succeeded: count(|p| *p == Progress::Succeeded),
            failed: count(|p| *p == Progress::Failed),
            unfinished: count(|p| !p.is_done()),
            completion,
        });
        let stops = std::mem::take(&mut self.stops);
        for stop in stops.into_values() {
            stop.send_replace(Some(StopReason::JobEnded));
        }
        self.tasks.clear();
    }

    fn stop_all(self, reason: StopReason) {
        for stop in self.stops.into_values() {
            stop.send_replace(Some(reason));
        }
    }
}
