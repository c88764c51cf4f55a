//! The kdump-compressed (diskdump, "KDUMP   ") writer and its flattened stream variant
//! (formats.md E.1-E.6). See docs/kdump.md for the layout decisions.
//!
//! Layout, in 4096-byte blocks, all integers big-endian (the s390x byte order):
//! block 0 `disk_dump_header`; block 1.. `kdump_sub_header` + the ELF note blob; the 1st
//! bitmap (page exists); the 2nd bitmap (page dumped, identical: every existing page is
//! dumped); one 24-byte page descriptor per page in ascending pfn order; then the page data,
//! starting with one shared all-zero block that every zero page points at.
//!
//! Sizes of the bitmaps and the descriptor table depend only on the memory blocks, so every
//! offset except those of the page data is known before the first page is read. Pages are
//! read and compressed in parallel, a window of chunks at a time, while the previous window
//! is written in order; memory stays at about two windows whatever the dump size.
//!
//! A seekable file gets positional writes; a stream gets the flattened format ("makedumpfile
//! -F"): a 4096-byte `makedumpfile` header, then `{offset, size}` records, then an end marker.

use std::fs::File;
use std::io::{BufWriter, Write};

use pvdump_format::consts::PAGE_SIZE;
use pvdump_format::layout::kdump::{
    BLOCK_SIZE, DiskDumpHeader, FlatHeader, FlatRecord, HEADER_VERSION, KDUMP_SIGNATURE, KdumpSubHeader, PageDesc,
};
use pvdump_format::{Compression, MemoryBlock, PageSource, Utsname};
use rayon::prelude::*;

use crate::error::WriteError;
use crate::notes::NoteBlob;
use crate::output::{Output, write_at};
use crate::pump::{WriteOptions, is_zero};

mod compress;
mod zstd_pages;
pub use compress::{PageCompressor, SCRATCH};

/// Fallback utsname.release when the guest's utsname is unknown and VMCOREINFO gives no
/// OSRELEASE.
pub const RELEASE_PLACEHOLDER: &str = "unknown (pvdump: no VMCOREINFO)";
/// Fallback utsname.version when the guest's utsname is unknown (the version string is
/// only in `init_uts_ns`, which the guest did not let pvdump find).
pub const VERSION_PLACEHOLDER: &str = "unknown (written by pvdump)";

/// The **fallback** `new_utsname` for a dump whose kernel gives no way to read its own
/// (no VMCOREINFO, or no `SYMBOL(init_uts_ns)`, or an address that does not translate):
/// sysname `Linux` and machine `s390x` (libkdumpfile needs both to recognise the
/// architecture), release = VMCOREINFO `OSRELEASE` or [`RELEASE_PLACEHOLDER`], version
/// [`VERSION_PLACEHOLDER`], nodename and domainname empty. See docs/kdump.md.
pub fn placeholder_utsname(release: Option<&str>) -> Utsname {
    Utsname {
        sysname: "Linux".into(),
        nodename: String::new(),
        release: release.filter(|r| !r.is_empty()).unwrap_or(RELEASE_PLACEHOLDER).into(),
        version: VERSION_PLACEHOLDER.into(),
        machine: "s390x".into(),
        domainname: String::new(),
    }
}

/// What goes into `disk_dump_header` besides the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdumpInfo {
    /// `new_utsname`: the guest kernel's `init_uts_ns.name` (all six fields), or
    /// [`placeholder_utsname`] when the guest gives no way to read it.
    pub utsname: Utsname,
    /// Crash time in seconds since the epoch (VMCOREINFO `CRASHTIME`); `None` writes 0.
    pub crashtime: Option<u64>,
    /// Number of CPUs (`nr_cpus`).
    pub nr_cpus: u32,
}

impl Default for KdumpInfo {
    /// The placeholder utsname, no crash time, no CPUs.
    fn default() -> Self {
        KdumpInfo {
            utsname: placeholder_utsname(None),
            crashtime: None,
            nr_cpus: 0,
        }
    }
}

/// Statistics of a finished kdump write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KdumpStats {
    /// Length of the (rearranged) kdump file; a flattened stream is a little longer.
    pub bytes: u64,
    /// Bytes of guest memory covered.
    pub memory: u64,
    /// Pages with a descriptor.
    pub pages: u64,
    /// Pages pointing at the shared zero block.
    pub zero_pages: u64,
    /// Pages stored compressed.
    pub compressed_pages: u64,
    /// Non-zero pages stored raw (compression did not make them smaller, or `none`).
    pub raw_pages: u64,
}

