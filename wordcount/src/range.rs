//! One part of a split input: the byte range `START..END` a task is given, and the lines it owns.
//!
//! A part owns the lines that *start* in `[START, END)`; a line starts at offset 0 and right after
//! every line feed. To know whether `START` itself begins a line, a part reads from the byte before
//! it; a part that starts mid-line skips to the next line start, and the last line it owns is read
//! to its end, past `END` if need be. So every line belongs to exactly one part, however the ranges
//! are drawn, and counting each part's lines gives the whole count: a line feed ends a word in
//! whitespace mode and under UAX #29 (rules WB3a/WB3b), and being ASCII it ends every UTF-8
//! sequence too, so no part cuts a word or a character.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

/// A half-open byte range `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub fn new(start: u64, end: u64) -> Self {
        Range { start, end }
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The first byte a part must read: the one before `start`, which tells whether `start`
    /// begins a line.
    pub fn read_from(&self) -> u64 {
        self.start.saturating_sub(1)
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

impl FromStr for Range {
    type Err = String;

    /// `START..END` in decimal, with `START <= END`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("--range must be START..END (decimal, START <= END), not '{text}'");
        let (start, end) = text.split_once("..").ok_or_else(bad)?;
        let number = |s: &str| -> Result<u64, String> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().map_err(|_| bad())
        };
        let (start, end) = (number(start)?, number(end)?);
        if start > end {
            return Err(bad());
        }
        Ok(Range { start, end })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Looking for the first line start at or after `range.start`.
    Seeking,
    /// Passing on owned bytes.
    Owning,
    Done,
}

/// Passes on exactly the bytes of the lines a part owns, from a reader that yields the input
/// from [`Range::read_from`] on.
pub struct OwnedLines<R> {
    inner: R,
    range: Range,
    /// Offset in the input of the next byte `inner` yields.
    pos: u64,
    state: State,
    owned: Range,
}

impl<R: Read> OwnedLines<R> {
    /// `inner` must yield the input from `range.read_from()` on.
    pub fn new(inner: R, range: Range) -> Self {
        let pos = range.read_from();
        let state = match range {
            // Offset 0 is a line start, owned only by a range that is not empty.
            Range { start: 0, end: 0 } => State::Done,
            Range { start: 0, .. } => State::Owning,
            _ => State::Seeking,
        };
        OwnedLines {
            inner,
            range,
            pos,
            state,
            owned: Range::new(pos, pos),
        }
    }

    /// The owned bytes, as offsets in the input: complete once reading has returned 0. Empty when
    /// no line starts in the range.
    pub fn owned(&self) -> Range {
        self.owned
    }

    /// Keeps the owned part of `buf[..len]`, which holds the input from `at`, and returns its
    /// length; stops after the line feed that ends the last owned line.
    fn own(&mut self, buf: &[u8], at: u64, len: usize) -> usize {
        // The last owned line is the one holding offset `end - 1`: it ends at the first line feed
        // from there on.
        let last = self.range.end - 1;
        let mut keep = len;
        if at + len as u64 > last {
            let from = last.saturating_sub(at) as usize;
            if let Some(i) = memchr::memchr(b'\n', &buf[from..len]) {
                keep = from + i + 1;
                self.state = State::Done;
            }
        }
        self.owned.end = at + keep as u64;
        keep
    }
}

impl<R: Read> Read for OwnedLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.state == State::Done {
                return Ok(0);
            }
            let n = self.inner.read(buf)?;
            let at = self.pos;
            self.pos += n as u64;
            if n == 0 {
                if self.state == State::Seeking {
                    self.owned = Range::new(at, at);
                }
                self.state = State::Done;
                return Ok(0);
            }
            if self.state == State::Owning {
                return Ok(self.own(buf, at, n));
            }
            let Some(i) = memchr::memchr(b'\n', &buf[..n]) else {
                continue;
            };
            let first = at + i as u64 + 1;
            self.owned = Range::new(first, first);
            if first >= self.range.end {
                self.state = State::Done;
                return Ok(0);
            }
            self.state = State::Owning;
            buf.copy_within(i + 1..n, 0);
            let rest = n - i - 1;
            if rest > 0 {
                return Ok(self.own(buf, first, rest));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(data: &[u8], range: Range) -> (Vec<u8>, Range) {
        let from = (range.read_from() as usize).min(data.len());
        let mut reader = OwnedLines::new(&data[from..], range);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        (out, reader.owned())
    }

    #[test]
    fn parses_ranges() {
        assert_eq!("0..10".parse(), Ok(Range::new(0, 10)));
        assert_eq!("7..7".parse(), Ok(Range::new(7, 7)));
        for bad in [
            "", "1..", "..2", "3..2", "1...2", "-1..2", "+1..2", "1..2 ", "a..b", "1-2",
        ] {
            assert!(bad.parse::<Range>().is_err(), "{bad}");
        }
        assert_eq!(Range::new(3, 9).to_string(), "3..9");
    }

    #[test]
    fn parts_own_the_lines_that_start_in_them() {
        let data = b"ab\ncd\n\nef";
        assert_eq!(
            owned(data, Range::new(0, 1)),
            (b"ab\n".to_vec(), Range::new(0, 3))
        );
        // Starting mid-line skips to the next line start, and the line is read to its end.
        assert_eq!(
            owned(data, Range::new(1, 4)),
            (b"cd\n".to_vec(), Range::new(3, 6))
        );
        // A part that starts right at a line start owns that line.
        assert_eq!(
            owned(data, Range::new(3, 4)),
            (b"cd\n".to_vec(), Range::new(3, 6))
        );
        assert_eq!(
            owned(data, Range::new(4, 7)),
            (b"\n".to_vec(), Range::new(6, 7))
        );
        assert_eq!(
            owned(data, Range::new(7, 9)),
            (b"ef".to_vec(), Range::new(7, 9))
        );
        // No line starts in 4..6: nothing is owned.
        assert_eq!(
            owned(data, Range::new(4, 6)),
            (Vec::new(), Range::new(6, 6))
        );
        assert_eq!(
            owned(data, Range::new(8, 9)),
            (Vec::new(), Range::new(9, 9))
        );
        assert_eq!(
            owned(data, Range::new(0, 0)),
            (Vec::new(), Range::new(0, 0))
        );
        assert_eq!(owned(b"", Range::new(0, 0)), (Vec::new(), Range::new(0, 0)));
    }

    #[test]
    fn one_byte_reads() {
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        let data = b"one\ntwo three\nfour\n";
        let mut all = Vec::new();
        for start in 0..data.len() as u64 {
            let range = Range::new(start, start + 1);
            let mut r = OwnedLines::new(OneByte(&data[range.read_from() as usize..]), range);
            r.read_to_end(&mut all).unwrap();
        }
        assert_eq!(all, data);
    }
}
