//! Azure Batch REST client: authentication (Shared Key, Entra ID), wire models, errors and retries.
//! There is no Rust SDK for the Batch data plane, so the few calls we need are written here.

pub mod models;
