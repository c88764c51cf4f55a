//! The read path: a request widened to whole pages, filled from the ELF image (in parallel
//! for large requests) into a pooled buffer that is wiped as soon as the reply is sent.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, PoisonError};

use pvdump_core::{ElfImage, FormatError, PageSource};
use rayon::prelude::*;

use crate::{PARALLEL_MIN, PIECE};

/// The page size of guest memory and of the image's memory layout.
pub(crate) const PAGE: u64 = 4096;

/// A read request widened to whole pages of the image.
///
/// The image's memory starts on a page boundary and every block is a whole number of
/// pages, so a page-aligned span makes `ElfImage::read_at` decrypt straight into the
/// caller's buffer: it never needs a scratch page of its own (which it would not wipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// First byte read from the image (page aligned).
    pub start: u64,
    /// One past the last byte read from the image (page aligned, or the end of the image).
    pub end: u64,
    /// Where the requested bytes begin in the span.
    pub skip: usize,
    /// How many requested bytes there are (fewer than asked at the end of the image).
    pub len: usize,
}

impl Span {
    /// The span for `size` bytes at `offset` of an image of `file_len` bytes; `None` when
    /// nothing is left to read there.
    pub fn new(offset: u64, size: usize, file_len: u64) -> Option<Span> {
        if offset >= file_len || size == 0 {
            return None;
        }
        let end = offset.saturating_add(size as u64).min(file_len);
        let start = offset - offset % PAGE;
        let aligned_end = end.checked_next_multiple_of(PAGE).unwrap_or(file_len).min(file_len);
        Some(Span {
            start,
            end: aligned_end,
            skip: (offset - start) as usize,
            len: (end - offset) as usize,
        })
    }

    /// Bytes in the span.
    pub fn width(&self) -> usize {
        (self.end - self.start) as usize
    }
}

/// Why a span could not be filled.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The dump failed while a page was read.
    Format(#[allow(dead_code)] FormatError),
    /// The image ended early (cannot happen for a span inside the image).
    Short,
}

/// Fills `buf` with the image's bytes at `start`; requests of [`PARALLEL_MIN`] bytes or more
/// are split into [`PIECE`]-byte pieces filled on `workers`. The caller must not be a
/// worker of that pool (a session thread is not).
pub(crate) fn fill<S: PageSource + ?Sized>(
    image: &ElfImage<'_, S>,
    start: u64,
    buf: &mut [u8],
    workers: &rayon::ThreadPool,
) -> Result<(), ReadError> {
    if buf.len() < PARALLEL_MIN {
        return fill_piece(image, start, buf);
    }
    workers.install(|| {
        buf.par_chunks_mut(PIECE)
            .enumerate()
            .try_for_each(|(i, piece)| fill_piece(image, start + (i * PIECE) as u64, piece))
    })
}

fn fill_piece<S: PageSource + ?Sized>(image: &ElfImage<'_, S>, start: u64, buf: &mut [u8]) -> Result<(), ReadError> {
    let n = image.read_at(start, buf).map_err(ReadError::Format)?;
    if n == buf.len() { Ok(()) } else { Err(ReadError::Short) }
}

/// Overwrites plaintext with zeros in a way the optimiser keeps (a vectorised memset, not
/// one volatile store per byte).
pub(crate) fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    zeroize::optimization_barrier(buf);
}

/// Reply buffers, reused across requests. A buffer always goes back wiped; at most `keep`
/// are kept.
#[derive(Debug)]
pub(crate) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl BufferPool {
    pub fn new(keep: usize) -> BufferPool {
        BufferPool {
            free: Mutex::new(Vec::new()),
            keep,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Vec<u8>>> {
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A buffer of `len` bytes (zeros), wiped and returned to the pool when dropped.
    pub fn lease(&self, len: usize) -> Lease<'_> {
        let mut buf = self.lock().pop().unwrap_or_default();
        if buf.len() < len {
            // Growing may move the buffer; it holds only zeros, so nothing is left behind.
            buf.resize(len, 0);
        }
        Lease { pool: self, buf, len }
    }

    /// Wipes and frees every pooled buffer.
    pub fn clear(&self) {
        for mut b in self.lock().drain(..) {
            wipe(&mut b);
        }
    }

    /// Bytes held by pooled buffers (for tests).
    #[cfg(test)]
    pub fn pooled(&self) -> Vec<Vec<u8>> {
        self.lock().clone()
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A buffer on loan from a [`BufferPool`]; wiped when dropped, even during a panic.
#[derive(Debug)]
pub(crate) struct Lease<'p> {
    pool: &'p BufferPool,
    buf: Vec<u8>,
    len: usize,
}

impl Deref for Lease<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        wipe(&mut self.buf[..self.len]);
        let buf = std::mem::take(&mut self.buf);
        let mut free = self.pool.lock();
        if free.len() < self.pool.keep {
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_page_aligned_and_clipped() {
        let len = 10 * PAGE;
        assert_eq!(Span::new(len, 10, len), None);
        assert_eq!(Span::new(0, 0, len), None);
        let s = Span::new(0, 100, len).unwrap();
        assert_eq!((s.start, s.end, s.skip, s.len), (0, PAGE, 0, 100));
        let s = Span::new(PAGE - 1, 2, len).unwrap();
        assert_eq!((s.start, s.end, s.skip, s.len), (0, 2 * PAGE, PAGE as usize - 1, 2));
        let s = Span::new(3 * PAGE, PAGE as usize, len).unwrap();
        assert_eq!((s.start, s.end, s.skip, s.len), (3 * PAGE, 4 * PAGE, 0, PAGE as usize));
        // Past the end: clipped to the image.
        let s = Span::new(len - 5, 1 << 20, len).unwrap();
        assert_eq!((s.start, s.end, s.skip, s.len), (len - PAGE, len, PAGE as usize - 5, 5));
        // An image whose length is not a page multiple ends the span at its end.
        let s = Span::new(5, 10_000, 6000).unwrap();
        assert_eq!((s.start, s.end, s.skip, s.len), (0, 6000, 5, 5995));
        assert_eq!(s.width(), 6000);
        // Offsets near u64::MAX do not overflow.
        assert_eq!(Span::new(u64::MAX - 1, 10, u64::MAX).map(|s| s.len), Some(1));
    }

    #[test]
    fn leases_are_wiped_and_pooled_up_to_the_limit() {
        let pool = BufferPool::new(2);
        {
            let mut a = pool.lease(8192);
            let mut b = pool.lease(100);
            let mut c = pool.lease(50);
            a.fill(0xa5);
            b.fill(0x5a);
            c.fill(0x77);
            assert_eq!(a.len(), 8192);
            assert!(b.iter().all(|&x| x == 0x5a));
        }
        let pooled = pool.pooled();
        assert_eq!(pooled.len(), 2, "only `keep` buffers stay pooled");
        assert!(
            pooled.iter().all(|b| b.iter().all(|&x| x == 0)),
            "pooled buffers are wiped"
        );
        // A reused buffer starts as zeros, even when it grows.
        let l = pool.lease(20000);
        assert!(l.iter().all(|&x| x == 0));
        drop(l);
        pool.clear();
        assert!(pool.pooled().is_empty());
    }

    #[test]
    fn a_panic_while_leased_still_wipes() {
        let pool = BufferPool::new(1);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut l = pool.lease(4096);
            l.fill(0xff);
            panic!("reader failed");
        }));
        assert!(r.is_err());
        let pooled = pool.pooled();
        assert_eq!(pooled.len(), 1);
        assert!(pooled[0].iter().all(|&x| x == 0));
    }
}
