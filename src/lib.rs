//! blob2batch: an Azure Functions custom handler that turns Event Grid `BlobCreated` events into
//! Azure Batch tasks running the word-count container, and a local pipeline that runs the same
//! tasks on this machine.
//!
//! The binary (`src/main.rs`) only parses the command line; everything else lives here so that
//! tests and benchmarks drive the same code the binary runs. Data flows one way: `http` decodes a
//! request, `event` and `filter` read the events, `plan` turns a blob version into a
//! `task_spec`, `intake` submits it through a `runner` (`batch` or `local`); `config` and
//! `startup` wire it together (`commands` holds `dev` and `put`), `storage` reaches blobs.

pub mod account_key;
pub mod batch;
pub mod commands;
pub mod config;
pub mod context;
pub mod deadletter;
pub(crate) mod dry_run;
pub mod duration;
pub(crate) mod entra;
pub mod error_chain;
pub mod event;
pub(crate) mod fail_fast;
pub mod filter;
pub mod headers;
pub mod http;
pub(crate) mod http_client;
pub(crate) mod intake;
pub mod local;
pub mod loopback;
pub(crate) mod per_item;
pub mod plan;
pub mod reconcile;
pub mod results;
pub mod runner;
pub mod shutdown;
pub mod size;
pub mod startup;
pub mod storage;
mod sync;
pub mod task_spec;
pub mod telemetry;
pub mod workloads;
