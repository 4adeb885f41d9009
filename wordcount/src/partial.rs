//! The partial result of one part (`--partial`), and its binary format.
//!
//! A partial carries what the merge needs to prove that its parts add up to exactly one whole
//! input: the range the part was given, the bytes it owned, the input's size and eTag, the mode
//! and options, and the format version; then the part's totals and its word table.
//!
//! Layout (integers are unsigned LEB128 varints, strings a varint length and the bytes):
//!
//! ```text
//! "WCPART" version(u8 = 1) mode(u8: 0 unicode, 1 whitespace) lowercase(u8: 0 or 1)
//! range.start range.end size etag(string) source(string) owned.start owned.end
//! lines words distinct
//! distinct x entry: shared(varint) suffix(string) count(varint)
//! crc32(u32, little-endian, of every byte before it)
//! ```
//!
//! Entries are sorted by the word's bytes and front-coded: `shared` is the length of the prefix
//! the word has in common with the previous word, `suffix` the rest. Nothing may follow the CRC.

use crate::options::{Mode, Options};
use crate::range::Range;
use std::io::{self, Read, Write};

const MAGIC: &[u8; 6] = b"WCPART";
/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Longest eTag or source name accepted when reading, so that a damaged length cannot ask for
/// gigabytes.
const MAX_LABEL: u64 = 1 << 16;

/// Everything in a partial but its word table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub options: Options,
    /// The range the part was given.
    pub range: Range,
    /// Size of the whole input.
    pub size: u64,
    /// The input's eTag (unquoted), empty for a local file.
    pub etag: String,
    pub source: String,
    /// The bytes of the lines the part owned (see [`crate::range`]).
    pub owned: Range,
    pub lines: u64,
    pub words: u64,
    /// Entries in the word table.
    pub distinct: u64,
}

/// Writes a partial. `counts` must be sorted by word bytes, without repeats, and hold
/// `header.distinct` entries.
pub fn write(header: &Header, counts: &[(Box<[u8]>, u64)], out: impl Write) -> io::Result<()> {
    debug_assert_eq!(counts.len() as u64, header.distinct);
    let mut out = Crc::new(out);
    out.write_all(MAGIC)?;
    let (mode, lowercase) = encode_options(header.options);
    out.write_all(&[VERSION, mode, lowercase])?;
    for n in [header.range.start, header.range.end, header.size] {
        put_varint(&mut out, n)?;
    }
    put_bytes(&mut out, header.etag.as_bytes())?;
    put_bytes(&mut out, header.source.as_bytes())?;
    for n in [
        header.owned.start,
        header.owned.end,
        header.lines,
        header.words,
        header.distinct,
    ] {
        put_varint(&mut out, n)?;
    }
    let mut previous: &[u8] = &[];
    for (word, count) in counts {
        let shared = previous
            .iter()
            .zip(word.iter())
            .take_while(|(a, b)| a == b)
            .count();
        put_varint(&mut out, shared as u64)?;
        put_bytes(&mut out, &word[shared..])?;
        put_varint(&mut out, *count)?;
        previous = word;
    }
    let crc = out.crc.clone().finalize();
    out.inner.write_all(&crc.to_le_bytes())?;
    out.inner.flush()
}

/// Only the unicode mode ignores `--lowercase`, so it is recorded as off there: two parts that
/// count the same words carry the same options.
fn encode_options(options: Options) -> (u8, u8) {
    match options.mode {
        Mode::Unicode => (0, 0),
        Mode::Whitespace => (1, u8::from(options.lowercase)),
    }
}

/// The options as a partial records them.
pub fn normalize(options: Options) -> Options {
    Options {
        mode: options.mode,
        lowercase: options.mode == Mode::Whitespace && options.lowercase,
    }
}

/// Reads a partial: the header first, then the entries one at a time, then [`Reader::finish`].
pub struct Reader<R> {
    input: Crc<R>,
    pub header: Header,
    left: u64,
    word: Vec<u8>,
    sum: u64,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header.
    pub fn new(input: R) -> io::Result<Self> {
        let mut input = Crc::new(input);
        let mut head = [0u8; 9];
        read_exact(&mut input, &mut head)?;
        if &head[..6] != MAGIC {
            return Err(invalid("not a wordcount partial (no WCPART header)"));
        }
        if head[6] != VERSION {
            return Err(invalid(format!(
                "partial format version {} is not supported (this wordcount reads version {VERSION})",
                head[6]
            )));
        }
        let options = match (head[7], head[8]) {
            (0, 0) => Options {
                mode: Mode::Unicode,
                lowercase: false,
            },
            (1, l @ (0 | 1)) => Options {
                mode: Mode::Whitespace,
                lowercase: l == 1,
            },
            _ => return Err(invalid("damaged partial: unknown mode")),
        };
        let mut n = || get_varint(&mut input);
        let (start, end, size) = (n()?, n()?, n()?);
        let etag = get_label(&mut input)?;
        let source = get_label(&mut input)?;
        let mut n = || get_varint(&mut input);
        let header = Header {
            options,
            range: Range::new(start, end),
            size,
            etag,
            source,
            owned: Range::new(n()?, n()?),
            lines: n()?,
            words: n()?,
            distinct: n()?,
        };
        let h = &header;
        if h.range.start > h.range.end
            || h.range.end > h.size
            || h.owned.start > h.owned.end
            || h.owned.end > h.size
            || h.lines > h.owned.len()
            || h.distinct > h.words
        {
            return Err(invalid("damaged partial: inconsistent header"));
        }
        Ok(Reader {
            left: header.distinct,
            header,
            input,
            word: Vec::new(),
            sum: 0,
        })
    }

