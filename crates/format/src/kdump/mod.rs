//! A reader for kdump-compressed files (64-bit big-endian `disk_dump_header`, as on s390x),
//! plain or flattened: pvdump's own `--format kdump` output, makedumpfile's and QEMU's.
//!
//! Every offset and size taken from the file is checked; nothing is allocated beyond what
//! the file holds. [`KdumpFile`] is also a [`PageSource`], so guest memory can be read at any
//! address (a rank index over the 2nd bitmap finds a page's descriptor without a scan).

use std::borrow::Cow;

use crate::consts::PAGE_SIZE;
use crate::cpu::CpuRegisters;
use crate::elf::NoteIter;
use crate::error::{FormatError, Problem, Result, Structure};
use crate::layout::kdump::{
    Compression, DiskDumpHeader, FLAT_SIGNATURE, FlatHeader, FlatRecord, KDUMP_SIGNATURE, KdumpSubHeader, PageDesc,
};
use crate::note_cpus::{NoteCpu, cpus_from_notes};
use crate::source::{MemoryBlock, PageSource};
use crate::uts::Utsname;

/// One record of a flattened stream.
#[derive(Debug, Clone, Copy)]
struct Record {
    offset: u64,
    size: u64,
    /// Where its payload is in the stream.
    pos: usize,
}

/// Pages of the 2nd bitmap covered by one rank entry.
const RANK_PAGES: u64 = 1 << 15;
/// Most memory blocks (runs of dumped pages) a file may describe.
pub const MAX_BLOCKS: usize = 1 << 20;

/// A parsed kdump-compressed file.
#[derive(Debug)]
pub struct KdumpFile<'a> {
    data: &'a [u8],
    /// For a flattened stream: the records sorted by offset (non-overlapping).
    records: Option<Vec<Record>>,
    /// Length of the (rearranged) file.
    len: u64,
    /// `disk_dump_header`.
    pub header: DiskDumpHeader,
    /// `kdump_sub_header`.
    pub sub: KdumpSubHeader,
    /// Runs of dumped pages (2nd bitmap), built on first use by [`PageSource::blocks`].
    blocks: std::sync::OnceLock<std::result::Result<Vec<MemoryBlock>, FormatError>>,
    /// Set bits of the 2nd bitmap before each run of [`RANK_PAGES`] pages.
    rank: std::sync::OnceLock<std::result::Result<Vec<u64>, FormatError>>,
}

impl<'a> KdumpFile<'a> {
    /// True when `data` starts like a kdump-compressed file.
    pub fn is_kdump(data: &[u8]) -> bool {
        data.starts_with(&KDUMP_SIGNATURE)
    }

    /// True when `data` starts like a flattened ("makedumpfile -F") stream.
    pub fn is_flattened(data: &[u8]) -> bool {
        data.starts_with(&FLAT_SIGNATURE)
    }

    /// Whether this is a flattened stream.
    pub fn is_flat(&self) -> bool {
        self.records.is_some()
    }

    /// Number of records of a flattened stream.
    pub fn record_count(&self) -> Option<usize> {
        self.records.as_ref().map(|r| r.len())
    }

