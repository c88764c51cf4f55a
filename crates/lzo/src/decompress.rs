//! The safe LZO1X decompressor: every read and write is checked, every malformed input is a
//! typed error (as `lzo1x_decompress_safe` reports them), nothing panics.

use crate::format::{END_DIST, M3_MAX_LEN, M4_MAX_LEN, RUN_MAX};

/// Why [`decompress`] rejected its input. `offset` is always an offset in the compressed
/// input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecompressError {
    /// The input ends inside the instruction that starts at `offset` (in its length or
    /// distance bytes or in the literals it copies); liblzo2's `LZO_E_INPUT_OVERRUN`.
    InputOverrun {
        /// Offset of the instruction's first byte.
        offset: usize,
    },
    /// The instruction at `offset` would write past the end of the destination;
    /// `LZO_E_OUTPUT_OVERRUN`.
    OutputOverrun {
        /// Offset of the instruction's first byte.
        offset: usize,
    },
    /// The copy at `offset` reaches back `distance` bytes, before the start of the output
    /// (only `produced` bytes exist); `LZO_E_LOOKBEHIND_OVERRUN`.
    LookbehindOverrun {
        /// Offset of the instruction's first byte.
        offset: usize,
        /// How far back the copy reaches.
        distance: usize,
        /// How many bytes were decompressed before it.
        produced: usize,
    },
    /// The input ends, between two instructions, before the end-of-stream marker;
    /// `LZO_E_EOF_NOT_FOUND`. `offset` is the input's length.
    MissingEnd {
        /// Offset where the next instruction should have started.
        offset: usize,
    },
    /// An end-of-stream marker (distance 16384) at `offset` whose length is not 3, which
    /// the Linux kernel rejects (liblzo2 ignores the length).
    BadEndMarker {
        /// Offset of the marker's first byte.
        offset: usize,
    },
    /// Bytes follow the end-of-stream marker; `LZO_E_INPUT_NOT_CONSUMED`.
    TrailingData {
        /// Offset of the first byte after the marker.
        offset: usize,
    },
}

impl std::fmt::Display for DecompressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            DecompressError::InputOverrun { offset } => {
                write!(f, "LZO input ends inside the instruction at offset {offset}")
            }
            DecompressError::OutputOverrun { offset } => write!(
                f,
                "LZO instruction at offset {offset} writes past the end of the output buffer"
            ),
            DecompressError::LookbehindOverrun {
                offset,
                distance,
                produced,
            } => write!(
                f,
                "LZO copy at offset {offset} reaches {distance} bytes back, but only {produced} bytes were produced"
            ),
            DecompressError::MissingEnd { offset } => {
                write!(f, "LZO input ends at offset {offset} without an end-of-stream marker")
            }
            DecompressError::BadEndMarker { offset } => {
                write!(
                    f,
                    "LZO end-of-stream marker at offset {offset} has a length other than 3"
                )
            }
            DecompressError::TrailingData { offset } => {
                write!(
                    f,
                    "LZO input continues after the end-of-stream marker, at offset {offset}"
                )
            }
        }
    }
}

impl std::error::Error for DecompressError {}

/// The input cursor; its errors name the instruction being decoded.
struct In<'a> {
    src: &'a [u8],
    pos: usize,
    /// Offset of the instruction being decoded.
    at: usize,
}

impl In<'_> {
    #[inline(always)]
    fn byte(&mut self) -> Result<usize, DecompressError> {
        match self.src.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(usize::from(b))
            }
            None => Err(DecompressError::InputOverrun { offset: self.at }),
        }
    }

    /// A little-endian 16-bit distance field: `(distance bits, S)`.
    #[inline(always)]
    fn le16(&mut self) -> Result<(usize, usize), DecompressError> {
        let lo = self.byte()?;
        let hi = self.byte()?;
        let v = lo | (hi << 8);
        Ok((v >> 2, v & 3))
    }

    /// A length extension: `00` bytes worth 255 each, then a non-zero byte.
    #[inline(always)]
    fn ext(&mut self) -> Result<usize, DecompressError> {
        let mut n: usize = 0;
        loop {
            match self.byte()? {
                0 => n = n.saturating_add(255),
                b => return Ok(n.saturating_add(b)),
            }
        }
    }
}

/// Copies `s` to `d` (equal lengths). Short copies, the common case, are done with two
/// fixed-size overlapping moves instead of a call to `memcpy`; nothing outside `d` is
/// written.
#[inline(always)]
fn copy_exact(d: &mut [u8], s: &[u8]) {
    let n = s.len();
    debug_assert_eq!(n, d.len());
    if n != d.len() {
        return;
    }
    match n {
        0 => {}
        1..=3 => {
            d[0] = s[0];
            d[n / 2] = s[n / 2];
            d[n - 1] = s[n - 1];
        }
        4..=8 => {
            d[..4].copy_from_slice(&s[..4]);
            d[n - 4..].copy_from_slice(&s[n - 4..]);
        }
        9..=16 => {
            d[..8].copy_from_slice(&s[..8]);
            d[n - 8..].copy_from_slice(&s[n - 8..]);
        }
        _ => d.copy_from_slice(s),
    }
}

