//! The ELF container: header, program headers (with PN_XNUM), section headers, notes.
//!
//! [`ElfCore`] is a bounds-checked view over a whole file held in memory (usually a memory
//! map). Parsing reads the headers once and keeps only small summaries: one entry per
//! program header of interest and per named section, each of which costs at least 56 bytes
//! of file, so allocations never exceed a fraction of the file size and never follow a
//! number the file merely claims.

use crate::bytes::{be32, slice};
use crate::consts::*;
use crate::error::{FormatError, Problem, Result, Structure};
use crate::layout::elf::{
    FileHeader, NoteHeader, SectionHeader, padded, read_file_header, read_program_header, read_section_header,
};

/// One PT_LOAD: a run of guest physical memory and where its bytes are in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    /// Index of the program header in the table.
    pub phdr_index: u32,
    /// File offset of the program header itself (for error messages).
    pub phdr_offset: u64,
    /// File offset of the first byte of memory.
    pub file_offset: u64,
    /// Guest physical (absolute) address.
    pub paddr: u64,
    /// Virtual address as written (QEMU writes p_vaddr == p_paddr on s390x).
    pub vaddr: u64,
    /// Bytes present in the file.
    pub filesz: u64,
    /// Bytes of guest memory covered (the tail past `filesz` reads as zero).
    pub memsz: u64,
}

impl LoadSegment {
    /// One past the last guest physical address.
    pub fn end(&self) -> u64 {
        self.paddr + self.memsz
    }

    /// One past the last guest physical address backed by file bytes.
    pub fn file_end(&self) -> u64 {
        self.paddr + self.filesz
    }
}

/// One PT_NOTE segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteSegment {
    /// Index of the program header.
    pub phdr_index: u32,
    /// File offset of the notes.
    pub file_offset: u64,
    /// Bytes of notes.
    pub size: u64,
}

/// A section header that has a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Index in the section header table.
    pub index: u32,
    /// Name from the section-name string table.
    pub name: String,
    /// File offset of the section header.
    pub header_offset: u64,
    /// sh_type.
    pub sh_type: u32,
    /// File offset of the section data.
    pub file_offset: u64,
    /// Bytes of section data.
    pub size: u64,
}

impl Section {
    /// This section as the structure of an error about the section header's values.
    pub fn structure(&self) -> Structure {
        Structure::Section {
            index: u64::from(self.index),
            name: self.name.clone(),
        }
    }
}

/// One ELF note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Note<'a> {
    /// Name without the terminating NUL (e.g. `b"CORE"`).
    pub name: &'a [u8],
    /// Note type.
    pub n_type: u32,
    /// The descriptor.
    pub desc: &'a [u8],
    /// File offset of the note header.
    pub offset: u64,
    /// File offset of the descriptor.
    pub desc_offset: u64,
}

/// Hard cap on the number of program and section headers we look at (PN_XNUM allows 2^32).
pub const MAX_HEADERS: u64 = 1 << 22;

/// Guest memory accepted per byte of file: PT_LOADs may leave memory out of the file (a
/// zero tail past p_filesz), but together they cannot claim more than 4096 bytes of memory
/// per byte of file, which bounds every output to a multiple of the input.
pub const MAX_MEMORY_PER_FILE_BYTE: u64 = 4096;

/// A parsed big-endian s390x ELF core file.
#[derive(Debug, Clone)]
pub struct ElfCore<'a> {
    data: &'a [u8],
    header: FileHeader,
    phnum: u64,
    shnum: u64,
    loads: Vec<LoadSegment>,
    notes: Vec<NoteSegment>,
    sections: Vec<Section>,
}

fn wrong(field: &'static str, offset: u64, found: impl Into<u64>, expected: &'static str) -> FormatError {
    FormatError::WrongElfKind {
        field,
        offset,
        found: found.into(),
        expected,
    }
}

impl<'a> ElfCore<'a> {
    /// Parses and validates the ELF header, program headers and section headers.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let file_len = data.len() as u64;
        let Some(ident) = data.get(..EHDR_SIZE) else {
            return Err(FormatError::TooShort { len: file_len });
        };
        let magic = crate::bytes::copy_array::<4>(ident, 0);
        if magic != *b"\x7fELF" {
            return Err(FormatError::NotElf { found: magic });
        }
        if ident[4] != ELFCLASS64 {
            return Err(wrong("EI_CLASS", 4, ident[4], "2 (ELFCLASS64)"));
        }
        if ident[5] != ELFDATA2MSB {
            return Err(wrong("EI_DATA", 5, ident[5], "2 (ELFDATA2MSB, big-endian)"));
        }
        let header = read_file_header(data).ok_or(FormatError::TooShort { len: file_len })?;
        if header.e_type != ET_CORE {
            return Err(wrong("e_type", 16, header.e_type, "4 (ET_CORE)"));
        }
        if header.e_machine != EM_S390 {
            return Err(wrong("e_machine", 18, header.e_machine, "22 (EM_S390)"));
        }
        // e_ehsize is deliberately not checked: QEMU writes 8 (sizeof a pointer).

