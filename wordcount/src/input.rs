//! Opening the input: a file or standard input, transparently gunzipped when it starts with the
//! gzip magic bytes.

use flate2::bufread::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens `path`, or standard input when `None`. Fails only if the file cannot be opened or its
/// first bytes cannot be read; later errors surface from the returned reader.
pub fn open(path: Option<&Path>) -> io::Result<Box<dyn Read>> {
    let raw: Box<dyn Read> = match path {
        Some(path) => Box::new(File::open(path)?),
        None => Box::new(io::stdin()),
    };
    sniff(raw)
}

/// Wraps `raw` in a gzip decoder if it starts with the gzip magic bytes. Concatenated gzip members
/// are all decoded, as `gunzip` does.
pub fn sniff<'a>(mut raw: Box<dyn Read + 'a>) -> io::Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match raw.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let stream = io::Cursor::new(head).take(got as u64).chain(raw);
    if head[..got] == GZIP_MAGIC {
        Ok(Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            stream,
        ))))
    } else {
        Ok(Box::new(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn read_all(bytes: Vec<u8>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        sniff(Box::new(io::Cursor::new(bytes)))?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn plain_passes_through() {
        assert_eq!(read_all(b"".to_vec()).unwrap(), b"");
        assert_eq!(read_all(b"\x1f".to_vec()).unwrap(), b"\x1f");
        assert_eq!(read_all(b"hello".to_vec()).unwrap(), b"hello");
    }

    #[test]
    fn gzip_members_are_decoded() {
        let mut all = Vec::new();
        for part in [&b"hello "[..], b"world"] {
            let mut enc = GzEncoder::new(Vec::new(), Compression::default());
            enc.write_all(part).unwrap();
            all.extend(enc.finish().unwrap());
        }
        assert_eq!(read_all(all).unwrap(), b"hello world");
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        assert!(read_all(b"\x1f\x8bnot really gzip".to_vec()).is_err());
    }
}
