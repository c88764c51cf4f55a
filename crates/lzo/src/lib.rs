//! LZO1X-1 compression and safe LZO1X decompression, in safe Rust without dependencies.
//!
//! - [`Compressor`]: a fast LZO1X-1 compressor (one hash table, one candidate per
//!   position), tuned for 4 KiB pages. Create one per thread and reuse it: a call allocates
//!   nothing. Its output is a standard raw LZO1X stream (no header) of the kind liblzo2's
//!   `lzo1x_1_compress` writes, accepted by liblzo2's `lzo1x_decompress_safe` and the Linux
//!   kernel's LZO decompressor, and depends only on the input.
//! - [`decompress`]: decodes any LZO1X stream (the output of LZO1X-1 and of LZO1X-999 alike)
//!   and rejects every malformed input with a typed [`DecompressError`] that names the input
//!   offset; it never reads or writes out of bounds, never writes past the bytes it
//!   returns, and never panics.
//! - [`worst_case_len`]: how large a destination always suffices for [`Compressor::compress`].
//!
//! ```
//! use pvdump_lzo::{Compressor, decompress, worst_case_len};
//!
//! let page = [7u8; 4096];
//! let mut c = Compressor::new();
//! let mut packed = vec![0; worst_case_len(page.len())];
//! let n = c.compress(&page, &mut packed).unwrap();
//! assert!(n < 40);
//! let mut back = [0u8; 4096];
//! assert_eq!(decompress(&packed[..n], &mut back), Ok(4096));
//! assert_eq!(back, page);
//! ```
//!
//! # The stream format
//!
//! An LZO1X stream is a sequence of instructions; each copies a run of literal bytes from
//! the input or a block from the output already written (distance 1 to 49151), and most
//! carry, in their low two bits `S`, a count of 0 to 3 literals that follow them. What the
//! next instruction byte means depends on that count (the *state*): see the table in
//! `docs/decisions/lzo.md` and the private module `format`. The stream ends with the
//! three bytes `11 00 00` (a far copy of distance 16384).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod compress;
mod decompress;
mod format;

pub use compress::{CompressError, Compressor};
pub use decompress::{DecompressError, decompress};

/// A destination size that always holds what [`Compressor::compress`] writes for `n` input
/// bytes: it never fails with [`CompressError::OutputTooSmall`], and takes its fastest path.
///
/// It is liblzo2's bound for LZO1X-1, `n + n / 16 + 64 + 3`, so buffers sized for either
/// compressor fit both. Ours needs less: every copy (at least 4 bytes) costs at least one
/// byte less than it covers, a literal run costs 1 header byte, or `2 + (len - 19) / 255`
/// from 19 bytes on (each such run with its copy covers at least 23 bytes), the first
/// run and the last one at most 2 more, the end marker 3: at most
/// `n + n / 23 + n / 255 + 6` bytes, plus the 16 bytes beyond the end that a short literal
/// run is copied with.
pub const fn worst_case_len(n: usize) -> usize {
    n.saturating_add(n / 16).saturating_add(64 + 3)
}
