//! A tally of one or more pieces of input: totals and a word -> count table, mergeable so that
//! each worker thread keeps its own and they are combined at the end.

use crate::options::{Mode, Options};
use crate::sink::Sink;
use crate::table::{BATCH, WordTable};
use crate::unicode;

struct Batcher<'a, 't> {
    table: &'t mut WordTable,
    /// The piece every borrowed word lies in.
    text: &'a [u8],
    batch: [&'a [u8]; BATCH],
    queued: usize,
    words: u64,
}

impl Batcher<'_, '_> {
    fn flush(&mut self) {
        if self.queued == BATCH {
            self.table.add_batch(self.text, &self.batch);
        } else {
            self.table.add_each(self.text, &self.batch[..self.queued]);
        }
        self.queued = 0;
    }
}

impl<'a> Sink<'a> for Batcher<'a, '_> {
    #[inline(always)]
    fn borrowed(&mut self, word: &'a [u8]) {
        self.words += 1;
        self.batch[self.queued] = word;
        self.queued += 1;
        if self.queued == BATCH {
            self.flush();
        }
    }

    fn transient(&mut self, word: &[u8]) {
        self.words += 1;
        self.table.add(word, 1);
    }
}

/// Counts for the pieces seen so far.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Bytes of (decompressed) input.
    pub bytes: u64,
    /// Line feed bytes.
    pub newlines: u64,
    /// Words, with repetitions.
    pub words: u64,
    table: WordTable,
}

impl Tally {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one piece. The piece must begin and end where words cannot straddle (the start or
    /// end of the input, or a point chosen by [`crate::split::cut_point`]). The piece may be
    /// modified (case folding happens in place).
    pub fn add_piece(&mut self, piece: &mut [u8], options: Options) {
        self.bytes += piece.len() as u64;
        self.newlines += count_newlines(piece);
        // Unicode mode lower-cases ASCII here too: the non-ASCII parts are fully lower-cased
        // later, which gives the same words (ASCII letters are cased in either case).
        if options.lowercase || options.mode == Mode::Unicode {
            piece.make_ascii_lowercase();
        }
        let piece: &[u8] = piece;
        let mut sink = Batcher {
            table: &mut self.table,
            text: piece,
            batch: [&[]; BATCH],
            queued: 0,
            words: 0,
        };
        match options.mode {
            Mode::Whitespace => crate::scan::whitespace_words(piece, |w| sink.borrowed(w)),
            Mode::Unicode => unicode::words(piece, &mut sink),
        }
        sink.flush();
        let words = sink.words;
        self.words += words;
    }

    /// Adds `n` occurrences of `word`, a word as counting leaves it (lower-cased as the options
    /// say), to the table and the word total: how partial results are summed.
    pub fn add_count(&mut self, word: &[u8], n: u64) {
        self.words += n;
        self.table.add(word, n);
    }

    /// Adds another tally into this one.
    pub fn merge(&mut self, other: Tally) {
        self.bytes += other.bytes;
        self.newlines += other.newlines;
        self.words += other.words;
        let (mut big, small) = if other.table.len() > self.table.len() {
            (other.table, std::mem::take(&mut self.table))
        } else {
            (std::mem::take(&mut self.table), other.table)
        };
        small.for_each(|word, n| big.add(word, n));
        self.table = big;
    }

    /// Number of distinct words.
    pub fn unique_words(&self) -> usize {
        self.table.len()
    }

    /// How often `word` was seen.
    pub fn get(&self, word: &[u8]) -> u64 {
        self.table.get(word)
    }

    /// The (word, count) pairs, in no particular order.
    pub fn into_counts(self) -> Vec<(Box<[u8]>, u64)> {
        let mut counts = Vec::with_capacity(self.table.len());
        self.table.into_each(|w, n| counts.push((w.into(), n)));
        counts
    }
}

fn count_newlines(piece: &[u8]) -> u64 {
    // Written so that it vectorises: a plain comparison sum over fixed-size blocks.
    let mut total = 0u64;
    let mut blocks = piece.chunks_exact(255);
    for block in &mut blocks {
        let mut n = 0u8;
        for &b in block {
            n += (b == b'\n') as u8;
        }
        total += n as u64;
    }
    total + blocks.remainder().iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_counted_across_blocks() {
        let mut v = vec![b'x'; 1000];
        for i in (0..1000).step_by(7) {
            v[i] = b'\n';
        }
        let expected = v.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(count_newlines(&v), expected);
    }

    #[test]
    fn merge_adds_counts() {
        let opts = Options {
            mode: Mode::Whitespace,
            lowercase: false,
        };
        let mut a = Tally::new();
        a.add_piece(&mut b"x y x\n".to_vec(), opts);
        let mut b = Tally::new();
        b.add_piece(&mut b"y z".to_vec(), opts);
        a.merge(b);
        assert_eq!(
            (a.bytes, a.newlines, a.words, a.unique_words()),
            (9, 1, 5, 3)
        );
        assert_eq!((a.get(b"x"), a.get(b"y"), a.get(b"z")), (2, 2, 1));
    }
}
