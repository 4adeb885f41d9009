//! Golden tests: exact results for the known-answer file and for the Unicode and byte-level cases
//! the semantics document (accents, CJK, emoji, apostrophes, numbers, scripts, invalid UTF-8,
//! empty input, missing final newline, CRLF, NUL bytes).

use std::path::PathBuf;
use wordcount::{Config, Counted, Mode, Options, count_reader};

const UNICODE: Options = Options {
    mode: Mode::Unicode,
    lowercase: false,
};
const WHITESPACE: Options = Options {
    mode: Mode::Whitespace,
    lowercase: false,
};

/// A file of `tests/fixtures`.
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn count(data: &[u8], options: Options) -> Counted {
    count_reader(
        data,
        options,
        Config {
            threads: 2,
            chunk_size: 7,
        },
    )
    .unwrap()
}

/// The words of `data`, as (word, count) sorted by word.
fn words(data: &[u8], options: Options) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = count(data, options)
        .tally
        .into_counts()
        .into_iter()
        .map(|(w, n)| (String::from_utf8(w.into_vec()).unwrap(), n))
        .collect();
    v.sort();
    v
}

fn list(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = pairs.iter().map(|&(w, n)| (w.to_string(), n)).collect();
    v.sort();
    v
}

#[test]
fn star_spangled_banner_whitespace() {
    let data = std::fs::read(fixture("the_star_spangled_banner.txt")).unwrap();
    let c = count(&data, WHITESPACE);
    assert_eq!(c.tally.bytes, 1754);
    assert_eq!(c.tally.words, 314);
    assert_eq!(c.tally.unique_words(), 186);
    assert_eq!(c.tally.get(b"the"), 43);
    assert_eq!(c.tally.get(b"O'er"), 5);
    assert_eq!(c.tally.get(b"o'er"), 1);
    let lower = count(
        &data,
        Options {
            lowercase: true,
            ..WHITESPACE
        },
    );
    assert_eq!(lower.tally.words, 314);
    assert_eq!(lower.tally.get(b"o'er"), 6);
}

#[test]
fn accents_and_case() {
    assert_eq!(
        words("Café CAFÉ café naïve".as_bytes(), UNICODE),
        list(&[("café", 3), ("naïve", 1)])
    );
    // No normalisation: a decomposed é stays a different word from the precomposed one.
    assert_eq!(
        words("cafe\u{301} café".as_bytes(), UNICODE),
        list(&[("cafe\u{301}", 1), ("café", 1)])
    );
    // Full lower-casing: final sigma, dotted capital I, sharp s left alone.
    assert_eq!(
        words("ΟΔΟΣ İstanbul STRASSE Straße".as_bytes(), UNICODE),
        list(&[
            ("οδος", 1),
            ("i\u{307}stanbul", 1),
            ("strasse", 1),
            ("straße", 1)
        ])
    );
}

#[test]
fn cjk() {
    // Without a dictionary, UAX #29 makes each ideograph and hiragana a word of its own and keeps
    // katakana runs together.
    assert_eq!(
        words("日本語のテキスト 東京タワー".as_bytes(), UNICODE),
        list(&[
            ("日", 1),
            ("本", 1),
            ("語", 1),
            ("の", 1),
            ("テキスト", 1),
            ("東", 1),
            ("京", 1),
            ("タワー", 1)
        ])
    );
}

#[test]
fn emoji_are_not_words() {
    assert_eq!(
        words("I ❤️ Rust 👍🏽 ok👍 👨‍👩‍👧".as_bytes(), UNICODE),
        list(&[("i", 1), ("rust", 1), ("ok", 1)])
    );
}

#[test]
fn apostrophes_numbers_hyphens() {
    assert_eq!(
        words(
            "Don't don’t 'quoted' 3.14 1,000,000 a-b e-mail x_y ...".as_bytes(),
            UNICODE
        ),
        list(&[
            ("don't", 1),
            ("don’t", 1),
            ("quoted", 1),
            ("3.14", 1),
            ("1,000,000", 1),
            ("a", 1),
            ("b", 1),
            ("e", 1),
            ("mail", 1),
            ("x_y", 1)
        ])
    );
}

#[test]
fn mixed_scripts() {
    assert_eq!(
        words("Hello Привет مرحبا שָׁלוֹם ٣٤ ½".as_bytes(), UNICODE),
        list(&[
            ("hello", 1),
            ("привет", 1),
            ("مرحبا", 1),
            ("שָׁלוֹם", 1),
            ("٣٤", 1),
            ("½", 1)
        ])
    );
}

#[test]
fn invalid_utf8_separates_words() {
    assert_eq!(
        words(b"abc\xffdef caf\xc3", UNICODE),
        list(&[("abc", 1), ("def", 1), ("caf", 1)])
    );
    assert_eq!(count(b"\xff\xfe", UNICODE).tally.words, 0);
    // Whitespace mode keeps the bytes.
    let c = count(b"abc\xffdef abc", WHITESPACE);
    assert_eq!((c.tally.words, c.tally.get(b"abc\xffdef")), (2, 1));
}

#[test]
fn empty_input() {
    for options in [UNICODE, WHITESPACE] {
        let c = count(b"", options);
        assert_eq!(
            (
                c.tally.bytes,
                c.lines,
                c.tally.words,
                c.tally.unique_words()
            ),
            (0, 0, 0, 0)
        );
    }
}

#[test]
fn no_trailing_newline() {
    for options in [UNICODE, WHITESPACE] {
        let c = count(b"one two\nthree", options);
        assert_eq!((c.lines, c.tally.words), (2, 3));
        assert_eq!(count(b"one two\nthree\n", options).lines, 2);
    }
}

#[test]
fn crlf() {
    for options in [UNICODE, WHITESPACE] {
        let c = count(b"one two\r\nthree\r\n", options);
        assert_eq!((c.lines, c.tally.words, c.tally.bytes), (2, 3, 16));
        assert_eq!(c.tally.get(b"three"), 1);
    }
}

#[test]
fn nul_bytes() {
    // NUL is not whitespace: whitespace mode keeps it inside the word; UAX #29 separates at it.
    let c = count(b"a\0b a", WHITESPACE);
    assert_eq!(
        (c.tally.words, c.tally.get(b"a\0b"), c.tally.get(b"a")),
        (2, 1, 1)
    );
    assert_eq!(words(b"a\0b a", UNICODE), list(&[("a", 2), ("b", 1)]));
}

#[test]
fn whitespace_mode_bytes() {
    let c = count(b"The the THE\x0bthe\x0cthe\ttHe", WHITESPACE);
    assert_eq!((c.tally.words, c.tally.get(b"the")), (6, 3));
    let c = count(
        b"The the THE\x0bthe\x0cthe\ttHe",
        Options {
            lowercase: true,
            ..WHITESPACE
        },
    );
    assert_eq!((c.tally.words, c.tally.get(b"the")), (6, 6));
    // Only ASCII case is folded, and non-ASCII whitespace is not a separator.
    let c = count(
        "ÉTÉ\u{a0}X été".as_bytes(),
        Options {
            lowercase: true,
            ..WHITESPACE
        },
    );
    assert_eq!(c.tally.get("ÉtÉ\u{a0}x".as_bytes()), 1);
}

#[test]
fn word_longer_than_a_chunk() {
    let long = "x".repeat(100_000);
    let data = format!("a {long} b {long}\n{long}");
    for options in [UNICODE, WHITESPACE] {
        let c = count(data.as_bytes(), options);
        assert_eq!((c.tally.words, c.tally.get(long.as_bytes())), (5, 3));
    }
}
