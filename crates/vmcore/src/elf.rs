//! The plain s390x ELF vmcore writer (formats.md D and E.8).
//!
//! Layout: ELF header (e_phoff 64), PT_NOTE then one PT_LOAD per memory block, the notes,
//! padding to a page boundary, then the memory of each block back to back. Page-aligned
//! memory lets zero pages be holes in a sparse file. When there are 0xFFFF or more program
//! headers, e_phnum is PN_XNUM and section header 0 (right after the program headers)
//! carries the real count.

use pvdump_format::consts::*;
use pvdump_format::{MemoryBlock, PageSource};

use crate::error::WriteError;
use crate::notes::NoteBlob;
use crate::output::{Output, write_at};
use crate::pump::{WriteOptions, pump};

/// PF_R | PF_W | PF_X.
const PF_RWX: u32 = 7;

/// Where everything goes in the output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfLayout {
    pub phnum: u64,
    /// File offset of section header 0 when PN_XNUM is used.
    pub shoff: u64,
    pub note_offset: u64,
    pub note_size: u64,
    /// Each block and the file offset of its first byte.
    pub loads: Vec<(MemoryBlock, u64)>,
    /// Total file length.
    pub file_len: u64,
}

impl ElfLayout {
    pub fn new(blocks: &[MemoryBlock], note_size: u64) -> ElfLayout {
        let phnum = 1 + blocks.len() as u64;
        let ph_end = EHDR_SIZE as u64 + phnum * PHDR_SIZE as u64;
        let (shoff, note_offset) = if phnum >= u64::from(PN_XNUM) {
            (ph_end, ph_end + SHDR_SIZE as u64)
        } else {
            (0, ph_end)
        };
        let mut pos = (note_offset + note_size).next_multiple_of(PAGE_SIZE);
        let mut loads = Vec::with_capacity(blocks.len());
        for b in blocks {
            loads.push((*b, pos));
            pos += b.size;
        }
        ElfLayout {
            phnum,
            shoff,
            note_offset,
            note_size,
            loads,
            file_len: pos,
        }
    }

    /// Bytes before the memory data: headers, notes, padding.
    pub fn header_bytes(&self, notes: &[u8]) -> Vec<u8> {
        let mut h = Vec::with_capacity(self.loads.first().map_or(self.file_len, |l| l.1) as usize);
        // ELF header
        h.extend_from_slice(b"\x7fELF");
        h.extend_from_slice(&[ELFCLASS64, ELFDATA2MSB, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        h.extend_from_slice(&ET_CORE.to_be_bytes());
        h.extend_from_slice(&EM_S390.to_be_bytes());
        h.extend_from_slice(&1u32.to_be_bytes()); // e_version
        h.extend_from_slice(&0u64.to_be_bytes()); // e_entry
        h.extend_from_slice(&(EHDR_SIZE as u64).to_be_bytes()); // e_phoff
        h.extend_from_slice(&self.shoff.to_be_bytes());
        h.extend_from_slice(&0u32.to_be_bytes()); // e_flags
        h.extend_from_slice(&(EHDR_SIZE as u16).to_be_bytes());
        h.extend_from_slice(&(PHDR_SIZE as u16).to_be_bytes());
        let xnum = self.shoff != 0;
        let e_phnum = if xnum { PN_XNUM } else { self.phnum as u16 };
        h.extend_from_slice(&e_phnum.to_be_bytes());
        h.extend_from_slice(&(if xnum { SHDR_SIZE as u16 } else { 0 }).to_be_bytes());
        h.extend_from_slice(&(if xnum { 1u16 } else { 0 }).to_be_bytes()); // e_shnum
        h.extend_from_slice(&0u16.to_be_bytes()); // e_shstrndx
        // PT_NOTE
        phdr(
            &mut h,
            PT_NOTE,
            0,
            self.note_offset,
            0,
            self.note_size,
            self.note_size,
            0,
        );
        for (b, off) in &self.loads {
            phdr(&mut h, PT_LOAD, PF_RWX, *off, b.paddr, b.size, b.size, PAGE_SIZE);
        }
        if xnum {
            // Section header 0: sh_info = real phnum (fits u32: blocks come from a file).
            let mut sh = [0u8; SHDR_SIZE];
            sh[44..48].copy_from_slice(&(self.phnum.min(u64::from(u32::MAX)) as u32).to_be_bytes());
            h.extend_from_slice(&sh);
        }
        h.extend_from_slice(notes);
        let mem_start = self.loads.first().map_or(self.file_len, |l| l.1);
        h.resize(mem_start as usize, 0);
        h
    }
}

#[allow(clippy::too_many_arguments)]
fn phdr(h: &mut Vec<u8>, p_type: u32, flags: u32, offset: u64, paddr: u64, filesz: u64, memsz: u64, align: u64) {
    h.extend_from_slice(&p_type.to_be_bytes());
    h.extend_from_slice(&flags.to_be_bytes());
    h.extend_from_slice(&offset.to_be_bytes());
    h.extend_from_slice(&paddr.to_be_bytes()); // p_vaddr = p_paddr, as QEMU and zgetdump
    h.extend_from_slice(&paddr.to_be_bytes());
    h.extend_from_slice(&filesz.to_be_bytes());
    h.extend_from_slice(&memsz.to_be_bytes());
    h.extend_from_slice(&align.to_be_bytes());
}

/// Statistics of a finished write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    /// Length of the output.
    pub bytes: u64,
    /// Bytes of guest memory written.
    pub memory: u64,
}

/// Writes a complete ELF vmcore of `src` with these notes.
pub fn write_elf<S: PageSource + ?Sized>(
    src: &S,
    notes: &NoteBlob,
    out: &mut Output<'_>,
    opts: &WriteOptions<'_>,
) -> Result<WriteStats, WriteError> {
    let layout = ElfLayout::new(src.blocks(), notes.bytes.len() as u64);
    let head = layout.header_bytes(&notes.bytes);
    match out {
        Output::File(f) => {
            write_at(f, &head, 0)?;
            // Set the final length first: zero pages at the end stay holes too.
            f.set_len(layout.file_len)
                .map_err(|e| WriteError::io(format!("extending the output to {} bytes", layout.file_len), e))?;
        }
        Output::Stream(w) => {
            w.write_all(&head)
                .map_err(|e| WriteError::io("writing the ELF headers to the output stream", e))?;
        }
    }
    pump(src, &layout.loads, out, opts)?;
    if let Output::Stream(w) = out {
        w.flush().map_err(|e| WriteError::io("flushing the output stream", e))?;
    }
    Ok(WriteStats {
        bytes: layout.file_len,
        memory: src.total_bytes(),
    })
}