    /// The next (word, count) entry, in word order, or `None` after the last.
    pub fn next_entry(&mut self) -> io::Result<Option<(&[u8], u64)>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let shared = get_varint(&mut self.input)?;
        if shared > self.word.len() as u64 {
            return Err(invalid("damaged partial: bad word prefix"));
        }
        // The byte the previous word had where this one's suffix begins, if it went on.
        let replaced = self.word.get(shared as usize).copied();
        self.word.truncate(shared as usize);
        let len = get_varint(&mut self.input)?;
        let got = (&mut self.input).take(len).read_to_end(&mut self.word)?;
        if got as u64 != len {
            return Err(truncated());
        }
        let count = get_varint(&mut self.input)?;
        // Sorted and distinct, as written: each word is greater than the one before (for the
        // first, than the empty word), differing from it right after the shared prefix.
        let ascending = match (self.word.get(shared as usize), replaced) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(&b), Some(p)) => b > p,
        };
        if count == 0 || !ascending {
            return Err(invalid("damaged partial: word table out of order"));
        }
        self.sum = self.sum.saturating_add(count);
        Ok(Some((&self.word, count)))
    }

    /// Checks the end: every entry read, counts adding up to `words`, the CRC, and nothing after.
    pub fn finish(mut self) -> io::Result<Header> {
        while self.next_entry()?.is_some() {}
        if self.sum != self.header.words {
            return Err(invalid(
                "damaged partial: counts do not add up to the word total",
            ));
        }
        let expected = self.input.crc.clone().finalize();
        let mut crc = [0u8; 4];
        read_exact(&mut self.input.inner, &mut crc)?;
        if u32::from_le_bytes(crc) != expected {
            return Err(invalid("damaged partial: checksum mismatch"));
        }
        let mut extra = [0u8; 1];
        if self.input.inner.read(&mut extra)? != 0 {
            return Err(invalid("damaged partial: data after the end"));
        }
        Ok(self.header)
    }
}

fn truncated() -> io::Error {
    invalid("damaged partial: truncated")
}

fn read_exact(input: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    input.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            truncated()
        } else {
            e
        }
    })
}

fn put_varint(out: &mut impl Write, mut n: u64) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut i = 0;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf[i] = byte;
            return out.write_all(&buf[..=i]);
        }
        buf[i] = byte | 0x80;
        i += 1;
    }
}

fn get_varint(input: &mut impl Read) -> io::Result<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8; 1];
        read_exact(input, &mut byte)?;
        let bits = u64::from(byte[0] & 0x7f);
        if shift == 63 && bits > 1 {
            break;
        }
        n |= bits << shift;
        if byte[0] & 0x80 == 0 {
            // One encoding per number: a last byte of 0 after the first would be a longer form.
            if byte[0] == 0 && shift > 0 {
                break;
            }
            return Ok(n);
        }
    }
    Err(invalid("damaged partial: bad integer"))
}

fn put_bytes(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    put_varint(out, bytes.len() as u64)?;
    out.write_all(bytes)
}

fn get_label(input: &mut impl Read) -> io::Result<String> {
    let len = get_varint(input)?;
    if len > MAX_LABEL {
        return Err(invalid("damaged partial: label too long"));
    }
    let mut bytes = vec![0u8; len as usize];
    read_exact(input, &mut bytes)?;
    String::from_utf8(bytes).map_err(|_| invalid("damaged partial: label is not UTF-8"))
}

/// Passes bytes through, keeping the CRC-32 of all of them.
struct Crc<T> {
    inner: T,
    crc: crc32fast::Hasher,
}

impl<T> Crc<T> {
    fn new(inner: T) -> Self {
        Crc {
            inner,
            crc: crc32fast::Hasher::new(),
        }
    }
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Crc<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}
