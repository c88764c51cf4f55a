//! Unit tests of the parent module.

use super::*;
use crate::layout::elf::push_note;
use crate::testutil::{Load, build};

fn load(paddr: u64, filesz: u64, memsz: u64) -> Load {
    Load {
        paddr,
        filesz,
        memsz,
        fill: 0x5a,
    }
}

fn problem(data: &[u8]) -> (Structure, u64, Problem) {
    match ElfCore::parse(data).unwrap_err() {
        FormatError::Invalid {
            structure,
            offset,
            problem,
        } => (structure, offset, problem),
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn loads_are_sorted_and_notes_walked() {
    let mut notes = Vec::new();
    push_note(&mut notes, "CORE", NT_PRSTATUS, &[1; 336]);
    push_note(&mut notes, "VMCOREINFO", 0, b"OSRELEASE=1\n");
    let f = build(&[load(0x3000, 0x1000, 0x2000), load(0, 0x1000, 0x1000)], &notes, &[]);
    let core = ElfCore::parse(&f).unwrap();
    assert_eq!(core.phnum(), 3);
    let l = core.loads();
    assert_eq!((l[0].paddr, l[1].paddr), (0, 0x3000));
    assert_eq!((l[1].end(), l[1].file_end()), (0x5000, 0x4000));
    let n: Vec<_> = core.notes().map(|n| n.unwrap()).collect();
    assert_eq!(n.len(), 2);
    assert_eq!((n[0].name, n[0].n_type, n[0].desc.len()), (&b"CORE"[..], 1, 336));
    assert_eq!(n[1].name, b"VMCOREINFO");
    assert_eq!(n[1].desc_offset, n[1].offset + 12 + 12);
}

#[test]
fn header_kind_errors_name_the_field() {
    let f = build(&[load(0, 0x1000, 0x1000)], &[], &[]);
    let mut g = f.clone();
    g[4] = 1;
    assert_eq!(
        ElfCore::parse(&g).unwrap_err(),
        wrong("EI_CLASS", 4, 1u8, "2 (ELFCLASS64)")
    );
    let mut g = f.clone();
    g[18..20].copy_from_slice(&62u16.to_be_bytes());
    let e = ElfCore::parse(&g).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ELF header at offset 0x12: e_machine is 62, expected 22 (EM_S390)"
    );
    assert_eq!(ElfCore::parse(&f[..10]).unwrap_err(), FormatError::TooShort { len: 10 });
}

#[test]
fn overlapping_and_overflowing_loads_are_refused() {
    let f = build(&[load(0, 0x2000, 0x2000), load(0x1000, 0x1000, 0x1000)], &[], &[]);
    let (s, off, p) = problem(&f);
    assert_eq!(off, 64 + 56);
    assert!(matches!(s, Structure::ProgramHeader { index: 1, .. }));
    assert!(matches!(p, Problem::Overlap { other: 0, .. }), "{p}");
    let mut g = build(&[load(0, 0x1000, 0x1000)], &[], &[]);
    g[64 + 40..64 + 48].copy_from_slice(&u64::MAX.to_be_bytes()); // p_memsz
    g[64 + 24..64 + 32].copy_from_slice(&0x1000u64.to_be_bytes()); // p_paddr
    assert!(matches!(problem(&g).2, Problem::AddressOverflow { .. }));
}

#[test]
fn claimed_memory_is_bounded_by_the_file_size() {
    let f = build(&[load(0, 0x1000, 0x1000)], &[], &[]);
    let max = f.len() as u64 * MAX_MEMORY_PER_FILE_BYTE;
    let mut g = f.clone();
    g[64 + 40..64 + 48].copy_from_slice(&(max + 0x1000).to_be_bytes());
    let (s, off, p) = problem(&g);
    assert_eq!((s, off), (Structure::ProgramHeaderTable { entries: 1 }, 64));
    assert_eq!(
        p,
        Problem::MemoryTooLarge {
            claimed: max + 0x1000,
            max
        }
    );
    let mut ok = f;
    ok[64 + 40..64 + 48].copy_from_slice(&max.to_be_bytes());
    assert_eq!(ElfCore::parse(&ok).unwrap().loads()[0].memsz, max);
}

#[test]
fn sections_are_found_by_name_and_qemus_host_order_strtab_header_is_read() {
    let f = build(&[load(0, 0x1000, 0x1000)], &[], &[("pv_mem_meta", vec![1; 16])]);
    let core = ElfCore::parse(&f).unwrap();
    let s = core.section("pv_mem_meta").unwrap();
    assert_eq!(core.section_data(s).unwrap(), &[1; 16]);
    assert!(core.section(".shstrtab").is_some());
    // QEMU on a little-endian host writes the string table's header in host order.
    let strtab_hdr = core.header().e_shoff as usize + 2 * 64;
    let mut g = f.clone();
    for (at, len) in [
        (0, 4),
        (4, 4),
        (8, 8),
        (16, 8),
        (24, 8),
        (32, 8),
        (40, 4),
        (44, 4),
        (48, 8),
        (56, 8),
    ] {
        g[strtab_hdr + at..strtab_hdr + at + len].reverse();
    }
    let core = ElfCore::parse(&g).unwrap();
    assert_eq!(core.section("pv_mem_meta").unwrap().size, 16);
    // A string table header that is neither order is an error naming it.
    let mut h = f.clone();
    h[strtab_hdr + 32..strtab_hdr + 40].copy_from_slice(&u64::MAX.to_be_bytes());
    let (s, off, _) = problem(&h);
    assert_eq!((s, off), (Structure::StringTableHeader { index: 2 }, strtab_hdr as u64));
}

#[test]
fn pn_xnum_takes_the_count_from_section_zero() {
    let f = build(&[load(0, 0x1000, 0x1000)], &[], &[("x", vec![0; 4])]);
    let mut g = f.clone();
    g[56..58].copy_from_slice(&PN_XNUM.to_be_bytes());
    let shoff = ElfCore::parse(&f).unwrap().header().e_shoff;
    let (s, off, p) = problem(&g);
    assert_eq!(
        (s, off, p),
        (
            Structure::SectionHeader { index: 0 },
            shoff,
            Problem::XnumCountTooSmall { found: 0 }
        )
    );
    g[40..48].fill(0); // no section headers at all
    assert_eq!(problem(&g), (Structure::ElfHeader, 56, Problem::XnumWithoutSection0));
}

#[test]
fn a_note_overrunning_its_segment_names_the_note_header() {
    let mut notes = Vec::new();
    push_note(&mut notes, "CORE", 1, &[0; 40]);
    let f = build(&[load(0, 0x1000, 0x1000)], &notes[..notes.len() - 8], &[]);
    let core = ElfCore::parse(&f).unwrap();
    let e = core.notes().next().unwrap().unwrap_err();
    let note_at = 64 + 2 * 56;
    assert_eq!(e.offset(), Some(note_at));
    assert!(e.to_string().contains("needs 0x3c bytes but only 0x34 are left"), "{e}");
    assert_eq!(core.notes().count(), 1, "iteration stops after the first error");
}
