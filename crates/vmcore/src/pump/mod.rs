//! Moving pages from a [`PageSource`] to an [`Output`] in parallel with bounded memory.
//!
//! Memory is split into chunks of `chunk_pages` pages. Pool threads fill (read and decrypt)
//! chunks into a ring of `window` reused buffers while the calling thread writes each one
//! in order as soon as it is ready (and fills chunks itself in between), so no thread waits
//! for a whole window and the writes overlap the decryption. A file gets each chunk's
//! data at its final offsets (`pwrite`), leaving runs of zero pages as holes
//! ([`crate::min_hole_pages`]); a stream gets every byte. At most `window × chunk` bytes are buffered, whatever the size of the dump.
//!
//! Only the calling thread writes: every Linux file system serialises buffered writes to one
//! file on the inode lock, and writers from several threads spin on that lock (measured:
//! 26% of all CPU time writing 1 GiB to tmpfs with two threads) instead of decrypting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use pvdump_format::consts::PAGE_SIZE;
use pvdump_format::{MemoryBlock, PageSource};

use crate::error::WriteError;
use crate::output::{Output, min_hole_pages, write_at};

/// Receives progress reports (bytes of memory done so far).
pub trait Progress: Sync {
    /// `bytes` more bytes of memory have been written.
    fn advance(&self, bytes: u64);
}

/// Tuning and control for the writers.
#[derive(Clone, Copy)]
pub struct WriteOptions<'a> {
    /// Pages per work item (default 128 = 512 KiB: measured 6-10% faster than 1 MiB chunks
    /// writing 1 GiB to a file or a stream on 2 cores, docs/performance.md).
    pub chunk_pages: usize,
    /// Chunks in flight (default: 4 per thread): at most `window × chunk_pages` pages are
    /// held in memory.
    pub window: usize,
    /// In a file, runs of at least this many zero pages (inside one chunk) are left as
    /// holes; shorter runs are written as zeros with the data around them. `None` (the
    /// default): as the file system suits ([`crate::min_hole_pages`]).
    pub min_hole_pages: Option<usize>,
    /// Told about every chunk written, if set.
    pub progress: Option<&'a dyn Progress>,
    /// Checked between chunks; when set, writing stops with [`WriteError::Cancelled`].
    pub cancel: Option<&'a AtomicBool>,
}

impl Default for WriteOptions<'_> {
    fn default() -> Self {
        WriteOptions {
            chunk_pages: 128,
            window: 4 * rayon::current_num_threads().max(1),
            min_hole_pages: None,
            progress: None,
            cancel: None,
        }
    }
}

impl WriteOptions<'_> {
    pub(crate) fn check_cancel(&self) -> Result<(), WriteError> {
        match self.cancel {
            Some(c) if c.load(Ordering::Relaxed) => Err(WriteError::Cancelled),
            _ => Ok(()),
        }
    }
}

/// One unit of work: `pages` pages at guest address `paddr`, going to output offset `offset`.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    paddr: u64,
    pages: usize,
    offset: u64,
}

impl Chunk {
    /// Chunk `i` (of `step` bytes) of block `b`, whose first byte goes to output offset `off`.
    fn nth(b: MemoryBlock, off: u64, step: u64, i: u64) -> Chunk {
        let start = i * step;
        Chunk {
            paddr: b.paddr + start,
            pages: (((b.size - start).min(step)) / PAGE_SIZE) as usize,
            offset: off + start,
        }
    }
}

fn chunks(blocks: &[(MemoryBlock, u64)], chunk_pages: usize) -> impl Iterator<Item = Chunk> + '_ {
    let step = chunk_pages as u64 * PAGE_SIZE;
    blocks
        .iter()
        .flat_map(move |&(b, off)| (0..b.size.div_ceil(step)).map(move |i| Chunk::nth(b, off, step, i)))
}

/// All-zero check for one page: ORs 256 bytes at a time (branch-free inside, vectorised)
/// and stops at the first 256 bytes that are not all zero, which for a page holding data is
/// almost always the first: the check then costs a few cycles instead of a pass over 4 KiB.
pub fn is_zero(page: &[u8]) -> bool {
    let (blocks, rest) = page.as_chunks::<256>();
    blocks.iter().all(|b| {
        let (words, _) = b.as_chunks::<8>();
        words.iter().fold(0u64, |a, w| a | u64::from_ne_bytes(*w)) == 0
    }) && rest.iter().all(|&b| b == 0)
}

