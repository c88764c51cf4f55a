//! The PV-specific view: sections `pv_compl` and `pv_mem_meta`, CPU notes, page states.

use crate::bytes::{be32, copy_array, slice};
use crate::compl::CompletionData;
use crate::consts::*;
use crate::cpu::CpuDump;
use crate::elf::{ElfCore, LoadSegment, Section};
use crate::error::{FormatError, Problem, Result, Structure};
use crate::page::{PageCounts, PageState};

/// One CPU of the dump: its encrypted state note and the QEMU PRSTATUS pid grouped with it.
#[derive(Debug, Clone, Copy)]
pub struct PvCpuNote<'a> {
    /// Position in note order (0-based): the CPU number pvdump reports.
    pub index: usize,
    /// pr_pid of QEMU's NT_PRSTATUS in the same note group (QEMU writes cpu_index + 1).
    pub qemu_pid: Option<u32>,
    /// File offset of the NT_S390_PV_CPU_DATA note header.
    pub note_offset: u64,
    /// File offset of the descriptor.
    pub desc_offset: u64,
    /// The descriptor (n_descsz bytes).
    pub desc: &'a [u8],
}

impl<'a> PvCpuNote<'a> {
    /// Validates the descriptor as CPU dump v1.
    pub fn dump_v1(&self) -> Result<CpuDump<'a>> {
        CpuDump::parse(self.desc, self.desc_offset, self.index)
    }
}

/// An encrypted QEMU PV dump.
#[derive(Debug, Clone)]
pub struct PvDump<'a> {
    core: ElfCore<'a>,
    compl: Section,
    mem_meta: Section,
    mem_meta_data: &'a [u8],
    /// Page frame of tweak component 0 (see [`PvDump::first_component_pfn`]).
    first_pfn: u64,
    cpus: Vec<PvCpuNote<'a>>,
}

