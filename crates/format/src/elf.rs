//! The ELF container: header, program headers (with PN_XNUM), section headers, notes.
//!
//! [`ElfCore`] is a bounds-checked view over a whole file held in memory (usually a memory
//! map). Parsing reads the headers once and keeps only small summaries: one entry per
//! program header of interest and per named section, each of which costs at least 56 bytes
//! of file, so allocations never exceed a fraction of the file size and never follow a
//! number the file merely claims.

use goblin::container::{Container, Ctx};
use goblin::elf::{Elf, ProgramHeader, SectionHeader};
use scroll::Pread;

use crate::bytes::{be32, pad4, slice};
use crate::consts::*;
use crate::error::{FormatError, Result};

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
}

/// One PT_NOTE segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteSegment {
    pub phdr_index: u32,
    pub file_offset: u64,
    pub size: u64,
}

/// A section header that has a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub index: u32,
    pub name: String,
    /// File offset of the section header.
    pub header_offset: u64,
    pub sh_type: u32,
    pub file_offset: u64,
    pub size: u64,
}

/// One ELF note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Note<'a> {
    /// Name without the terminating NUL (e.g. `b"CORE"`).
    pub name: &'a [u8],
    pub n_type: u32,
    pub desc: &'a [u8],
    /// File offset of the note header.
    pub offset: u64,
    /// File offset of the descriptor.
    pub desc_offset: u64,
}

/// Hard cap on the number of program and section headers we look at (PN_XNUM allows 2^32).
pub const MAX_HEADERS: u64 = 1 << 22;

/// A parsed big-endian s390x ELF core file.
#[derive(Debug, Clone)]
pub struct ElfCore<'a> {
    data: &'a [u8],
    header: goblin::elf::Header,
    phnum: u64,
    shnum: u64,
    loads: Vec<LoadSegment>,
    notes: Vec<NoteSegment>,
    sections: Vec<Section>,
}

fn ctx() -> Ctx {
    Ctx::new(Container::Big, scroll::Endian::Big)
}

