//! A reader for the kdump-compressed files [`crate::write_kdump`] writes (64-bit big-endian
//! `disk_dump_header`), plain or flattened. `pvdump info` uses it to describe an output, and
//! the tests use it to read every page back. Every offset and size taken from the file is
//! checked; nothing is allocated beyond what the file holds.

use std::borrow::Cow;

use pvdump_format::FormatError;

use crate::kdump::{
    Compression, DISK_DUMP_HEADER_SIZE, FLAT_HEADER_SIZE, FLAT_SIGNATURE, KDUMP_SIGNATURE, PAGE_DESC_SIZE,
    SUB_HEADER_SIZE, UTS_LEN,
};

type Result<T> = std::result::Result<T, FormatError>;

/// The fields of `disk_dump_header` (64-bit layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskDumpHeader {
    pub header_version: u32,
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
    pub tv_sec: u64,
    pub tv_usec: u64,
    pub status: u32,
    pub block_size: u32,
    pub sub_hdr_size: u32,
    pub bitmap_blocks: u32,
    pub max_mapnr: u32,
    pub nr_cpus: u32,
}

/// The fields of `kdump_sub_header` (64-bit layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubHeader {
    pub phys_base: u64,
    pub dump_level: u32,
    pub offset_vmcoreinfo: u64,
    pub size_vmcoreinfo: u64,
    pub offset_note: u64,
    pub size_note: u64,
    pub max_mapnr_64: u64,
}

/// One record of a flattened stream.
#[derive(Debug, Clone, Copy)]
struct Record {
    offset: u64,
    size: u64,
    /// Where its payload is in the stream.
    pos: usize,
}