impl<'a> PvDump<'a> {
    /// Parses a whole file.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        Self::from_core(ElfCore::parse(data)?)
    }

    /// Checks the PV sections, memory layout and CPU notes of an already parsed ELF core.
    pub fn from_core(core: ElfCore<'a>) -> Result<Self> {
        let compl = core.section(SECTION_PV_COMPL).cloned().ok_or(FormatError::NotPvDump)?;
        let mem_meta = core
            .section(SECTION_PV_MEM_META)
            .cloned()
            .ok_or_else(|| FormatError::invalid(compl.structure(), compl.header_offset, Problem::NoMemMeta))?;
        // Completion data: bounds now, contents in `completion()`.
        core.section_data(&compl)?;
        let mem_meta_data = core.section_data(&mem_meta)?;
        if mem_meta.size == 0 || mem_meta.size % TWEAK_COMPONENT_SIZE != 0 {
            return Err(FormatError::invalid(
                mem_meta.structure(),
                mem_meta.header_offset,
                Problem::MemMetaSize { size: mem_meta.size },
            ));
        }
        if core.loads().is_empty() {
            return Err(FormatError::invalid(
                Structure::ProgramHeaderTable { entries: core.phnum() },
                core.header().e_phoff,
                Problem::NoLoads,
            ));
        }
        let components = mem_meta.size / TWEAK_COMPONENT_SIZE;
        // QEMU indexes `pv_mem_meta` by absolute page frame; zgetdump by the page's offset
        // in its single PT_LOAD. They agree for QEMU's one block at 0. A single PT_LOAD
        // elsewhere whose file pages `pv_mem_meta` covers only when counted from the
        // segment's start is read zgetdump's way.
        let first_pfn = match core.loads() {
            [l] if l.paddr % PAGE_SIZE == 0
                && l.file_end() / PAGE_SIZE > components
                && l.filesz / PAGE_SIZE <= components =>
            {
                l.paddr / PAGE_SIZE
            }
            _ => 0,
        };
        for l in core.loads() {
            // p_paddr and p_filesz must be whole pages (one tweak per page); p_memsz past
            // p_filesz is zero memory and may end inside a page (the page is rounded out).
            if l.paddr % PAGE_SIZE != 0 || l.filesz % PAGE_SIZE != 0 {
                return Err(FormatError::invalid(
                    Structure::ProgramHeader {
                        index: u64::from(l.phdr_index),
                        kind: Some("PT_LOAD"),
                    },
                    l.phdr_offset,
                    Problem::NotPageAligned {
                        paddr: l.paddr,
                        filesz: l.filesz,
                        memsz: l.memsz,
                    },
                ));
            }
            // Every page with file bytes needs its tweak component. QEMU sizes `pv_mem_meta`
            // by the whole guest memory (p_memsz), but a segment whose p_memsz exceeds
            // p_filesz is accepted when only its file part is covered, as zgetdump does: the
            // tail is zero memory. (ElfCore bounds the memory all PT_LOADs may claim.)
            if l.end().checked_next_multiple_of(PAGE_SIZE).is_none() {
                return Err(FormatError::invalid(
                    Structure::ProgramHeader {
                        index: u64::from(l.phdr_index),
                        kind: Some("PT_LOAD"),
                    },
                    l.phdr_offset,
                    Problem::EndsAtTopOfAddressSpace,
                ));
            }
            if l.file_end() / PAGE_SIZE - first_pfn > components {
                return Err(FormatError::invalid(
                    Structure::SectionData {
                        index: u64::from(mem_meta.index),
                        name: mem_meta.name.clone(),
                    },
                    mem_meta.file_offset,
                    Problem::MemMetaTooSmall {
                        components,
                        index: u64::from(l.phdr_index),
                        end: l.file_end(),
                    },
                ));
            }
        }
        let cpus = group_cpu_notes(&core)?;
        Ok(PvDump {
            core,
            compl,
            mem_meta,
            mem_meta_data,
            first_pfn,
            cpus,
        })
    }

    /// The underlying ELF.
    pub fn core(&self) -> &ElfCore<'a> {
        &self.core
    }

    /// The `pv_compl` section header.
    pub fn completion_section(&self) -> &Section {
        &self.compl
    }

    /// The `pv_mem_meta` section header.
    pub fn mem_meta_section(&self) -> &Section {
        &self.mem_meta
    }

    /// The validated completion data.
    pub fn completion(&self) -> Result<CompletionData<'a>> {
        let data = self.core.section_data(&self.compl)?;
        CompletionData::parse(data, self.compl.file_offset)
    }

    /// The CPUs, in note order.
    pub fn cpus(&self) -> &[PvCpuNote<'a>] {
        &self.cpus
    }

    /// Memory segments (sorted, non-overlapping, page aligned).
    pub fn loads(&self) -> &[LoadSegment] {
        self.core.loads()
    }

    /// The page frame whose tweak component comes first in `pv_mem_meta`: 0, as QEMU
    /// indexes it (by absolute page frame), except for a dump with a single PT_LOAD that does
    /// not start at 0 and whose file pages `pv_mem_meta` covers only when counted from the
    /// segment's start: then the segment's first frame, as zgetdump indexes it.
    pub fn first_component_pfn(&self) -> u64 {
        self.first_pfn
    }

    /// File offset of the tweak component of page frame `pfn` (saturating: a component
    /// that would lie past the end of the address space is past the end of the file too).
    pub fn component_offset(&self, pfn: u64) -> u64 {
        self.mem_meta
            .file_offset
            .saturating_add(pfn.saturating_sub(self.first_pfn).saturating_mul(TWEAK_COMPONENT_SIZE))
    }

    /// The raw tweak component of page frame `pfn`, if `pv_mem_meta` covers it.
    pub fn component(&self, pfn: u64) -> Option<[u8; 16]> {
        let off = pfn.checked_sub(self.first_pfn)?.checked_mul(TWEAK_COMPONENT_SIZE)?;
        let b = self.mem_meta_data.get(off as usize..(off as usize).checked_add(16)?)?;
        Some(copy_array(b, 0))
    }

    /// The state of page frame `pfn` (which must be backed by a PT_LOAD's file bytes).
    pub fn page_state(&self, pfn: u64) -> Result<PageState> {
        let component = self.component(pfn).ok_or_else(|| {
            FormatError::invalid(
                Structure::SectionData {
                    index: u64::from(self.mem_meta.index),
                    name: self.mem_meta.name.clone(),
                },
                self.component_offset(pfn),
                Problem::NoComponent { pfn },
            )
        })?;
        PageState::classify(&component).map_err(|reason| FormatError::InvalidPageState {
            pfn,
            gaddr: pfn * PAGE_SIZE,
            offset: self.component_offset(pfn),
            component,
            reason,
            others: 0,
        })
    }

    /// Classifies every page of every PT_LOAD. Fails on the first invalid page state (and
    /// says how many more there are), so that no output is written for a damaged dump.
    pub fn page_counts(&self) -> Result<PageCounts> {
        let mut counts = PageCounts::default();
        let mut first: Option<FormatError> = None;
        let mut others = 0u64;
        for l in self.loads() {
            let first_pfn = l.paddr / PAGE_SIZE;
            let backed = l.filesz / PAGE_SIZE;
            counts.unbacked += (l.memsz - l.filesz).div_ceil(PAGE_SIZE);
            for pfn in first_pfn..first_pfn + backed {
                match self.page_state(pfn) {
                    Ok(s) => counts.add(&s),
                    Err(e) => {
                        if first.is_none() {
                            first = Some(e);
                        } else {
                            others += 1;
                        }
                    }
                }
            }
        }
        match first {
            None => Ok(counts),
            Some(FormatError::InvalidPageState {
                pfn,
                gaddr,
                offset,
                component,
                reason,
                ..
            }) => Err(FormatError::InvalidPageState {
                pfn,
                gaddr,
                offset,
                component,
                reason,
                others,
            }),
            Some(e) => Err(e),
        }
    }

    /// The file bytes of the page at guest physical frame `pfn` within `load`.
    pub fn page_bytes(&self, load: &LoadSegment, pfn: u64) -> Result<&'a [u8]> {
        let off = load.file_offset + (pfn * PAGE_SIZE - load.paddr);
        slice(self.core.data(), off, PAGE_SIZE, || Structure::PageFrame { pfn })
    }
}