impl<'a> ElfCore<'a> {
    /// Parses and validates the ELF header, program headers and section headers.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let file_len = data.len() as u64;
        if data.len() < EHDR_SIZE {
            return Err(FormatError::TooShort { len: file_len });
        }
        let magic = crate::bytes::copy_array::<4>(data, 0);
        if magic != *b"\x7fELF" {
            return Err(FormatError::NotElf { found: magic });
        }
        let wrong = |field, offset, found: String, expected| FormatError::WrongElfKind {
            field,
            offset,
            found,
            expected,
        };
        if data[4] != ELFCLASS64 {
            return Err(wrong("EI_CLASS", 4, format!("{}", data[4]), "2 (ELFCLASS64)"));
        }
        if data[5] != ELFDATA2MSB {
            return Err(wrong(
                "EI_DATA",
                5,
                format!("{}", data[5]),
                "2 (ELFDATA2MSB, big-endian)",
            ));
        }
        let header = Elf::parse_header(data)
            .map_err(|e| FormatError::invalid("ELF header", 0, format!("cannot be parsed: {e}")))?;
        if header.e_type != ET_CORE {
            return Err(wrong("e_type", 16, format!("{}", header.e_type), "4 (ET_CORE)"));
        }
        if header.e_machine != EM_S390 {
            return Err(wrong("e_machine", 18, format!("{}", header.e_machine), "22 (EM_S390)"));
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
                        "section header 0",
                        header.e_shoff,
                        format!(
                            "e_phnum is PN_XNUM (0xffff), so sh_info must hold the real number of program headers (at least 0xffff), but it is {}",
                            sh.sh_info
                        ),
                    ));
                }
                None => {
                    return Err(FormatError::invalid(
                        "ELF header",
                        56,
                        "e_phnum is PN_XNUM (0xffff) but there is no section header 0 to hold the real count",
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
                "ELF header",
                58,
                format!("e_shentsize is {}, expected 64", h.e_shentsize),
            ));
        }
        let bytes = slice(self.data, h.e_shoff, SHDR_SIZE as u64, || "section header 0".into())?;
        let sh: SectionHeader = bytes
            .pread_with(0, ctx())
            .map_err(|e: goblin::error::Error| FormatError::invalid("section header 0", h.e_shoff, e.to_string()))?;
        Ok(Some(sh))
    }

    fn read_program_headers(&mut self) -> Result<()> {
        let h = self.header;
        if self.phnum == 0 {
            return Ok(());
        }
        if h.e_phentsize != PHDR_SIZE as u16 {
            return Err(FormatError::invalid(
                "ELF header",
                54,
                format!("e_phentsize is {}, expected 56", h.e_phentsize),
            ));
        }
        if self.phnum > MAX_HEADERS {
            return Err(FormatError::invalid(
                "ELF header",
                56,
                format!(
                    "{} program headers is more than pvdump supports ({MAX_HEADERS})",
                    self.phnum
                ),
            ));
        }
        let table = slice(self.data, h.e_phoff, self.phnum * PHDR_SIZE as u64, || {
            format!("program header table ({} entries)", self.phnum)
        })?;
        let file_len = self.data.len() as u64;
        for i in 0..self.phnum {
            let off = (i as usize) * PHDR_SIZE;
            let at = h.e_phoff + off as u64;
            let ph: ProgramHeader = table.pread_with(off, ctx()).map_err(|e: goblin::error::Error| {
                FormatError::invalid(format!("program header {i}"), at, e.to_string())
            })?;
            let what = |t: &str| format!("program header {i} ({t})");
            match ph.p_type {
                PT_LOAD => {
                    if ph.p_filesz > ph.p_memsz {
                        return Err(FormatError::invalid(
                            what("PT_LOAD"),
                            at,
                            format!("p_filesz {:#x} is larger than p_memsz {:#x}", ph.p_filesz, ph.p_memsz),
                        ));
                    }
                    if ph.p_paddr.checked_add(ph.p_memsz).is_none() {
                        return Err(FormatError::invalid(
                            what("PT_LOAD"),
                            at,
                            format!(
                                "p_paddr {:#x} + p_memsz {:#x} overflows the 64-bit address space",
                                ph.p_paddr, ph.p_memsz
                            ),
                        ));
                    }
                    if ph.p_filesz > 0 {
                        slice(self.data, ph.p_offset, ph.p_filesz, || {
                            format!(
                                "memory of program header {i} (PT_LOAD, guest address {:#x})",
                                ph.p_paddr
                            )
                        })?;
                    }
                    if ph.p_memsz == 0 {
                        continue;
                    }
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
                    slice(self.data, ph.p_offset, ph.p_filesz, || {
                        format!("notes of program header {i} (PT_NOTE)")
                    })?;
                    self.notes.push(NoteSegment {
                        phdr_index: i as u32,
                        file_offset: ph.p_offset,
                        size: ph.p_filesz,
                    });
                }
                _ => {}
            }
        }
        let _ = file_len;
        self.loads.sort_by_key(|l| l.paddr);
        for w in self.loads.windows(2) {
            if w[1].paddr < w[0].end() {
                return Err(FormatError::invalid(
                    format!("program header {} (PT_LOAD)", w[1].phdr_index),
                    w[1].phdr_offset,
                    format!(
                        "guest memory [{:#x}, {:#x}) overlaps program header {} [{:#x}, {:#x})",
                        w[1].paddr,
                        w[1].end(),
                        w[0].phdr_index,
                        w[0].paddr,
                        w[0].end()
                    ),
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
                "ELF header",
                60,
                format!(
                    "{} section headers is more than pvdump supports ({MAX_HEADERS})",
                    self.shnum
                ),
            ));
        }
        let table = slice(self.data, h.e_shoff, self.shnum * SHDR_SIZE as u64, || {
            format!("section header table ({} entries)", self.shnum)
        })?;
        let strndx = u64::from(h.e_shstrndx);
        if strndx == u64::from(SHN_UNDEF) {
            return Ok(()); // no names: nothing can be found by name
        }
        if strndx >= self.shnum {
            return Err(FormatError::invalid(
                "ELF header",
                62,
                format!(
                    "e_shstrndx {strndx} is not below the number of sections ({})",
                    self.shnum
                ),
            ));
        }
        let read = |i: u64| -> Result<SectionHeader> {
            let off = (i as usize) * SHDR_SIZE;
            table.pread_with(off, ctx()).map_err(|e: goblin::error::Error| {
                FormatError::invalid(format!("section header {i}"), h.e_shoff + off as u64, e.to_string())
            })
        };
        let strtab_sh = read(strndx)?;
        let strtab_hdr_off = h.e_shoff + strndx * SHDR_SIZE as u64;
        if strtab_sh.sh_size > MAX_STRTAB {
            return Err(FormatError::invalid(
                format!("section header {strndx} (string table)"),
                strtab_hdr_off,
                format!(
                    "sh_size {:#x} is larger than the {MAX_STRTAB} bytes pvdump accepts",
                    strtab_sh.sh_size
                ),
            ));
        }
        let strtab = slice(self.data, strtab_sh.sh_offset, strtab_sh.sh_size, || {
            format!("section name string table (section {strndx})")
        })?;
        for i in 1..self.shnum {
            let sh = read(i)?;
            let hdr_off = h.e_shoff + i * SHDR_SIZE as u64;
            let Some(rest) = strtab.get(sh.sh_name..) else {
                return Err(FormatError::invalid(
                    format!("section header {i}"),
                    hdr_off,
                    format!(
                        "sh_name {:#x} points past the string table ({:#x} bytes)",
                        sh.sh_name,
                        strtab.len()
                    ),
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

    /// The goblin view of the ELF header.
    pub fn header(&self) -> &goblin::elf::Header {
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
        slice(self.data, s.file_offset, s.size, || {
            format!("data of section {} (`{}`)", s.index, s.name)
        })
    }

    /// Iterates over every note of every PT_NOTE segment, in file order.
    pub fn notes(&self) -> impl Iterator<Item = Result<Note<'a>>> + '_ {
        self.notes.iter().flat_map(move |seg| NoteIter {
            data: self.data,
            pos: seg.file_offset,
            end: seg.file_offset + seg.size,
            phdr_index: seg.phdr_index,
            failed: false,
        })
    }
}

struct NoteIter<'a> {
    data: &'a [u8],
    pos: u64,
    end: u64,
    phdr_index: u32,
    failed: bool,
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
        let seg = self.phdr_index;
        let remaining = self.end - at;
        let bad = |problem: String| FormatError::invalid(format!("note header in PT_NOTE segment {seg}"), at, problem);
        if remaining < NHDR_SIZE {
            return Err(bad(format!(
                "only {remaining} bytes left in the segment, a note header needs {NHDR_SIZE}"
            )));
        }
        let hdr = slice(self.data, at, NHDR_SIZE, || "note header".into())?;
        let namesz = u64::from(be32(hdr, 0));
        let descsz = u64::from(be32(hdr, 4));
        let n_type = be32(hdr, 8);
        let name_pad = pad4(namesz).ok_or_else(|| bad("n_namesz overflows".into()))?;
        let desc_pad = pad4(descsz).ok_or_else(|| bad("n_descsz overflows".into()))?;
        let total = NHDR_SIZE + name_pad + desc_pad;
        if total > remaining {
            return Err(bad(format!(
                "note (type {n_type:#x}, n_namesz {namesz}, n_descsz {descsz}) needs {total:#x} bytes but only {remaining:#x} are left in the segment"
            )));
        }
        let name = slice(self.data, at + NHDR_SIZE, namesz, || "note name".into())?;
        let name = match name.iter().position(|&b| b == 0) {
            Some(p) => &name[..p],
            None => name,
        };
        let desc_offset = at + NHDR_SIZE + name_pad;
        let desc = slice(self.data, desc_offset, descsz, || "note descriptor".into())?;
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
