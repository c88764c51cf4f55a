//! zstd level 1 for single 4 KiB pages, with literal Huffman coding skipped where it does
//! not pay (docs/decisions/zstd-literals.md).
//!
//! The kdump format makes every page its own zstd frame, so zstd builds a Huffman table for
//! the literals of every page: 13-17% of the CPU time of `-c zstd` on 4 KiB pages. Where the
//! literals are incompressible (random-looking values between repeated structures, already
//! compressed or encrypted data) zstd builds the table, finds that it does not help and
//! stores the literals raw, so the work is wasted. [`ZstdPages`] watches the literals
//! section of the frames it writes: after [`MISSES`] pages in a row whose literals Huffman
//! coding did not shrink by at least 1/16, it compresses the next pages with literal
//! compression switched off (same level, same match finder; only the table build is
//! skipped), [`FIRST_SKIP`] pages at first, doubling up to [`MAX_SKIP`] while the probe page
//! after each run still gains nothing. One page that gains resets it.
//!
//! The state restarts at every chunk ([`ZstdPages::start_chunk`]), so a chunk's bytes depend
//! on its pages only, never on which thread compressed which chunk before: the output is the
//! same for any thread count.

use zstd::zstd_safe::{CCtx, CParameter, ParamSwitch};

/// Pages in a row whose literals Huffman coding did not shrink before it is skipped.
pub(crate) const MISSES: u8 = 4;
/// Pages compressed without literal Huffman coding after the first run of misses.
pub(crate) const FIRST_SKIP: u16 = 8;
/// The longest run of pages compressed without literal Huffman coding before it is tried
/// again.
pub(crate) const MAX_SKIP: u16 = 64;
/// Literals shorter than this are stored raw by zstd without trying Huffman coding (its
/// minimum for the fast strategy is 63 bytes): such pages say nothing either way.
const MIN_LITERALS: usize = 64;

/// One frame's literals section, as far as the policy needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Literals {
    /// Stored as they are (`Raw_Literals_Block`), `len` bytes.
    Raw { len: usize },
    /// One byte repeated (`RLE_Literals_Block`).
    Rle,
    /// Huffman coded (`Compressed_Literals_Block` or `Treeless_Literals_Block`): `len`
    /// bytes of literals in `stored` bytes (tree description included).
    Huffman { len: usize, stored: usize },
}

/// The literals section of the first block of a zstd frame (RFC 8878, 3.1.1 and 3.1.1.3.1),
/// or `None` when the frame does not start with a compressed block.
pub(crate) fn literals(frame: &[u8]) -> Option<Literals> {
    const MAGIC: [u8; 4] = 0xFD2F_B528u32.to_le_bytes();
    if frame.get(..4)? != MAGIC {
        return None;
    }
    let fhd = *frame.get(4)?;
    let single_segment = fhd & 0x20 != 0;
    let dict_id_len = [0, 1, 2, 4][usize::from(fhd & 3)];
    let fcs_len = match fhd >> 6 {
        0 if single_segment => 1,
        0 => 0,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let block = 5 + usize::from(!single_segment) + dict_id_len + fcs_len;
    let header = frame.get(block..block + 3)?;
    let block_type = (header[0] >> 1) & 3;
    if block_type != 2 {
        return None;
    }
    let lit = frame.get(block + 3..)?;
    let b = |i: usize| lit.get(i).map_or(0, |&v| usize::from(v));
    let b0 = b(0);
    let size_format = (b0 >> 2) & 3;
    match b0 & 3 {
        kind @ (0 | 1) => {
            let len = match size_format {
                0 | 2 => b0 >> 3,
                1 => (b0 >> 4) | (b(1) << 4),
                _ => (b0 >> 4) | (b(1) << 4) | (b(2) << 12),
            };
            Some(if kind == 0 {
                Literals::Raw { len }
            } else {
                Literals::Rle
            })
        }
        _ => {
            let h = b0 | (b(1) << 8) | (b(2) << 16) | (b(3) << 24) | (b(4) << 32);
            let bits = match size_format {
                0 | 1 => 10,
                2 => 14,
                _ => 18,
            };
            let mask = (1 << bits) - 1;
            Some(Literals::Huffman {
                len: (h >> 4) & mask,
                stored: (h >> (4 + bits)) & mask,
            })
        }
    }
}

/// Whether literal Huffman coding paid on this frame: `Some(false)` when zstd tried it and it
/// saved less than 1/16 of the literals, `None` when the frame says nothing either way.
fn huffman_paid(frame: &[u8]) -> Option<bool> {
    match literals(frame)? {
        Literals::Raw { len } if len >= MIN_LITERALS => Some(false),
        Literals::Huffman { len, stored } if len >= MIN_LITERALS => Some(len.saturating_sub(stored) * 16 >= len),
        _ => None,
    }
}

/// When to skip literal Huffman coding, within one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Policy {
    /// Pages in a row whose literals Huffman coding did not shrink.
    misses: u8,
    /// Pages still to compress without literal Huffman coding.
    skip: u16,
    /// The next run's length.
    next_skip: u16,
}

