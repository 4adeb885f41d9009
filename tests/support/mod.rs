//! Test support shared by the integration tests: a fake Azure Batch service on loopback.

pub mod fake_batch;
