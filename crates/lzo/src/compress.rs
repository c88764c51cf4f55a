//! The LZO1X-1 compressor: greedy parsing with one hash-table candidate per position.

use crate::format::{
    END_MARKER, FIRST_RUN_MAX, M2_MAX_DIST, M2_MAX_LEN, M3_MAX_DIST, M3_MAX_LEN, M3_OP, M4_MAX_DIST, M4_MAX_LEN, M4_OP,
    RUN_MAX,
};

/// Bits of the hash: 4096 entries, one per byte of a page. The page table (2-byte entries,
/// 8 KiB) is cleared for every input, which costs less than telling stale entries apart.
const HASH_BITS: u32 = 12;
const HASH_LEN: usize = 1 << HASH_BITS;
/// Shortest match looked for (the table hashes 4 bytes).
const MIN_MATCH: usize = 4;
/// The search step grows by one for every `1 << SKIP_SHIFT` positions tried since the last
/// match, so incompressible data is skipped over quickly.
const SKIP_SHIFT: u32 = 4;

/// Why [`Compressor::compress`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompressError {
    /// The destination cannot hold the compressed stream. A destination of
    /// [`worst_case_len`](crate::worst_case_len) bytes always suffices; a smaller one is a
    /// cheap way to ask "does it compress below this size?".
    OutputTooSmall {
        /// Length of the destination.
        capacity: usize,
    },
}

impl std::fmt::Display for CompressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompressError::OutputTooSmall { capacity } => {
                write!(f, "LZO output does not fit in {capacity} bytes")
            }
        }
    }
}

impl std::error::Error for CompressError {}

/// A reusable LZO1X-1 compressor.
///
/// It holds the hash tables of positions (8 KiB for inputs up to 64 KiB, 16 KiB for longer
/// ones, cleared at the start of every call) and a 4 KiB copy of the page. Create one per
/// thread and call [`compress`](Compressor::compress) for every page: a call allocates
/// nothing. The output depends only on the input, never on what the compressor saw
/// before.
pub struct Compressor {
    /// Offsets of the last 4-byte string with each hash, for inputs up to 64 KiB.
    small: Box<[u16; HASH_LEN]>,
    /// The same for longer inputs.
    large: Box<[u32; HASH_LEN]>,
    /// A copy of the page being compressed, with room to read 4 bytes at any offset.
    pad: Box<[u8; PAD]>,
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor").finish_non_exhaustive()
    }
}

#[inline(always)]
fn read32(s: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(s[i..i + 4].try_into().unwrap_or_default())
}

#[inline(always)]
fn read64(s: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(s[i..i + 8].try_into().unwrap_or_default())
}