        let mut core = ElfCore {
            data,
            header,
            phnum: 0,
            shnum: 0,
            loads: Vec::new(),
            notes: Vec::new(),
            sections: Vec::new(),
        };
        let section0 = core.section0()?;
        core.phnum = match header.e_phnum {
            PN_XNUM => match &section0 {
                Some(sh) if sh.sh_info >= u32::from(PN_XNUM) => u64::from(sh.sh_info),
                Some(sh) => {
                    return Err(FormatError::invalid(
                        Structure::SectionHeader { index: 0 },
                        header.e_shoff,
                        Problem::XnumCountTooSmall { found: sh.sh_info },
                    ));
                }
                None => {
                    return Err(FormatError::invalid(
                        Structure::ElfHeader,
                        56,
                        Problem::XnumWithoutSection0,
                    ));
                }
            },
            n => u64::from(n),
        };
        core.shnum = match (header.e_shnum, &section0) {
            (0, Some(sh)) => sh.sh_size,
            (n, _) => u64::from(n),
        };
        core.read_program_headers()?;
        core.read_sections()?;
        Ok(core)
    }

    /// Section header 0, if the file has a section header table.
    fn section0(&self) -> Result<Option<SectionHeader>> {
        let h = &self.header;
        if h.e_shoff == 0 {
            return Ok(None);
        }
        if h.e_shentsize != SHDR_SIZE as u16 {
            return Err(FormatError::invalid(
                Structure::ElfHeader,
                58,
                Problem::EntrySize {
                    field: "e_shentsize",
                    found: h.e_shentsize,
                    expected: SHDR_SIZE as u16,
                },
            ));
        }
        let bytes = slice(self.data, h.e_shoff, SHDR_SIZE as u64, || Structure::SectionHeader {
            index: 0,
        })?;
        Ok(read_section_header(bytes))
    }

    fn read_program_headers(&mut self) -> Result<()> {
        let h = self.header;
        if self.phnum == 0 {
            return Ok(());
        }
        if h.e_phentsize != PHDR_SIZE as u16 {
            return Err(FormatError::invalid(
                Structure::ElfHeader,
                54,
                Problem::EntrySize {
                    field: "e_phentsize",
                    found: h.e_phentsize,
                    expected: PHDR_SIZE as u16,
                },
            ));
        }
        if self.phnum > MAX_HEADERS {
            return Err(FormatError::invalid(
                Structure::ElfHeader,
                56,
                Problem::TooManyHeaders {
                    table: "program",
                    count: self.phnum,
                    max: MAX_HEADERS,
                },
            ));
        }
        let table = slice(self.data, h.e_phoff, self.phnum * PHDR_SIZE as u64, || {
            Structure::ProgramHeaderTable { entries: self.phnum }
        })?;
        let mut claimed = 0u64;
        for (i, entry) in table.chunks_exact(PHDR_SIZE).enumerate() {
            let i = i as u64;
            let at = h.e_phoff + i * PHDR_SIZE as u64;
            let Some(ph) = read_program_header(entry) else {
                continue; // chunks_exact yields whole entries: cannot happen
            };
            let load = || Structure::ProgramHeader {
                index: i,
                kind: Some("PT_LOAD"),
            };
            match ph.p_type {
                PT_LOAD => {
                    if ph.p_filesz > ph.p_memsz {
                        return Err(FormatError::invalid(
                            load(),
                            at,
                            Problem::FileszOverMemsz {
                                filesz: ph.p_filesz,
                                memsz: ph.p_memsz,
                            },
                        ));
                    }
                    if ph.p_paddr.checked_add(ph.p_memsz).is_none() {
                        return Err(FormatError::invalid(
                            load(),
                            at,
                            Problem::AddressOverflow {
                                paddr: ph.p_paddr,
                                memsz: ph.p_memsz,
                            },
                        ));
                    }
                    if ph.p_filesz > 0 {
                        slice(self.data, ph.p_offset, ph.p_filesz, || Structure::LoadData {
                            index: i,
                            paddr: ph.p_paddr,
                        })?;
                    }
                    if ph.p_memsz == 0 {
                        continue;
                    }
                    claimed = claimed.saturating_add(ph.p_memsz);
                    self.loads.push(LoadSegment {
                        phdr_index: i as u32,
                        phdr_offset: at,
                        file_offset: if ph.p_filesz > 0 { ph.p_offset } else { 0 },
                        paddr: ph.p_paddr,
                        vaddr: ph.p_vaddr,
                        filesz: ph.p_filesz,
                        memsz: ph.p_memsz,
                    });
                }
                PT_NOTE => {
                    slice(self.data, ph.p_offset, ph.p_filesz, || Structure::NoteData { index: i })?;
                    self.notes.push(NoteSegment {
                        phdr_index: i as u32,
                        file_offset: ph.p_offset,
                        size: ph.p_filesz,
                    });
                }
                _ => {}
            }
        }
        let max = (self.data.len() as u64).saturating_mul(MAX_MEMORY_PER_FILE_BYTE);
        if claimed > max {
            return Err(FormatError::invalid(
                Structure::ProgramHeaderTable { entries: self.phnum },
                h.e_phoff,
                Problem::MemoryTooLarge { claimed, max },
            ));
        }
        self.loads.sort_by_key(|l| l.paddr);
        for w in self.loads.windows(2) {
            if w[1].paddr < w[0].end() {
                return Err(FormatError::invalid(
                    Structure::ProgramHeader {
                        index: u64::from(w[1].phdr_index),
                        kind: Some("PT_LOAD"),
                    },
                    w[1].phdr_offset,
                    Problem::Overlap {
                        range: (w[1].paddr, w[1].end()),
                        other: u64::from(w[0].phdr_index),
                        other_range: (w[0].paddr, w[0].end()),
                    },
                ));
            }
        }
        Ok(())
    }

    fn read_sections(&mut self) -> Result<()> {
        let h = self.header;
        if h.e_shoff == 0 || self.shnum == 0 {
            return Ok(());
        }
        if self.shnum > MAX_HEADERS {
            return Err(FormatError::invalid(
                Structure::ElfHeader,
                60,
                Problem::TooManyHeaders {
                    table: "section",
                    count: self.shnum,
                    max: MAX_HEADERS,
                },
            ));
        }
        let table = slice(self.data, h.e_shoff, self.shnum * SHDR_SIZE as u64, || {
            Structure::SectionHeaderTable { entries: self.shnum }
        })?;
        let strndx = u64::from(h.e_shstrndx);
        if strndx == u64::from(SHN_UNDEF) {
            return Ok(()); // no names: nothing can be found by name
        }
        if strndx >= self.shnum {
            return Err(FormatError::invalid(
                Structure::ElfHeader,
                62,
                Problem::StrndxOutOfRange {
                    strndx,
                    count: self.shnum,
                },
            ));
        }
        let entry = |i: u64| table.get(i as usize * SHDR_SIZE..).and_then(read_section_header);
        let strtab_hdr_off = h.e_shoff + strndx * SHDR_SIZE as u64;
        let Some(strtab_sh) = entry(strndx).map(host_order_strtab_quirk) else {
            return Ok(());
        };
        if strtab_sh.sh_size > MAX_STRTAB {
            return Err(FormatError::invalid(
                Structure::StringTableHeader { index: strndx },
                strtab_hdr_off,
                Problem::StringTableTooLarge {
                    size: strtab_sh.sh_size,
                    max: MAX_STRTAB,
                },
            ));
        }
        let strtab = slice(self.data, strtab_sh.sh_offset, strtab_sh.sh_size, || {
            Structure::StringTable { index: strndx }
        })?;
        for i in 1..self.shnum {
            let Some(sh) = entry(i).map(host_order_strtab_quirk) else {
                continue;
            };
            let hdr_off = h.e_shoff + i * SHDR_SIZE as u64;
            let Some(rest) = strtab.get(sh.sh_name as usize..) else {
                return Err(FormatError::invalid(
                    Structure::SectionHeader { index: i },
                    hdr_off,
                    Problem::NameOutOfRange {
                        sh_name: sh.sh_name as usize,
                        len: strtab.len(),
                    },
                ));
            };
            let name_len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let name = String::from_utf8_lossy(&rest[..name_len]).into_owned();
            if name.is_empty() {
                continue;
            }
            self.sections.push(Section {
                index: i as u32,
                name,
                header_offset: hdr_off,
                sh_type: sh.sh_type,
                file_offset: sh.sh_offset,
                size: sh.sh_size,
            });
        }
        Ok(())
    }

    /// The whole file.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The ELF file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// Number of program headers (after PN_XNUM resolution).
    pub fn phnum(&self) -> u64 {
        self.phnum
    }

    /// Number of section headers (after the e_shnum == 0 escape).
    pub fn shnum(&self) -> u64 {
        self.shnum
    }

    /// PT_LOAD segments with memsz > 0, sorted by guest physical address, non-overlapping.
    pub fn loads(&self) -> &[LoadSegment] {
        &self.loads
    }

    /// PT_NOTE segments in program header order.
    pub fn note_segments(&self) -> &[NoteSegment] {
        &self.notes
    }

    /// Named sections in table order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// First section with this name.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The bytes of a section, bounds-checked.
    pub fn section_data(&self, s: &Section) -> Result<&'a [u8]> {
        slice(self.data, s.file_offset, s.size, || Structure::SectionData {
            index: u64::from(s.index),
            name: s.name.clone(),
        })
    }

    /// Iterates over every note of every PT_NOTE segment, in file order.
    pub fn notes(&self) -> impl Iterator<Item = Result<Note<'a>>> + '_ {
        self.notes
            .iter()
            .flat_map(move |seg| NoteIter::new(self.data, seg.file_offset, seg.size, seg.phdr_index))
    }
}

