//! A [`Read`] over a blob from a given offset, fed by parallel range reads.
//!
//! Up to `connections` threads read consecutive blocks of `block_size` bytes up to the prefetch
//! end, and the reader hands them out in order. Memory is bounded by the buffers: there are
//! `connections + 2` of them (one per thread, the one being consumed, and one spare so that a
//! thread need not wait for the reader to finish a block), a thread takes a free one before it
//! claims the next block, and the reader gives each back once it is consumed. As blocks are claimed in order, each holding a
//! buffer, the block the reader waits for always holds one, so the bound cannot stall the reader.
//!
//! Past the prefetch end (the end of a part's range, where only the rest of its last line is
//! wanted) the reader fetches small blocks itself, one at a time, growing from 64 KiB.

use super::blob::Blob;
use crate::range::Range;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

const FIRST_TAIL: usize = 64 << 10;

type Block = (u64, io::Result<Vec<u8>>);

/// Reads a blob from `start` to its end.
pub struct ParallelReader {
    blob: Arc<Blob>,
    prefetch_end: u64,
    /// Offset of the first byte not yet handed out.
    pos: u64,
    current: Vec<u8>,
    used: usize,
    /// The next block to hand out, and blocks that arrived before it.
    next_block: u64,
    early: BTreeMap<u64, Vec<u8>>,
    done: Option<Receiver<Block>>,
    free: Option<SyncSender<Vec<u8>>>,
    tail: usize,
}

impl ParallelReader {
    /// Reads `[start, blob.size())`, in parallel blocks up to `prefetch_end`.
    pub fn new(blob: Arc<Blob>, start: u64, prefetch_end: u64) -> Self {
        let size = blob.size();
        let start = start.min(size);
        let prefetch_end = prefetch_end.clamp(start, size);
        let block = blob.tuning.block_size.max(1) as u64;
        let blocks = (prefetch_end - start).div_ceil(block);
        let threads = (blob.tuning.connections.max(1) as u64).min(blocks) as usize;
        let mut reader = ParallelReader {
            blob,
            prefetch_end,
            pos: start,
            current: Vec::new(),
            used: 0,
            next_block: 0,
            early: BTreeMap::new(),
            done: None,
            free: None,
            tail: FIRST_TAIL,
        };
        if threads > 0 {
            let buffers = threads + 2;
            let (free_tx, free_rx) = sync_channel::<Vec<u8>>(buffers);
            for _ in 0..buffers {
                let _ = free_tx.send(Vec::new());
            }
            let (done_tx, done_rx) = sync_channel::<Block>(buffers);
            let free_rx = Arc::new(Mutex::new(free_rx));
            let claimed = Arc::new(AtomicU64::new(0));
            for _ in 0..threads {
                let (blob, free_rx, claimed, done_tx) = (
                    reader.blob.clone(),
                    free_rx.clone(),
                    claimed.clone(),
                    done_tx.clone(),
                );
                thread::spawn(move || {
                    fetch_blocks(&blob, start, prefetch_end, &free_rx, &claimed, &done_tx)
                });
            }
            reader.done = Some(done_rx);
            reader.free = Some(free_tx);
        }
        reader
    }

    fn refill(&mut self) -> io::Result<bool> {
        let spent = std::mem::take(&mut self.current);
        if let Some(free) = &self.free
            && spent.capacity() > 0
        {
            let _ = free.try_send(spent);
        }
        self.used = 0;
        let size = self.blob.size();
        if self.pos >= size {
            return Ok(false);
        }
        if self.pos < self.prefetch_end {
            let want = self.next_block;
            let block = loop {
                if let Some(block) = self.early.remove(&want) {
                    break block;
                }
                let done = self
                    .done
                    .as_ref()
                    .expect("blocks before the prefetch end are fetched");
                let (k, block) = done
                    .recv()
                    .map_err(|_| io::Error::other("range readers stopped"))?;
                let block = block?;
                if k == want {
                    break block;
                }
                self.early.insert(k, block);
            };
            self.next_block += 1;
            self.current = block;
        } else {
            let end = (self.pos + self.tail as u64).min(size);
            let mut block = Vec::with_capacity((end - self.pos) as usize);
            self.blob.fetch(Range::new(self.pos, end), &mut block)?;
            self.tail = (self.tail * 2).min(self.blob.tuning.block_size.max(FIRST_TAIL));
            self.current = block;
        }
        Ok(true)
    }
}

impl Read for ParallelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.used == self.current.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.current.len() - self.used);
        buf[..n].copy_from_slice(&self.current[self.used..self.used + n]);
        self.used += n;
        self.pos += n as u64;
        Ok(n)
    }
}

/// One reading thread: takes a free buffer, claims the next block, fetches it, and sends it on,
/// until the blocks run out or the reader is dropped.
fn fetch_blocks(
    blob: &Blob,
    start: u64,
    end: u64,
    free: &Mutex<Receiver<Vec<u8>>>,
    claimed: &AtomicU64,
    done: &SyncSender<Block>,
) {
    let block = blob.tuning.block_size.max(1) as u64;
    loop {
        let buf = free.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(mut buf) = buf else { return };
        let k = claimed.fetch_add(1, Ordering::Relaxed);
        let from = start + k * block;
        if from >= end {
            return;
        }
        buf.clear();
        buf.reserve_exact(block as usize);
        let result = blob
            .fetch(Range::new(from, (from + block).min(end)), &mut buf)
            .map(|()| buf);
        let failed = result.is_err();
        if done.send((k, result)).is_err() || failed {
            return;
        }
    }
}