#[inline(always)]
fn hash(v: u32) -> usize {
    (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// Number of equal bytes at `src[a..]` and `src[b..]` (`a < b`), up to the end of `src`.
#[inline(always)]
fn common_len(src: &[u8], a: usize, b: usize) -> usize {
    let n = src.len();
    let mut i = 0;
    while b + i + 8 <= n {
        let x = read64(src, a + i) ^ read64(src, b + i);
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while b + i < n && src[a + i] == src[b + i] {
        i += 1;
    }
    i
}

/// Number of `00` bytes and the final byte that extend a length by `rem` (at least 1).
#[inline(always)]
fn ext(rem: usize) -> (usize, u8) {
    let zeros = (rem - 1) / 255;
    (zeros, (rem - zeros * 255) as u8)
}

/// No copy written yet (the first literals use the first-byte form).
const NO_COPY: usize = usize::MAX;

/// The destination and where the literal count of the last copy goes. `CHECKED`: the
/// destination may be too small, so every write checks the room first; otherwise it holds
/// [`worst_case_len`](crate::worst_case_len) bytes, which covers the stream and `WILD`
/// bytes beyond, and nothing is checked (indexing still is: a wrong bound would panic,
/// never write out of bounds).
struct Out<'a, const CHECKED: bool> {
    buf: &'a mut [u8],
    pos: usize,
    /// Index of the byte whose low two bits carry the number of literals after the last
    /// copy; `NO_COPY` before the first copy.
    state_byte: usize,
}

impl<const CHECKED: bool> Out<'_, CHECKED> {
    #[inline(always)]
    fn room(&self, n: usize) -> Result<(), CompressError> {
        if !CHECKED || self.buf.len() - self.pos >= n {
            Ok(())
        } else {
            Err(CompressError::OutputTooSmall {
                capacity: self.buf.len(),
            })
        }
    }

    /// Writes `ext(rem)` at `pos`; the caller checked the room.
    #[inline(always)]
    fn put_ext(&mut self, rem: usize) {
        let (zeros, last) = ext(rem);
        self.buf[self.pos..self.pos + zeros].fill(0);
        self.buf[self.pos + zeros] = last;
        self.pos += zeros + 1;
    }

    /// Writes the header of a run of `n >= 1` literals (none for 1 to 3 literals after a
    /// copy: they go into its S bits); the caller checked the room.
    #[inline(always)]
    fn literal_header(&mut self, n: usize) {
        if self.state_byte == NO_COPY {
            // The first instruction: one byte `17 + n` for up to 238 literals; longer runs
            // use the form below, which a first byte below 16 also means.
            if n <= FIRST_RUN_MAX {
                self.buf[self.pos] = (17 + n) as u8;
                self.pos += 1;
                return;
            }
        } else if n <= 3 {
            self.buf[self.state_byte] |= n as u8;
            return;
        }
        // A literal run: the state is 0 here (after a copy without literals).
        if n <= RUN_MAX {
            self.buf[self.pos] = (n - 3) as u8;
            self.pos += 1;
        } else {
            self.buf[self.pos] = 0;
            self.pos += 1;
            self.put_ext(n - RUN_MAX);
        }
    }

    /// Bytes `literal_header(n)` writes.
    #[inline(always)]
    fn header_len(&self, n: usize) -> usize {
        if (self.state_byte == NO_COPY && n <= FIRST_RUN_MAX) || (self.state_byte != NO_COPY && n > 3 && n <= RUN_MAX) {
            1
        } else if n <= 3 {
            0
        } else {
            2 + ext(n - RUN_MAX).0
        }
    }

    /// Writes the literals `lit` that precede a copy or the end of the stream, exactly.
    #[inline(always)]
    fn literals(&mut self, lit: &[u8]) -> Result<(), CompressError> {
        let n = lit.len();
        if n == 0 {
            return Ok(());
        }
        self.room(self.header_len(n) + n)?;
        self.literal_header(n);
        self.buf[self.pos..self.pos + n].copy_from_slice(lit);
        self.pos += n;
        Ok(())
    }

    /// Writes the `n` literals at `src[at..]` like [`literals`](Out::literals); the caller
    /// checked that the output has room for them, their header and `WILD` more bytes, so
    /// a short run is copied as one block of `WILD` bytes (the excess is overwritten next).
    #[inline(always)]
    fn literals_fast(&mut self, src: &[u8], at: usize, n: usize) {
        if n == 0 {
            return;
        }
        self.literal_header(n);
        let pos = self.pos;
        if n <= WILD && at + WILD <= src.len() {
            self.buf[pos..pos + WILD].copy_from_slice(&src[at..at + WILD]);
        } else {
            self.buf[pos..pos + n].copy_from_slice(&src[at..at + n]);
        }
        self.pos = pos + n;
    }

    /// Writes a copy of `len >= 4` bytes from `dist` (1 to 49151) back.
    #[inline(always)]
    fn copy(&mut self, dist: usize, len: usize) -> Result<(), CompressError> {
        debug_assert!((1..=M4_MAX_DIST).contains(&dist) && len >= MIN_MATCH);
        if len <= M2_MAX_LEN && dist <= M2_MAX_DIST {
            self.room(2)?;
            let d = dist - 1;
            self.buf[self.pos] = (((len - 1) << 5) | ((d & 7) << 2)) as u8;
            self.buf[self.pos + 1] = (d >> 3) as u8;
            self.state_byte = self.pos;
            self.pos += 2;
            return Ok(());
        }
        let (op, max_len, d) = if dist <= M3_MAX_DIST {
            (M3_OP, M3_MAX_LEN, dist - 1)
        } else {
            let x = dist - M3_MAX_DIST;
            (M4_OP | ((x >> 11) & 8) as u8, M4_MAX_LEN, x & 0x3fff)
        };
        if len <= max_len {
            self.room(3)?;
            self.buf[self.pos] = op | (len - 2) as u8;
            self.pos += 1;
        } else {
            let (zeros, _) = ext(len - max_len);
            self.room(4 + zeros)?;
            self.buf[self.pos] = op;
            self.pos += 1;
            self.put_ext(len - max_len);
        }
        self.buf[self.pos] = ((d & 63) << 2) as u8;
        self.buf[self.pos + 1] = (d >> 6) as u8;
        self.state_byte = self.pos;
        self.pos += 2;
        Ok(())
    }

    fn end(&mut self) -> Result<usize, CompressError> {
        self.room(END_MARKER.len())?;
        self.buf[self.pos..self.pos + END_MARKER.len()].copy_from_slice(&END_MARKER);
        self.pos += END_MARKER.len();
        Ok(self.pos)
    }
}

impl Compressor {
    /// A compressor (allocates 28 KiB once).
    pub fn new() -> Self {
        Compressor {
            small: Box::new([0; HASH_LEN]),
            large: Box::new([0; HASH_LEN]),
            pad: Box::new([0; PAD]),
        }
    }

    /// Compresses `src` into `dst` as one raw LZO1X stream (no header, no length) and
    /// returns the stream's length.
    ///
    /// Fails with [`CompressError::OutputTooSmall`] when the stream does not fit in `dst`;
    /// a destination of [`worst_case_len`](crate::worst_case_len)`(src.len())` bytes always
    /// suffices and is the fastest (no room checks). A smaller one (say 4095 bytes for a
    /// page that is only worth storing compressed when it shrinks) costs a check per
    /// instruction. Inputs of any length are accepted; copies reach back at most 49151
    /// bytes. Pages of exactly 4096 bytes take the fastest path.
    pub fn compress(&mut self, src: &[u8], dst: &mut [u8]) -> Result<usize, CompressError> {
        let n = src.len();
        if n <= M4_MAX_DIST {
            // Every earlier position is in reach: the hot loop needs no distance check.
            self.small.fill(0);
            // With `worst_case_len` bytes no write can fail (see there): skip the checks.
            let roomy = dst.len() >= crate::worst_case_len(n);
            if n == PAGE {
                self.pad[..PAGE].copy_from_slice(src);
                let win = Padded(&self.pad);
                if roomy {
                    compress_with::<u16, _, false, false>(&mut self.small, win, src, dst)
                } else {
                    compress_with::<u16, _, false, true>(&mut self.small, win, src, dst)
                }
            } else if roomy {
                compress_with::<u16, _, false, false>(&mut self.small, src, src, dst)
            } else {
                compress_with::<u16, _, false, true>(&mut self.small, src, src, dst)
            }
        } else if n <= 1 << 16 {
            self.small.fill(0);
            compress_with::<u16, _, true, true>(&mut self.small, src, src, dst)
        } else {
            self.large.fill(0);
            compress_with::<u32, _, true, true>(&mut self.large, src, src, dst)
        }
    }
}

/// Reads 4 bytes of the input at offsets the parser knows to be in bounds.
trait Window: Copy {
    fn read32(self, i: usize) -> u32;
}

impl Window for &[u8] {
    #[inline(always)]
    fn read32(self, i: usize) -> u32 {
        read32(self, i)
    }
}

/// A page copied into a buffer 8 bytes longer: an offset masked to the page is in bounds
/// by its type, so the hot loop has no bounds checks (the mask changes no offset the
/// parser uses, all of them are below `PAGE`).
#[derive(Clone, Copy)]
struct Padded<'a>(&'a [u8; PAD]);

