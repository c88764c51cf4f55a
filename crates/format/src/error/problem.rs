//! [`Problem`]: what is wrong with a structure.

use std::fmt;

/// What is wrong with a structure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A header table entry size other than the ELF64 one.
    EntrySize {
        /// Field name (`e_phentsize`, `e_shentsize`).
        field: &'static str,
        /// Value found.
        found: u16,
        /// Value required.
        expected: u16,
    },
    /// More header table entries than pvdump accepts.
    TooManyHeaders {
        /// "program" or "section".
        table: &'static str,
        /// Entries claimed.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// e_phnum is PN_XNUM but there is no section header 0.
    XnumWithoutSection0,
    /// e_phnum is PN_XNUM but section header 0's sh_info is below 0xffff.
    XnumCountTooSmall {
        /// sh_info found.
        found: u32,
    },
    /// p_filesz is larger than p_memsz.
    FileszOverMemsz {
        /// p_filesz.
        filesz: u64,
        /// p_memsz.
        memsz: u64,
    },
    /// p_paddr + p_memsz overflows.
    AddressOverflow {
        /// p_paddr.
        paddr: u64,
        /// p_memsz.
        memsz: u64,
    },
    /// All PT_LOADs together claim far more memory than the file could describe.
    MemoryTooLarge {
        /// Bytes of guest memory claimed (saturating sum of p_memsz).
        claimed: u64,
        /// The largest accepted for this file.
        max: u64,
    },
    /// Two PT_LOADs overlap.
    Overlap {
        /// [start, end) of this segment.
        range: (u64, u64),
        /// The other program header.
        other: u64,
        /// [start, end) of the other segment.
        other_range: (u64, u64),
    },
    /// A segment rounded out to pages reaches the top of the address space.
    EndsAtTopOfAddressSpace,
    /// e_shstrndx does not name a section.
    StrndxOutOfRange {
        /// e_shstrndx.
        strndx: u64,
        /// Number of sections.
        count: u64,
    },
    /// The section-name string table is larger than pvdump accepts.
    StringTableTooLarge {
        /// sh_size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// sh_name points past the string table.
    NameOutOfRange {
        /// sh_name.
        sh_name: usize,
        /// Length of the string table.
        len: usize,
    },
    /// Fewer bytes left in a PT_NOTE segment than a note header needs.
    NoteHeaderTruncated {
        /// Bytes left.
        remaining: u64,
    },
    /// n_namesz or n_descsz overflows when padded.
    NoteSizeOverflow {
        /// Field name.
        field: &'static str,
    },
    /// A note runs past the end of its segment.
    NoteOverrunsSegment {
        /// Note type.
        n_type: u32,
        /// n_namesz.
        namesz: u64,
        /// n_descsz.
        descsz: u64,
        /// Bytes the note needs.
        need: u64,
        /// Bytes left in the segment.
        remaining: u64,
    },
    /// A descriptor is shorter than its note type needs.
    DescriptorTooShort {
        /// n_descsz.
        found: usize,
        /// Bytes needed.
        need: usize,
    },
    /// A version field other than the one known.
    UnknownVersion {
        /// Version found.
        found: u32,
        /// Hint for the reader.
        hint: &'static str,
    },
    /// `pv_compl` is too small to hold a version field.
    CompletionNoVersion {
        /// sh_size.
        size: u64,
    },
    /// `pv_compl` is smaller than version 1 needs.
    CompletionTooSmall {
        /// sh_size.
        size: u64,
        /// Bytes version 1 needs.
        need: u64,
    },
    /// `pv_compl` is larger than allowed.
    CompletionTooLarge {
        /// sh_size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// An NT_S390_PV_CPU_DATA descriptor of an impossible size.
    CpuNoteSize {
        /// n_descsz.
        size: u64,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
        /// The descriptor is all zeros (QEMU got nothing from the Ultravisor).
        all_zero: bool,
    },
    /// A length field inside a structure is wrong.
    LengthField {
        /// Value found.
        found: u32,
        /// Value required.
        expected: u32,
    },
    /// The dump has `pv_compl` but no `pv_mem_meta`.
    NoMemMeta,
    /// `pv_mem_meta` is not a whole number of tweak components.
    MemMetaSize {
        /// sh_size.
        size: u64,
    },
    /// Two PT_LOADs of a PV dump, rounded out to whole page frames, share a frame.
    SharesPageFrame {
        /// The other program header.
        other: u64,
        /// The page frame both reach.
        frame: u64,
    },
    /// `pv_mem_meta` does not cover the file-backed part of a PT_LOAD.
    MemMetaTooSmall {
        /// Components in the section.
        components: u64,
        /// The program header.
        index: u64,
        /// First guest address past its file-backed part.
        end: u64,
    },
    /// No tweak component for a page.
    NoComponent {
        /// Page frame number.
        pfn: u64,
    },
    /// Fewer file bytes than a segment's p_filesz promises.
    MemoryPastEnd {
        /// Bytes wanted.
        len: u64,
    },
    /// No "KDUMP   " signature.
    NoKdumpSignature,
    /// A kdump block size pvdump cannot read.
    BlockSize {
        /// block_size as read (big-endian).
        found: i64,
    },
    /// The bitmaps cannot hold max_mapnr pages.
    BitmapTooSmall {
        /// bitmap_blocks.
        blocks: u32,
        /// Pages.
        pages: u64,
    },
    /// A structure of a kdump file runs past its end.
    PastEnd {
        /// Bytes wanted.
        len: u64,
        /// Length of the (rearranged) file.
        file_len: u64,
    },
    /// A flattened stream is shorter than its header block.
    FlatTooShort,
    /// A flattened header of unknown type or version.
    FlatVersion {
        /// type.
        flat_type: i64,
        /// version.
        version: i64,
    },
    /// A flattened stream ends without its end marker.
    FlatNoEnd,
    /// A flattened record with a negative offset or non-positive size.
    FlatBadRecord {
        /// offset.
        offset: i64,
        /// size.
        size: i64,
    },
    /// A flattened record's payload runs past the stream.
    FlatPayloadShort {
        /// Payload claimed.
        size: u64,
        /// Bytes left.
        left: u64,
    },
    /// Two flattened records overlap.
    FlatOverlap,
    /// A page of a kdump file cannot be decompressed or has the wrong size.
    BadPage {
        /// Descriptor index.
        index: u64,
        /// page_desc.flags.
        flags: u32,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem as P;
        match self {
            P::EntrySize { field, found, expected } => write!(f, "{field} is {found}, expected {expected}"),
            P::TooManyHeaders { table, count, max } => {
                write!(f, "{count} {table} headers is more than pvdump supports ({max})")
            }
            P::XnumWithoutSection0 => {
                f.write_str("e_phnum is PN_XNUM (0xffff) but there is no section header 0 to hold the real count")
            }
            P::XnumCountTooSmall { found } => write!(
                f,
                "e_phnum is PN_XNUM (0xffff), so sh_info must hold the real number of program headers (at least 0xffff), but it is {found}"
            ),
            P::FileszOverMemsz { filesz, memsz } => {
                write!(f, "p_filesz {filesz:#x} is larger than p_memsz {memsz:#x}")
            }
            P::AddressOverflow { paddr, memsz } => write!(
                f,
                "p_paddr {paddr:#x} + p_memsz {memsz:#x} overflows the 64-bit address space"
            ),
            P::MemoryTooLarge { claimed, max } => write!(
                f,
                "the PT_LOADs claim {claimed:#x} bytes of guest memory, more than a dump of this size can describe ({max:#x}: 4096 bytes of memory per byte of file)"
            ),
            P::Overlap {
                range,
                other,
                other_range,
            } => write!(
                f,
                "guest memory [{:#x}, {:#x}) overlaps program header {other} [{:#x}, {:#x})",
                range.0, range.1, other_range.0, other_range.1
            ),
            P::EndsAtTopOfAddressSpace => f.write_str("segment ends at the top of the address space"),
            P::StrndxOutOfRange { strndx, count } => {
                write!(f, "e_shstrndx {strndx} is not below the number of sections ({count})")
            }
            P::StringTableTooLarge { size, max } => {
                write!(f, "sh_size {size:#x} is larger than the {max} bytes pvdump accepts")
            }
            P::NameOutOfRange { sh_name, len } => {
                write!(f, "sh_name {sh_name:#x} points past the string table ({len:#x} bytes)")
            }
            P::NoteHeaderTruncated { remaining } => {
                write!(f, "only {remaining} bytes left in the segment, a note header needs 12")
            }
            P::NoteSizeOverflow { field } => write!(f, "{field} overflows"),
            P::NoteOverrunsSegment {
                n_type,
                namesz,
                descsz,
                need,
                remaining,
            } => write!(
                f,
                "note (type {n_type:#x}, n_namesz {namesz}, n_descsz {descsz}) needs {need:#x} bytes but only {remaining:#x} are left in the segment"
            ),
            P::DescriptorTooShort { found, need } => write!(
                f,
                "n_descsz {found} is smaller than the {need} bytes this note type needs"
            ),
            P::UnknownVersion { found, hint } => write!(f, "version is {found}{hint}"),
            P::CompletionNoVersion { size } => {
                write!(f, "section is {size} bytes, too small to hold a version")
            }
            P::CompletionTooSmall { size, need } => write!(f, "section is {size} bytes, version 1 needs {need}"),
            P::CompletionTooLarge { size, max } => {
                write!(f, "section is {size} bytes, more than the {max} allowed")
            }
            P::CpuNoteSize {
                size,
                min,
                max,
                all_zero,
            } => write!(
                f,
                "n_descsz is {size}, expected {min}..={max}{}",
                if *all_zero {
                    " and all zero: QEMU could not get the CPU state from the Ultravisor (was dumping allowed?)"
                } else {
                    ""
                }
            ),
            P::LengthField { found, expected } => {
                write!(f, "length field is {found}, version 1 requires {expected}")
            }
            P::NoMemMeta => {
                f.write_str("the dump has `pv_compl` but no `pv_mem_meta` section, so the page tweaks are missing")
            }
            P::MemMetaSize { size } => write!(
                f,
                "sh_size {size:#x} is not a non-zero multiple of 16 (one 16-byte tweak component per page)"
            ),
            P::SharesPageFrame { other, frame } => write!(
                f,
                "reaches page frame {frame:#x}, which program header {other} (PT_LOAD) reaches too; a PV dump decrypts whole page frames, one segment each"
            ),
            P::MemMetaTooSmall { components, index, end } => write!(
                f,
                "holds tweak components for {components} pages (guest memory up to {:#x}), but the file-backed part of program header {index} (PT_LOAD) reaches guest address {end:#x}",
                components * crate::consts::PAGE_SIZE
            ),
            P::NoComponent { pfn } => write!(f, "has no tweak component for page frame {pfn:#x}"),
            P::MemoryPastEnd { len } => write!(f, "{len} bytes run past the end of the file"),
            P::NoKdumpSignature => f.write_str("no \"KDUMP   \" signature: not a kdump-compressed file"),
            P::BlockSize { found } => write!(
                f,
                "block_size {found} (big-endian) is not a power of two in 4096..=262144; only 64-bit big-endian (s390x) kdump files are supported"
            ),
            P::BitmapTooSmall { blocks, pages } => {
                write!(f, "{blocks} bitmap blocks cannot hold two bitmaps of {pages} pages")
            }
            P::PastEnd { len, file_len } => {
                write!(f, "{len} bytes run past the end of the file ({file_len:#x})")
            }
            P::FlatTooShort => f.write_str("shorter than 4096 bytes"),
            P::FlatVersion { flat_type, version } => {
                write!(f, "type {flat_type} version {version}, expected 1 and 1")
            }
            P::FlatNoEnd => f.write_str("stream ends without the end marker"),
            P::FlatBadRecord { offset, size } => write!(f, "offset {offset}, size {size}"),
            P::FlatPayloadShort { size, left } => write!(f, "{size} bytes of payload, only {left} left"),
            P::FlatOverlap => f.write_str("records overlap (not supported)"),
            P::BadPage { index, flags, reason } => write!(f, "descriptor {index} (flags {flags:#x}): {reason}"),
        }
    }
}
