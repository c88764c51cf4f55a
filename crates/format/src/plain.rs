//! A plain (not encrypted) s390x ELF vmcore as a [`PageSource`]: pvdump's own ELF output,
//! a QEMU dump of a normal guest, or a kernel /proc/vmcore copy.

use crate::consts::{PAGE_SIZE, SECTION_PV_COMPL, SECTION_PV_MEM_META};
use crate::elf::ElfCore;
use crate::error::{FormatError, Problem, Result, Structure};
use crate::source::{MemoryBlock, PageSource};

/// Guest memory of a plain ELF core. Blocks are the PT_LOADs rounded out to whole pages
/// (overlapping rounded ranges merged); bytes past a segment's p_filesz, and the parts of a
/// rounded page outside every segment, read as zero.
#[derive(Debug, Clone)]
pub struct PlainElf<'a> {
    core: ElfCore<'a>,
    blocks: Vec<MemoryBlock>,
}

impl<'a> PlainElf<'a> {
    /// Parses `data` as an ELF core.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        Self::from_core(ElfCore::parse(data)?)
    }

    /// Wraps a parsed core. A PV dump (with `pv_compl`/`pv_mem_meta` sections) is refused
    /// with [`FormatError::EncryptedInput`]: its memory is ciphertext.
    pub fn from_core(core: ElfCore<'a>) -> Result<Self> {
        if core.section(SECTION_PV_COMPL).is_some() || core.section(SECTION_PV_MEM_META).is_some() {
            return Err(FormatError::EncryptedInput);
        }
        let mut blocks: Vec<MemoryBlock> = Vec::with_capacity(core.loads().len());
        for l in core.loads() {
            let start = l.paddr & !(PAGE_SIZE - 1);
            let end = l.end().checked_next_multiple_of(PAGE_SIZE).ok_or_else(|| {
                FormatError::invalid(
                    Structure::ProgramHeader {
                        index: u64::from(l.phdr_index),
                        kind: Some("PT_LOAD"),
                    },
                    l.phdr_offset,
                    Problem::EndsAtTopOfAddressSpace,
                )
            })?;
            match blocks.last_mut() {
                Some(last) if last.end() > start => {
                    last.size = end.max(last.end()) - last.paddr;
                }
                _ => blocks.push(MemoryBlock {
                    paddr: start,
                    size: end - start,
                }),
            }
        }
        Ok(PlainElf { core, blocks })
    }

    /// The parsed ELF core.
    pub fn core(&self) -> &ElfCore<'a> {
        &self.core
    }
}

impl PageSource for PlainElf<'_> {
    fn blocks(&self) -> &[MemoryBlock] {
        &self.blocks
    }

    fn read_pages(&self, paddr: u64, out: &mut [u8], zero: &mut [bool]) -> Result<()> {
        let loads = self.core.loads();
        let data = self.core.data();
        let (pages, _) = out.as_chunks_mut::<{ PAGE_SIZE as usize }>();
        for (i, (page, z)) in pages.iter_mut().zip(zero.iter_mut()).enumerate() {
            let addr = paddr + i as u64 * PAGE_SIZE;
            if !self.blocks.iter().any(|b| b.contains(addr)) {
                return Err(FormatError::outside_memory(addr));
            }
            let end = addr + PAGE_SIZE;
            page.fill(0);
            let mut any = false;
            let first = loads.partition_point(|l| l.end() <= addr);
            for l in loads[first..].iter().take_while(|l| l.paddr < end) {
                // The part of this page backed by file bytes of the segment.
                let from = l.paddr.max(addr);
                let to = (l.paddr + l.filesz.min(l.memsz)).min(end);
                if from >= to {
                    continue;
                }
                let off = l.file_offset + (from - l.paddr);
                let n = (to - from) as usize;
                let src = usize::try_from(off)
                    .ok()
                    .and_then(|o| data.get(o..o.checked_add(n)?))
                    .ok_or_else(|| {
                        FormatError::invalid(
                            Structure::LoadData {
                                index: u64::from(l.phdr_index),
                                paddr: l.paddr,
                            },
                            off,
                            Problem::MemoryPastEnd { len: n as u64 },
                        )
                    })?;
                page[(from - addr) as usize..(to - addr) as usize].copy_from_slice(src);
                any = true;
            }
            *z = !any;
        }
        Ok(())
    }
}
