//! Streaming word-frequency counting for blob2batch's Batch tasks.
//!
//! The input is read in chunks that always end at a point where no word can straddle (see
//! [`split`]), the chunks are counted in parallel into per-thread tallies ([`tally`]), and the
//! tallies are merged and rendered as the JSON document of the project's design, or as TSV
//! ([`report`]). The command-line front end lives in [`cli`] and [`commands`]. The hidden module
//! `reference` is the simple model that the property tests and the fuzz targets compare the
//! pipeline against.
//!
//! One large input can be split across tasks: each counts the lines that start in its byte range
//! ([`range`], [`part`]) into a partial result ([`partial`]), and [`merge`] sums those into the
//! document one run over the whole input gives. With the `http` feature, [`remote`] reads a blob
//! over HTTP(S) with parallel range reads.

pub mod cli;
pub mod commands;
pub mod input;
pub mod merge;
mod options;
pub mod part;
pub mod partial;
pub mod pipeline;
pub mod range;
#[doc(hidden)]
pub mod reference;
#[cfg(feature = "http")]
pub mod remote;
pub mod report;
pub mod scan;
pub mod sink;
pub mod split;
mod table;
pub mod tally;
pub mod tuning;
pub mod unicode;

pub use options::{Mode, Options};
pub use pipeline::{Config, Counted, count_reader};
pub use report::Report;
pub use tally::Tally;