/// Where everything goes in a kdump file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdumpLayout {
    /// Number of page frames: highest end address / 4096.
    pub max_mapnr: u64,
    /// Blocks taken by the sub-header and notes.
    pub sub_hdr_blocks: u64,
    /// Bytes of one bitmap (block aligned).
    pub bitmap_len: u64,
    /// File offset of the 1st bitmap.
    pub bitmap1_offset: u64,
    /// File offset of the 2nd bitmap.
    pub bitmap2_offset: u64,
    /// File offset of the page descriptors.
    pub desc_offset: u64,
    /// Pages with a descriptor (every page of every block).
    pub pages: u64,
    /// The shared zero block; page data follows it.
    pub zero_offset: u64,
    /// File offset of the notes.
    pub note_offset: u64,
    /// Bytes of notes.
    pub note_size: u64,
}

impl KdumpLayout {
    /// The layout for these memory blocks and notes.
    pub fn new(blocks: &[MemoryBlock], note_size: u64) -> KdumpLayout {
        let max_mapnr = blocks.iter().map(|b| b.end().div_ceil(PAGE_SIZE)).max().unwrap_or(0);
        let sub_hdr_blocks = (KdumpSubHeader::SIZE as u64 + note_size).div_ceil(BLOCK_SIZE);
        let bitmap_len = max_mapnr.div_ceil(8).next_multiple_of(BLOCK_SIZE);
        let bitmap1_offset = BLOCK_SIZE * (1 + sub_hdr_blocks);
        let bitmap2_offset = bitmap1_offset + bitmap_len;
        let desc_offset = bitmap2_offset + bitmap_len;
        let pages: u64 = blocks.iter().map(|b| b.pages()).sum();
        KdumpLayout {
            max_mapnr,
            sub_hdr_blocks,
            bitmap_len,
            bitmap1_offset,
            bitmap2_offset,
            desc_offset,
            pages,
            zero_offset: desc_offset + pages * PageDesc::SIZE as u64,
            note_offset: BLOCK_SIZE + KdumpSubHeader::SIZE as u64,
            note_size,
        }
    }

    /// `bitmap_blocks` of the header: both bitmaps.
    pub fn bitmap_blocks(&self) -> u64 {
        2 * self.bitmap_len / BLOCK_SIZE
    }

    /// The `disk_dump_header`.
    pub fn header(&self, info: &KdumpInfo, compression: Compression) -> DiskDumpHeader {
        DiskDumpHeader {
            signature: KDUMP_SIGNATURE,
            header_version: HEADER_VERSION,
            utsname: info.utsname.to_raw(),
            tv_sec: info.crashtime.map_or(0, |t| t as i64),
            tv_usec: 0,
            status: compression.flag(),
            block_size: BLOCK_SIZE as i32,
            sub_hdr_size: sat32(self.sub_hdr_blocks) as i32,
            bitmap_blocks: sat32(self.bitmap_blocks()),
            max_mapnr: sat32(self.max_mapnr),
            nr_cpus: info.nr_cpus as i32,
            ..DiskDumpHeader::default()
        }
    }

    /// Block 0: `disk_dump_header`, zero padded to the block size.
    pub fn header_block(&self, info: &KdumpInfo, compression: Compression) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK_SIZE as usize];
        h[..DiskDumpHeader::SIZE].copy_from_slice(&self.header(info, compression).to_bytes());
        h
    }

    /// The `kdump_sub_header`: phys_base 0, dump_level 0 (nothing excluded), not split.
    pub fn sub_header(&self, notes: &NoteBlob) -> KdumpSubHeader {
        let (offset_vmcoreinfo, size_vmcoreinfo) = notes
            .vmcoreinfo
            .map_or((0, 0), |(off, len)| (self.note_offset + off as u64, len as u64));
        KdumpSubHeader {
            offset_vmcoreinfo,
            size_vmcoreinfo,
            offset_note: self.note_offset,
            size_note: self.note_size,
            max_mapnr_64: self.max_mapnr,
            ..KdumpSubHeader::default()
        }
    }

    /// The sub-header blocks: `kdump_sub_header`, the notes, zero padding.
    pub fn sub_header_blocks(&self, notes: &NoteBlob) -> Vec<u8> {
        let mut s = vec![0u8; (self.sub_hdr_blocks * BLOCK_SIZE) as usize];
        let n = KdumpSubHeader::SIZE;
        s[..n].copy_from_slice(&self.sub_header(notes).to_bytes());
        s[n..n + notes.bytes.len()].copy_from_slice(&notes.bytes);
        s
    }
}

