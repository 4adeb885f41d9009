//! How a blob is read over HTTP: range reads in flight, their size, and the time-out. It sits
//! outside `remote` so that the command line parses these flags in builds without HTTP too.

use std::time::Duration;

/// Range reads and their limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Range reads in flight at once.
    pub connections: usize,
    /// Bytes per range read.
    pub block_size: usize,
    /// Longest wait for a connection, a response, or the next bytes of a body.
    pub timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            connections: 4,
            block_size: 8 << 20,
            timeout: Duration::from_secs(60),
        }
    }
}
