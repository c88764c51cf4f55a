//! Page compression for the kdump writer: one [`PageCompressor`] per worker thread, reused
//! for every page it compresses (no per-page allocation).

use pvdump_format::Compression;
use pvdump_format::consts::PAGE_SIZE;

use super::zstd_pages::ZstdPages;
use crate::error::WriteError;

/// Scratch space a compressor may need for one page: enough for the worst case of every
/// compressor on a 4 KiB page.
pub const SCRATCH: usize = 2 * PAGE_SIZE as usize;

/// Per-worker compression state, created once per worker thread and reused for every page:
/// zlib resets its stream, zstd its contexts, LZO clears its hash table; nothing is
/// allocated per page. Call [`PageCompressor::start_chunk`] before each chunk: what a page
/// compresses to then depends only on the pages before it in the same chunk.
pub enum PageCompressor {
    /// Pages stored raw.
    None,
    /// zlib level 1.
    Zlib(flate2::Compress),
    /// LZO1X-1 (pvdump-lzo).
    Lzo(Box<pvdump_lzo::Compressor>),
    /// Raw snappy.
    Snappy(Box<snap::raw::Encoder>),
    /// zstd level 1, literal Huffman coding skipped where it does not pay.
    Zstd(Box<ZstdPages>),
}

impl PageCompressor {
    /// A compressor for `c`.
    pub fn new(c: Compression) -> Result<PageCompressor, WriteError> {
        Ok(match c {
            Compression::None => PageCompressor::None,
            Compression::Zlib => PageCompressor::Zlib(flate2::Compress::new(flate2::Compression::fast(), true)),
            Compression::Lzo => PageCompressor::Lzo(Box::new(pvdump_lzo::Compressor::new())),
            Compression::Snappy => PageCompressor::Snappy(Box::new(snap::raw::Encoder::new())),
            Compression::Zstd => PageCompressor::Zstd(Box::new(
                ZstdPages::new()
                    .map_err(|e| WriteError::io("starting the zstd compressor", std::io::Error::other(e)))?,
            )),
        })
    }

    /// The compression this compressor produces.
    pub fn compression(&self) -> Compression {
        match self {
            PageCompressor::None => Compression::None,
            PageCompressor::Zlib(_) => Compression::Zlib,
            PageCompressor::Lzo(_) => Compression::Lzo,
            PageCompressor::Snappy(_) => Compression::Snappy,
            PageCompressor::Zstd(_) => Compression::Zstd,
        }
    }

    /// Starts a new chunk: forgets what earlier pages showed (only zstd remembers anything).
    pub fn start_chunk(&mut self) {
        if let PageCompressor::Zstd(z) = self {
            z.start_chunk();
        }
    }

    /// Compresses one page into `out` (at least [`SCRATCH`] bytes); `Some(len)` only when the
    /// result is smaller than the page, so that it is worth storing compressed.
    pub fn compress(&mut self, page: &[u8], out: &mut [u8]) -> Option<usize> {
        let limit = page.len() - 1;
        let n = match self {
            PageCompressor::None => return None,
            PageCompressor::Zlib(z) => {
                z.reset();
                match z.compress(page, &mut out[..limit], flate2::FlushCompress::Finish) {
                    Ok(flate2::Status::StreamEnd) => z.total_out() as usize,
                    _ => return None,
                }
            }
            PageCompressor::Lzo(c) => c.compress(page, out).ok()?,
            PageCompressor::Snappy(e) => e.compress(page, out).ok()?,
            PageCompressor::Zstd(z) => z.compress(page, &mut out[..limit])?,
        };
        (n < page.len()).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_pages_shrink_and_random_pages_do_not() {
        let text: Vec<u8> = b"task_struct kmalloc-64 "
            .iter()
            .copied()
            .cycle()
            .take(PAGE_SIZE as usize)
            .collect();
        let mut x = 0x1234_5678_9abc_def0u64;
        let random: Vec<u8> = (0..PAGE_SIZE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut out = [0u8; SCRATCH];
        for c in Compression::ALL {
            let mut comp = PageCompressor::new(c).unwrap();
            assert_eq!(comp.compression(), c);
            let n = comp.compress(&text, &mut out);
            if c == Compression::None {
                assert_eq!(n, None);
            } else {
                assert!(n.is_some_and(|n| n < 400), "{c}: {n:?}");
            }
            assert_eq!(comp.compress(&random, &mut out), None, "{c}");
        }
    }
}
