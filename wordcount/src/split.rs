//! Where a buffer may be cut so that counting the two halves separately gives the same words as
//! counting the whole.
//!
//! Whitespace mode: right after any whitespace byte. Unicode mode: right after a line feed (UAX #29
//! rules WB3a/WB4 always break there and never look back across it), right after a space that is
//! followed by a printable ASCII character (no rule joins or looks across that pair), right after an
//! invalid UTF-8 sequence (those bytes separate words, and decoding restarts after them), or, when a
//! buffer has none of those (e.g. a long run of CJK text), at a word boundary that is followed by
//! at least two more segments in the buffer, so no look-ahead rule (WB6, WB7b, WB12) can move it.

use crate::options::Mode;
use unicode_segmentation::UnicodeSegmentation;

/// True for the bytes that separate words in whitespace mode: 0x09-0x0D and 0x20.
#[inline]
pub fn is_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | b' ')
}

/// The largest cut point `p` (0 < p <= buf.len()) in `buf` such that `buf[..p]` and `buf[p..]`
/// (followed by whatever comes later) can be counted independently, or `None` if the buffer has
/// none and must grow. `buf` is assumed not to be the end of the input.
pub fn cut_point(buf: &[u8], mode: Mode) -> Option<usize> {
    match mode {
        Mode::Whitespace => buf.iter().rposition(|&b| is_space(b)).map(|i| i + 1),
        Mode::Unicode => unicode_cut(buf),
    }
}

fn unicode_cut(buf: &[u8]) -> Option<usize> {
    let after_lf = memchr::memrchr(b'\n', buf).map(|i| i + 1);
    let floor = after_lf.unwrap_or(0);
    // A space followed by printable ASCII, searched only beyond the last line feed.
    let mut after_space = None;
    for i in memchr::memrchr_iter(b' ', &buf[floor..]) {
        let i = floor + i;
        if buf.get(i + 1).is_some_and(u8::is_ascii_graphic) {
            after_space = Some(i + 1);
            break;
        }
    }
    match after_space.or(after_lf) {
        Some(p) => Some(p),
        None => segment_cut(buf),
    }
}

/// The slow path for buffers without ASCII cut points: decode, and cut after an invalid sequence or
/// at a settled word boundary of the last valid run.
fn segment_cut(buf: &[u8]) -> Option<usize> {
    let mut best = None;
    let mut pos = 0;
    let mut last_valid = (0, "");
    for chunk in buf.utf8_chunks() {
        let valid = chunk.valid();
        let start = pos;
        pos += valid.len() + chunk.invalid().len();
        // Bytes at the very end may be an incomplete character rather than an invalid one.
        if !chunk.invalid().is_empty() && pos < buf.len() {
            best = Some(pos);
        }
        last_valid = (start, valid);
    }
    let (start, text) = last_valid;
    let bounds: Vec<usize> = text.split_word_bound_indices().map(|(i, _)| i).collect();
    if bounds.len() >= 3 {
        let b = bounds[bounds.len() - 3];
        if b > 0 {
            best = best.max(Some(start + b));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_cuts_after_last_space() {
        assert_eq!(cut_point(b"ab cd\tef", Mode::Whitespace), Some(6));
        assert_eq!(cut_point(b"abcdef", Mode::Whitespace), None);
    }

    #[test]
    fn unicode_prefers_latest_ascii_point() {
        assert_eq!(cut_point(b"ab\ncd ef", Mode::Unicode), Some(6));
        assert_eq!(cut_point(b"ab\ncd  ", Mode::Unicode), Some(3));
        // A space before a combining mark is not a cut point.
        assert_eq!(cut_point("ab \u{301}c".as_bytes(), Mode::Unicode), None);
    }

    #[test]
    fn unicode_falls_back_to_segments() {
        let s = "日本語のテキストです";
        let p = cut_point(s.as_bytes(), Mode::Unicode).unwrap();
        assert!(s.is_char_boundary(p) && p > 0 && p < s.len());
        assert_eq!(cut_point(b"ab\xffcd", Mode::Unicode), Some(3));
        assert_eq!(cut_point(b"abc", Mode::Unicode), None);
    }
}
