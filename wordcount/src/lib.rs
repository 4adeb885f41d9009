//! Streaming word-frequency counting for blob2batch's Batch tasks.
//!
//! The input is read in chunks that always end at a point where no word can straddle (see
//! [`split`]), the chunks are counted in parallel into per-thread tallies ([`tally`]), and the
//! tallies are merged and rendered as the JSON document of the project's design, or as TSV
//! ([`report`]). The command-line front end lives in [`cli`].

pub mod cli;
pub mod input;
pub mod pipeline;
pub mod report;
pub mod scan;
pub mod sink;
pub mod split;
mod table;
pub mod tally;
pub mod unicode;

/// How words are delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// UAX #29 word segments that contain a letter or digit, lower-cased.
    Unicode,
    /// Runs of bytes between ASCII whitespace (0x09-0x0D, 0x20), kept as they are.
    Whitespace,
}

impl Mode {
    /// The name used on the command line and in the JSON document.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Unicode => "unicode",
            Mode::Whitespace => "whitespace",
        }
    }
}

/// What counts as a word and how it is normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub mode: Mode,
    /// Fold ASCII case in whitespace mode (unicode mode always lower-cases fully).
    pub lowercase: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Unicode,
            lowercase: false,
        }
    }
}

pub use pipeline::{Config, Counted, count_reader};
pub use report::Report;
pub use tally::Tally;
