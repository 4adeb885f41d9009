//! The result document: sorting, `--top`, and rendering as JSON (the project's design, section 4
//! "Output of a word count") or as TSV.

use crate::options::Mode;
use crate::pipeline::Counted;
use std::io::{self, Write};

/// A finished count, ready to be written.
#[derive(Debug)]
pub struct Report {
    pub source: String,
    pub mode: Mode,
    pub bytes: u64,
    pub lines: u64,
    pub words: u64,
    pub unique_words: u64,
    /// Sorted by count descending, then by word bytes ascending; possibly cut to the top N.
    pub counts: Vec<(Box<[u8]>, u64)>,
}

impl Report {
    /// Sorts the counts and keeps the `top` most frequent (`0` keeps all).
    pub fn new(source: String, mode: Mode, counted: Counted, top: usize) -> Self {
        let Counted { tally, lines } = counted;
        let (bytes, words, unique_words) = (tally.bytes, tally.words, tally.unique_words() as u64);
        let mut counts = tally.into_counts();
        let order =
            |a: &(Box<[u8]>, u64), b: &(Box<[u8]>, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
        if top > 0 && top < counts.len() {
            counts.select_nth_unstable_by(top - 1, order);
            counts.truncate(top);
        }
        counts.sort_unstable_by(order);
        Report {
            source,
            mode,
            bytes,
            lines,
            words,
            unique_words,
            counts,
        }
    }

    /// Writes the JSON document, one `counts` entry per line. Words that are not valid UTF-8
    /// (possible in whitespace mode) are rendered with U+FFFD in place of each invalid sequence.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(b"{\"source\":")?;
        write_json_string(out, self.source.as_bytes())?;
        write!(
            out,
            ",\"mode\":\"{}\",\"bytes\":{},\"lines\":{},\"words\":{},\"unique_words\":{},\"counts\":[",
            self.mode.name(),
            self.bytes,
            self.lines,
            self.words,
            self.unique_words
        )?;
        for (i, (word, n)) in self.counts.iter().enumerate() {
            out.write_all(if i == 0 { b"\n[" } else { b",\n[" })?;
            write_json_string(out, word)?;
            write!(out, ",{n}]")?;
        }
        out.write_all(if self.counts.is_empty() {
            b"]}\n"
        } else {
            b"\n]}\n"
        })
    }

    /// Writes one `word<TAB>count` line per word, words as their raw bytes.
    pub fn write_tsv(&self, out: &mut impl Write) -> io::Result<()> {
        for (word, n) in &self.counts {
            out.write_all(word)?;
            writeln!(out, "\t{n}")?;
        }
        Ok(())
    }
}

/// Writes `bytes` as a JSON string literal, replacing invalid UTF-8 with U+FFFD.
pub fn write_json_string(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    out.write_all(b"\"")?;
    for chunk in bytes.utf8_chunks() {
        let s = chunk.valid().as_bytes();
        let mut plain = 0;
        for (i, &b) in s.iter().enumerate() {
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0..0x20 => b"",
                _ => continue,
            };
            out.write_all(&s[plain..i])?;
            if escape.is_empty() {
                write!(out, "\\u{b:04x}")?;
            } else {
                out.write_all(escape)?;
            }
            plain = i + 1;
        }
        out.write_all(&s[plain..])?;
        if !chunk.invalid().is_empty() {
            out.write_all("\u{fffd}".as_bytes())?;
        }
    }
    out.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(bytes: &[u8]) -> String {
        let mut v = Vec::new();
        write_json_string(&mut v, bytes).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes() {
        assert_eq!(json(b"a\"b\\c\n\x01\x7f"), "\"a\\\"b\\\\c\\n\\u0001\x7f\"");
        assert_eq!(json(b"caf\xc3\xa9"), "\"café\"");
        assert_eq!(json(b"a\xffb\xe2\x82"), "\"a\u{fffd}b\u{fffd}\"");
    }
}
