//! The integration tests, in one binary (one link of the crate and its dependencies instead of
//! one per file): a module per area. `tests/no_secrets_in_logs.rs` is the one other binary, since
//! it owns the process-wide log subscriber.

#[path = "../support/mod.rs"]
mod support;

mod batch_client;
mod delegation;
mod e2e_dev;
mod e2e_dev_lifecycle;
mod e2e_dev_split;
mod e2e_runner;
mod e2e_storage;
mod faults;
mod fuzz_regressions;
mod golden;
mod handler;
mod hostile_connections;
mod hostile_input;
mod ops;
mod ops_local;
mod routes;
mod serve_process;
mod split_batch;
mod split_ops;
mod split_plan;
mod storage_failures;
mod workloads;
mod workloads_schema;
