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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Load, build};

    #[test]
    fn unaligned_segments_become_page_blocks_with_zero_around_them() {
        // 0x800 bytes at 0x1800 with a zero tail to 0x2200, and a page at 0x2000: the
        // rounded ranges overlap and merge.
        let f = build(
            &[
                Load {
                    paddr: 0x1800,
                    filesz: 0x800,
                    memsz: 0xa00,
                    fill: 0x11,
                },
                Load {
                    paddr: 0x2400,
                    filesz: 0x100,
                    memsz: 0x100,
                    fill: 0x22,
                },
            ],
            &[],
            &[],
        );
        let p = PlainElf::parse(&f).unwrap();
        assert_eq!(
            p.blocks(),
            [MemoryBlock {
                paddr: 0x1000,
                size: 0x2000
            }]
        );
        let mut buf = vec![0xeeu8; 0x2000];
        let mut zero = [true; 2];
        p.read_pages(0x1000, &mut buf, &mut zero).unwrap();
        assert!(buf[..0x800].iter().all(|&b| b == 0));
        assert!(buf[0x800..0x1000].iter().all(|&b| b == 0x11));
        assert!(buf[0x1000..0x1400].iter().all(|&b| b == 0), "the zero tail and the gap");
        assert!(buf[0x1400..0x1500].iter().all(|&b| b == 0x22));
        assert!(buf[0x1500..].iter().all(|&b| b == 0));
        assert_eq!(zero, [false, false]);
        let mut page = [0u8; 4096];
        assert_eq!(
            p.read_pages(0x3000, &mut page, &mut [false]).unwrap_err(),
            FormatError::outside_memory(0x3000)
        );
    }

    #[test]
    fn encrypted_dumps_are_refused() {
        let f = build(
            &[Load {
                paddr: 0,
                filesz: 0x1000,
                memsz: 0x1000,
                fill: 0,
            }],
            &[],
            &[("pv_mem_meta", vec![0; 16])],
        );
        assert_eq!(PlainElf::parse(&f).unwrap_err(), FormatError::EncryptedInput);
    }
}