    /// Length of the kdump file (for a flattened stream: of the file it rebuilds to).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the (rebuilt) file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Parses the headers of a kdump file or flattened stream.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let (records, len) = if Self::is_flattened(data) {
            let r = parse_records(data)?;
            let len = r.last().map_or(0, |r| r.offset + r.size);
            (Some(r), len)
        } else {
            (None, data.len() as u64)
        };
        let mut f = KdumpFile {
            data,
            records,
            len,
            header: DiskDumpHeader::default(),
            sub: KdumpSubHeader::default(),
            blocks: std::sync::OnceLock::new(),
            rank: std::sync::OnceLock::new(),
        };
        let h = f.read(0, DiskDumpHeader::SIZE as u64, || Structure::KdumpHeader)?;
        let header = DiskDumpHeader::read_from(&h).ok_or_else(|| f.past_end(Structure::KdumpHeader, 0, 464))?;
        if header.signature != KDUMP_SIGNATURE {
            return Err(FormatError::invalid(
                Structure::KdumpHeader,
                0,
                Problem::NoKdumpSignature,
            ));
        }
        let bs = i64::from(header.block_size);
        if !(4096..=262_144).contains(&bs) || !(bs as u64).is_power_of_two() {
            return Err(FormatError::invalid(
                Structure::KdumpHeader,
                428,
                Problem::BlockSize { found: bs },
            ));
        }
        let s = f.read(bs as u64, KdumpSubHeader::SIZE as u64, || Structure::KdumpSubHeader)?;
        let sub = KdumpSubHeader::read_from(&s).ok_or_else(|| f.past_end(Structure::KdumpSubHeader, bs as u64, 104))?;
        f.header = header;
        f.sub = sub;
        if f.max_mapnr().div_ceil(8) > f.bitmap_len() {
            return Err(FormatError::invalid(
                Structure::KdumpHeader,
                436,
                Problem::BitmapTooSmall {
                    blocks: f.header.bitmap_blocks,
                    pages: f.max_mapnr(),
                },
            ));
        }
        Ok(f)
    }

    fn past_end(&self, structure: Structure, off: u64, len: u64) -> FormatError {
        FormatError::invalid(
            structure,
            off,
            Problem::PastEnd {
                len,
                file_len: self.len,
            },
        )
    }

    /// Reads `len` bytes at offset `off` of the (rearranged) file; parts of a flattened
    /// stream that no record covers read as zero, as in the rearranged file.
    fn read(&self, off: u64, len: u64, structure: impl Fn() -> Structure) -> Result<Cow<'a, [u8]>> {
        let end = off
            .checked_add(len)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| self.past_end(structure(), off, len))?;
        let Some(records) = &self.records else {
            return Ok(Cow::Borrowed(&self.data[off as usize..end as usize]));
        };
        if len > self.data.len() as u64 {
            return Err(self.past_end(structure(), off, len));
        }
        let mut buf = vec![0u8; len as usize];
        let first = records.partition_point(|r| r.offset + r.size <= off);
        for r in records[first..].iter().take_while(|r| r.offset < end) {
            let from = r.offset.max(off);
            let to = (r.offset + r.size).min(end);
            let src = r.pos + (from - r.offset) as usize;
            buf[(from - off) as usize..(to - off) as usize]
                .copy_from_slice(&self.data[src..src + (to - from) as usize]);
        }
        Ok(Cow::Owned(buf))
    }

    /// Number of page frames (max_mapnr_64 from header version 6 on).
    pub fn max_mapnr(&self) -> u64 {
        if self.header.header_version >= 6 {
            self.sub.max_mapnr_64
        } else {
            u64::from(self.header.max_mapnr)
        }
    }

    /// Block (= page) size in bytes.
    pub fn block_size(&self) -> u64 {
        self.header.block_size as u64
    }

    /// Bytes of one bitmap.
    pub fn bitmap_len(&self) -> u64 {
        u64::from(self.header.bitmap_blocks) * self.block_size() / 2
    }

    fn bitmap1_offset(&self) -> u64 {
        self.block_size() * (1 + u64::from(self.header.sub_hdr_size.max(0) as u32))
    }

    fn bitmap2_offset(&self) -> u64 {
        self.bitmap1_offset() + self.bitmap_len()
    }

    fn desc_offset(&self) -> u64 {
        self.bitmap1_offset() + 2 * self.bitmap_len()
    }

    /// The compression named in the header status (`None` for uncompressed).
    pub fn compression(&self) -> Compression {
        Compression::from_flags(self.header.status).unwrap_or(Compression::None)
    }

    /// The utsname of the header.
    pub fn utsname(&self) -> Utsname {
        Utsname::from_raw(&self.header.utsname)
    }

    /// The ELF note blob.
    pub fn notes(&self) -> Result<Cow<'a, [u8]>> {
        self.read(self.sub.offset_note, self.sub.size_note, || Structure::KdumpNotes)
    }

    /// The CPUs the note blob describes (one per NT_PRSTATUS).
    pub fn cpus(&self) -> Result<Vec<NoteCpu>> {
        let notes = self.notes()?;
        let base = self.sub.offset_note;
        // Offsets inside the blob become file offsets.
        cpus_from_notes(NoteIter::new(&notes, 0, notes.len() as u64, 0)).map_err(|e| e.rebased(base))
    }

    /// The registers of every CPU, in note order.
    pub fn cpu_registers(&self) -> Result<Vec<CpuRegisters>> {
        Ok(self.cpus()?.into_iter().map(|c| c.regs).collect())
    }

    /// The VMCOREINFO text that offset_vmcoreinfo/size_vmcoreinfo point at.
    pub fn vmcoreinfo(&self) -> Result<Option<Cow<'a, [u8]>>> {
        if self.sub.offset_vmcoreinfo == 0 || self.sub.size_vmcoreinfo == 0 {
            return Ok(None);
        }
        self.read(self.sub.offset_vmcoreinfo, self.sub.size_vmcoreinfo, || {
            Structure::KdumpVmcoreinfo
        })
        .map(Some)
    }

    /// (pages present per the 1st bitmap, pages dumped per the 2nd bitmap).
    pub fn page_counts(&self) -> Result<(u64, u64)> {
        let mut counts = [0u64; 2];
        for (i, c) in counts.iter_mut().enumerate() {
            let base = self.bitmap1_offset() + i as u64 * self.bitmap_len();
            let mut at = 0;
            while at < self.bitmap_len() {
                let n = (self.bitmap_len() - at).min(1 << 20);
                let piece = self.read(base + at, n, || Structure::KdumpBitmap { which: i as u8 + 1 })?;
                *c += piece.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
                at += n;
            }
        }
        Ok((counts[0], counts[1]))
    }

    /// Reads descriptor `index` and the page it describes into `page`.
    fn load_page(&self, index: u64, pfn: u64, page: &mut [u8]) -> Result<()> {
        let doff = self
            .desc_offset()
            .checked_add(index.saturating_mul(PageDesc::SIZE as u64))
            .ok_or_else(|| self.past_end(Structure::PageDescriptor { index }, u64::MAX, 24))?;
        let d = self.read(doff, PageDesc::SIZE as u64, || Structure::PageDescriptor { index })?;
        let d = PageDesc::read_from(&d).ok_or_else(|| self.past_end(Structure::PageDescriptor { index }, doff, 24))?;
        let stored = self.read(d.offset, u64::from(d.size), || Structure::PageData { pfn })?;
        decompress(&stored, d.flags, page).map_err(|reason| {
            FormatError::invalid(
                Structure::PageData { pfn },
                d.offset,
                Problem::BadPage {
                    index,
                    flags: d.flags,
                    reason,
                },
            )
        })
    }

    /// Calls `f(pfn, page)` for every dumped page in ascending order, decompressing it and
    /// checking its descriptor.
    pub fn for_each_page(&self, mut f: impl FnMut(u64, &[u8])) -> Result<()> {
        let mut page = vec![0u8; self.block_size() as usize];
        let mut k = 0u64;
        let max = self.max_mapnr();
        let piece_len = 1u64 << 16;
        let mut pfn0 = 0u64;
        while pfn0 < max {
            let bytes = (max - pfn0).div_ceil(8).min(piece_len);
            let bits = self.read(self.bitmap2_offset() + pfn0 / 8, bytes, || Structure::KdumpBitmap {
                which: 2,
            })?;
            for (i, &b) in bits.iter().enumerate() {
                if b == 0 {
                    continue;
                }
                for bit in 0..8 {
                    let pfn = pfn0 + i as u64 * 8 + bit;
                    if b & (1 << bit) == 0 || pfn >= max {
                        continue;
                    }
                    self.load_page(k, pfn, &mut page)?;
                    f(pfn, &page);
                    k += 1;
                }
            }
            pfn0 += bytes * 8;
        }
        Ok(())
    }

    /// Whether page frame `pfn` is dumped (2nd bitmap).
    fn dumped(&self, pfn: u64) -> Result<bool> {
        if pfn >= self.max_mapnr() {
            return Ok(false);
        }
        let b = self.read(self.bitmap2_offset() + pfn / 8, 1, || Structure::KdumpBitmap {
            which: 2,
        })?;
        Ok(b.first().is_some_and(|b| b & (1 << (pfn % 8)) != 0))
    }

    fn build_rank(&self) -> Result<Vec<u64>> {
        let max = self.max_mapnr();
        let mut rank = Vec::with_capacity(max.div_ceil(RANK_PAGES) as usize);
        let mut total = 0u64;
        let mut pfn0 = 0;
        while pfn0 < max {
            rank.push(total);
            let bytes = (max - pfn0).div_ceil(8).min(RANK_PAGES / 8);
            let bits = self.read(self.bitmap2_offset() + pfn0 / 8, bytes, || Structure::KdumpBitmap {
                which: 2,
            })?;
            total += bits.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
            pfn0 += RANK_PAGES;
        }
        Ok(rank)
    }

    /// Index of the descriptor of dumped page `pfn`: set bits of the 2nd bitmap before it.
    fn desc_index(&self, pfn: u64) -> Result<u64> {
        let rank = self
            .rank
            .get_or_init(|| self.build_rank())
            .as_ref()
            .map_err(Clone::clone)?;
        let chunk = pfn / RANK_PAGES;
        let base = rank.get(chunk as usize).copied().unwrap_or(0);
        let from = chunk * RANK_PAGES;
        let full = (pfn - from) / 8;
        let mut n = base;
        if full > 0 {
            let bits = self.read(self.bitmap2_offset() + from / 8, full, || Structure::KdumpBitmap {
                which: 2,
            })?;
            n += bits.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
        }
        let last = self.read(self.bitmap2_offset() + pfn / 8, 1, || Structure::KdumpBitmap {
            which: 2,
        })?;
        let mask = (1u8 << (pfn % 8)) - 1;
        n += u64::from(last.first().map_or(0, |b| (b & mask).count_ones()));
        Ok(n)
    }

    fn build_blocks(&self) -> Result<Vec<MemoryBlock>> {
        let mut blocks: Vec<MemoryBlock> = Vec::new();
        let max = self.max_mapnr();
        let mut pfn0 = 0u64;
        while pfn0 < max {
            let bytes = (max - pfn0).div_ceil(8).min(1 << 16);
            let bits = self.read(self.bitmap2_offset() + pfn0 / 8, bytes, || Structure::KdumpBitmap {
                which: 2,
            })?;
            for (i, &b) in bits.iter().enumerate() {
                for bit in 0..8 {
                    let pfn = pfn0 + i as u64 * 8 + bit;
                    if b & (1 << bit) == 0 || pfn >= max {
                        continue;
                    }
                    let addr = pfn * PAGE_SIZE;
                    match blocks.last_mut() {
                        Some(last) if last.end() == addr => last.size += PAGE_SIZE,
                        _ => {
                            if blocks.len() == MAX_BLOCKS {
                                return Err(FormatError::invalid(
                                    Structure::KdumpBitmap { which: 2 },
                                    self.bitmap2_offset(),
                                    Problem::TooManyHeaders {
                                        table: "memory block",
                                        count: blocks.len() as u64 + 1,
                                        max: MAX_BLOCKS as u64,
                                    },
                                ));
                            }
                            blocks.push(MemoryBlock {
                                paddr: addr,
                                size: PAGE_SIZE,
                            });
                        }
                    }
                }
            }
            pfn0 += bytes * 8;
        }
        Ok(blocks)
    }

    /// The runs of dumped pages, or the error that building them met.
    pub fn memory_blocks(&self) -> Result<&[MemoryBlock]> {
        if self.block_size() != PAGE_SIZE {
            return Err(FormatError::invalid(
                Structure::KdumpHeader,
                428,
                Problem::BlockSize {
                    found: self.block_size() as i64,
                },
            ));
        }
        self.blocks
            .get_or_init(|| self.build_blocks())
            .as_deref()
            .map_err(Clone::clone)
    }
}

