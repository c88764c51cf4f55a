//! ELF64 structures of a big-endian s390x core file.
//!
//! The file, program and section headers are goblin's typed 64-bit headers
//! ([`FileHeader`], [`ProgramHeader`], [`SectionHeader`]), read and written here with the byte
//! order fixed to big-endian; the note header is declared with [`layout!`](crate::layout).

use scroll::{Pread, Pwrite};

pub use goblin::elf64::header::Header as FileHeader;
pub use goblin::elf64::program_header::ProgramHeader;
pub use goblin::elf64::section_header::SectionHeader;

use crate::bytes::pad4;
use crate::consts::{EHDR_SIZE, ELFCLASS64, ELFDATA2MSB, EM_S390, ET_CORE, PHDR_SIZE, SHDR_SIZE};

const _: () = assert!(std::mem::size_of::<FileHeader>() == EHDR_SIZE);
const _: () = assert!(std::mem::size_of::<ProgramHeader>() == PHDR_SIZE);
const _: () = assert!(std::mem::size_of::<SectionHeader>() == SHDR_SIZE);

/// The byte order of everything in an s390x dump.
pub const BE: scroll::Endian = scroll::Endian::Big;

/// `EV_CURRENT`.
pub const EV_CURRENT: u8 = 1;
/// Program header flags read, write, execute.
pub const PF_RWX: u32 = 7;

/// A file header for a big-endian 64-bit s390x core file; the caller fills in the tables.
pub fn s390x_core_header() -> FileHeader {
    let mut e_ident = [0u8; 16];
    e_ident[..4].copy_from_slice(b"\x7fELF");
    e_ident[4] = ELFCLASS64;
    e_ident[5] = ELFDATA2MSB;
    e_ident[6] = EV_CURRENT;
    FileHeader {
        e_ident,
        e_type: ET_CORE,
        e_machine: EM_S390,
        e_version: u32::from(EV_CURRENT),
        e_ehsize: EHDR_SIZE as u16,
        e_phentsize: PHDR_SIZE as u16,
        ..FileHeader::default()
    }
}

/// Reads the file header at offset 0 of `data` as big-endian, or `None` when `data` is shorter
/// than 64 bytes or its identification does not say big-endian (ELFDATA2MSB).
pub fn read_file_header(data: &[u8]) -> Option<FileHeader> {
    if data.get(5) != Some(&ELFDATA2MSB) {
        return None;
    }
    data.pread_with(0, BE).ok()
}

/// Reads one program header from the start of `b` (big-endian).
pub fn read_program_header(b: &[u8]) -> Option<ProgramHeader> {
    b.pread_with(0, BE).ok()
}

/// Reads one section header from the start of `b` (big-endian).
pub fn read_section_header(b: &[u8]) -> Option<SectionHeader> {
    b.pread_with(0, BE).ok()
}

fn encode<T, const N: usize>(v: T) -> [u8; N]
where
    T: scroll::ctx::TryIntoCtx<scroll::Endian>,
    <T as scroll::ctx::TryIntoCtx<scroll::Endian>>::Error: From<scroll::Error>,
{
    let mut b = [0u8; N];
    // The buffers are exactly the sizes asserted at the top of this module, so the only
    // possible error (a buffer too small) cannot happen.
    if b.pwrite_with(v, 0, BE).is_err() {
        unreachable!("ELF header buffers are sized by compile-time assertions");
    }
    b
}

/// Encodes a file header (big-endian; e_ident must say ELFDATA2MSB, as
/// [`s390x_core_header`] does).
pub fn file_header_bytes(h: &FileHeader) -> [u8; EHDR_SIZE] {
    encode(*h)
}

/// Encodes a program header (big-endian).
pub fn program_header_bytes(h: &ProgramHeader) -> [u8; PHDR_SIZE] {
    encode(*h)
}

/// Encodes a section header (big-endian).
pub fn section_header_bytes(h: &SectionHeader) -> [u8; SHDR_SIZE] {
    encode(*h)
}

crate::layout! {
    /// `Elf64_Nhdr`: the header of one note (the name and the descriptor follow, each padded
    /// to a multiple of 4 bytes).
    pub struct NoteHeader(12) {
        /// Length of the name including its NUL.
        pub n_namesz: u32 = 0,
        /// Length of the descriptor.
        pub n_descsz: u32 = 4,
        /// Note type.
        pub n_type: u32 = 8,
    }
}

/// Bytes one note takes: header, padded name (with its NUL), padded descriptor.
pub fn note_size(name: &str, desc_len: usize) -> usize {
    NoteHeader::SIZE + (name.len() + 1).next_multiple_of(4) + desc_len.next_multiple_of(4)
}

/// Appends one note (name NUL-terminated, name and descriptor padded to 4 bytes) and returns
/// the offset of its descriptor inside `buf`.
pub fn push_note(buf: &mut Vec<u8>, name: &str, n_type: u32, desc: &[u8]) -> usize {
    let namesz = name.len() + 1;
    let hdr = NoteHeader {
        n_namesz: namesz as u32,
        n_descsz: desc.len() as u32,
        n_type,
    };
    buf.extend_from_slice(&hdr.to_bytes());
    buf.extend_from_slice(name.as_bytes());
    buf.resize(buf.len() + (namesz.next_multiple_of(4) - name.len()), 0);
    let desc_at = buf.len();
    buf.extend_from_slice(desc);
    buf.resize(buf.len() + (desc.len().next_multiple_of(4) - desc.len()), 0);
    desc_at
}

/// The padded length of a name or descriptor field of `len` bytes, failing on overflow.
pub fn padded(len: u64) -> Option<u64> {
    pad4(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_header_round_trips_big_endian() {
        let mut h = s390x_core_header();
        h.e_phoff = 64;
        h.e_phnum = 3;
        let b = file_header_bytes(&h);
        assert_eq!(&b[..8], b"\x7fELF\x02\x02\x01\x00");
        assert_eq!(&b[16..20], &[0, 4, 0, 22]); // ET_CORE, EM_S390
        assert_eq!(&b[32..40], &64u64.to_be_bytes());
        assert_eq!(&b[56..58], &3u16.to_be_bytes());
        assert_eq!(read_file_header(&b), Some(h));
        assert_eq!(read_file_header(&b[..63]), None);
    }

    #[test]
    fn program_header_round_trips_big_endian() {
        let p = ProgramHeader {
            p_type: 1,
            p_flags: PF_RWX,
            p_offset: 0x1000,
            p_vaddr: 0x2000,
            p_paddr: 0x2000,
            p_filesz: 0x3000,
            p_memsz: 0x4000,
            p_align: 0x1000,
        };
        let b = program_header_bytes(&p);
        assert_eq!(&b[..8], &[0, 0, 0, 1, 0, 0, 0, 7]);
        assert_eq!(&b[40..48], &0x4000u64.to_be_bytes());
        assert_eq!(read_program_header(&b), Some(p));
    }

    #[test]
    fn notes_are_padded_to_four_bytes() {
        let mut buf = Vec::new();
        let at = push_note(&mut buf, "CORE", 1, &[1, 2, 3, 4, 5]);
        assert_eq!(at, 20);
        assert_eq!(buf.len(), note_size("CORE", 5));
        assert_eq!(buf.len(), 12 + 8 + 8);
        assert_eq!(&buf[..12], &[0, 0, 0, 5, 0, 0, 0, 5, 0, 0, 0, 1]);
        assert_eq!(&buf[12..20], b"CORE\0\0\0\0");
        assert_eq!(&buf[20..28], &[1, 2, 3, 4, 5, 0, 0, 0]);
    }
}
