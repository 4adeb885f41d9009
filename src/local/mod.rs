//! The local pipeline: a runner that executes Batch task specifications on this machine, and the
//! `dev` command that wires Azurite, the handler and a blob feed together.

pub mod dev;
pub mod feed;
pub mod paths;
pub mod put;
pub mod runner;

pub use runner::{Engine, LocalRunner, LocalRunnerOptions, RunnerEvent, UploadedOutput};
