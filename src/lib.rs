//! blob2batch: an Azure Functions custom handler that turns Event Grid `BlobCreated` events into
//! Azure Batch tasks running the word-count container, and a local pipeline that runs the same
//! tasks on this machine.
//!
//! The binary (`src/main.rs`) only parses the command line; everything else lives here so that
//! tests and benchmarks drive the same code the binary runs.

pub mod app;
pub mod batch;
pub mod config;
pub mod duration;
pub mod error;
pub mod event;
pub mod filter;
pub mod host;
pub mod intake;
pub mod local;
pub mod loopback;
pub mod plan;
pub mod runner;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod webhook;