const PAGE: usize = 4096;
const PAD: usize = PAGE + 8;

impl Window for Padded<'_> {
    #[inline(always)]
    fn read32(self, i: usize) -> u32 {
        let i = i & (PAGE - 1);
        u32::from_le_bytes(self.0[i..i + 4].try_into().unwrap_or_default())
    }
}

/// A table entry: an input offset, truncated to the entry's width.
trait Slot: Copy {
    fn get(self) -> usize;
    fn put(pos: usize) -> Self;
}

impl Slot for u16 {
    #[inline(always)]
    fn get(self) -> usize {
        usize::from(self)
    }
    #[inline(always)]
    fn put(pos: usize) -> Self {
        pos as u16
    }
}

impl Slot for u32 {
    #[inline(always)]
    fn get(self) -> usize {
        self as usize
    }
    #[inline(always)]
    fn put(pos: usize) -> Self {
        pos as u32
    }
}

/// Literal runs up to this length are copied as one 16-byte block (the output has room,
/// the bytes beyond the run are overwritten next).
const WILD: usize = 16;

/// The parser. `LARGE`: the input is longer than the largest distance, so candidates
/// further back must be ignored; with `u32` entries (inputs over 64 KiB) an entry may also
/// be a truncated offset, so a candidate must lie before `ip`. Candidates are always
/// verified byte by byte, so a stale or truncated entry costs a miss, never a wrong copy.
#[inline(always)]
fn compress_with<T: Slot, W: Window, const LARGE: bool, const CHECKED: bool>(
    table: &mut [T; HASH_LEN],
    win: W,
    src: &[u8],
    dst: &mut [u8],
) -> Result<usize, CompressError> {
    let n = src.len();
    let mut out = Out::<CHECKED> {
        buf: dst,
        pos: 0,
        state_byte: NO_COPY,
    };
    // Start of the literals not yet written.
    let mut anchor = 0;
    if n > MIN_MATCH {
        // The last position whose 4 bytes can be read. The table starts all zero, which
        // names offset 0: a valid (if rarely matching) candidate for every `ip >= 1`.
        let last = n - MIN_MATCH;
        let mut ip = 1;
        'parse: loop {
            // Find a position whose 4 bytes equal those at its table candidate.
            // The step grows by one every `1 << SKIP_SHIFT` positions tried.
            let mut tries = 1 << SKIP_SHIFT;
            let cand = loop {
                let cur = win.read32(ip);
                let slot = &mut table[hash(cur)];
                let cand = slot.get();
                *slot = T::put(ip);
                let usable = !LARGE || ip.wrapping_sub(cand).wrapping_sub(1) < M4_MAX_DIST;
                if usable && win.read32(cand) == cur {
                    break cand;
                }
                ip += tries >> SKIP_SHIFT;
                tries += 1;
                if ip > last {
                    break 'parse;
                }
            };
            // Extend the match forwards. (Extending it backwards into the literals, too, gains
            // about 1% of output on kernel pages and costs 5% of the time.)
            let dist = ip - cand;
            let end = ip + MIN_MATCH + common_len(src, cand + MIN_MATCH, ip + MIN_MATCH);
            let lit = ip - anchor;
            let len = end - ip;
            // Enough room for the literals and their header, the copy, and a 16-byte block
            // copy: write without further checks. Otherwise take the exact path.
            if !CHECKED || out.buf.len() - out.pos >= lit + (lit >> 7) + (len >> 7) + 8 + WILD {
                out.literals_fast(src, anchor, lit);
            } else {
                out.literals(&src[anchor..ip])?;
            }
            out.copy(dist, len)?;
            anchor = end;
            ip = end;
            if ip > last {
                break;
            }
            // Remember a position just before the end of the match: the next string often
            // repeats what follows it.
            table[hash(win.read32(end - 2))] = T::put(end - 2);
        }
    }
    out.literals(&src[anchor..])?;
    out.end()
}