/// Copies all memory of `src` to `out`; `blocks` pairs each memory block with its output
/// offset (used for files; streams rely on the caller having written everything before).
pub fn pump<S: PageSource + ?Sized>(
    src: &S,
    blocks: &[(MemoryBlock, u64)],
    out: &mut Output<'_>,
    opts: &WriteOptions<'_>,
) -> Result<(), WriteError> {
    let chunk_pages = opts.chunk_pages.max(1);
    match out {
        Output::File(file) => {
            let file: &std::fs::File = file;
            let min_hole = opts.min_hole_pages.unwrap_or_else(|| min_hole_pages(file));
            ordered(src, blocks, opts, chunk_pages, true, &mut |c, buf| {
                write_nonzero_runs(
                    file,
                    &buf.data[..c.pages * PAGE_SIZE as usize],
                    &buf.zero[..c.pages],
                    c.offset,
                    min_hole,
                )
            })
        }
        Output::Stream(w) => ordered(src, blocks, opts, chunk_pages, false, &mut |c, buf| {
            w.write_all(&buf.data[..c.pages * PAGE_SIZE as usize]).map_err(|e| {
                WriteError::io(
                    format!("writing memory at guest address {:#x} to the output stream", c.paddr),
                    e,
                )
            })
        }),
    }
}

/// One buffer of the window: `chunk_pages` pages and their zero flags.
struct Buf {
    data: Vec<u8>,
    zero: Vec<bool>,
}

/// Where a slot of the window is.
enum Slot {
    /// Waiting for the next chunk that maps to it.
    Free(Buf),
    /// Being filled by some thread (which holds the buffer).
    Busy,
    /// Filled, waiting for its turn to be written.
    Ready(Buf, Chunk),
}

/// The shared state of the window: chunk `k` (in output order) lives in slot
/// `k % slots.len()`, and is handed out only once chunk `k - slots.len()` has been written,
/// so at most `window` chunks are in memory.
struct Ring<'c> {
    chunks: Box<dyn Iterator<Item = Chunk> + Send + 'c>,
    /// Chunks handed out so far (the next one to fill).
    claimed: usize,
    /// Chunks written so far (the next one to write).
    written: usize,
    /// No chunk is left to hand out.
    exhausted: bool,
    slots: Vec<Slot>,
    /// The first error of a filling thread; stops every thread.
    error: Option<WriteError>,
    /// Set by the writer when it stops (done, cancelled or failed), and by a filling
    /// thread that panics (see [`Abandon`]).
    stop: bool,
}

impl Ring<'_> {
    /// Hands out the next chunk with its slot's buffer, if its slot is free.
    fn claim(&mut self) -> Option<(usize, Chunk, Buf)> {
        if self.stop || self.error.is_some() || self.exhausted {
            return None;
        }
        let slot = self.claimed % self.slots.len();
        if !matches!(self.slots[slot], Slot::Free(_)) {
            return None;
        }
        let Some(chunk) = self.chunks.next() else {
            self.exhausted = true;
            return None;
        };
        let Slot::Free(buf) = std::mem::replace(&mut self.slots[slot], Slot::Busy) else {
            return None;
        };
        self.claimed += 1;
        Some((slot, chunk, buf))
    }
}

/// Stops the ring if dropped while armed, i.e. when `read_pages` panics in [`fill`]: the
/// slot it holds would never become ready, so every other thread is told to stop instead of
/// waiting for it; the scope then re-raises the panic.
struct Abandon<'r, 'c> {
    ring: &'r Mutex<Ring<'c>>,
    cv: &'r Condvar,
    armed: bool,
}

impl Drop for Abandon<'_, '_> {
    fn drop(&mut self) {
        if self.armed {
            lock(self.ring).stop = true;
            self.cv.notify_all();
        }
    }
}

/// Fills a claimed chunk (outside the lock) and hands it back. With `scan_zero`, every page
/// the source did not flag as zero is checked here, while it is still in this core's cache,
/// so that the writer only reads the flags.
fn fill<S: PageSource + ?Sized>(
    src: &S,
    ring: &Mutex<Ring<'_>>,
    cv: &Condvar,
    (slot, c, mut buf): (usize, Chunk, Buf),
    scan_zero: bool,
) {
    let len = c.pages * PAGE_SIZE as usize;
    let mut guard = Abandon { ring, cv, armed: true };
    let zero = &mut buf.zero[..c.pages];
    zero.fill(false);
    let result = src.read_pages(c.paddr, &mut buf.data[..len], zero);
    if result.is_ok() {
        src.release(c.paddr, len as u64);
        if scan_zero {
            for (z, page) in zero.iter_mut().zip(buf.data[..len].chunks_exact(PAGE_SIZE as usize)) {
                *z = *z || is_zero(page);
            }
        }
    }
    guard.armed = false;
    let mut g = lock(ring);
    match result {
        Ok(()) => g.slots[slot] = Slot::Ready(buf, c),
        Err(e) => {
            g.slots[slot] = Slot::Free(buf);
            g.error.get_or_insert(e.into());
        }
    }
    drop(g);
    cv.notify_all();
}