impl Policy {
    const START: Policy = Policy {
        misses: 0,
        skip: 0,
        next_skip: FIRST_SKIP,
    };

    fn record(&mut self, paid: Option<bool>) {
        match paid {
            Some(true) => *self = Policy::START,
            Some(false) => {
                self.misses += 1;
                if self.misses >= MISSES {
                    self.skip = self.next_skip;
                    self.next_skip = (self.next_skip * 2).min(MAX_SKIP);
                    // One more miss on the probe page after the run starts the next run.
                    self.misses = MISSES - 1;
                }
            }
            None => {}
        }
    }
}

/// A worker's zstd state: two level-1 contexts (with and without literal Huffman coding)
/// and the policy that picks one per page.
pub struct ZstdPages {
    huffman: CCtx<'static>,
    raw_literals: CCtx<'static>,
    policy: Policy,
    /// Pages compressed without literal Huffman coding so far (for tests and tuning).
    skipped: u64,
}

impl std::fmt::Debug for ZstdPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZstdPages")
            .field("policy", &self.policy)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

fn context(literal_huffman: bool) -> Result<CCtx<'static>, &'static str> {
    let mut c = CCtx::try_create().ok_or("cannot allocate a zstd context")?;
    let mut set = |p| c.set_parameter(p).map(drop).map_err(zstd::zstd_safe::get_error_name);
    set(CParameter::CompressionLevel(1))?;
    // Every reader decompresses a page into a 4 KiB buffer with ZSTD_decompress, which
    // needs neither the content size nor a checksum nor a dictionary id in the frame.
    set(CParameter::ContentSizeFlag(false))?;
    set(CParameter::ChecksumFlag(false))?;
    set(CParameter::DictIdFlag(false))?;
    if !literal_huffman {
        set(CParameter::LiteralCompressionMode(ParamSwitch::Disable))?;
    }
    Ok(c)
}

