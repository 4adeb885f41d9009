//! The word -> count hash table each counting thread owns.
//!
//! A general-purpose map spends most of its time in out-of-line `memcmp` calls, per-key
//! allocations and cache misses for keys that are mostly a few bytes long. Here a small open
//! addressing index (linear probing, at most half full, 4 bytes per slot) points into a dense
//! entry array in first-seen order, so the frequent words share a few hot cache lines. Words of up
//! to 16 bytes are stored inside their entry as two zero-padded 8-byte integers and compared with
//! two integer comparisons; they are read from the input with two loads masked by length, because a
//! branch on the length of each word is mispredicted about as often as not. Longer words go to a
//! byte arena. The hash is seeded per process so that crafted input cannot force collisions.

use std::hash::BuildHasher;

/// Words of up to this many bytes are stored inline.
const INLINE: usize = 16;

#[derive(Clone, Copy)]
struct Entry {
    /// Inline words: the first load; long words: the offset in the arena.
    a: u64,
    /// Inline words: the second load; long words: the hash.
    b: u64,
    len: u64,
    count: u64,
}

/// Word -> count.
#[derive(Clone)]
pub struct WordTable {
    /// Entry number + 1, or 0 for an empty slot.
    index: Vec<u32>,
    entries: Vec<Entry>,
    arena: Vec<u8>,
    seed: [u64; 2],
    long: foldhash::fast::RandomState,
}

impl Default for WordTable {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for WordTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordTable")
            .field("len", &self.len())
            .finish()
    }
}

/// Words looked up together by [`WordTable::add_batch`].
pub const BATCH: usize = 16;

const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline(always)]
fn load64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// `LOW[n]` keeps the bytes of the first load that belong to a word of `n` bytes, `HIGH[n]` those
/// of the second (the load 8 bytes further on).
const LOW: [u64; INLINE + 1] = {
    let mut t = [u64::MAX; INLINE + 1];
    let mut n = 0;
    while n < 8 {
        t[n] = (1u64 << (8 * n)) - 1;
        n += 1;
    }
    t
};
const HIGH: [u64; INLINE + 1] = {
    let mut t = [0u64; INLINE + 1];
    let mut n = 9;
    while n <= INLINE {
        t[n] = if n == INLINE {
            u64::MAX
        } else {
            (1u64 << (8 * (n - 8))) - 1
        };
        n += 1;
    }
    t
};

/// The word's bytes 0..8 and 8..16 as little-endian integers, zero beyond its end: together with
/// the length, equal parts mean equal words, and the word can be rebuilt from them.
#[inline(always)]
fn short_parts(k: &[u8]) -> (u64, u64) {
    let mut buf = [0u8; INLINE];
    buf[..k.len()].copy_from_slice(k);
    (load64(&buf, 0), load64(&buf, 8))
}

/// [`short_parts`] of `text[at..at + n]` without copying: two loads masked by length, with no
/// branch on the length. Needs 16 readable bytes from `at`.
#[inline(always)]
fn short_parts_in(text: &[u8], at: usize, n: usize) -> (u64, u64) {
    let n = n.min(INLINE);
    (load64(text, at) & LOW[n], load64(text, at + 8) & HIGH[n])
}

/// The inverse of [`short_parts`].
fn unparts(a: u64, b: u64, n: usize, out: &mut [u8; INLINE]) -> &[u8] {
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&b.to_le_bytes());
    &out[..n]
}

/// A hint to bring the cache line at `p` closer; `p` may point anywhere (a prefetch never faults).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint: it neither reads nor faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A word ready for lookup: its parts (inline words) or hash (long words), and its hash.
struct Key {
    a: u64,
    b: u64,
    hash: u64,
}

impl WordTable {
    pub fn new() -> Self {
        let long = foldhash::fast::RandomState::default();
        let seed = [long.hash_one(1u64) | 1, long.hash_one(2u64)];
        WordTable {
            index: vec![0; 1024],
            entries: Vec::new(),
            arena: Vec::new(),
            seed,
            long,
        }
    }

    #[inline(always)]
    fn short_hash(&self, a: u64, b: u64, n: usize) -> u64 {
        fold(
            a ^ self.seed[0],
            b ^ self.seed[1] ^ (n as u64).wrapping_mul(MUL),
        )
    }

