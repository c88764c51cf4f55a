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

/// A shape QEMU never writes but zgetdump decrypts anyway. pvdump decrypts it the same way
/// (the same notes and the same memory at every address zgetdump's output covers) and
/// reports it, so that a user is told what the output lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Irregularity {
    /// No NT_S390_PV_CPU_DATA note at all: the output has no CPU registers.
    NoCpuNotes {
        /// File offset of the first PT_NOTE segment's data (0 without one).
        offset: u64,
    },
    /// An NT_PRSTATUS note without the NT_S390_PV_CPU_DATA note that should follow it: that
    /// CPU is left out, as zgetdump leaves it out.
    OrphanPrstatus {
        /// pr_pid of the NT_PRSTATUS note (QEMU writes cpu_index + 1).
        pid: u32,
        /// File offset of the NT_PRSTATUS note header.
        offset: u64,
    },
    /// No PT_LOAD segment: the output holds notes only.
    NoLoads {
        /// File offset of the program header table.
        offset: u64,
    },
    /// A PT_LOAD whose p_paddr or p_filesz is not a whole number of pages. Its pages are
    /// decrypted whole from the segment's start (the last one reading past p_filesz), as
    /// zgetdump does; memory before p_paddr and past p_filesz in the segment's first and last
    /// page frame reads as zero.
    UnalignedLoad {
        /// Index of the program header.
        index: u32,
        /// File offset of the program header.
        offset: u64,
        /// Its p_paddr.
        paddr: u64,
        /// Its p_filesz.
        filesz: u64,
    },
}

impl std::fmt::Display for Irregularity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Irregularity::NoCpuNotes { offset } => write!(
                f,
                "notes at file offset {offset:#x}: no NT_S390_PV_CPU_DATA note, so the output has no CPU registers (zgetdump decrypts such a dump the same way)"
            ),
            Irregularity::OrphanPrstatus { pid, offset } => write!(
                f,
                "CPU note group at file offset {offset:#x}: the NT_PRSTATUS note (QEMU CPU id {pid}) has no NT_S390_PV_CPU_DATA note after it; that CPU is left out of the output, as zgetdump leaves it out"
            ),
            Irregularity::NoLoads { offset } => write!(
                f,
                "program header table at file offset {offset:#x}: no PT_LOAD segment, so the output holds no memory, only notes (as zgetdump writes it)"
            ),
            Irregularity::UnalignedLoad {
                index,
                offset,
                paddr,
                filesz,
            } => write!(
                f,
                "program header {index} (PT_LOAD) at file offset {offset:#x}: p_paddr {paddr:#x} or p_filesz {filesz:#x} is not a multiple of the 4 KiB page size; its pages were decrypted whole from the segment's start, as zgetdump does, and the rest of its first and last page frame reads as zero"
            ),
        }
    }
}

/// The page frames a PV segment occupies: from the frame holding p_paddr to the one holding
/// its last byte of memory (p_memsz rounded out to whole frames).
pub fn frames_of(l: &LoadSegment) -> (u64, u64) {
    let first = l.paddr / PAGE_SIZE;
    // PvDump::from_core checked that the rounded end does not overflow.
    let end = l.end().div_ceil(PAGE_SIZE);
    (first, end)
}