/// QEMU's `dump-guest-memory` on a little-endian host writes the `.shstrtab` section header
/// of an s390x dump in the host's byte order (seen with QEMU 7.2 and 10.0.2; the rest of the
/// file is big-endian). A string-table header whose `sh_type` reads as 0x03000000 is such a
/// header: it is read again byte-swapped. Anything else is taken as it is.
fn host_order_strtab_quirk(sh: SectionHeader) -> SectionHeader {
    if sh.sh_type == SHT_STRTAB || sh.sh_type.swap_bytes() != SHT_STRTAB {
        return sh;
    }
    SectionHeader {
        sh_name: sh.sh_name.swap_bytes(),
        sh_type: sh.sh_type.swap_bytes(),
        sh_flags: sh.sh_flags.swap_bytes(),
        sh_addr: sh.sh_addr.swap_bytes(),
        sh_offset: sh.sh_offset.swap_bytes(),
        sh_size: sh.sh_size.swap_bytes(),
        sh_link: sh.sh_link.swap_bytes(),
        sh_info: sh.sh_info.swap_bytes(),
        sh_addralign: sh.sh_addralign.swap_bytes(),
        sh_entsize: sh.sh_entsize.swap_bytes(),
    }
}

/// Iterates over the notes in `size` bytes at `offset` of `data` (a PT_NOTE segment, or a
/// kdump file's note area); `segment` names the segment in errors. Stops after the first
/// error.
pub struct NoteIter<'a> {
    data: &'a [u8],
    pos: u64,
    end: u64,
    segment: u32,
    failed: bool,
}