    #[inline(always)]
    fn key(&self, word: &[u8]) -> Key {
        if word.len() <= INLINE {
            let (a, b) = short_parts(word);
            self.short_key(a, b, word.len())
        } else {
            self.long_key(word)
        }
    }

    /// The key of `word`, a sub-slice of `text`: short words far enough from the end of `text`
    /// are read with [`short_parts_in`].
    #[inline(always)]
    fn key_in(&self, text: &[u8], word: &[u8]) -> Key {
        let n = word.len();
        if n > INLINE {
            return self.long_key(word);
        }
        // Only a word inside `text` passes this check, and then `text[at..at + n]` is the word.
        let at = (word.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
        if at.checked_add(INLINE).is_some_and(|end| end <= text.len()) {
            let (a, b) = short_parts_in(text, at, n);
            self.short_key(a, b, n)
        } else {
            self.key(word)
        }
    }

    #[inline(always)]
    fn short_key(&self, a: u64, b: u64, n: usize) -> Key {
        Key {
            a,
            b,
            hash: self.short_hash(a, b, n),
        }
    }

    #[cold]
    fn long_key(&self, word: &[u8]) -> Key {
        let hash = self.long.hash_one(word);
        Key {
            a: 0,
            b: hash,
            hash,
        }
    }

    /// Number of distinct words.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds one to the count of each of [`BATCH`] words, all sub-slices of `text`. The batch is
    /// hashed first and its index slots prefetched, so that the memory accesses of several words
    /// overlap instead of waiting one after another.
    #[inline]
    pub fn add_batch(&mut self, text: &[u8], words: &[&[u8]; BATCH]) {
        let keys: [Key; BATCH] = std::array::from_fn(|i| {
            let key = self.key_in(text, words[i]);
            prefetch(self.index.as_ptr().wrapping_add(self.slot_of(key.hash)));
            key
        });
        for (key, word) in keys.iter().zip(words) {
            self.add_key(word, key, 1);
        }
    }

    /// Adds one to the count of each word; every word is a sub-slice of `text`.
    pub fn add_each(&mut self, text: &[u8], words: &[&[u8]]) {
        for word in words {
            let key = self.key_in(text, word);
            self.add_key(word, &key, 1);
        }
    }

    #[inline(always)]
    fn slot_of(&self, hash: u64) -> usize {
        (hash as usize) & (self.index.len() - 1)
    }

    /// Adds `n` to the count of `word`.
    #[inline]
    pub fn add(&mut self, word: &[u8], n: u64) {
        let key = self.key(word);
        self.add_key(word, &key, n);
    }

    #[inline(always)]
    fn matches(&self, e: &Entry, word: &[u8], key: &Key) -> bool {
        e.len == word.len() as u64
            && e.b == key.b
            && if word.len() <= INLINE {
                e.a == key.a
            } else {
                &self.arena[e.a as usize..e.a as usize + word.len()] == word
            }
    }

    #[inline(always)]
    fn add_key(&mut self, word: &[u8], key: &Key, n: u64) {
        let mask = self.index.len() - 1;
        let mut i = self.slot_of(key.hash);
        loop {
            let slot = self.index[i];
            if slot == 0 {
                break;
            }
            let e = slot as usize - 1;
            if self.matches(&self.entries[e], word, key) {
                self.entries[e].count += n;
                return;
            }
            i = (i + 1) & mask;
        }
        self.insert_new(i, word, key, n);
    }

    #[cold]
    fn insert_new(&mut self, i: usize, word: &[u8], key: &Key, n: u64) {
        let a = if word.len() <= INLINE {
            key.a
        } else {
            let start = self.arena.len() as u64;
            self.arena.extend_from_slice(word);
            start
        };
        self.entries.push(Entry {
            a,
            b: key.b,
            len: word.len() as u64,
            count: n,
        });
        // More distinct words than a u32 can number would need hundreds of gigabytes first.
        self.index[i] = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        if self.entries.len() * 2 > self.index.len() {
            self.grow();
        }
    }

    fn entry_hash(&self, e: &Entry) -> u64 {
        if e.len as usize <= INLINE {
            self.short_hash(e.a, e.b, e.len as usize)
        } else {
            e.b
        }
    }

    fn grow(&mut self) {
        let mut index = vec![0u32; self.index.len() * 2];
        let mask = index.len() - 1;
        for (n, e) in self.entries.iter().enumerate() {
            let mut i = (self.entry_hash(e) as usize) & mask;
            while index[i] != 0 {
                i = (i + 1) & mask;
            }
            index[i] = n as u32 + 1;
        }
        self.index = index;
    }

    /// How often `word` was added.
    pub fn get(&self, word: &[u8]) -> u64 {
        let key = self.key(word);
        let mask = self.index.len() - 1;
        let mut i = (key.hash as usize) & mask;
        loop {
            let slot = self.index[i];
            if slot == 0 {
                return 0;
            }
            let e = &self.entries[slot as usize - 1];
            if self.matches(e, word, &key) {
                return e.count;
            }
            i = (i + 1) & mask;
        }
    }

    /// [`WordTable::for_each`], consuming the table: the index is freed first, so that with
    /// millions of distinct words its memory is back before `f` builds on what it is given.
    pub fn into_each(mut self, f: impl FnMut(&[u8], u64)) {
        self.index = Vec::new();
        self.for_each(f);
    }

    /// Calls `f` with every (word, count) pair, in first-seen order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], u64)) {
        let mut buf = [0u8; INLINE];
        for e in &self.entries {
            let n = e.len as usize;
            let word = if n <= INLINE {
                unparts(e.a, e.b, n, &mut buf)
            } else {
                &self.arena[e.a as usize..e.a as usize + n]
            };
            f(word, e.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn counts_like_a_map() {
        let mut table = WordTable::new();
        let mut model: HashMap<Vec<u8>, u64> = HashMap::new();
        for i in 0..5000u64 {
            let len = (i % 37) as usize;
            let word: Vec<u8> = (0..len)
                .map(|j| b'a' + ((i * 7 + j as u64 * 13) % 26) as u8)
                .collect();
            table.add(&word, i % 3 + 1);
            *model.entry(word).or_default() += i % 3 + 1;
        }
        assert_eq!(table.len(), model.len());
        for (word, n) in &model {
            assert_eq!(table.get(word), *n);
        }
        let mut total = 0;
        let mut seen = HashMap::new();
        table.for_each(|w, n| {
            total += n;
            seen.insert(w.to_vec(), n);
        });
        assert_eq!(seen, model);
        assert_eq!(total, model.values().sum::<u64>());
        assert_eq!(table.get(b"not there at all"), 0);
    }

    #[test]
    fn words_read_in_place_and_copied_share_entries() {
        // Words of every length from 0 to 20 at every offset, the last ones too close to the end
        // of the text for the in-place reads.
        let text: Vec<u8> = (0..200u32)
            .map(|i| b"abcdefghij"[(i % 10) as usize])
            .collect();
        let mut table = WordTable::new();
        let mut model: HashMap<&[u8], u64> = HashMap::new();
        for len in 0..=20 {
            let words: Vec<&[u8]> = (0..=text.len() - len)
                .map(|at| &text[at..at + len])
                .collect();
            let mut batches = words.chunks_exact(BATCH);
            for batch in &mut batches {
                table.add_batch(&text, batch.try_into().unwrap());
            }
            table.add_each(&text, batches.remainder());
            for word in words {
                table.add(word, 1);
                *model.entry(word).or_default() += 2;
            }
        }
        assert_eq!(table.len(), model.len());
        for (word, n) in &model {
            assert_eq!(table.get(word), *n, "{:?}", String::from_utf8_lossy(word));
        }
        let mut rebuilt = 0;
        table.for_each(|w, n| {
            assert_eq!(model.get(w), Some(&n));
            rebuilt += 1;
        });
        assert_eq!(rebuilt, model.len());
    }

    #[test]
    fn keys_differing_in_one_byte() {
        let mut table = WordTable::new();
        for len in 1..=40 {
            for pos in 0..len {
                let mut w = vec![b'x'; len];
                w[pos] = b'y';
                table.add(&w, 1);
            }
            table.add(&vec![b'x'; len], 1);
        }
        assert_eq!(table.len(), (1..=40).map(|l| l + 1).sum::<usize>());
        assert_eq!(table.get(b"xxyx"), 1);
    }
}
