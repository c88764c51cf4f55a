//! Moving pages from a [`PageSource`] to an [`Output`] in parallel with bounded memory.
//!
//! Memory is split into chunks of `chunk_pages` pages. For a file, every rayon task reads
//! (decrypts) one chunk into its own reused buffer and writes the non-zero runs at their
//! final offsets (`pwrite`), skipping zero pages so they stay holes. For a stream, a window
//! of chunks is filled in parallel and then written in order. Either way at most
//! `threads × chunk` (file) or `window × chunk` (stream) bytes are buffered, whatever the
//! size of the dump.

use std::sync::atomic::{AtomicBool, Ordering};

use pvdump_format::consts::PAGE_SIZE;
use pvdump_format::{MemoryBlock, PageSource};
use rayon::prelude::*;

use crate::error::WriteError;
use crate::output::{Output, write_at};

/// Receives progress reports (bytes of memory done so far).
pub trait Progress: Sync {
    /// `bytes` more bytes of memory are done.
    fn advance(&self, bytes: u64);
}

/// Tuning and control for the writers.
#[derive(Clone, Copy)]
pub struct WriteOptions<'a> {
    /// Pages per work item (default 256 = 1 MiB).
    pub chunk_pages: usize,
    /// Chunks in flight for streamed output (default: 4 per thread).
    pub window: usize,
    /// Progress reports, if wanted.
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
        Output::Stream(w) => {
            let window = opts.window.max(1);
            let mut bufs: Vec<(Vec<u8>, Vec<bool>, Option<Chunk>)> = (0..window)
                .map(|_| {
                    (
                        vec![0u8; chunk_pages * PAGE_SIZE as usize],
                        vec![false; chunk_pages],
                        None,
                    )
                })
                .collect();
            let mut it = chunks(blocks, chunk_pages).peekable();
            while it.peek().is_some() {
                opts.check_cancel()?;
                for slot in bufs.iter_mut() {
                    slot.2 = it.next();
                }
                bufs.par_iter_mut()
                    .try_for_each(|(buf, zero, c)| -> Result<(), WriteError> {
                        if let Some(c) = c {
                            let len = c.pages * PAGE_SIZE as usize;
                            src.read_pages(c.paddr, &mut buf[..len], &mut zero[..c.pages])?;
                        }
                        Ok(())
                    })?;
                for (buf, _, c) in bufs.iter() {
                    if let Some(c) = c {
                        let len = c.pages * PAGE_SIZE as usize;
                        w.write_all(&buf[..len]).map_err(|e| {
                            WriteError::io(
                                format!("writing memory at guest address {:#x} to the output stream", c.paddr),
                                e,
                            )
                        })?;
                        if let Some(p) = opts.progress {
                            p.advance(len as u64);
                        }
                    }
                }
            }
            Ok(())
        }
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