/// The ring's lock; a panic elsewhere cannot leave the ring inconsistent (every update is a
/// single assignment), so a poisoned lock is used as is.
fn lock<'r, 'c>(ring: &'r Mutex<Ring<'c>>) -> std::sync::MutexGuard<'r, Ring<'c>> {
    ring.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the calling thread does with each filled chunk, in output order.
type Emit<'e> = dyn FnMut(Chunk, &Buf) -> Result<(), WriteError> + 'e;

/// Pool threads fill chunks into a ring of `window` buffers while the calling thread (which
/// owns the output) hands them to `emit` in order as soon as each is ready, and fills chunks
/// itself when nothing is ready to emit. No thread waits for a whole window to finish: the
/// ring keeps every thread busy and the writer behind them by at most `window` chunks.
fn ordered<S: PageSource + ?Sized>(
    src: &S,
    blocks: &[(MemoryBlock, u64)],
    opts: &WriteOptions<'_>,
    chunk_pages: usize,
    scan_zero: bool,
    emit: &mut Emit<'_>,
) -> Result<(), WriteError> {
    let window = opts.window.max(1);
    let slots = (0..window)
        .map(|_| {
            Slot::Free(Buf {
                data: vec![0u8; chunk_pages * PAGE_SIZE as usize],
                zero: vec![false; chunk_pages],
            })
        })
        .collect();
    let ring = Mutex::new(Ring {
        chunks: Box::new(chunks(blocks, chunk_pages)),
        claimed: 0,
        written: 0,
        exhausted: false,
        slots,
        error: None,
        stop: false,
    });
    let cv = Condvar::new();
    // The calling thread fills too, so a pool thread that calls this leaves the others to
    // the helpers; from outside the pool every pool thread helps.
    let helpers = rayon::current_num_threads().saturating_sub(usize::from(rayon::current_thread_index().is_some()));
    rayon::in_place_scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|_| {
                loop {
                    let mut g = lock(&ring);
                    let job = loop {
                        if let Some(job) = g.claim() {
                            break job;
                        }
                        if g.stop || g.error.is_some() || g.exhausted {
                            return;
                        }
                        g = cv.wait(g).unwrap_or_else(|p| p.into_inner());
                    };
                    drop(g);
                    fill(src, &ring, &cv, job, scan_zero);
                }
            });
        }
        let result = write_in_order(src, &ring, &cv, emit, opts, window, scan_zero);
        lock(&ring).stop = true;
        cv.notify_all();
        result
    })
}

/// The calling thread's part of [`ordered`]: emit ready chunks in order, else fill one.
fn write_in_order<S: PageSource + ?Sized>(
    src: &S,
    ring: &Mutex<Ring<'_>>,
    cv: &Condvar,
    emit: &mut Emit<'_>,
    opts: &WriteOptions<'_>,
    window: usize,
    scan_zero: bool,
) -> Result<(), WriteError> {
    loop {
        opts.check_cancel()?;
        let mut g = lock(ring);
        if let Some(e) = g.error.take() {
            g.stop = true;
            return Err(e);
        }
        if g.stop {
            // A filling thread panicked; the scope re-raises its panic, this value is
            // never seen.
            return Err(WriteError::Cancelled);
        }
        let slot = g.written % window;
        if matches!(g.slots[slot], Slot::Ready(..)) {
            let Slot::Ready(buf, c) = std::mem::replace(&mut g.slots[slot], Slot::Busy) else {
                continue;
            };
            drop(g);
            let result = emit(c, &buf);
            let mut g = lock(ring);
            g.slots[slot] = Slot::Free(buf);
            g.written += 1;
            drop(g);
            cv.notify_all();
            result?;
            if let Some(p) = opts.progress {
                p.advance(c.pages as u64 * PAGE_SIZE);
            }
            continue;
        }
        if let Some(job) = g.claim() {
            drop(g);
            fill(src, ring, cv, job, scan_zero);
            continue;
        }
        if g.exhausted && g.written == g.claimed {
            return Ok(());
        }
        // The next chunk is being filled by a helper: wait for it.
        drop(cv.wait(g).unwrap_or_else(|p| p.into_inner()));
    }
}

/// Writes `buf` at `offset`, leaving out the runs of at least `min_hole` zero pages (holes),
/// one `pwrite` per run of data; `zero` flags the zero pages (see [`fill`]), whose bytes in
/// `buf` are zero, so shorter zero runs are written with the data around them.
fn write_nonzero_runs(
    file: &std::fs::File,
    buf: &[u8],
    zero: &[bool],
    offset: u64,
    min_hole: usize,
) -> Result<(), WriteError> {
    let page = PAGE_SIZE as usize;
    let min_hole = min_hole.max(1);
    // `start`: first page of the data run being gathered; `i`: next page to look at.
    let mut start = 0;
    let mut i = 0;
    while i < zero.len() {
        if !zero[i] {
            i += 1;
            continue;
        }
        let hole = i;
        while i < zero.len() && zero[i] {
            i += 1;
        }
        if i - hole >= min_hole {
            if hole > start {
                write_at(file, &buf[start * page..hole * page], offset + (start * page) as u64)?;
            }
            start = i;
        }
    }
    if zero.len() > start {
        write_at(file, &buf[start * page..], offset + (start * page) as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