impl PageSource for KdumpFile<'_> {
    /// The runs of dumped pages; empty when the file cannot be read as 4 KiB pages (use
    /// [`KdumpFile::memory_blocks`] to see why).
    fn blocks(&self) -> &[MemoryBlock] {
        self.memory_blocks().unwrap_or(&[])
    }

    fn read_pages(&self, paddr: u64, out: &mut [u8], zero: &mut [bool]) -> Result<()> {
        let (pages, _) = out.as_chunks_mut::<{ PAGE_SIZE as usize }>();
        for (i, (page, z)) in pages.iter_mut().zip(zero.iter_mut()).enumerate() {
            let addr = paddr + i as u64 * PAGE_SIZE;
            let pfn = addr / PAGE_SIZE;
            if !self.dumped(pfn)? {
                return Err(FormatError::outside_memory(addr));
            }
            let index = self.desc_index(pfn)?;
            self.load_page(index, pfn, page)?;
            *z = false;
        }
        Ok(())
    }
}

/// Decompresses one stored page into `page` (whose length is the block size).
fn decompress(stored: &[u8], flags: u32, page: &mut [u8]) -> std::result::Result<(), String> {
    let bs = page.len();
    if stored.len() > bs {
        return Err(format!("size {} is larger than a block", stored.len()));
    }
    let n = match Compression::from_flags(flags) {
        None => {
            if stored.len() != bs {
                return Err(format!("uncompressed page of {} bytes", stored.len()));
            }
            page.copy_from_slice(stored);
            bs
        }
        Some(Compression::Zlib) => {
            let mut d = flate2::Decompress::new(true);
            match d.decompress(stored, page, flate2::FlushDecompress::Finish) {
                Ok(flate2::Status::StreamEnd) => d.total_out() as usize,
                other => return Err(format!("zlib: {other:?}")),
            }
        }
        Some(Compression::Lzo) => pvdump_lzo::decompress(stored, page).map_err(|e| format!("lzo: {e}"))?,
        Some(Compression::Snappy) => snap::raw::Decoder::new()
            .decompress(stored, page)
            .map_err(|e| format!("snappy: {e}"))?,
        Some(Compression::Zstd) => zstd::bulk::decompress_to_buffer(stored, page).map_err(|e| format!("zstd: {e}"))?,
        Some(Compression::None) => return Err("impossible flag".into()),
    };
    if n != bs {
        return Err(format!("decompressed to {n} bytes instead of {bs}"));
    }
    Ok(())
}

