//! The kdump-compressed ("diskdump", makedumpfile) format and its flattened stream variant,
//! 64-bit big-endian as on s390x (formats.md E.1-E.6; makedumpfile's diskdump_mod.h).
//!
//! A file is made of blocks of `block_size` bytes (pvdump writes 4096): block 0 holds the
//! [`DiskDumpHeader`]; `sub_hdr_size` blocks hold the [`KdumpSubHeader`] and the ELF notes;
//! then two bitmaps of `bitmap_blocks / 2` blocks each (bit *p* of byte *p/8*, LSB first:
//! page frame *p* exists / is dumped); then one [`PageDesc`] per dumped page in pfn order;
//! then the page data. A flattened stream starts with a [`FlatHeader`] block and carries the
//! file as [`FlatRecord`]s, ended by a record of offset and size -1.

/// Signature of a kdump-compressed file.
pub const KDUMP_SIGNATURE: [u8; 8] = *b"KDUMP   ";
/// Signature of a flattened stream (16 bytes including the NUL padding).
pub const FLAT_SIGNATURE: [u8; 16] = *b"makedumpfile\0\0\0\0";
/// `disk_dump_header.header_version` pvdump writes.
pub const HEADER_VERSION: i32 = 6;
/// Length of one utsname field.
pub const UTS_LEN: usize = 65;
/// Block size pvdump writes (= the s390x page size).
pub const BLOCK_SIZE: u64 = 4096;
/// `type` of a flattened header (TYPE_FLAT_HEADER).
pub const FLAT_TYPE: i64 = 1;
/// `version` of a flattened header (VERSION_FLAT_HEADER).
pub const FLAT_VERSION: i64 = 1;

crate::layout! {
    /// `struct new_utsname`: six NUL-padded 65-byte strings.
    pub struct NewUtsname(390) {
        /// "Linux".
        pub sysname: [u8; 65] = 0,
        /// The host name.
        pub nodename: [u8; 65] = 65,
        /// The kernel release (`uname -r`).
        pub release: [u8; 65] = 130,
        /// The kernel version (`uname -v`).
        pub version: [u8; 65] = 195,
        /// "s390x".
        pub machine: [u8; 65] = 260,
        /// The NIS domain name.
        pub domainname: [u8; 65] = 325,
    }
}

crate::layout! {
    /// `struct disk_dump_header` (64-bit layout, 464 bytes) in block 0.
    pub struct DiskDumpHeader(464) {
        /// "KDUMP   ".
        pub signature: [u8; 8] = 0,
        /// Format version (pvdump writes 6).
        pub header_version: i32 = 8,
        /// The dumped system's utsname.
        pub utsname: NewUtsname = 12,
        /// Crash time, seconds (`timestamp.tv_sec`; 6 bytes of padding precede it).
        pub tv_sec: i64 = 408,
        /// Crash time, microseconds.
        pub tv_usec: i64 = 416,
        /// Compression of the page data (`DUMP_DH_COMPRESSED_*`).
        pub status: u32 = 424,
        /// Block size in bytes.
        pub block_size: i32 = 428,
        /// Blocks of the sub-header (with the notes).
        pub sub_hdr_size: i32 = 432,
        /// Blocks of both bitmaps together.
        pub bitmap_blocks: u32 = 436,
        /// Page frames (32-bit; header version 6 uses `max_mapnr_64`).
        pub max_mapnr: u32 = 440,
        /// Unused (0).
        pub total_ram_blocks: u32 = 444,
        /// Unused (0).
        pub device_blocks: u32 = 448,
        /// Unused (0).
        pub written_blocks: u32 = 452,
        /// Unused (0).
        pub current_cpu: u32 = 456,
        /// Number of CPUs.
        pub nr_cpus: i32 = 460,
    }
}