impl ZstdPages {
    /// Both contexts, ready for the first chunk.
    pub fn new() -> Result<ZstdPages, &'static str> {
        Ok(ZstdPages {
            huffman: context(true)?,
            raw_literals: context(false)?,
            policy: Policy::START,
            skipped: 0,
        })
    }

    /// Forgets what earlier pages showed: called at the start of every chunk.
    pub fn start_chunk(&mut self) {
        self.policy = Policy::START;
    }

    /// Pages compressed without literal Huffman coding so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Compresses `page` into `out`; `None` when it does not fit.
    pub fn compress(&mut self, page: &[u8], out: &mut [u8]) -> Option<usize> {
        if self.policy.skip > 0 {
            self.policy.skip -= 1;
            self.skipped += 1;
            return self.raw_literals.compress2(out, page).ok();
        }
        let n = self.huffman.compress2(out, page).ok();
        self.policy.record(n.and_then(|n| huffman_paid(&out[..n])));
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4 KiB page of records, each appended by `record` from the next xorshift value.
    fn page_of(seed: u64, record: impl Fn(u64, &mut Vec<u8>)) -> Vec<u8> {
        let mut x = seed | 1;
        let mut page = Vec::with_capacity(4096 + 64);
        while page.len() < 4096 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            record(x, &mut page);
        }
        page.truncate(4096);
        page
    }

    /// A page of 12-byte records: 4 random bytes (the literals) and 8 fixed ones.
    fn random_literals(seed: u64) -> Vec<u8> {
        page_of(seed, |x, page| {
            page.extend_from_slice(&x.to_be_bytes()[..4]);
            page.extend_from_slice(b"kmalloc-");
        })
    }

    /// A page of English-like text whose literals Huffman coding shrinks.
    fn text(seed: u64) -> Vec<u8> {
        const WORDS: [&str; 12] = [
            "the ", "kernel ", "page ", "memory ", "of ", "task ", "and ", "a ", "dump ", "cpu ", "is ", "in ",
        ];
        page_of(seed, |x, page| {
            page.extend_from_slice(WORDS[(x % 12) as usize].as_bytes());
            page.push(b'a' + (x >> 20) as u8 % 26);
        })
    }

    fn decompress(frame: &[u8]) -> Vec<u8> {
        zstd::bulk::decompress(frame, 4096).unwrap()
    }

    #[test]
    fn literals_sections_are_read_from_real_frames() {
        let mut z = ZstdPages::new().unwrap();
        let mut out = [0u8; 8192];
        let n = z.huffman.compress2(&mut out[..], &text(7)).unwrap();
        assert!(matches!(literals(&out[..n]), Some(Literals::Huffman { len, stored }) if len > 500 && stored < len));
        assert_eq!(huffman_paid(&out[..n]), Some(true));
        let n = z.huffman.compress2(&mut out[..], &random_literals(7)).unwrap();
        assert!(matches!(literals(&out[..n]), Some(Literals::Raw { len }) if len >= 1000));
        assert_eq!(huffman_paid(&out[..n]), Some(false));
        let n = z.raw_literals.compress2(&mut out[..], &text(7)).unwrap();
        assert!(matches!(literals(&out[..n]), Some(Literals::Raw { len }) if len > 500));
        // Not a frame; a frame cut short; a frame holding one RLE block.
        assert_eq!(literals(b"not a zstd frame"), None);
        assert_eq!(literals(&out[..5]), None);
        let n = z.huffman.compress2(&mut out[..], &[0x5a; 4096]).unwrap();
        assert_eq!(huffman_paid(&out[..n]), None);
    }

    #[test]
    fn huffman_is_skipped_only_where_it_does_not_pay_and_every_page_round_trips() {
        let mut z = ZstdPages::new().unwrap();
        let mut out = [0u8; 8192];
        let pages: Vec<Vec<u8>> = (0..40).map(random_literals).collect();
        let mut with_huffman = 0;
        for p in &pages {
            let skip_before = z.skipped();
            let n = z.compress(p, &mut out).unwrap();
            assert_eq!(decompress(&out[..n]), *p);
            with_huffman += usize::from(z.skipped() == skip_before);
        }
        // 4 misses, 8 skipped, 1 probe, 16 skipped, 1 probe, then 10 of the next 32.
        assert_eq!(z.skipped(), 34);
        assert_eq!(with_huffman, 6);
        // A page whose literals Huffman coding shrinks ends the run at the next probe.
        z.start_chunk();
        for p in (0..40).map(text) {
            let n = z.compress(&p, &mut out).unwrap();
            assert_eq!(decompress(&out[..n]), p);
        }
        assert_eq!(z.skipped(), 34, "text pages always get Huffman coded literals");
    }

    #[test]
    fn a_chunk_compresses_the_same_whatever_came_before() {
        let chunk: Vec<Vec<u8>> = (0..24)
            .map(|i| if i % 7 == 3 { text(i) } else { random_literals(i) })
            .collect();
        let run = |z: &mut ZstdPages| {
            z.start_chunk();
            let mut frames = Vec::new();
            let mut out = [0u8; 8192];
            for p in &chunk {
                let n = z.compress(p, &mut out).unwrap();
                frames.push(out[..n].to_vec());
            }
            frames
        };
        let fresh = run(&mut ZstdPages::new().unwrap());
        let mut used = ZstdPages::new().unwrap();
        let mut out = [0u8; 8192];
        for i in 100..110 {
            used.compress(&random_literals(i), &mut out).unwrap();
        }
        assert_eq!(run(&mut used), fresh);
    }
}
