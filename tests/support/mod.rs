//! Shared support for integration tests: a fake Batch service and a dedicated Azurite.
// Each test binary uses only part of the support code.
#![allow(dead_code)]

pub mod azurite;
pub mod fake_batch;