crate::layout! {
    /// `struct kdump_sub_header` (64-bit layout, 104 bytes) at the start of block 1; the ELF
    /// notes follow it.
    pub struct KdumpSubHeader(104) {
        /// Physical base of the kernel (0 on s390x).
        pub phys_base: u64 = 0,
        /// makedumpfile's dump level (0: nothing excluded).
        pub dump_level: i32 = 8,
        /// Split dump (0: no).
        pub split: i32 = 12,
        /// First pfn of a split dump.
        pub start_pfn: u64 = 16,
        /// End pfn of a split dump.
        pub end_pfn: u64 = 24,
        /// File offset of the VMCOREINFO text.
        pub offset_vmcoreinfo: u64 = 32,
        /// Length of the VMCOREINFO text.
        pub size_vmcoreinfo: u64 = 40,
        /// File offset of the ELF notes.
        pub offset_note: u64 = 48,
        /// Length of the ELF notes.
        pub size_note: u64 = 56,
        /// File offset of the erase information.
        pub offset_eraseinfo: u64 = 64,
        /// Length of the erase information.
        pub size_eraseinfo: u64 = 72,
        /// 64-bit start_pfn (version 6).
        pub start_pfn_64: u64 = 80,
        /// 64-bit end_pfn (version 6).
        pub end_pfn_64: u64 = 88,
        /// 64-bit max_mapnr (version 6).
        pub max_mapnr_64: u64 = 96,
    }
}

crate::layout! {
    /// `struct page_desc` (24 bytes): where one dumped page is stored.
    pub struct PageDesc(24) {
        /// File offset of the stored page.
        pub offset: u64 = 0,
        /// Stored size in bytes.
        pub size: u32 = 8,
        /// Compression of this page (`DUMP_DH_COMPRESSED_*`, 0 for raw).
        pub flags: u32 = 12,
        /// Page flags (unused, 0).
        pub page_flags: u64 = 16,
    }
}

crate::layout! {
    /// `struct makedumpfile_header`: the first 4096-byte block of a flattened stream.
    pub struct FlatHeader(4096) {
        /// "makedumpfile" padded with NULs.
        pub signature: [u8; 16] = 0,
        /// TYPE_FLAT_HEADER (1).
        pub flat_type: i64 = 16,
        /// VERSION_FLAT_HEADER (1).
        pub version: i64 = 24,
    }
}

crate::layout! {
    /// `struct makedumpfile_data_header`: one record of a flattened stream; `size` bytes of
    /// the file at `offset` follow. Offset and size -1 end the stream.
    pub struct FlatRecord(16) {
        /// File offset the payload belongs at.
        pub offset: i64 = 0,
        /// Payload length.
        pub size: i64 = 8,
    }
}

impl FlatRecord {
    /// The end-of-stream marker.
    pub const END: FlatRecord = FlatRecord { offset: -1, size: -1 };
}

impl FlatHeader {
    /// The header pvdump writes.
    pub fn new() -> FlatHeader {
        FlatHeader {
            signature: FLAT_SIGNATURE,
            flat_type: FLAT_TYPE,
            version: FLAT_VERSION,
        }
    }
}

/// Compression of kdump page data (the `DUMP_DH_COMPRESSED_*` bits of `status` and
/// `page_desc.flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Pages stored raw (flags 0).
    None,
    /// zlib stream (DUMP_DH_COMPRESSED_ZLIB, 0x01): every reader supports it.
    Zlib,
    /// LZO1X stream (DUMP_DH_COMPRESSED_LZO, 0x02).
    Lzo,
    /// Raw (unframed) snappy (DUMP_DH_COMPRESSED_SNAPPY, 0x04).
    Snappy,
    /// zstd frame (DUMP_DH_COMPRESSED_ZSTD, 0x20).
    Zstd,
}

