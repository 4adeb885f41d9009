//! The local runner: executes Batch task specifications on this machine, the way a Batch node
//! would, so that the local pipeline (`blob2batch dev`) proves the Batch one.
//!
//! `runner` accepts and schedules tasks, `task_dir` keeps their records, `resources` fetches
//! their resource files, `engine` runs their command, `outputs` uploads their results, `paths`
//! holds Batch's path rules, `failure` the typed reason a task failed.

pub mod engine;
pub mod failure;
pub mod outputs;
pub mod paths;
mod resources;
pub mod runner;
pub mod task_dir;

pub use engine::Engine;
pub use failure::{FailureCategory, FailureCode, TaskFailure};
pub use outputs::UploadedOutput;
pub use runner::{
    LocalRunner, LocalRunnerError, LocalRunnerOptions, LocalSubmitter, Phases, RunnerEvent,
};
