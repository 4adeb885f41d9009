//! Fuzz target: the reader of partial results (`wordcount::partial`), which the merge runs on
//! files it did not write itself.
//!
//! Input: arbitrary bytes, read as a partial. Property: the reader refuses them or reads them,
//! and never panics or allocates more than the input justifies; a partial it reads in full is in
//! the one canonical form, so writing back what it read gives the same bytes. Then the same bytes
//! as a text: counted as one part with the library's own code, written and read back, they give
//! the same header and entries.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wordcount::part::{self, Whole};
use wordcount::partial::{self, Header};
use wordcount::range::Range;
use wordcount::{Config, Options};

type Entries = Vec<(Box<[u8]>, u64)>;

fn read(bytes: &[u8]) -> Option<(Header, Entries)> {
    let mut reader = partial::Reader::new(bytes).ok()?;
    let mut entries = Vec::new();
    while let Some((word, n)) = reader.next_entry().ok()? {
        entries.push((Box::from(word), n));
    }
    Some((reader.finish().ok()?, entries))
}

fuzz_target!(|data: &[u8]| {
    if let Some((header, entries)) = read(data) {
        let mut again = Vec::new();
        partial::write(&header, &entries, &mut again).unwrap();
        assert_eq!(again, data);
    }

    let size = data.len() as u64;
    let range = Range::new(size / 3, size - size / 3);
    let whole = Whole {
        size,
        etag: "0x8DE62A1B3C4D5E7".into(),
        source: "fuzz".into(),
        head: data[..data.len().min(2)].to_vec(),
    };
    let from = range.read_from() as usize;
    let config = Config {
        threads: 1,
        chunk_size: 7,
    };
    let counted = part::count(&data[from..], range, &whole, Options::default(), config)
        .expect("counting a slice cannot fail");
    let mut bytes = Vec::new();
    counted.write(&mut bytes).unwrap();
    let (header, entries) = read(&bytes).expect("a written partial reads back");
    assert_eq!(header, counted.header);
    assert_eq!(entries, counted.counts);
});