/// Copies `n` literals from the input to `dst[*op..]`.
#[inline(always)]
fn literals(inp: &mut In<'_>, dst: &mut [u8], op: &mut usize, n: usize) -> Result<(), DecompressError> {
    if dst.len() - *op < n {
        return Err(DecompressError::OutputOverrun { offset: inp.at });
    }
    let Some(lit) = inp.src.get(inp.pos..inp.pos.saturating_add(n)) else {
        return Err(DecompressError::InputOverrun { offset: inp.at });
    };
    copy_exact(&mut dst[*op..*op + n], lit);
    inp.pos += n;
    *op += n;
    Ok(())
}

/// Copies `len` bytes from `dist` bytes back in `dst` to `dst[op..]`; overlapping copies
/// repeat the pattern, as LZ77 requires. The caller checked both bounds.
#[inline(always)]
fn copy_back(dst: &mut [u8], op: usize, dist: usize, len: usize) {
    let from = op - dist;
    if dist >= len {
        let (done, rest) = dst.split_at_mut(op);
        copy_exact(&mut rest[..len], &done[from..from + len]);
    } else if dist == 1 {
        let b = dst[from];
        dst[op..op + len].fill(b);
    } else {
        // The output is periodic with period `dist`: copy ever larger whole periods.
        let mut done = 0;
        while done < len {
            let n = (dist + done).min(len - done);
            dst.copy_within(from..from + n, op + done);
            done += n;
        }
    }
}

/// Decompresses the raw LZO1X stream `src` (no header) into `dst` and returns the number of
/// bytes written.
///
/// Accepts the output of every LZO1X compressor (LZO1X-1, LZO1X-999, [`Compressor`]) and
/// rejects, like liblzo2's `lzo1x_decompress_safe`, any input that would read past its end,
/// write past the end of `dst`, copy from before the start of the output, lacks the end
/// marker, or has bytes after it. The stream must decode completely; the output may be
/// shorter than `dst`.
///
/// [`Compressor`]: crate::Compressor
pub fn decompress(src: &[u8], dst: &mut [u8]) -> Result<usize, DecompressError> {
    let mut inp = In { src, pos: 0, at: 0 };
    let mut op = 0;
    // Number of literals the previous instruction copied (4: four or more).
    let mut state = 0;
    if let Some(&first) = src.first()
        && first > 17
    {
        let n = usize::from(first) - 17;
        inp.pos = 1;
        literals(&mut inp, dst, &mut op, n)?;
        state = n.min(4);
    }
    loop {
        inp.at = inp.pos;
        let Some(&t) = src.get(inp.pos) else {
            return Err(DecompressError::MissingEnd { offset: inp.pos });
        };
        inp.pos += 1;
        let t = usize::from(t);
        let (dist, len, s);
        if t >= 64 {
            // 01LDDDSS or 1LLDDDSS, then HHHHHHHH.
            let h = inp.byte()?;
            dist = (h << 3) + ((t >> 2) & 7) + 1;
            len = (t >> 5) + 1;
            s = t & 3;
        } else if t >= 32 {
            // 001LLLLL [ext], then a little-endian distance.
            len = match t & 31 {
                0 => inp.ext()?.saturating_add(M3_MAX_LEN),
                l => l + 2,
            };
            let (d, st) = inp.le16()?;
            dist = d + 1;
            s = st;
        } else if t >= 16 {
            // 0001HLLL [ext], then a little-endian distance; distance 16384 ends the stream.
            len = match t & 7 {
                0 => inp.ext()?.saturating_add(M4_MAX_LEN),
                l => l + 2,
            };
            let (d, st) = inp.le16()?;
            dist = END_DIST + ((t & 8) << 11) + d;
            s = st;
            if dist == END_DIST {
                if len != 3 {
                    return Err(DecompressError::BadEndMarker { offset: inp.at });
                }
                if inp.pos != src.len() {
                    return Err(DecompressError::TrailingData { offset: inp.pos });
                }
                return Ok(op);
            }
        } else if state == 0 {
            // 0000LLLL [ext]: a literal run of 4 or more bytes.
            let n = match t {
                0 => inp.ext()?.saturating_add(RUN_MAX),
                l => l + 3,
            };
            literals(&mut inp, dst, &mut op, n)?;
            state = 4;
            continue;
        } else {
            // 0000DDSS HHHHHHHH: 2 bytes from up to 1 KiB back after 1 to 3 literals,
            // 3 bytes from 2 to 3 KiB back after a literal run.
            let h = inp.byte()?;
            let d = (h << 2) + (t >> 2);
            (dist, len) = if state == 4 { (d + 2049, 3) } else { (d + 1, 2) };
            s = t & 3;
        }
        if dist > op {
            return Err(DecompressError::LookbehindOverrun {
                offset: inp.at,
                distance: dist,
                produced: op,
            });
        }
        if dst.len() - op < len {
            return Err(DecompressError::OutputOverrun { offset: inp.at });
        }
        copy_back(dst, op, dist, len);
        op += len;
        literals(&mut inp, dst, &mut op, s)?;
        state = s;
    }
}