/// A parsed kdump-compressed file.
#[derive(Debug)]
pub struct KdumpFile<'a> {
    data: &'a [u8],
    /// For a flattened stream: the records sorted by offset (non-overlapping).
    records: Option<Vec<Record>>,
    /// Length of the (rearranged) file.
    len: u64,
    pub header: DiskDumpHeader,
    pub sub: SubHeader,
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl<'a> KdumpFile<'a> {
    /// True when `data` starts like a kdump-compressed file.
    pub fn is_kdump(data: &[u8]) -> bool {
        data.starts_with(KDUMP_SIGNATURE)
    }

    /// True when `data` starts like a flattened ("makedumpfile -F") stream.
    pub fn is_flattened(data: &[u8]) -> bool {
        data.starts_with(FLAT_SIGNATURE)
    }

    /// Whether this is a flattened stream.
    pub fn is_flat(&self) -> bool {
        self.records.is_some()
    }

    /// Number of records of a flattened stream.
    pub fn record_count(&self) -> Option<usize> {
        self.records.as_ref().map(|r| r.len())
    }

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
            header: DiskDumpHeader {
                header_version: 0,
                sysname: String::new(),
                nodename: String::new(),
                release: String::new(),
                version: String::new(),
                machine: String::new(),
                domainname: String::new(),
                tv_sec: 0,
                tv_usec: 0,
                status: 0,
                block_size: 0,
                sub_hdr_size: 0,
                bitmap_blocks: 0,
                max_mapnr: 0,
                nr_cpus: 0,
            },
            sub: SubHeader {
                phys_base: 0,
                dump_level: 0,
                offset_vmcoreinfo: 0,
                size_vmcoreinfo: 0,
                offset_note: 0,
                size_note: 0,
                max_mapnr_64: 0,
            },
        };
        let h = f.read(0, DISK_DUMP_HEADER_SIZE as u64, "disk_dump_header")?;
        if !h.starts_with(KDUMP_SIGNATURE) {
            return Err(FormatError::invalid(
                "disk_dump_header",
                0,
                "no \"KDUMP   \" signature: not a kdump-compressed file",
            ));
        }
        let uts = |i: usize| cstr(&h[12 + i * UTS_LEN..12 + (i + 1) * UTS_LEN]);
        let header = DiskDumpHeader {
            header_version: be32(&h, 8),
            sysname: uts(0),
            nodename: uts(1),
            release: uts(2),
            version: uts(3),
            machine: uts(4),
            domainname: uts(5),
            tv_sec: be64(&h, 408),
            tv_usec: be64(&h, 416),
            status: be32(&h, 424),
            block_size: be32(&h, 428),
            sub_hdr_size: be32(&h, 432),
            bitmap_blocks: be32(&h, 436),
            max_mapnr: be32(&h, 440),
            nr_cpus: be32(&h, 460),
        };
        if !(4096..=262_144).contains(&header.block_size) || !header.block_size.is_power_of_two() {
            return Err(FormatError::invalid(
                "disk_dump_header",
                428,
                format!(
                    "block_size {} (big-endian) is not a power of two in 4096..=262144; only 64-bit big-endian (s390x) kdump files are supported",
                    header.block_size
                ),
            ));
        }
        let bs = u64::from(header.block_size);
        let s = f.read(bs, SUB_HEADER_SIZE, "kdump_sub_header")?;
        let sub = SubHeader {
            phys_base: be64(&s, 0),
            dump_level: be32(&s, 8),
            offset_vmcoreinfo: be64(&s, 32),
            size_vmcoreinfo: be64(&s, 40),
            offset_note: be64(&s, 48),
            size_note: be64(&s, 56),
            max_mapnr_64: be64(&s, 96),
        };
        f.header = header;
        f.sub = sub;
        if f.max_mapnr().div_ceil(8) > f.bitmap_len() {
            return Err(FormatError::invalid(
                "disk_dump_header",
                436,
                format!(
                    "{} bitmap blocks cannot hold two bitmaps of {} pages",
                    f.header.bitmap_blocks,
                    f.max_mapnr()
                ),
            ));
        }
        Ok(f)
    }

    /// Reads `len` bytes at offset `off` of the (rearranged) file; parts of a flattened
    /// stream that no record covers read as zero, as in the rearranged file.
    fn read(&self, off: u64, len: u64, what: &str) -> Result<Cow<'a, [u8]>> {
        let end = off.checked_add(len).filter(|&e| e <= self.len).ok_or_else(|| {
            FormatError::invalid(
                what,
                off,
                format!("{len} bytes at {off:#x} run past the end of the file ({:#x})", self.len),
            )
        })?;
        let Some(records) = &self.records else {
            return Ok(Cow::Borrowed(&self.data[off as usize..end as usize]));
        };
        if len > self.data.len() as u64 {
            return Err(FormatError::invalid(
                what,
                off,
                format!("{len} bytes is more than the whole stream holds"),
            ));
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

    pub fn block_size(&self) -> u64 {
        u64::from(self.header.block_size)
    }

    /// Bytes of one bitmap.
    pub fn bitmap_len(&self) -> u64 {
        u64::from(self.header.bitmap_blocks) * self.block_size() / 2
    }

    fn bitmap1_offset(&self) -> u64 {
        self.block_size() * (1 + u64::from(self.header.sub_hdr_size))
    }

    fn desc_offset(&self) -> u64 {
        self.bitmap1_offset() + 2 * self.bitmap_len()
    }

    /// The compression named in the header status (`None` for uncompressed).
    pub fn compression(&self) -> Compression {
        Compression::from_flags(self.header.status).unwrap_or(Compression::None)
    }

    /// The ELF note blob.
    pub fn notes(&self) -> Result<Cow<'a, [u8]>> {
        self.read(
            self.sub.offset_note,
            self.sub.size_note,
            "ELF notes of the kdump sub-header",
        )
    }

    /// The VMCOREINFO text that offset_vmcoreinfo/size_vmcoreinfo point at.
    pub fn vmcoreinfo(&self) -> Result<Option<Cow<'a, [u8]>>> {
        if self.sub.offset_vmcoreinfo == 0 || self.sub.size_vmcoreinfo == 0 {
            return Ok(None);
        }
        self.read(self.sub.offset_vmcoreinfo, self.sub.size_vmcoreinfo, "VMCOREINFO")
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
                let piece = self.read(base + at, n, "bitmap")?;
                *c += piece.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
                at += n;
            }
        }
        Ok((counts[0], counts[1]))
    }

    /// Calls `f(pfn, page)` for every dumped page in ascending order, decompressing it and
    /// checking its descriptor.
    pub fn for_each_page(&self, mut f: impl FnMut(u64, &[u8])) -> Result<()> {
        let bs = self.block_size() as usize;
        let bitmap2 = self.bitmap1_offset() + self.bitmap_len();
        let mut page = vec![0u8; bs];
        let mut k = 0u64;
        let max = self.max_mapnr();
        let piece_len = 1u64 << 16;
        let mut pfn0 = 0u64;
        while pfn0 < max {
            let bytes = (max - pfn0).div_ceil(8).min(piece_len);
            let bits = self.read(bitmap2 + pfn0 / 8, bytes, "2nd bitmap")?;
            for (i, &b) in bits.iter().enumerate() {
                if b == 0 {
                    continue;
                }
                for bit in 0..8 {
                    let pfn = pfn0 + i as u64 * 8 + bit;
                    if b & (1 << bit) == 0 || pfn >= max {
                        continue;
                    }
                    let doff = self.desc_offset() + k * PAGE_DESC_SIZE;
                    let d = self.read(doff, PAGE_DESC_SIZE, "page descriptor")?;
                    let (off, size, flags) = (be64(&d, 0), be32(&d, 8), be32(&d, 12));
                    let what = format!("page data of pfn {pfn:#x}");
                    let stored = self.read(off, u64::from(size), &what)?;
                    self.decompress(&stored, flags, &mut page).map_err(|p| {
                        FormatError::invalid(what.clone(), off, format!("descriptor {k} (flags {flags:#x}): {p}"))
                    })?;
                    f(pfn, &page);
                    k += 1;
                }
            }
            pfn0 += bytes * 8;
        }
        Ok(())
    }

    fn decompress(&self, stored: &[u8], flags: u32, page: &mut [u8]) -> std::result::Result<(), String> {
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
            Some(Compression::Lzo) => {
                lzokay::decompress::decompress(stored, page).map_err(|e| format!("lzo: {e:?}"))?
            }
            Some(Compression::Snappy) => snap::raw::Decoder::new()
                .decompress(stored, page)
                .map_err(|e| format!("snappy: {e}"))?,
            Some(Compression::Zstd) => {
                zstd::bulk::decompress_to_buffer(stored, page).map_err(|e| format!("zstd: {e}"))?
            }
            Some(Compression::None) => return Err("impossible flag".into()),
        };
        if n != bs {
            return Err(format!("decompressed to {n} bytes instead of {bs}"));
        }
        Ok(())
    }
}

