//! Fuzz target: the word counter's pipeline against its reference model.
//!
//! Input: three bytes of tuning, then the text. Byte 0 picks the counting threads (1-4) and the
//! options (unicode; whitespace; whitespace lower-cased), byte 1 the chunk size (1-64 bytes), byte
//! 2 the sizes of the reads the pipeline gets (two sizes of 1-16 bytes, alternating), so that
//! chunks and reads end anywhere, inside a multi-byte character too.
//!
//! Property: `count_reader` gives the same bytes, lines, words and (word, count) table as
//! `wordcount::reference::count` over the whole text at once.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{self, Read};
use wordcount::{Config, Mode, Options, count_reader, reference};

fuzz_target!(|data: &[u8]| {
    let Some((&[tuning, chunk, reads], text)) = data.split_first_chunk::<3>() else {
        return;
    };
    let threads = usize::from(tuning & 3) + 1;
    let options = match (tuning >> 2) % 3 {
        0 => Options {
            mode: Mode::Unicode,
            lowercase: false,
        },
        1 => Options {
            mode: Mode::Whitespace,
            lowercase: false,
        },
        _ => Options {
            mode: Mode::Whitespace,
            lowercase: true,
        },
    };
    let config = Config {
        threads,
        chunk_size: usize::from(chunk % 64) + 1,
    };
    let reader = Choppy {
        data: text,
        sizes: [usize::from(reads & 15) + 1, usize::from(reads >> 4) + 1],
        reads: 0,
    };

    let counted = count_reader(reader, options, config).expect("reading a slice cannot fail");
    let model = reference::count(text, options);
    assert_eq!(counted.tally.bytes, model.bytes);
    assert_eq!(counted.lines, model.lines);
    assert_eq!(counted.tally.words, model.words);
    let mut counts = counted.tally.into_counts();
    counts.sort();
    assert_eq!(counts, model.counts);
});

/// Hands out the text in reads of the given sizes, in turn.
struct Choppy<'a> {
    data: &'a [u8],
    sizes: [usize; 2],
    reads: usize,
}

impl Read for Choppy<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.sizes[self.reads % 2]
            .min(out.len())
            .min(self.data.len());
        self.reads += 1;
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
