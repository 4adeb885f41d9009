//! Counting one part of an input (`--range START..END --partial`) into a partial result.

use crate::options::Options;
use crate::partial::{self, Header};
use crate::pipeline::{Config, count_reader};
use crate::range::{OwnedLines, Range};
use std::io::{self, Read};

/// The first bytes of a gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What is known of the whole input before a part is counted.
#[derive(Clone, Debug)]
pub struct Whole {
    pub size: u64,
    /// The eTag the reads were pinned to; empty for a local file.
    pub etag: String,
    pub source: String,
    /// The input's first two bytes (fewer if it is shorter).
    pub head: Vec<u8>,
}

/// Why a part cannot be counted, before any reading.
pub fn check(range: Range, whole: &Whole) -> Result<(), String> {
    if whole.head.starts_with(&GZIP_MAGIC) {
        return Err(
            "the input is gzip-compressed, and a gzip stream cannot be split into \
                    ranges: count it whole"
                .into(),
        );
    }
    if range.end > whole.size {
        return Err(format!(
            "range {range} goes past the end of the input ({} bytes)",
            whole.size
        ));
    }
    Ok(())
}

/// A counted part: its header, and its word table sorted by word.
pub struct Part {
    pub header: Header,
    pub counts: Vec<(Box<[u8]>, u64)>,
}

impl Part {
    pub fn write(&self, out: impl io::Write) -> io::Result<()> {
        partial::write(&self.header, &self.counts, out)
    }
}

/// Counts the lines `range` owns; `input` yields the input from `range.read_from()` on.
pub fn count(
    input: impl Read,
    range: Range,
    whole: &Whole,
    options: Options,
    config: Config,
) -> io::Result<Part> {
    let mut lines = OwnedLines::new(input, range);
    let counted = count_reader(&mut lines, options, config)?;
    let owned = lines.owned();
    if owned.len() != counted.tally.bytes || owned.end > whole.size {
        return Err(io::Error::other(format!(
            "the input ended early or changed: the part owns bytes {owned} of {}",
            whole.size
        )));
    }
    let words = counted.tally.words;
    let mut counts = counted.tally.into_counts();
    counts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(Part {
        header: Header {
            options: partial::normalize(options),
            range,
            size: whole.size,
            etag: whole.etag.clone(),
            source: whole.source.clone(),
            owned,
            lines: counted.lines,
            words,
            distinct: counts.len() as u64,
        },
        counts,
    })
}