fn parse_records(data: &[u8]) -> Result<Vec<Record>> {
    let what = "flattened record header";
    if data.len() < FLAT_HEADER_SIZE {
        return Err(FormatError::invalid(
            "makedumpfile flat header",
            0,
            "shorter than 4096 bytes",
        ));
    }
    let (ty, ver) = (be64(data, 16), be64(data, 24));
    if ty != 1 || ver != 1 {
        return Err(FormatError::invalid(
            "makedumpfile flat header",
            16,
            format!("type {ty} version {ver}, expected 1 and 1"),
        ));
    }
    let mut pos = FLAT_HEADER_SIZE;
    let mut v = Vec::new();
    loop {
        if data.len() - pos < 16 {
            return Err(FormatError::invalid(
                what,
                pos as u64,
                "stream ends without the end marker",
            ));
        }
        let (off, size) = (be64(data, pos) as i64, be64(data, pos + 8) as i64);
        if off == -1 && size == -1 {
            break;
        }
        if off < 0 || size <= 0 {
            return Err(FormatError::invalid(
                what,
                pos as u64,
                format!("offset {off}, size {size}"),
            ));
        }
        let payload = pos + 16;
        if ((data.len() - payload) as u64) < size as u64 {
            return Err(FormatError::invalid(
                what,
                pos as u64,
                format!("{size} bytes of payload, only {} left", data.len() - payload),
            ));
        }
        v.push(Record {
            offset: off as u64,
            size: size as u64,
            pos: payload,
        });
        pos = payload + size as usize;
    }
    v.sort_by_key(|r| r.offset);
    for w in v.windows(2) {
        if w[0].offset + w[0].size > w[1].offset {
            return Err(FormatError::invalid(
                what,
                w[1].pos as u64 - 16,
                "records overlap (not supported)",
            ));
        }
    }
    Ok(v)
}