impl<'a> NoteIter<'a> {
    /// Notes of `data[offset..offset + size]`; file offsets in the notes are relative to
    /// `data`.
    pub fn new(data: &'a [u8], offset: u64, size: u64, segment: u32) -> NoteIter<'a> {
        NoteIter {
            data,
            pos: offset,
            end: offset.saturating_add(size),
            segment,
            failed: false,
        }
    }
}

impl<'a> Iterator for NoteIter<'a> {
    type Item = Result<Note<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.end {
            return None;
        }
        let r = self.next_note();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

impl<'a> NoteIter<'a> {
    fn next_note(&mut self) -> Result<Note<'a>> {
        let at = self.pos;
        let remaining = self.end - at;
        let segment = u64::from(self.segment);
        let bad = |problem| FormatError::invalid(Structure::NoteHeader { segment }, at, problem);
        if remaining < NoteHeader::SIZE as u64 {
            return Err(bad(Problem::NoteHeaderTruncated { remaining }));
        }
        let hdr = slice(self.data, at, NoteHeader::SIZE as u64, || Structure::NoteHeader {
            segment,
        })?;
        let namesz = u64::from(be32(hdr, 0));
        let descsz = u64::from(be32(hdr, 4));
        let n_type = be32(hdr, 8);
        let name_pad = padded(namesz).ok_or_else(|| bad(Problem::NoteSizeOverflow { field: "n_namesz" }))?;
        let desc_pad = padded(descsz).ok_or_else(|| bad(Problem::NoteSizeOverflow { field: "n_descsz" }))?;
        let total = NoteHeader::SIZE as u64 + name_pad + desc_pad;
        if total > remaining {
            return Err(bad(Problem::NoteOverrunsSegment {
                n_type,
                namesz,
                descsz,
                need: total,
                remaining,
            }));
        }
        let name_at = at + NoteHeader::SIZE as u64;
        let name = slice(self.data, name_at, namesz, || Structure::NoteName)?;
        let name = match name.iter().position(|&b| b == 0) {
            Some(p) => &name[..p],
            None => name,
        };
        let desc_offset = name_at + name_pad;
        let desc = slice(self.data, desc_offset, descsz, || Structure::NoteDescriptor)?;
        // A note may end on the segment boundary without its final padding.
        self.pos = at + total;
        Ok(Note {
            name,
            n_type,
            desc,
            offset: at,
            desc_offset,
        })
    }
}

#[cfg(test)]
mod tests;