fn sat32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Sets the bits of `piece` (bitmap bytes starting at byte `first_byte`) for every page of
/// `blocks` (LSB first: pfn p is bit p & 7 of byte p >> 3).
pub fn fill_bitmap(piece: &mut [u8], first_byte: u64, blocks: &[MemoryBlock]) {
    let lo = first_byte * 8;
    let hi = lo + piece.len() as u64 * 8;
    for b in blocks {
        let a = (b.paddr / PAGE_SIZE).max(lo);
        let e = b.end().div_ceil(PAGE_SIZE).min(hi);
        let mut p = a;
        while p < e {
            let i = ((p - lo) >> 3) as usize;
            if p & 7 == 0 && e - p >= 8 {
                piece[i] = 0xff;
                p += 8;
            } else {
                piece[i] |= 1 << (p & 7);
                p += 1;
            }
        }
    }
}

/// Positional writes into a file, or flattened records into a stream.
enum Sink<'a> {
    File(&'a File),
    Flat(BufWriter<&'a mut dyn Write>),
}

impl Sink<'_> {
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), WriteError> {
        if buf.is_empty() {
            return Ok(());
        }
        match self {
            Sink::File(f) => write_at(f, buf, offset),
            Sink::Flat(w) => {
                let ctx = |e| {
                    WriteError::io(
                        format!(
                            "writing {} bytes for offset {offset:#x} to the output stream",
                            buf.len()
                        ),
                        e,
                    )
                };
                let record = FlatRecord {
                    offset: offset as i64,
                    size: buf.len() as i64,
                };
                w.write_all(&record.to_bytes()).map_err(ctx)?;
                w.write_all(buf).map_err(ctx)
            }
        }
    }
}

/// A run of pages inside one block.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    paddr: u64,
    pages: usize,
}

/// One compressed chunk: the stored bytes and, per page, (stored size, flags); size 0 marks
/// a zero page.
struct ChunkOut {
    data: Vec<u8>,
    pages: Vec<(u32, u32)>,
}

fn compress_chunk<S: PageSource + ?Sized>(
    src: &S,
    c: Chunk,
    comp: &mut PageCompressor,
    buf: &mut Vec<u8>,
    zero: &mut Vec<bool>,
) -> Result<ChunkOut, WriteError> {
    let page = PAGE_SIZE as usize;
    buf.resize(c.pages * page, 0);
    zero.clear();
    zero.resize(c.pages, false);
    src.read_pages(c.paddr, buf, zero)?;
    src.release(c.paddr, buf.len() as u64);
    let mut out = ChunkOut {
        data: Vec::with_capacity(c.pages * page / 2),
        pages: Vec::with_capacity(c.pages),
    };
    let mut scratch = [0u8; SCRATCH];
    comp.start_chunk();
    for (p, &known_zero) in buf.chunks_exact(page).zip(zero.iter()) {
        if known_zero || is_zero(p) {
            out.pages.push((0, 0));
        } else if let Some(n) = comp.compress(p, &mut scratch) {
            out.data.extend_from_slice(&scratch[..n]);
            out.pages.push((n as u32, comp.compression().flag()));
        } else {
            out.data.extend_from_slice(p);
            out.pages.push((PAGE_SIZE as u32, 0));
        }
    }
    Ok(out)
}

/// A worker thread's compressor and chunk buffers, kept between windows and between dumps so
/// that no compressor is created and no chunk buffer allocated per chunk.
struct Worker {
    comp: PageCompressor,
    buf: Vec<u8>,
    zero: Vec<bool>,
}

thread_local! {
    static WORKER: std::cell::RefCell<Option<Worker>> = const { std::cell::RefCell::new(None) };
}

/// Compresses chunk `c` with this thread's [`Worker`] (created on first use, or when the
/// compression differs from the last dump's).
fn compress_on_worker<S: PageSource + ?Sized>(
    src: &S,
    c: Chunk,
    compression: Compression,
) -> Result<ChunkOut, WriteError> {
    let fresh = || -> Result<Worker, WriteError> {
        Ok(Worker {
            comp: PageCompressor::new(compression)?,
            buf: Vec::new(),
            zero: Vec::new(),
        })
    };
    WORKER.with(|cell| {
        // A nested use on the same thread (a page source that itself runs rayon work) finds
        // the worker busy and gets a temporary one.
        let Ok(mut slot) = cell.try_borrow_mut() else {
            let mut w = fresh()?;
            return compress_chunk(src, c, &mut w.comp, &mut w.buf, &mut w.zero);
        };
        if slot.as_ref().is_none_or(|w| w.comp.compression() != compression) {
            *slot = Some(fresh()?);
        }
        match slot.as_mut() {
            Some(w) => compress_chunk(src, c, &mut w.comp, &mut w.buf, &mut w.zero),
            None => Err(WriteError::io(
                "starting a compressor",
                std::io::Error::other("no compressor"),
            )),
        }
    })
}

