//! Streaming word-frequency counting for blob2batch's Batch tasks.
//!
//! The input is read in chunks that always end at a point where no word can straddle (see
//! [`split`]), the chunks are counted in parallel into per-thread tallies ([`tally`]), and the
//! tallies are merged and rendered as the JSON document of the project's design, or as TSV
//! ([`report`]). The command-line front end lives in [`cli`]. The hidden module `reference` is the
//! simple model that the property tests and the fuzz target compare the pipeline against.

pub mod cli;
pub mod input;
mod options;
pub mod pipeline;
#[doc(hidden)]
pub mod reference;
pub mod report;
pub mod scan;
pub mod sink;
pub mod split;
mod table;
pub mod tally;
pub mod unicode;

pub use options::{Mode, Options};
pub use pipeline::{Config, Counted, count_reader};
pub use report::Report;
pub use tally::Tally;
