//! Property tests: chunking and threading never change a count, both modes match the reference
//! model (`wordcount::reference`, which the fuzz target `wordcount` shares), the unicode fast path
//! matches the segmenter, and the JSON is always sound.

use proptest::prelude::*;
use std::io::{self, Read};
use wordcount::{Config, Counted, Mode, Options, Report, Tally, count_reader, reference, unicode};

/// Fragments chosen to exercise every UAX #29 rule the splitter and the fast path must respect,
/// plus invalid and truncated UTF-8.
const FRAGMENTS: &[&[u8]] = &[
    b"a",
    b"B",
    b"z",
    b"Q",
    b"3",
    b"0",
    b".",
    b"'",
    b":",
    b",",
    b";",
    b"_",
    b"-",
    b"\"",
    b" ",
    b" ",
    b"\n",
    b"\r",
    b"\t",
    b"\x0b",
    b"\x0c",
    b"\0",
    b"!",
    "é".as_bytes(),
    "É".as_bytes(),
    "Σ".as_bytes(),
    "ß".as_bytes(),
    "İ".as_bytes(),
    "\u{301}".as_bytes(),
    "\u{93e}".as_bytes(),
    "\u{200d}".as_bytes(),
    "\u{ad}".as_bytes(),
    "👍".as_bytes(),
    "🏽".as_bytes(),
    "🇫".as_bytes(),
    "🇷".as_bytes(),
    "日".as_bytes(),
    "本".as_bytes(),
    "ア".as_bytes(),
    "カ".as_bytes(),
    "א".as_bytes(),
    "ב".as_bytes(),
    "\u{2019}".as_bytes(),
    "\u{ff0e}".as_bytes(),
    "\u{85}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{3000}".as_bytes(),
    "٣".as_bytes(),
    "½".as_bytes(),
    b"\xff",
    b"\xe2\x82",
    b"\xc3",
    b"\x80",
];

fn text() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..120).prop_map(|parts| parts.concat())
}

fn ascii_text() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(&b"aZx09_.':,;- \n\r\t\"!"[..]), 0..200)
}

fn options() -> impl Strategy<Value = Options> {
    prop_oneof![
        Just(Options {
            mode: Mode::Unicode,
            lowercase: false
        }),
        Just(Options {
            mode: Mode::Whitespace,
            lowercase: false
        }),
        Just(Options {
            mode: Mode::Whitespace,
            lowercase: true
        }),
    ]
}

/// Hands out the data in reads of the given sizes (cycled), so that the pipeline sees arbitrary
/// read boundaries, inside multi-byte characters too.
struct Choppy {
    data: Vec<u8>,
    pos: usize,
    sizes: Vec<usize>,
    next: usize,
}

impl Read for Choppy {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        let n = want.min(out.len()).min(self.data.len() - self.pos);
        out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn sorted(tally: Tally) -> Vec<(Box<[u8]>, u64)> {
    let mut v = tally.into_counts();
    v.sort();
    v
}

fn sequential(data: &[u8], options: Options) -> Tally {
    let mut tally = Tally::new();
    tally.add_piece(&mut data.to_vec(), options);
    tally
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn chunked_parallel_equals_reference_model(
        data in text(),
        options in options(),
        sizes in prop::collection::vec(1usize..40, 1..8),
        chunk_size in 1usize..48,
        threads in 1usize..4,
    ) {
        let model = reference::count(&data, options);
        let reader = Choppy { data: data.clone(), pos: 0, sizes, next: 0 };
        let counted = count_reader(reader, options, Config { threads, chunk_size }).unwrap();
        prop_assert_eq!(counted.lines, model.lines);
        prop_assert_eq!(counted.tally.bytes, model.bytes);
        prop_assert_eq!(counted.tally.words, model.words);
        prop_assert_eq!(sorted(counted.tally), model.counts);
    }

    #[test]
    fn manual_pieces_equal_whole(data in text(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        // Cut wherever the splitter allows, starting from arbitrary buffer ends.
        let options = Options { mode: Mode::Unicode, lowercase: false };
        let mut tally = Tally::new();
        let mut start = 0;
        let mut ends: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
        ends.sort();
        for end in ends {
            if end <= start { continue; }
            if let Some(p) = wordcount::split::cut_point(&data[start..end], Mode::Unicode) {
                tally.add_piece(&mut data[start..start + p].to_vec(), options);
                start += p;
            }
        }
        tally.add_piece(&mut data[start..].to_vec(), options);
        prop_assert_eq!(sorted(tally), sorted(sequential(&data, options)));
    }

    #[test]
    fn whitespace_matches_reference_model(data in prop::collection::vec(any::<u8>(), 0..300), lowercase: bool) {
        let options = Options { mode: Mode::Whitespace, lowercase };
        let model = reference::count(&data, options);
        let tally = sequential(&data, options);
        prop_assert_eq!(tally.words, model.words);
        prop_assert_eq!(sorted(tally), model.counts);
    }

    #[test]
    fn ascii_fast_path_matches_segmenter(data in ascii_text()) {
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        unicode::ascii_words(&data, |w| fast.push(w.to_ascii_lowercase()));
        unicode::general_words(&data, |w| slow.push(w.to_vec()));
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn block_scanner_matches_byte_scanner(data in prop::collection::vec(ascii_text(), 1..4)) {
        let data = data.concat();
        let (mut blocks, mut bytes) = (Vec::new(), Vec::new());
        wordcount::scan::ascii_words(&data, |w| blocks.push(w.to_vec()));
        unicode::ascii_words(&data, |w| bytes.push(w.to_vec()));
        prop_assert_eq!(blocks, bytes);
    }

    #[test]
    fn line_wise_fast_path_matches_segmenter(data in text()) {
        // The model runs the segmenter over the whole input, with no fast path.
        let model = reference::count(&data, Options::default());
        prop_assert_eq!(sorted(sequential(&data, Options::default())), model.counts);
    }

    #[test]
    fn json_parses_and_adds_up(data in text(), options in options(), top in 0usize..5) {
        let counted = Counted { tally: sequential(&data, options), lines: 0 };
        let report = Report::new("a \"name\"\n\u{1}".into(), options.mode, counted, top);
        let mut out = Vec::new();
        report.write_json(&mut out).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(doc["source"].as_str(), Some("a \"name\"\n\u{1}"));
        let counts = doc["counts"].as_array().unwrap();
        let sum: u64 = counts.iter().map(|c| c[1].as_u64().unwrap()).sum();
        let unique = doc["unique_words"].as_u64().unwrap();
        if top == 0 {
            prop_assert_eq!(sum, doc["words"].as_u64().unwrap());
            prop_assert_eq!(counts.len() as u64, unique);
        } else {
            prop_assert_eq!(counts.len() as u64, unique.min(top as u64));
        }
        // Sorted by count descending, then by word bytes ascending.
        for pair in report.counts.windows(2) {
            prop_assert!(pair[0].1 > pair[1].1 || (pair[0].1 == pair[1].1 && pair[0].0 < pair[1].0));
        }
    }
}
