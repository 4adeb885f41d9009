//! The streaming pipeline: the calling thread reads the input into a small pool of fixed-size
//! buffers, cuts each at a safe point (carrying the rest into the next buffer), and worker threads
//! count the pieces into their own tallies, merged at the end.
//!
//! Memory stays bounded by the pool (buffers x chunk size) plus the word table. A buffer only grows
//! when it holds no cut point at all (one word, or one unbroken script run, longer than a chunk).

use crate::options::Options;
use crate::split::cut_point;
use crate::tally::Tally;
use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::thread;

/// Tuning of the pipeline.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Counting threads (the reading thread comes on top).
    pub threads: usize,
    /// Bytes read per buffer.
    pub chunk_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threads: thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, 16),
            chunk_size: 1 << 20,
        }
    }
}

/// The result of counting a whole input.
#[derive(Debug)]
pub struct Counted {
    pub tally: Tally,
    /// Lines: line feeds, plus one if the input does not end with a line feed.
    pub lines: u64,
}

struct Piece {
    buf: Vec<u8>,
    len: usize,
}

/// Counts everything `reader` yields.
pub fn count_reader<R: Read>(
    mut reader: R,
    options: Options,
    config: Config,
) -> io::Result<Counted> {
    let threads = config.threads.max(1);
    let chunk_size = config.chunk_size.max(1);
    let pool_size = threads * 2 + 1;
    let (work_tx, work_rx) = sync_channel::<Piece>(pool_size);
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(pool_size);
    let work_rx = Mutex::new(work_rx);

    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let work_rx = &work_rx;
                let free_tx = free_tx.clone();
                scope.spawn(move || worker(work_rx, free_tx, options))
            })
            .collect();
        drop(free_tx);
        let read = read_pieces(
            &mut reader,
            options,
            chunk_size,
            pool_size,
            work_tx,
            free_rx,
        );
        let mut tally = Tally::new();
        for w in workers {
            match w.join() {
                Ok(t) => tally.merge(t),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        let last = read?;
        let lines = tally.newlines + u64::from(last.is_some_and(|b| b != b'\n'));
        Ok(Counted { tally, lines })
    })
}

fn worker(
    work_rx: &Mutex<Receiver<Piece>>,
    free_tx: SyncSender<Vec<u8>>,
    options: Options,
) -> Tally {
    let mut tally = Tally::new();
    loop {
        let piece = work_rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        let Ok(mut piece) = piece else { break };
        tally.add_piece(&mut piece.buf[..piece.len], options);
        // The reader may have finished; then the buffer is simply dropped.
        let _ = free_tx.try_send(piece.buf);
    }
    tally
}

/// Reads and dispatches pieces; returns the last byte of the input. Dropping `work_tx` on return
/// (also on error) lets the workers finish.
fn read_pieces<R: Read>(
    reader: &mut R,
    options: Options,
    chunk_size: usize,
    pool_size: usize,
    work_tx: SyncSender<Piece>,
    free_rx: Receiver<Vec<u8>>,
) -> io::Result<Option<u8>> {
    let mut allocated = 0;
    let mut carry: Vec<u8> = Vec::new();
    let mut last = None;
    loop {
        let mut buf = match free_rx.try_recv() {
            Ok(buf) => buf,
            Err(_) if allocated < pool_size => {
                allocated += 1;
                vec![0; chunk_size]
            }
            Err(_) => free_rx
                .recv()
                .map_err(|_| io::Error::other("counting threads stopped"))?,
        };
        let mut len = carry.len();
        if buf.len() < len + chunk_size / 2 {
            buf.resize(len + chunk_size, 0);
        }
        buf[..len].copy_from_slice(&carry);
        carry.clear();
        let mut eof = false;
        let cut = loop {
            while len < buf.len() {
                match reader.read(&mut buf[len..]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => len += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if eof {
                break len;
            }
            match cut_point(&buf[..len], options.mode) {
                Some(p) => break p,
                None => {
                    let grown = buf.len() * 2;
                    buf.resize(grown, 0);
                }
            }
        };
        if len > 0 {
            last = Some(buf[len - 1]);
        }
        carry.extend_from_slice(&buf[cut..len]);
        if cut > 0 && work_tx.send(Piece { buf, len: cut }).is_err() {
            return Err(io::Error::other("counting threads stopped"));
        }
        if eof {
            return Ok(last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Mode;

    #[test]
    fn tiny_chunks_give_same_totals() {
        let text = b"one two  three\nfour\n\nfive".repeat(50);
        for mode in [Mode::Whitespace, Mode::Unicode] {
            let options = Options {
                mode,
                lowercase: false,
            };
            let whole = count_reader(
                &text[..],
                options,
                Config {
                    threads: 1,
                    chunk_size: 1 << 20,
                },
            )
            .unwrap();
            for chunk_size in [1, 2, 3, 7, 64] {
                let parts = count_reader(
                    &text[..],
                    options,
                    Config {
                        threads: 2,
                        chunk_size,
                    },
                )
                .unwrap();
                assert_eq!(parts.tally.words, whole.tally.words);
                assert_eq!(parts.tally.bytes, text.len() as u64);
                assert_eq!(parts.lines, 151);
                assert_eq!(parts.tally.get(b"three"), 50);
            }
        }
    }

    #[test]
    fn empty_input() {
        let c = count_reader(&b""[..], Options::default(), Config::default()).unwrap();
        assert_eq!((c.tally.bytes, c.lines, c.tally.words), (0, 0, 0));
    }
}
