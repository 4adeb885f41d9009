//! What counts as a word: the [`Mode`] and the [`Options`] of a count.
//!
//! These types sit in a module of their own, re-exported at the crate root, so that the modules
//! that use them depend on this one rather than on the crate root, which in turn only declares
//! the modules and re-exports their main types.

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
