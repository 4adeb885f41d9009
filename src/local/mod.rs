//! The local runner: executes Batch task specifications on this machine, the way a Batch node
//! would, so that the local pipeline (`blob2batch dev`) proves the Batch one.
//!
//! `runner` accepts and schedules tasks, `task_dir` and `job_dir` keep their records (`records`
//! reads and removes them for the commands), `split` and `job_runs` run a split blob's job as
//! Batch runs it, `resources` fetches resource files, `engine` runs a task's command, `outputs`
//! uploads its results, `paths` holds Batch's path rules, `failure` the typed reason a task
//! failed, `events` what the runner tells whoever watches.

pub mod engine;
pub mod events;
pub mod failure;
pub mod job_dir;
mod job_runs;
pub mod outputs;
pub mod paths;
mod records;
mod resources;
pub mod runner;
mod split;
pub mod task_dir;

pub use engine::Engine;
pub use events::{Phases, RunnerEvent};
pub use failure::{FailureCategory, FailureCode, TaskFailure};
pub use job_dir::TerminateReason;
pub use outputs::UploadedOutput;
pub use runner::{LocalRunner, LocalRunnerError, LocalRunnerOptions, LocalSubmitter};

#[cfg(test)]
mod split_tests;