/// Walks all notes: each NT_S390_PV_CPU_DATA starts a CPU; the last NT_PRSTATUS before it
/// (in the same group) gives QEMU's pid. QEMU writes one NT_S390_PV_CPU_DATA note after the
/// NT_PRSTATUS of every CPU, so a group without one (a damaged note type or header) and a
/// dump without any CPU note are errors rather than a dump that silently lacks a CPU.
fn group_cpu_notes<'a>(core: &ElfCore<'a>) -> Result<Vec<PvCpuNote<'a>>> {
    let mut cpus = Vec::new();
    // pid and file offset of an NT_PRSTATUS still waiting for its NT_S390_PV_CPU_DATA.
    let mut pending: Option<(u32, u64)> = None;
    let orphan =
        |pid: u32, offset: u64| FormatError::invalid(Structure::CpuNoteGroup, offset, Problem::OrphanPrstatus { pid });
    for note in core.notes() {
        let note = note?;
        match (note.name, note.n_type) {
            (b"CORE", NT_PRSTATUS) => {
                if let Some((pid, offset)) = pending {
                    return Err(orphan(pid, offset));
                }
                pending = Some((be32(note.desc, 32), note.offset));
            }
            // Whatever its name (QEMU writes "LINUX"; zgetdump does not look).
            (_, NT_S390_PV_CPU_DATA) => {
                cpus.push(PvCpuNote {
                    index: cpus.len(),
                    qemu_pid: pending.take().map(|(pid, _)| pid),
                    note_offset: note.offset,
                    desc_offset: note.desc_offset,
                    desc: note.desc,
                });
            }
            _ => {}
        }
    }
    if let Some((pid, offset)) = pending {
        return Err(orphan(pid, offset));
    }
    if cpus.is_empty() {
        let (offset, size) = core.note_segments().first().map_or((0, 0), |n| (n.file_offset, n.size));
        return Err(FormatError::invalid(
            Structure::Notes,
            offset,
            Problem::NoCpuNotes { size },
        ));
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::elf::push_note;
    use crate::layout::pv::{CompletionDataV1, CpuDumpV1};
    use crate::page::PageState;
    use crate::testutil::{Load, build};

    fn cpu_note(buf: &mut Vec<u8>, pid: u32) {
        let mut prstatus = [0u8; 336];
        prstatus[32..36].copy_from_slice(&pid.to_be_bytes());
        push_note(buf, "CORE", NT_PRSTATUS, &prstatus);
        let desc = CpuDumpV1 {
            version: 1,
            length: 1568,
            ..CpuDumpV1::default()
        };
        push_note(buf, "LINUX", NT_S390_PV_CPU_DATA, &desc.to_bytes());
    }

    fn compl() -> Vec<u8> {
        CompletionDataV1 {
            version: 1,
            length: 288,
            ..CompletionDataV1::default()
        }
        .to_bytes()
        .to_vec()
    }

    /// A PV-shaped dump: `pages` pages in the file of a load of `mem_pages` pages, one tweak
    /// component per entry of `meta`.
    fn dump(pages: u64, mem_pages: u64, meta: &[PageState], notes: &[u8]) -> Vec<u8> {
        let meta: Vec<u8> = meta.iter().flat_map(|s| s.to_component()).collect();
        build(
            &[Load {
                paddr: 0,
                filesz: pages * PAGE_SIZE,
                memsz: mem_pages * PAGE_SIZE,
                fill: 0,
            }],
            notes,
            &[("pv_mem_meta", meta), ("pv_compl", compl())],
        )
    }

    fn two_cpus() -> Vec<u8> {
        let mut n = Vec::new();
        cpu_note(&mut n, 1);
        cpu_note(&mut n, 2);
        n
    }

    const ZERO: PageState = PageState::Zero { mapped: false };
    const ENC: PageState = PageState::Encrypted { component: [1; 16] };

    #[test]
    fn cpus_are_grouped_with_qemus_pid() {
        let d = dump(2, 2, &[ENC, ZERO], &two_cpus());
        let pv = PvDump::parse(&d).unwrap();
        let cpus = pv.cpus();
        assert_eq!(cpus.len(), 2);
        assert_eq!((cpus[0].index, cpus[0].qemu_pid), (0, Some(1)));
        assert_eq!((cpus[1].index, cpus[1].qemu_pid), (1, Some(2)));
        assert_eq!(cpus[1].desc.len(), 1568);
        assert!(cpus[0].dump_v1().is_ok());
        assert_eq!(pv.completion().unwrap().fields.length, 288);
        let c = pv.page_counts().unwrap();
        assert_eq!((c.encrypted, c.zero, c.unbacked), (1, 1, 0));
    }

    #[test]
    fn a_zero_tail_past_the_file_needs_no_tweak_components() {
        // 2 pages in the file, 5 pages of memory, components for the 2 file pages only.
        let d = dump(2, 5, &[ENC, ZERO], &two_cpus());
        let pv = PvDump::parse(&d).unwrap();
        let c = pv.page_counts().unwrap();
        assert_eq!((c.encrypted, c.zero, c.unbacked), (1, 1, 3));
        // The file part must still be covered.
        let d = dump(3, 5, &[ENC, ZERO], &two_cpus());
        let e = PvDump::parse(&d).unwrap_err();
        let meta = ElfCore::parse(&d).unwrap().section("pv_mem_meta").unwrap().file_offset;
        assert_eq!(e.offset(), Some(meta), "names the section data, not its header: {e}");
        assert!(
            e.to_string()
                .contains("holds tweak components for 2 pages (guest memory up to 0x2000)"),
            "{e}"
        );
    }

    #[test]
    fn invalid_page_states_name_the_first_and_count_the_rest() {
        let bad = {
            let mut c = [0u8; 16];
            c[..4].fill(0xff);
            c
        };
        let mut d = dump(3, 3, &[ENC, ZERO, ZERO], &two_cpus());
        let meta = ElfCore::parse(&d).unwrap().section("pv_mem_meta").unwrap().file_offset as usize;
        d[meta + 16..meta + 32].copy_from_slice(&bad);
        d[meta + 32..meta + 48].copy_from_slice(&bad);
        let pv = PvDump::parse(&d).unwrap();
        match pv.page_counts().unwrap_err() {
            FormatError::InvalidPageState {
                pfn, offset, others, ..
            } => {
                assert_eq!((pfn, offset, others), (1, meta as u64 + 16, 1));
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn structural_errors_name_what_is_missing() {
        let mut one = Vec::new();
        cpu_note(&mut one, 1);
        let orphan = {
            let mut n = Vec::new();
            push_note(&mut n, "CORE", NT_PRSTATUS, &[0; 336]);
            n.extend_from_slice(&one);
            n
        };
        let e = PvDump::parse(&dump(1, 1, &[ENC], &orphan)).unwrap_err();
        assert!(matches!(
            e,
            FormatError::Invalid {
                structure: Structure::CpuNoteGroup,
                problem: Problem::OrphanPrstatus { pid: 0 },
                ..
            }
        ));
        let mut none = Vec::new();
        push_note(&mut none, "CORE", NT_PRPSINFO, &[0; 136]);
        let e = PvDump::parse(&dump(1, 1, &[ENC], &none)).unwrap_err();
        assert!(e.to_string().contains("hold no NT_S390_PV_CPU_DATA note"), "{e}");
        let no_meta = build(
            &[Load {
                paddr: 0,
                filesz: 4096,
                memsz: 4096,
                fill: 0,
            }],
            &one,
            &[("pv_compl", compl())],
        );
        let e = PvDump::parse(&no_meta).unwrap_err();
        assert!(e.to_string().contains("no `pv_mem_meta` section"), "{e}");
        let plain = build(
            &[Load {
                paddr: 0,
                filesz: 4096,
                memsz: 4096,
                fill: 0,
            }],
            &one,
            &[],
        );
        assert_eq!(PvDump::parse(&plain).unwrap_err(), FormatError::NotPvDump);
    }
}
