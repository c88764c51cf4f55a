//! A small builder of s390x ELF core files for the parser's unit tests (from the same layout
//! definitions the writers use).

use crate::consts::*;
use crate::layout::elf::{
    ProgramHeader, SectionHeader, file_header_bytes, program_header_bytes, s390x_core_header, section_header_bytes,
};

/// One PT_LOAD: guest address, bytes in the file (filled with `fill`), bytes of memory.
pub struct Load {
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub fill: u8,
}

/// Builds an ELF core: header, program headers (PT_NOTE first when `notes` is not empty),
/// the notes, the memory of each load, then the named sections and their string table.
pub fn build(loads: &[Load], notes: &[u8], sections: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let phnum = loads.len() + usize::from(!notes.is_empty());
    let phoff = EHDR_SIZE as u64;
    let mut pos = phoff + (phnum * PHDR_SIZE) as u64;
    let note_off = pos;
    pos += notes.len() as u64;
    let mut load_offs = Vec::new();
    for l in loads {
        load_offs.push(pos);
        pos += l.filesz;
    }
    let mut sec_offs = Vec::new();
    for (_, data) in sections {
        sec_offs.push(pos);
        pos += data.len() as u64;
    }
    let mut strtab = vec![0u8];
    let mut names = Vec::new();
    for (name, _) in sections {
        names.push(strtab.len() as u32);
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
    }
    let strtab_name = strtab.len() as u32;
    strtab.extend_from_slice(b".shstrtab\0");
    let strtab_off = pos;
    pos += strtab.len() as u64;
    let shoff = pos;
    let shnum = if sections.is_empty() { 0 } else { sections.len() + 2 };

    let mut h = s390x_core_header();
    h.e_phoff = phoff;
    h.e_phnum = phnum as u16;
    if shnum > 0 {
        h.e_shoff = shoff;
        h.e_shentsize = SHDR_SIZE as u16;
        h.e_shnum = shnum as u16;
        h.e_shstrndx = (shnum - 1) as u16;
    }
    let mut f = file_header_bytes(&h).to_vec();
    if !notes.is_empty() {
        let p = ProgramHeader {
            p_type: PT_NOTE,
            p_offset: note_off,
            p_filesz: notes.len() as u64,
            p_memsz: notes.len() as u64,
            ..ProgramHeader::default()
        };
        f.extend_from_slice(&program_header_bytes(&p));
    }
    for (l, off) in loads.iter().zip(&load_offs) {
        let p = ProgramHeader {
            p_type: PT_LOAD,
            p_offset: *off,
            p_vaddr: l.paddr,
            p_paddr: l.paddr,
            p_filesz: l.filesz,
            p_memsz: l.memsz,
            ..ProgramHeader::default()
        };
        f.extend_from_slice(&program_header_bytes(&p));
    }
    f.extend_from_slice(notes);
    for l in loads {
        f.resize(f.len() + l.filesz as usize, l.fill);
    }
    for (_, data) in sections {
        f.extend_from_slice(data);
    }
    f.extend_from_slice(&strtab);
    if shnum > 0 {
        f.extend_from_slice(&section_header_bytes(&SectionHeader::default()));
        for (i, (_, data)) in sections.iter().enumerate() {
            let s = SectionHeader {
                sh_name: names[i],
                sh_type: SHT_PROGBITS,
                sh_offset: sec_offs[i],
                sh_size: data.len() as u64,
                ..SectionHeader::default()
            };
            f.extend_from_slice(&section_header_bytes(&s));
        }
        let s = SectionHeader {
            sh_name: strtab_name,
            sh_type: SHT_STRTAB,
            sh_offset: strtab_off,
            sh_size: strtab.len() as u64,
            ..SectionHeader::default()
        };
        f.extend_from_slice(&section_header_bytes(&s));
    }
    f
}

/// A plain page source over a byte vector (guest address = index), for VMCOREINFO tests.
pub struct Flat {
    pub bytes: Vec<u8>,
    pub blocks: Vec<crate::MemoryBlock>,
}

impl Flat {
    pub fn new(bytes: Vec<u8>) -> Flat {
        let blocks = vec![crate::MemoryBlock {
            paddr: 0,
            size: bytes.len() as u64,
        }];
        Flat { bytes, blocks }
    }
}

impl crate::PageSource for Flat {
    fn blocks(&self) -> &[crate::MemoryBlock] {
        &self.blocks
    }
    fn read_pages(&self, paddr: u64, out: &mut [u8], zero: &mut [bool]) -> crate::Result<()> {
        let a = paddr as usize;
        let src = self
            .bytes
            .get(a..a + out.len())
            .ok_or(crate::FormatError::outside_memory(paddr))?;
        out.copy_from_slice(src);
        zero.fill(false);
        Ok(())
    }
}
