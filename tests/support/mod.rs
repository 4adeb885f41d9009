//! Shared support for integration tests: the handler on a free port, a fake Batch service, a dedicated Azurite, the `dev`
//! pipeline as a child process, and storage helpers only tests need.
// Each test binary uses only part of the support code.
#![allow(dead_code)]

pub mod app;
pub mod azurite;
pub mod azurite_oauth;
pub mod dev;
pub mod events;
pub mod fake_batch;
pub mod settings;
pub mod storage;
pub mod storage_proxy;
