//! Moving pages from a [`PageSource`] to an [`Output`] in parallel with bounded memory.
//!
//! Memory is split into chunks of `chunk_pages` pages. For a file, every rayon task reads
//! (decrypts) one chunk into its own reused buffer and writes the non-zero runs at their
//! final offsets (`pwrite`), skipping zero pages so they stay holes. For a stream, pool
//! threads fill a ring of `window` chunk buffers while the calling thread writes each one in
//! order as soon as it is ready (and fills chunks itself in between), so no thread waits for
//! a whole window and the writes overlap the decryption. Either way at most
//! `threads × chunk` (file) or `window × chunk` (stream) bytes are buffered, whatever the
//! size of the dump.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use pvdump_format::consts::PAGE_SIZE;
use pvdump_format::{MemoryBlock, PageSource};
use rayon::prelude::*;

use crate::error::WriteError;
use crate::output::{Output, write_at};

/// Receives progress reports (bytes of memory done so far).
pub trait Progress: Sync {
    /// `bytes` more bytes of memory have been written.
    fn advance(&self, bytes: u64);
}

/// Tuning and control for the writers.
#[derive(Clone, Copy)]
pub struct WriteOptions<'a> {
    /// Pages per work item (default 256 = 1 MiB).
    pub chunk_pages: usize,
    /// Chunks in flight for streamed output (default: 4 per thread): the stream path holds
    /// at most `window × chunk_pages` pages in memory.
    pub window: usize,
    /// Told about every chunk written, if set.
    pub progress: Option<&'a dyn Progress>,
    /// Checked between chunks; when set, writing stops with [`WriteError::Cancelled`].
    pub cancel: Option<&'a AtomicBool>,
}

impl Default for WriteOptions<'_> {
    fn default() -> Self {
        WriteOptions {
            chunk_pages: 256,
            window: 4 * rayon::current_num_threads().max(1),
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

/// All-zero check for one page (branch-free OR over 16-byte words; vectorises well).
pub fn is_zero(page: &[u8]) -> bool {
    let (words, rest) = page.as_chunks::<16>();
    words.iter().fold(0u128, |a, w| a | u128::from_ne_bytes(*w)) == 0 && rest.iter().all(|&b| b == 0)
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
            let step = chunk_pages as u64 * PAGE_SIZE;
            let per_block = |&(b, off): &(MemoryBlock, u64)| {
                (0..b.size.div_ceil(step))
                    .into_par_iter()
                    .map(move |i| Chunk::nth(b, off, step, i))
            };
            blocks.par_iter().flat_map(per_block).try_for_each_init(
                || (vec![0u8; chunk_pages * PAGE_SIZE as usize], vec![false; chunk_pages]),
                |(buf, zero), c| {
                    opts.check_cancel()?;
                    let len = c.pages * PAGE_SIZE as usize;
                    zero[..c.pages].fill(false);
                    src.read_pages(c.paddr, &mut buf[..len], &mut zero[..c.pages])?;
                    write_nonzero_runs(file, &buf[..len], &zero[..c.pages], c.offset)?;
                    if let Some(p) = opts.progress {
                        p.advance(len as u64);
                    }
                    Ok(())
                },
            )
        }
        Output::Stream(w) => stream(src, blocks, &mut **w, opts, chunk_pages),
    }
}

/// One buffer of the stream window: `chunk_pages` pages and their zero flags.
struct Buf {
    data: Vec<u8>,
    zero: Vec<bool>,
}

/// Where a slot of the stream window is.
enum Slot {
    /// Waiting for the next chunk that maps to it.
    Free(Buf),
    /// Being filled by some thread (which holds the buffer).
    Busy,
    /// Filled, waiting for its turn to be written.
    Ready(Buf, Chunk),
}

/// The shared state of the stream window: chunk `k` (in output order) lives in slot
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

/// Fills a claimed chunk (outside the lock) and hands it back.
fn fill<S: PageSource + ?Sized>(
    src: &S,
    ring: &Mutex<Ring<'_>>,
    cv: &Condvar,
    (slot, c, mut buf): (usize, Chunk, Buf),
) {
    let len = c.pages * PAGE_SIZE as usize;
    let mut guard = Abandon { ring, cv, armed: true };
    let result = src.read_pages(c.paddr, &mut buf.data[..len], &mut buf.zero[..c.pages]);
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

/// The stream path: pool threads fill chunks into a ring of `window` buffers while the calling
/// thread (which owns the writer) writes them in order as soon as each is ready, and fills
/// chunks itself when nothing is ready to write. No thread waits for a whole window to
/// finish: the ring keeps every thread busy and the writer behind them by at most
/// `window` chunks.
fn stream<S: PageSource + ?Sized>(
    src: &S,
    blocks: &[(MemoryBlock, u64)],
    w: &mut dyn std::io::Write,
    opts: &WriteOptions<'_>,
    chunk_pages: usize,
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
                    fill(src, &ring, &cv, job);
                }
            });
        }
        let result = write_in_order(src, &ring, &cv, w, opts, window);
        lock(&ring).stop = true;
        cv.notify_all();
        result
    })
}

