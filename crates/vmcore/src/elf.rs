//! The plain s390x ELF vmcore (formats.md D and E.8): its layout, the writer, and
//! [`ElfImage`], random access to the same bytes without writing them (for the mount).
//!
//! Layout: ELF header (e_phoff 64), PT_NOTE then one PT_LOAD per memory block, the notes,
//! padding to a page boundary, then the memory of each block back to back. Page-aligned
//! memory lets zero pages be holes in a sparse file ([`crate::min_hole_pages`]). When there
//! are 0xFFFF or more program headers, e_phnum is PN_XNUM and section header 0 (right after
//! the program headers) carries the real count.

use pvdump_format::consts::*;
use pvdump_format::layout::elf::{
    PF_RWX, ProgramHeader, SectionHeader, file_header_bytes, program_header_bytes, s390x_core_header,
    section_header_bytes,
};
use pvdump_format::{FormatError, MemoryBlock, PageSource};

use crate::error::WriteError;
use crate::notes::NoteBlob;
use crate::output::{Output, write_at};
use crate::pump::{WriteOptions, pump};

/// Where everything goes in the output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfLayout {
    /// Number of program headers (PT_NOTE + one PT_LOAD per block).
    pub phnum: u64,
    /// File offset of section header 0 when PN_XNUM is used, else 0.
    pub shoff: u64,
    /// File offset of the notes.
    pub note_offset: u64,
    /// Bytes of notes.
    pub note_size: u64,
    /// Each block and the file offset of its first byte.
    pub loads: Vec<(MemoryBlock, u64)>,
    /// Total file length.
    pub file_len: u64,
}

impl ElfLayout {
    /// The layout for these memory blocks (sorted, page aligned) and notes.
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

    /// File offset of the first byte of memory (page aligned).
    pub fn memory_offset(&self) -> u64 {
        self.loads.first().map_or(self.file_len, |l| l.1)
    }

    /// Bytes before the memory data: headers, notes, padding.
    pub fn header_bytes(&self, notes: &[u8]) -> Vec<u8> {
        let mut h = Vec::with_capacity(self.memory_offset() as usize);
        let xnum = self.shoff != 0;
        let mut ehdr = s390x_core_header();
        ehdr.e_phoff = EHDR_SIZE as u64;
        ehdr.e_shoff = self.shoff;
        ehdr.e_phnum = if xnum { PN_XNUM } else { self.phnum as u16 };
        if xnum {
            ehdr.e_shentsize = SHDR_SIZE as u16;
            ehdr.e_shnum = 1;
        }
        h.extend_from_slice(&file_header_bytes(&ehdr));
        let note = ProgramHeader {
            p_type: PT_NOTE,
            p_offset: self.note_offset,
            p_filesz: self.note_size,
            p_memsz: self.note_size,
            ..ProgramHeader::default()
        };
        h.extend_from_slice(&program_header_bytes(&note));
        for (b, off) in &self.loads {
            let load = ProgramHeader {
                p_type: PT_LOAD,
                p_flags: PF_RWX,
                p_offset: *off,
                // p_vaddr = p_paddr, as QEMU and zgetdump write it.
                p_vaddr: b.paddr,
                p_paddr: b.paddr,
                p_filesz: b.size,
                p_memsz: b.size,
                p_align: PAGE_SIZE,
            };
            h.extend_from_slice(&program_header_bytes(&load));
        }
        if xnum {
            // Section header 0: sh_info = real phnum (fits u32: blocks come from a file).
            let sh0 = SectionHeader {
                sh_info: self.phnum.min(u64::from(u32::MAX)) as u32,
                ..SectionHeader::default()
            };
            h.extend_from_slice(&section_header_bytes(&sh0));
        }
        h.extend_from_slice(notes);
        h.resize(self.memory_offset() as usize, 0);
        h
    }

    /// The block holding output offset `offset`, with the guest address there.
    fn memory_at(&self, offset: u64) -> Option<(MemoryBlock, u64, u64)> {
        let i = self.loads.partition_point(|(b, off)| off + b.size <= offset);
        let (b, off) = *self.loads.get(i)?;
        (offset >= off).then_some((b, off, b.paddr + (offset - off)))
    }
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
    let head = zeroize::Zeroizing::new(layout.header_bytes(&notes.bytes));
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

/// The ELF vmcore of a page source as a read-only byte array: exactly the bytes
/// [`write_elf`] writes, produced on demand (headers from memory, pages read and decrypted
/// when asked for). `read_at` may be called from many threads at once.
#[derive(Debug)]
pub struct ElfImage<'s, S: PageSource + ?Sized> {
    src: &'s S,
    layout: ElfLayout,
    /// Headers and notes (the guest's registers): wiped when the image is dropped.
    head: zeroize::Zeroizing<Vec<u8>>,
}

impl<'s, S: PageSource + ?Sized> ElfImage<'s, S> {
    /// The image of `src` with these notes.
    pub fn new(src: &'s S, notes: &NoteBlob) -> Self {
        let layout = ElfLayout::new(src.blocks(), notes.bytes.len() as u64);
        let head = zeroize::Zeroizing::new(layout.header_bytes(&notes.bytes));
        ElfImage { src, layout, head }
    }

    /// The layout of the image.
    pub fn layout(&self) -> &ElfLayout {
        &self.layout
    }

    /// Length of the image in bytes.
    pub fn len(&self) -> u64 {
        self.layout.file_len
    }

    /// Whether the image is empty (never: it always has headers).
    pub fn is_empty(&self) -> bool {
        self.layout.file_len == 0
    }

    /// Fills `buf` with the bytes at `offset`; returns how many were read (fewer only at
    /// the end of the image).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FormatError> {
        let end = offset.saturating_add(buf.len() as u64).min(self.len());
        let mut pos = offset;
        let page = PAGE_SIZE as usize;
        let mut scratch: Vec<u8> = Vec::new();
        let mut zero = Vec::new();
        while pos < end {
            let dst = &mut buf[(pos - offset) as usize..(end - offset) as usize];
            if pos < self.head.len() as u64 {
                let n = dst.len().min(self.head.len() - pos as usize);
                dst[..n].copy_from_slice(&self.head[pos as usize..pos as usize + n]);
                pos += n as u64;
                continue;
            }
            let Some((block, block_off, paddr)) = self.layout.memory_at(pos) else {
                // Padding between blocks cannot exist; past the last block is the end.
                break;
            };
            let in_block = (block_off + block.size - pos).min(dst.len() as u64) as usize;
            let dst = &mut dst[..in_block];
            let head_skip = (paddr % PAGE_SIZE) as usize;
            if head_skip == 0 && dst.len() >= page {
                // Whole pages straight into the caller's buffer.
                let whole = dst.len() / page * page;
                zero.resize(whole / page, false);
                self.src.read_pages(paddr, &mut dst[..whole], &mut zero)?;
                pos += whole as u64;
            } else {
                // A partial page through a scratch page.
                scratch.resize(page, 0);
                zero.resize(1, false);
                let page_addr = paddr - head_skip as u64;
                self.src.read_pages(page_addr, &mut scratch, &mut zero)?;
                let n = dst.len().min(page - head_skip);
                dst[..n].copy_from_slice(&scratch[head_skip..head_skip + n]);
                pos += n as u64;
            }
        }
        Ok((pos - offset) as usize)
    }
}