fn parse_records(data: &[u8]) -> Result<Vec<Record>> {
    let head = data
        .get(..FlatHeader::SIZE)
        .and_then(FlatHeader::read_from)
        .ok_or_else(|| FormatError::invalid(Structure::FlatHeader, 0, Problem::FlatTooShort))?;
    if head.flat_type != 1 || head.version != 1 {
        return Err(FormatError::invalid(
            Structure::FlatHeader,
            16,
            Problem::FlatVersion {
                flat_type: head.flat_type,
                version: head.version,
            },
        ));
    }
    let bad = |pos: usize, problem| FormatError::invalid(Structure::FlatRecord, pos as u64, problem);
    let mut pos = FlatHeader::SIZE;
    let mut v = Vec::new();
    loop {
        let Some(r) = data.get(pos..).and_then(FlatRecord::read_from) else {
            return Err(bad(pos, Problem::FlatNoEnd));
        };
        if r == FlatRecord::END {
            break;
        }
        if r.offset < 0 || r.size <= 0 {
            return Err(bad(
                pos,
                Problem::FlatBadRecord {
                    offset: r.offset,
                    size: r.size,
                },
            ));
        }
        let payload = pos + FlatRecord::SIZE;
        let left = (data.len() - payload) as u64;
        if left < r.size as u64 {
            return Err(bad(
                pos,
                Problem::FlatPayloadShort {
                    size: r.size as u64,
                    left,
                },
            ));
        }
        if (r.offset as u64).checked_add(r.size as u64).is_none() {
            return Err(bad(
                pos,
                Problem::FlatBadRecord {
                    offset: r.offset,
                    size: r.size,
                },
            ));
        }
        v.push(Record {
            offset: r.offset as u64,
            size: r.size as u64,
            pos: payload,
        });
        pos = payload + r.size as usize;
    }
    v.sort_by_key(|r| r.offset);
    for w in v.windows(2) {
        if w[0].offset + w[0].size > w[1].offset {
            return Err(bad(w[1].pos - FlatRecord::SIZE, Problem::FlatOverlap));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests;
