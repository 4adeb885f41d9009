//! The reference model of a count: the plainest code that gives the same words as the real
//! pipeline, for the property tests (`tests/properties.rs`) and the fuzz target `wordcount`
//! (`fuzz/`) to compare against.
//!
//! It reads the whole input at once, with no chunking, threads, fast paths or word table: the
//! whitespace mode is a `split`, the unicode mode the UAX #29 segmenter straight from
//! `unicode-segmentation`, with none of [`crate::unicode`]'s code. It is public but hidden from the
//! documentation: the binary never calls it, so the linker drops it from `wordcount` (the release
//! binary is the same size with or without this module).

use crate::options::{Mode, Options};
use std::collections::HashMap;
use unicode_segmentation::UnicodeSegmentation;

/// What the model finds in a whole input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    pub bytes: u64,
    /// Line feeds, plus one if the input does not end with a line feed (as [`crate::Counted`]).
    pub lines: u64,
    /// Words, with repetitions.
    pub words: u64,
    /// (word, count) pairs, sorted by word bytes.
    pub counts: Vec<(Box<[u8]>, u64)>,
}

/// Counts `data` the simple way.
pub fn count(data: &[u8], options: Options) -> Counts {
    let mut table: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut words = 0;
    let mut add = |word: Vec<u8>| {
        *table.entry(word).or_default() += 1;
        words += 1;
    };
    match options.mode {
        Mode::Whitespace => {
            for word in data.split(|b| matches!(b, 9..=13 | 32)) {
                if word.is_empty() {
                    continue;
                }
                add(if options.lowercase {
                    word.to_ascii_lowercase()
                } else {
                    word.to_vec()
                });
            }
        }
        // Invalid UTF-8 separates words; a segment is a word when it holds a letter or digit.
        Mode::Unicode => {
            for chunk in data.utf8_chunks() {
                for segment in chunk.valid().split_word_bounds() {
                    if segment.chars().any(char::is_alphanumeric) {
                        add(segment.to_lowercase().into_bytes());
                    }
                }
            }
        }
    }
    let mut counts: Vec<(Box<[u8]>, u64)> = table.into_iter().map(|(w, n)| (w.into(), n)).collect();
    counts.sort();
    let newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    Counts {
        bytes: data.len() as u64,
        lines: newlines + u64::from(data.last().is_some_and(|&b| b != b'\n')),
        words,
        counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_both_modes() {
        let text = "Don't  stop\n\u{c9}t\u{c9} été\tdon't".as_bytes();
        let unicode = count(text, Options::default());
        let words: Vec<(&[u8], u64)> = unicode.counts.iter().map(|(w, n)| (&w[..], *n)).collect();
        assert_eq!(
            words,
            [(&b"don't"[..], 2), (&b"stop"[..], 1), ("été".as_bytes(), 2)]
        );
        assert_eq!((unicode.bytes, unicode.lines, unicode.words), (29, 2, 5));
        let whitespace = count(
            text,
            Options {
                mode: Mode::Whitespace,
                lowercase: false,
            },
        );
        assert_eq!(whitespace.words, 5);
        assert_eq!(whitespace.counts.len(), 5);
    }
}