impl Compression {
    /// All of them, for tests and benchmarks.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Zlib,
        Compression::Lzo,
        Compression::Snappy,
        Compression::Zstd,
    ];

    /// The `page_desc.flags` / `header.status` bit.
    pub fn flag(self) -> u32 {
        match self {
            Compression::None => 0,
            Compression::Zlib => 0x01,
            Compression::Lzo => 0x02,
            Compression::Snappy => 0x04,
            Compression::Zstd => 0x20,
        }
    }

    /// The compression a descriptor flag or status word names (the lowest bit set wins),
    /// `None` when no compression bit is set.
    pub fn from_flags(flags: u32) -> Option<Compression> {
        [
            Compression::Zlib,
            Compression::Lzo,
            Compression::Snappy,
            Compression::Zstd,
        ]
        .into_iter()
        .find(|c| flags & c.flag() != 0)
    }

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zlib => "zlib",
            Compression::Lzo => "lzo",
            Compression::Snappy => "snappy",
            Compression::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A utsname field as a fixed 65-byte array (truncated at a character boundary to leave the
/// terminating NUL).
pub fn uts_field(s: &str) -> [u8; UTS_LEN] {
    let mut end = s.len().min(UTS_LEN - 1);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut a = [0u8; UTS_LEN];
    a[..end].copy_from_slice(&s.as_bytes()[..end]);
    a
}

/// The text of a NUL-padded field (up to the first NUL, invalid UTF-8 replaced).
pub fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_dump_header_offsets() {
        let h = DiskDumpHeader {
            signature: KDUMP_SIGNATURE,
            header_version: 6,
            tv_sec: 1_700_000_000,
            status: 0x20,
            block_size: 4096,
            sub_hdr_size: 2,
            bitmap_blocks: 16,
            nr_cpus: 3,
            ..DiskDumpHeader::default()
        };
        let b = h.to_bytes();
        assert_eq!(&b[0..12], b"KDUMP   \0\0\0\x06");
        assert_eq!(&b[408..416], &1_700_000_000u64.to_be_bytes());
        assert_eq!(&b[424..440], &[0, 0, 0, 0x20, 0, 0, 0x10, 0, 0, 0, 0, 2, 0, 0, 0, 16]);
        assert_eq!(&b[460..464], &3u32.to_be_bytes());
        assert_eq!(DiskDumpHeader::read(&b), h);
    }

    #[test]
    fn utsname_fields_are_65_bytes_apart() {
        let u = NewUtsname {
            sysname: uts_field("Linux"),
            release: uts_field("6.12.0"),
            machine: uts_field("s390x"),
            ..NewUtsname::default()
        };
        let b = u.to_bytes();
        assert_eq!(&b[0..6], b"Linux\0");
        assert_eq!(&b[130..137], b"6.12.0\0");
        assert_eq!(&b[260..266], b"s390x\0");
        assert_eq!(c_string(&NewUtsname::read(&b).release), "6.12.0");
        // 64 characters at most: the 65th byte stays NUL; multibyte characters are not split.
        assert_eq!(uts_field(&"x".repeat(80))[64], 0);
        assert_eq!(c_string(&uts_field(&format!("{}é", "a".repeat(63)))), "a".repeat(63));
    }

    #[test]
    fn sub_header_and_descriptor_offsets() {
        let s = KdumpSubHeader {
            offset_vmcoreinfo: 0x1234,
            max_mapnr_64: 0x40000,
            ..KdumpSubHeader::default()
        };
        let b = s.to_bytes();
        assert_eq!(&b[32..40], &0x1234u64.to_be_bytes());
        assert_eq!(&b[96..104], &0x40000u64.to_be_bytes());
        let d = PageDesc {
            offset: 0x5000,
            size: 100,
            flags: 1,
            page_flags: 0,
        }
        .to_bytes();
        assert_eq!(
            d,
            [
                0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 100, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
    }

    #[test]
    fn compression_flags() {
        for c in Compression::ALL {
            let back = Compression::from_flags(c.flag()).unwrap_or(Compression::None);
            assert_eq!(back, c);
        }
        assert_eq!(Compression::from_flags(0x03), Some(Compression::Zlib));
        assert_eq!(FlatRecord::END.to_bytes(), [0xff; 16]);
        assert_eq!(
            &FlatHeader::new().to_bytes()[..32],
            b"makedumpfile\0\0\0\0\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01"
        );
    }
}