/// Number of file pages of a PV segment: p_filesz in whole pages, the last one possibly
/// reaching past p_filesz (zgetdump decrypts it whole).
pub fn file_pages(l: &LoadSegment) -> u64 {
    l.filesz.div_ceil(PAGE_SIZE)
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
    irregularities: Vec<Irregularity>,
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
        let mut irregularities = Vec::new();
        if core.loads().is_empty() {
            irregularities.push(Irregularity::NoLoads {
                offset: core.header().e_phoff,
            });
        }
        let components = mem_meta.size / TWEAK_COMPONENT_SIZE;
        // QEMU indexes `pv_mem_meta` by absolute page frame; zgetdump by the page's offset
        // in its single PT_LOAD. They agree for QEMU's one block at 0. A single PT_LOAD
        // elsewhere whose file pages `pv_mem_meta` covers only when counted from the
        // segment's start is read zgetdump's way.
        let first_pfn = match core.loads() {
            [l] if l.paddr / PAGE_SIZE + file_pages(l) > components && file_pages(l) <= components => {
                l.paddr / PAGE_SIZE
            }
            _ => 0,
        };
        let mut prev_end_frame: Option<(u64, u32)> = None;
        for l in core.loads() {
            // One tweak component per page of the file from the segment's start; p_memsz past
            // p_filesz is zero memory and may end inside a page (the page is rounded out). QEMU
            // writes whole pages; zgetdump decrypts other segments too, whole pages from the
            // segment's start, and so does pvdump (with a warning).
            if l.paddr % PAGE_SIZE != 0 || l.filesz % PAGE_SIZE != 0 {
                irregularities.push(Irregularity::UnalignedLoad {
                    index: l.phdr_index,
                    offset: l.phdr_offset,
                    paddr: l.paddr,
                    filesz: l.filesz,
                });
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
            let (first_frame, end_frame) = frames_of(l);
            // Rounded out to whole frames, two segments must still not share one.
            if let Some((prev_end, prev_index)) = prev_end_frame
                && first_frame < prev_end
            {
                return Err(FormatError::invalid(
                    Structure::ProgramHeader {
                        index: u64::from(l.phdr_index),
                        kind: Some("PT_LOAD"),
                    },
                    l.phdr_offset,
                    Problem::SharesPageFrame {
                        other: u64::from(prev_index),
                        frame: first_frame,
                    },
                ));
            }
            prev_end_frame = Some((end_frame, l.phdr_index));
            // The last file page is read whole; past p_filesz it must still be in the file.
            if l.filesz % PAGE_SIZE != 0 {
                let last = file_pages(l) - 1;
                slice(core.data(), l.file_offset + last * PAGE_SIZE, PAGE_SIZE, || {
                    Structure::PageFrame {
                        pfn: first_frame + last,
                    }
                })?;
            }
            if first_frame + file_pages(l) - first_pfn > components {
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
        let cpus = group_cpu_notes(&core, &mut irregularities)?;
        Ok(PvDump {
            core,
            compl,
            mem_meta,
            mem_meta_data,
            first_pfn,
            cpus,
            irregularities,
        })
    }

    /// Shapes QEMU never writes that this dump has (decrypted the way zgetdump decrypts
    /// them): a front end should show them as warnings.
    pub fn irregularities(&self) -> &[Irregularity] {
        &self.irregularities
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

    /// Memory segments (sorted, non-overlapping; page aligned unless
    /// [`PvDump::irregularities`] says otherwise).
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
            let (first_pfn, end_frame) = frames_of(l);
            let backed = file_pages(l);
            counts.unbacked += (end_frame - first_pfn).saturating_sub(backed);
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

    /// The file bytes of file page `pfn` of `load` (its page number `pfn - p_paddr / 4096`
    /// counted from the segment's start; for a page-aligned segment, the page at guest
    /// frame `pfn`). The last page of a segment whose p_filesz is not whole pages reaches
    /// past p_filesz, as zgetdump reads it.
    pub fn page_bytes(&self, load: &LoadSegment, pfn: u64) -> Result<&'a [u8]> {
        let k = pfn.saturating_sub(load.paddr / PAGE_SIZE);
        let off = load.file_offset.saturating_add(k.saturating_mul(PAGE_SIZE));
        slice(self.core.data(), off, PAGE_SIZE, || Structure::PageFrame { pfn })
    }
}

/// Walks all notes: each NT_S390_PV_CPU_DATA starts a CPU; the last NT_PRSTATUS before it
/// (in the same group) gives QEMU's pid. QEMU writes one NT_S390_PV_CPU_DATA note after the
/// NT_PRSTATUS of every CPU; a group without one (a damaged note type or header) and a dump
/// without any CPU note are decrypted as zgetdump decrypts them (without that CPU, without
/// CPUs) and recorded in `irregularities`, never silently.
fn group_cpu_notes<'a>(core: &ElfCore<'a>, irregularities: &mut Vec<Irregularity>) -> Result<Vec<PvCpuNote<'a>>> {
    let mut cpus = Vec::new();
    // pid and file offset of an NT_PRSTATUS still waiting for its NT_S390_PV_CPU_DATA.
    let mut pending: Option<(u32, u64)> = None;
    for note in core.notes() {
        let note = note?;
        match (note.name, note.n_type) {
            (b"CORE", NT_PRSTATUS) => {
                if let Some((pid, offset)) = pending {
                    irregularities.push(Irregularity::OrphanPrstatus { pid, offset });
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
        irregularities.push(Irregularity::OrphanPrstatus { pid, offset });
    }
    if cpus.is_empty() {
        let offset = core.note_segments().first().map_or(0, |n| n.file_offset);
        irregularities.push(Irregularity::NoCpuNotes { offset });
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
        // zgetdump's way: the orphan's CPU is left out, the dump without CPU notes has none;
        // both are reported.
        let d = dump(1, 1, &[ENC], &orphan);
        let pv = PvDump::parse(&d).unwrap();
        assert_eq!(pv.cpus().len(), 1);
        assert_eq!(pv.cpus()[0].qemu_pid, Some(1));
        let notes_at = pv.core().note_segments()[0].file_offset;
        assert_eq!(
            pv.irregularities(),
            [Irregularity::OrphanPrstatus {
                pid: 0,
                offset: notes_at
            }]
        );
        let mut none = Vec::new();
        push_note(&mut none, "CORE", NT_PRPSINFO, &[0; 136]);
        let d = dump(1, 1, &[ENC], &none);
        let pv = PvDump::parse(&d).unwrap();
        assert!(pv.cpus().is_empty());
        assert_eq!(pv.irregularities(), [Irregularity::NoCpuNotes { offset: notes_at }]);
        assert!(
            pv.irregularities()[0]
                .to_string()
                .contains("no NT_S390_PV_CPU_DATA note")
        );
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

    #[test]
    fn segments_not_in_whole_pages_are_read_from_their_start() {
        let notes = two_cpus();
        // p_filesz 1.5 pages: two file pages, the second read whole past p_filesz.
        let d = build(
            &[Load {
                paddr: 0x100,
                filesz: 0x1800,
                memsz: 0x1800,
                fill: 0,
            }],
            &notes,
            &[
                (
                    "pv_mem_meta",
                    [ENC, ZERO].iter().flat_map(|s| s.to_component()).collect(),
                ),
                ("pv_compl", compl()),
                ("padding", vec![0; 2048]),
            ],
        );
        let pv = PvDump::parse(&d).unwrap();
        let l = pv.loads()[0];
        assert_eq!(frames_of(&l), (0, 2));
        assert_eq!(file_pages(&l), 2);
        assert!(matches!(
            pv.irregularities(),
            [Irregularity::UnalignedLoad {
                index: 1,
                paddr: 0x100,
                filesz: 0x1800,
                ..
            }]
        ));
        // File page 1 starts one page after the segment's data, whatever p_paddr.
        let p1 = pv.page_bytes(&l, 1).unwrap().as_ptr() as usize - d.as_ptr() as usize;
        assert_eq!(p1 as u64, l.file_offset + 4096);
        let c = pv.page_counts().unwrap();
        assert_eq!((c.encrypted, c.zero, c.unbacked), (1, 1, 0));
        // Without the padding, the last page would end past the end of the file.
        let short = build(
            &[Load {
                paddr: 0x100,
                filesz: 0x1800,
                memsz: 0x1800,
                fill: 0,
            }],
            &notes,
            &[
                (
                    "pv_mem_meta",
                    [ENC, ZERO].iter().flat_map(|s| s.to_component()).collect(),
                ),
                ("pv_compl", compl()),
            ],
        );
        let e = PvDump::parse(&short).unwrap_err();
        assert!(
            matches!(e, FormatError::OutOfBounds { structure: Structure::PageFrame { pfn: 1 }, offset, .. } if offset == l.file_offset + 4096),
            "{e:?}"
        );

        // Rounded out to frames, two segments may not share one.
        let d = build(
            &[
                Load {
                    paddr: 0,
                    filesz: 0x1000,
                    memsz: 0x1800,
                    fill: 0,
                },
                Load {
                    paddr: 0x1800,
                    filesz: 0x1000,
                    memsz: 0x1000,
                    fill: 0,
                },
            ],
            &notes,
            &[
                (
                    "pv_mem_meta",
                    [ENC, ZERO, ENC].iter().flat_map(|s| s.to_component()).collect(),
                ),
                ("pv_compl", compl()),
            ],
        );
        let e = PvDump::parse(&d).unwrap_err();
        assert!(matches!(
            e,
            FormatError::Invalid {
                problem: Problem::SharesPageFrame { other: 1, frame: 1 },
                ..
            }
        ));
        assert!(
            e.to_string()
                .contains("reaches page frame 0x1, which program header 1 (PT_LOAD) reaches too"),
            "{e}"
        );
    }
}
