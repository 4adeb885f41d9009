//! Unicode-mode word extraction: an ASCII fast path and the general UAX #29 path.
//!
//! The fast path implements exactly the UAX #29 rules that can apply to ASCII text (letters,
//! digits and `_` join; `:` `.` `'` join two letters; `,` `;` `.` `'` join two digits), so that a
//! pure-ASCII piece never needs decoding or the segmenter. Tests check it against the segmenter.

use crate::sink::Sink;
use unicode_segmentation::UnicodeSegmentation;

const OTHER: u8 = 0;
const LETTER: u8 = 1;
const DIGIT: u8 = 2;
const UNDERSCORE: u8 = 4;
const WORD: u8 = LETTER | DIGIT | UNDERSCORE;
/// Joins two letters (MidLetter, MidNumLet, Single_Quote).
const JOIN_LETTERS: u8 = 8;
/// Joins two digits (MidNum, MidNumLet, Single_Quote).
const JOIN_DIGITS: u8 = 16;

static CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphabetic() {
            LETTER
        } else if c.is_ascii_digit() {
            DIGIT
        } else {
            match c {
                b'_' => UNDERSCORE,
                b':' => JOIN_LETTERS,
                b',' | b';' => JOIN_DIGITS,
                b'.' | b'\'' => JOIN_LETTERS | JOIN_DIGITS,
                _ => OTHER,
            }
        };
        b += 1;
    }
    t
};

#[inline(always)]
fn class(b: u8) -> u8 {
    CLASS[b as usize]
}

/// Calls `f` with every word of an ASCII piece, in order, one byte at a time. The piece must start
/// and end at word boundaries (see `split`). Counting uses the equivalent block scanner
/// [`crate::scan::ascii_words`]; this simpler form is its reference in tests.
#[inline]
pub fn ascii_words(text: &[u8], mut f: impl FnMut(&[u8])) {
    let n = text.len();
    let mut i = 0;
    while i < n {
        while i < n && class(text[i]) & WORD == 0 {
            i += 1;
        }
        if i == n {
            break;
        }
        let start = i;
        let mut only_underscores = true;
        loop {
            while i < n {
                let c = class(text[i]);
                if c & WORD == 0 {
                    break;
                }
                only_underscores &= c == UNDERSCORE;
                i += 1;
            }
            // `text[i]` is not a word byte; it joins only between two letters or two digits.
            if i + 1 < n {
                let mid = class(text[i]);
                let (before, after) = (class(text[i - 1]), class(text[i + 1]));
                if (mid & JOIN_LETTERS != 0 && before == LETTER && after == LETTER)
                    || (mid & JOIN_DIGITS != 0 && before == DIGIT && after == DIGIT)
                {
                    i += 2;
                    only_underscores = false;
                    continue;
                }
            }
            break;
        }
        if !only_underscores {
            f(&text[start..i]);
        }
    }
}

/// True if a UAX #29 segment is a word: it holds at least one alphabetic or numeric character.
#[inline]
pub fn is_word(segment: &str) -> bool {
    segment.chars().any(char::is_alphanumeric)
}

/// Calls `f` with every word of an arbitrary piece, lower-cased. Invalid UTF-8 sequences separate
/// words and are otherwise ignored. The piece must start and end at word boundaries.
pub fn general_words(text: &[u8], mut f: impl FnMut(&[u8])) {
    let mut lower = Vec::new();
    for chunk in text.utf8_chunks() {
        for segment in chunk.valid().split_word_bounds() {
            if !is_word(segment) {
                continue;
            }
            if segment.is_ascii() {
                lower.clear();
                lower.extend_from_slice(segment.as_bytes());
                lower.make_ascii_lowercase();
                f(&lower);
            } else {
                f(segment.to_lowercase().as_bytes());
            }
        }
    }
}

/// Sends every word of a piece in unicode mode, lower-cased, to `sink`, taking the ASCII fast
/// path line by line where it can. ASCII letters must already be lower-cased.
pub fn words<'a>(text: &'a [u8], sink: &mut impl Sink<'a>) {
    if text.is_ascii() {
        crate::scan::ascii_words(text, |w| sink.borrowed(w));
        return;
    }
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line.is_ascii() {
            crate::scan::ascii_words(line, |w| sink.borrowed(w));
        } else {
            general_words(line, |w| sink.transient(w));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ascii(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        ascii_words(s.as_bytes(), |w| {
            out.push(String::from_utf8(w.to_vec()).unwrap())
        });
        out
    }

    fn general(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        general_words(s.as_bytes(), |w| {
            out.push(String::from_utf8(w.to_vec()).unwrap())
        });
        out
    }

    #[test]
    fn ascii_rules() {
        assert_eq!(ascii("don't stop"), ["don't", "stop"]);
        assert_eq!(
            ascii("3.14 1,000,000 a.b.c a:b"),
            ["3.14", "1,000,000", "a.b.c", "a:b"]
        );
        assert_eq!(ascii("a-b a..b a. .a"), ["a", "b", "a", "b", "a", "a"]);
        assert_eq!(
            ascii("a1'b 1.a x_y __ _1"),
            ["a1", "b", "1", "a", "x_y", "_1"]
        );
        assert_eq!(ascii("1:2 a,b 1;2"), ["1", "2", "a", "b", "1;2"]);
    }

    #[test]
    fn ascii_matches_segmenter_on_samples() {
        for s in [
            "don't stop",
            "3.14 1,000,000 a.b.c a:b",
            "a-b a..b a. .a",
            "a1'b 1.a x_y __ _1",
            "1:2 a,b 1;2",
            "'a' \"b\" a'1 1'a 1'2 ''",
            "end.",
            "x",
            "_",
            "a_.b",
        ] {
            assert_eq!(ascii(s), general(s), "{s:?}");
        }
    }

    /// The block scanner that counting uses gives the same words as this byte-at-a-time form
    /// around the edges of its 64-byte blocks.
    #[test]
    fn block_scanner_matches_at_block_edges() {
        for pad in 55..70 {
            let text = format!("{}a.b 3,4 x_y __ don't 1.a", "-".repeat(pad));
            let (mut blocks, mut scalar) = (Vec::new(), Vec::new());
            crate::scan::ascii_words(text.as_bytes(), |w| blocks.push(w.to_vec()));
            ascii_words(text.as_bytes(), |w| scalar.push(w.to_vec()));
            assert_eq!(blocks, scalar, "{pad}");
        }
    }
}