fn chunks(blocks: &[MemoryBlock], chunk_pages: usize) -> impl Iterator<Item = Chunk> + '_ {
    let step = chunk_pages as u64 * PAGE_SIZE;
    blocks.iter().flat_map(move |b| {
        (0..b.size.div_ceil(step)).map(move |i| {
            let start = i * step;
            Chunk {
                paddr: b.paddr + start,
                pages: ((b.size - start).min(step) / PAGE_SIZE) as usize,
            }
        })
    })
}

/// Bitmap bytes generated and written at a time.
const BITMAP_PIECE: u64 = 1 << 20;

/// Writes a complete kdump-compressed dump of `src` with these notes: positional writes to
/// a file, the flattened format to a stream.
pub fn write_kdump<S: PageSource + ?Sized>(
    src: &S,
    notes: &NoteBlob,
    info: &KdumpInfo,
    compression: Compression,
    out: &mut Output<'_>,
    opts: &WriteOptions<'_>,
) -> Result<KdumpStats, WriteError> {
    let blocks = src.blocks();
    let layout = KdumpLayout::new(blocks, notes.bytes.len() as u64);
    let mut sink = match out {
        Output::File(f) => Sink::File(f),
        Output::Stream(w) => {
            let mut w = BufWriter::with_capacity(1 << 20, &mut **w as &mut dyn Write);
            w.write_all(&FlatHeader::new().to_bytes())
                .map_err(|e| WriteError::io("writing the flattened header to the output stream", e))?;
            Sink::Flat(w)
        }
    };
    sink.write(0, &layout.header_block(info, compression))?;
    sink.write(BLOCK_SIZE, &layout.sub_header_blocks(notes))?;
    // Both bitmaps are the same: every existing page is dumped.
    let mut piece = Vec::new();
    let mut at = 0;
    while at < layout.bitmap_len {
        let n = (layout.bitmap_len - at).min(BITMAP_PIECE);
        piece.clear();
        piece.resize(n as usize, 0);
        fill_bitmap(&mut piece, at, blocks);
        sink.write(layout.bitmap1_offset + at, &piece)?;
        sink.write(layout.bitmap2_offset + at, &piece)?;
        at += n;
    }
    drop(piece);
    sink.write(layout.zero_offset, &[0u8; PAGE_SIZE as usize])?;

    let chunk_pages = opts.chunk_pages.max(1);
    let window = opts.window.max(1);
    let mut stats = KdumpStats {
        memory: src.total_bytes(),
        pages: layout.pages,
        ..KdumpStats::default()
    };
    let mut desc_pos = layout.desc_offset;
    let mut data_pos = layout.zero_offset + PAGE_SIZE;
    let mut it = chunks(blocks, chunk_pages);
    let mut pending: Option<Vec<ChunkOut>> = None;
    loop {
        opts.check_cancel()?;
        let batch: Vec<Chunk> = it.by_ref().take(window).collect();
        if batch.is_empty() && pending.is_none() {
            break;
        }
        let mut produced: Option<Result<Vec<ChunkOut>, WriteError>> = None;
        let mut written: Result<(), WriteError> = Ok(());
        rayon::in_place_scope(|s| {
            if !batch.is_empty() {
                let produced = &mut produced;
                let batch = &batch;
                s.spawn(move |_| {
                    *produced = Some(
                        batch
                            .par_iter()
                            .map(|&c| compress_on_worker(src, c, compression))
                            .collect(),
                    );
                });
            }
            if let Some(done) = pending.take() {
                written = emit(&mut sink, done, &layout, &mut desc_pos, &mut data_pos, &mut stats, opts);
            }
        });
        written?;
        pending = produced.transpose()?;
    }
    match sink {
        Sink::File(_) => {}
        Sink::Flat(mut w) => {
            w.write_all(&FlatRecord::END.to_bytes())
                .and_then(|()| w.flush())
                .map_err(|e| WriteError::io("finishing the flattened output stream", e))?;
        }
    }
    stats.bytes = data_pos;
    Ok(stats)
}