/// The calling thread's part of [`stream`]: write ready chunks in order, else fill one.
fn write_in_order<S: PageSource + ?Sized>(
    src: &S,
    ring: &Mutex<Ring<'_>>,
    cv: &Condvar,
    w: &mut dyn std::io::Write,
    opts: &WriteOptions<'_>,
    window: usize,
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
            let len = c.pages * PAGE_SIZE as usize;
            let result = w.write_all(&buf.data[..len]);
            let mut g = lock(ring);
            g.slots[slot] = Slot::Free(buf);
            g.written += 1;
            drop(g);
            cv.notify_all();
            result.map_err(|e| {
                WriteError::io(
                    format!("writing memory at guest address {:#x} to the output stream", c.paddr),
                    e,
                )
            })?;
            if let Some(p) = opts.progress {
                p.advance(len as u64);
            }
            continue;
        }
        if let Some(job) = g.claim() {
            drop(g);
            fill(src, ring, cv, job);
            continue;
        }
        if g.exhausted && g.written == g.claimed {
            return Ok(());
        }
        // The next chunk is being filled by a helper: wait for it.
        drop(cv.wait(g).unwrap_or_else(|p| p.into_inner()));
    }
}

/// Writes the runs of non-zero pages of `buf` at `offset`, one `pwrite` per run.
fn write_nonzero_runs(file: &std::fs::File, buf: &[u8], known_zero: &[bool], offset: u64) -> Result<(), WriteError> {
    let page = PAGE_SIZE as usize;
    let n = buf.len() / page;
    let mut i = 0;
    while i < n {
        if known_zero[i] || is_zero(&buf[i * page..(i + 1) * page]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && !known_zero[i] && !is_zero(&buf[i * page..(i + 1) * page]) {
            i += 1;
        }
        write_at(file, &buf[start * page..i * page], offset + (start * page) as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The stream ring: output order, the window bound, and that every way of failing
    //! (source, writer, cancel) ends the call without hanging, with any pool size.

    use std::io::Write;
    use std::sync::atomic::{AtomicU64, AtomicUsize};

    use pvdump_format::FormatError;

    use super::*;

    const P: u64 = PAGE_SIZE;

    /// Pages whose bytes identify them; optionally failing at one address, slow on some
    /// chunks (so they complete out of order), and checking the window bound.
    struct Mem {
        blocks: Vec<MemoryBlock>,
        fail_at: Option<u64>,
        /// Bytes written so far by `Sink`, and the bound to check: a chunk starting at
        /// output offset `o` may only be read while `o < written + window_bytes`.
        written: Option<(&'static AtomicU64, u64)>,
        reads: AtomicUsize,
    }

    fn byte(addr: u64) -> u8 {
        (addr / P).wrapping_mul(31) as u8 ^ (addr % 251) as u8
    }

    impl PageSource for Mem {
        fn blocks(&self) -> &[MemoryBlock] {
            &self.blocks
        }
        fn read_pages(&self, paddr: u64, out: &mut [u8], zero: &mut [bool]) -> Result<(), FormatError> {
            let n = self.reads.fetch_add(1, Ordering::Relaxed);
            if let Some(f) = self.fail_at
                && (paddr..paddr + out.len() as u64).contains(&f)
            {
                return Err(FormatError::outside_memory(f));
            }
            if let Some((written, window_bytes)) = self.written {
                // One block at address 0: the output offset is the address.
                let w = written.load(Ordering::SeqCst);
                assert!(
                    paddr < w + window_bytes,
                    "chunk {paddr:#x} read while only {w:#x} written"
                );
            }
            if n % 3 == 1 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            for (i, b) in out.iter_mut().enumerate() {
                *b = byte(paddr + i as u64);
            }
            zero.fill(false);
            Ok(())
        }
    }

    fn mem(blocks: &[(u64, u64)]) -> Mem {
        Mem {
            blocks: blocks
                .iter()
                .map(|&(paddr, pages)| MemoryBlock { paddr, size: pages * P })
                .collect(),
            fail_at: None,
            written: None,
            reads: AtomicUsize::new(0),
        }
    }

    fn expected(m: &Mem) -> Vec<u8> {
        m.blocks.iter().flat_map(|b| (b.paddr..b.end()).map(byte)).collect()
    }

    /// A writer that counts, optionally fails after `fail_after` bytes.
    struct Sink {
        data: Vec<u8>,
        fail_after: Option<usize>,
        written: Option<&'static AtomicU64>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.fail_after.is_some_and(|f| self.data.len() + buf.len() > f) {
                return Err(std::io::Error::other("disk full"));
            }
            self.data.extend_from_slice(buf);
            if let Some(w) = self.written {
                w.fetch_add(buf.len() as u64, Ordering::SeqCst);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn sink() -> Sink {
        Sink {
            data: Vec::new(),
            fail_after: None,
            written: None,
        }
    }

    fn run(
        m: &Mem,
        sink: &mut Sink,
        chunk_pages: usize,
        window: usize,
        cancel: Option<&AtomicBool>,
    ) -> Result<(), WriteError> {
        let blocks: Vec<(MemoryBlock, u64)> = m.blocks.iter().map(|&b| (b, 0)).collect();
        let opts = WriteOptions {
            chunk_pages,
            window,
            progress: None,
            cancel,
        };
        pump(m, &blocks, &mut Output::Stream(sink), &opts)
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
    }

    #[test]
    fn stream_is_in_order_for_any_pool_chunk_and_window() {
        let m = mem(&[(0, 7), (64 * P, 1), (100 * P, 23)]);
        let want = expected(&m);
        for threads in [1, 2, 4] {
            for (chunk, window) in [(1, 1), (3, 2), (2, 7), (64, 3)] {
                let mut s = sink();
                pool(threads).install(|| run(&m, &mut s, chunk, window, None)).unwrap();
                assert!(s.data == want, "threads {threads} chunk {chunk} window {window}");
            }
        }
        // From outside any pool (the global pool's threads help, this thread writes).
        let mut s = sink();
        run(&m, &mut s, 2, 3, None).unwrap();
        assert!(s.data == want);
        // No memory at all.
        let mut s = sink();
        run(&mem(&[]), &mut s, 2, 3, None).unwrap();
        assert!(s.data.is_empty());
    }

    #[test]
    fn stream_reads_at_most_window_chunks_ahead_of_the_writer() {
        static WRITTEN: AtomicU64 = AtomicU64::new(0);
        let (chunk, window) = (2usize, 3usize);
        let mut m = mem(&[(0, 41)]);
        m.written = Some((&WRITTEN, (chunk * window) as u64 * P));
        let mut s = Sink {
            written: Some(&WRITTEN),
            ..sink()
        };
        pool(4).install(|| run(&m, &mut s, chunk, window, None)).unwrap();
        assert!(s.data == expected(&m));
        assert_eq!(m.reads.load(Ordering::Relaxed), 41usize.div_ceil(chunk));
    }

    #[test]
    fn stream_source_error_ends_the_call() {
        for threads in [1, 3] {
            let mut m = mem(&[(0, 50)]);
            m.fail_at = Some(17 * P + 5);
            let mut s = sink();
            let r = pool(threads).install(|| run(&m, &mut s, 4, 3, None));
            assert!(matches!(r, Err(WriteError::Source(_))), "{r:?}");
            // Everything before the failing chunk (pages 16..20) may have been written, in
            // order; nothing after it.
            assert!(s.data.len() <= 16 * P as usize);
            assert!(s.data == expected(&m)[..s.data.len()]);
        }
    }

    #[test]
    fn stream_writer_error_ends_the_call() {
        for threads in [1, 3] {
            let m = mem(&[(0, 50)]);
            let mut s = Sink {
                fail_after: Some(9 * P as usize),
                ..sink()
            };
            let r = pool(threads).install(|| run(&m, &mut s, 4, 3, None));
            match r {
                Err(WriteError::Io { context, source }) => {
                    assert!(context.contains("0x8000"), "{context}");
                    assert_eq!(source.to_string(), "disk full");
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(s.data.len(), 8 * P as usize);
        }
    }

    #[test]
    fn stream_cancel_ends_the_call() {
        let m = mem(&[(0, 50)]);
        let cancel = AtomicBool::new(true);
        let mut s = sink();
        let r = pool(2).install(|| run(&m, &mut s, 4, 3, Some(&cancel)));
        assert!(matches!(r, Err(WriteError::Cancelled)), "{r:?}");
        assert!(s.data.is_empty());
    }

    /// A panicking source must propagate its panic, not hang the writer or the helpers.
    #[test]
    fn stream_source_panic_propagates() {
        struct Boom;
        impl PageSource for Boom {
            fn blocks(&self) -> &[MemoryBlock] {
                const B: &[MemoryBlock] = &[MemoryBlock { paddr: 0, size: 40 * P }];
                B
            }
            fn read_pages(&self, paddr: u64, out: &mut [u8], _: &mut [bool]) -> Result<(), FormatError> {
                assert!(paddr != 12 * P, "boom");
                out.fill(1);
                Ok(())
            }
        }
        for threads in [1, 3] {
            let blocks = [(Boom.blocks()[0], 0)];
            let opts = WriteOptions {
                chunk_pages: 4,
                window: 2,
                progress: None,
                cancel: None,
            };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut s = sink();
                pool(threads).install(|| pump(&Boom, &blocks, &mut Output::Stream(&mut s), &opts))
            }));
            assert!(r.is_err(), "threads {threads}: the panic must propagate");
        }
    }
}
