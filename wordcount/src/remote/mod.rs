//! Reading a blob over HTTP(S) (`--url`): Get Blob Properties once, then parallel ranged Get Blob
//! calls pinned to one version of the blob by `If-Match`, each retried where it stopped.
//!
//! Built only with the `http` feature; HTTPS needs the `tls` feature too.

mod address;
mod blob;
mod parallel;
mod resolve;

pub use address::{BlobUrl, redact};
pub use blob::Blob;
pub use parallel::ParallelReader;