/// Writes one window of compressed chunks in order: their data, then their descriptors.
fn emit(
    sink: &mut Sink<'_>,
    done: Vec<ChunkOut>,
    layout: &KdumpLayout,
    desc_pos: &mut u64,
    data_pos: &mut u64,
    stats: &mut KdumpStats,
    opts: &WriteOptions<'_>,
) -> Result<(), WriteError> {
    let n: usize = done.iter().map(|c| c.pages.len()).sum();
    let mut descs = Vec::with_capacity(n * PageDesc::SIZE);
    for c in done {
        let start = *data_pos;
        for &(size, flags) in &c.pages {
            let (off, size) = if size == 0 {
                stats.zero_pages += 1;
                (layout.zero_offset, PAGE_SIZE as u32)
            } else {
                if flags == 0 {
                    stats.raw_pages += 1;
                } else {
                    stats.compressed_pages += 1;
                }
                let off = *data_pos;
                *data_pos += u64::from(size);
                (off, size)
            };
            let desc = PageDesc {
                offset: off,
                size,
                flags,
                page_flags: 0,
            };
            descs.extend_from_slice(&desc.to_bytes());
        }
        sink.write(start, &c.data)?;
        if let Some(p) = opts.progress {
            p.advance(c.pages.len() as u64 * PAGE_SIZE);
        }
    }
    sink.write(*desc_pos, &descs)?;
    *desc_pos += descs.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_bits_lsb_first() {
        let blocks = [
            MemoryBlock {
                paddr: 0,
                size: 3 * PAGE_SIZE,
            },
            MemoryBlock {
                paddr: 9 * PAGE_SIZE,
                size: 20 * PAGE_SIZE,
            },
        ];
        let mut b = vec![0u8; 4];
        fill_bitmap(&mut b, 0, &blocks);
        assert_eq!(b, [0b0000_0111, 0b1111_1110, 0xff, 0b0001_1111]);
        let mut b = vec![0u8; 2];
        fill_bitmap(&mut b, 1, &blocks);
        assert_eq!(b, [0b1111_1110, 0xff]);
    }

    #[test]
    fn header_fields() {
        let blocks = [MemoryBlock {
            paddr: 0,
            size: 1 << 30,
        }];
        let l = KdumpLayout::new(&blocks, 5000);
        assert_eq!(l.max_mapnr, 1 << 18);
        assert_eq!(l.sub_hdr_blocks, 2);
        assert_eq!(l.bitmap_len, 32768);
        assert_eq!(l.bitmap_blocks(), 16);
        assert_eq!(l.desc_offset, 3 * 4096 + 2 * 32768);
        assert_eq!(l.zero_offset, l.desc_offset + (1 << 18) * 24);
        let info = KdumpInfo {
            utsname: placeholder_utsname(Some("6.8.0")),
            crashtime: Some(1_700_000_000),
            nr_cpus: 3,
        };
        let h = l.header_block(&info, Compression::Zstd);
        assert_eq!(&h[0..12], b"KDUMP   \0\0\0\x06");
        assert_eq!(&h[12..18], b"Linux\0");
        assert_eq!(h[77], 0, "fallback nodename is empty");
        assert_eq!(&h[142..148], b"6.8.0\0");
        assert_eq!(&h[207..207 + VERSION_PLACEHOLDER.len()], VERSION_PLACEHOLDER.as_bytes());
        assert_eq!(&h[272..278], b"s390x\0");
        assert_eq!(&h[408..416], &1_700_000_000u64.to_be_bytes());
        // The guest's own utsname goes in whole.
        let guest = Utsname {
            sysname: "Linux".into(),
            nodename: "(none)".into(),
            release: "6.12.107+deb13-s390x".into(),
            version: "#1 SMP Debian 6.12.107-1 (2026-08-29)".into(),
            machine: "s390x".into(),
            domainname: "(none)".into(),
        };
        let h2 = l.header(
            &KdumpInfo {
                utsname: guest.clone(),
                ..info.clone()
            },
            Compression::Zstd,
        );
        assert_eq!(Utsname::from_raw(&h2.utsname), guest);
        assert_eq!(&h[424..440], &[0, 0, 0, 0x20, 0, 0, 0x10, 0, 0, 0, 0, 2, 0, 0, 0, 16]);
        assert_eq!(&h[460..464], &3u32.to_be_bytes());
    }
}
