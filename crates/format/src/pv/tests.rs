//! Unit tests of the parent module.

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
