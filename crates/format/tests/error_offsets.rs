//! Every `FormatError` names the file offset of the structure it is about: the section data,
//! not the section header, unless a header field is what is wrong (issue 11). One crafted
//! input per variant and problem that a file can reach, with the offset pinned.
//!
//! PV dumps come from the simulated Ultravisor (pvdump-synth) and are damaged in one field
//! each; plain ELF and kdump inputs are built here from the layout structures.

use pvdump_format::consts::*;
use pvdump_format::layout::elf::{
    ProgramHeader, file_header_bytes, program_header_bytes, push_note, s390x_core_header,
};
use pvdump_format::layout::kdump::{
    DiskDumpHeader, FLAT_SIGNATURE, FlatHeader, FlatRecord, KDUMP_SIGNATURE, KdumpSubHeader, PageDesc,
};
use pvdump_format::layout::s390::push_cpu_notes;
use pvdump_format::{CpuRegisters, ElfCore, FormatError, KdumpFile, PageSource, PlainElf, PvDump, Structure};
use pvdump_synth::SynthSpec;

fn put16(d: &mut [u8], at: u64, v: u16) {
    d[at as usize..at as usize + 2].copy_from_slice(&v.to_be_bytes());
}
fn put32(d: &mut [u8], at: u64, v: u32) {
    d[at as usize..at as usize + 4].copy_from_slice(&v.to_be_bytes());
}
fn put64(d: &mut [u8], at: u64, v: u64) {
    d[at as usize..at as usize + 8].copy_from_slice(&v.to_be_bytes());
}
fn get64(d: &[u8], at: u64) -> u64 {
    u64::from_be_bytes(d[at as usize..at as usize + 8].try_into().unwrap())
}

/// Where things are in a valid synthetic PV dump.
#[derive(Debug, Clone)]
struct Pv {
    bytes: Vec<u8>,
    phoff: u64,
    shoff: u64,
    /// Program header of the PT_NOTE, and its data.
    note_phdr: u64,
    note_off: u64,
    note_size: u64,
    /// Program header of the (first) PT_LOAD, and its data.
    load_phdr: u64,
    load_off: u64,
    /// Section headers and data.
    meta_hdr: u64,
    meta_off: u64,
    compl_hdr: u64,
    compl_off: u64,
    strtab_hdr: u64,
    strtab_off: u64,
    /// Note headers in order: (offset, name, type, descriptor offset).
    notes: Vec<(u64, Vec<u8>, u32, u64)>,
}

impl Pv {
    fn new(spec: &SynthSpec) -> Pv {
        let bytes = spec.dump_bytes();
        let core = ElfCore::parse(&bytes).unwrap();
        let phoff = core.header().e_phoff;
        let shoff = core.header().e_shoff;
        let sec = |n: &str| core.section(n).unwrap().clone();
        let (meta, compl) = (sec("pv_mem_meta"), sec("pv_compl"));
        let notes = core
            .notes()
            .map(|n| {
                let n = n.unwrap();
                (n.offset, n.name.to_vec(), n.n_type, n.desc_offset)
            })
            .collect();
        let seg = core.note_segments()[0];
        let load = core.loads()[0];
        Pv {
            phoff,
            shoff,
            note_phdr: phoff + u64::from(seg.phdr_index) * 56,
            note_off: seg.file_offset,
            note_size: seg.size,
            load_phdr: load.phdr_offset,
            load_off: load.file_offset,
            meta_hdr: meta.header_offset,
            meta_off: meta.file_offset,
            compl_hdr: compl.header_offset,
            compl_off: compl.file_offset,
            strtab_hdr: shoff + 3 * 64,
            strtab_off: get64(&bytes, shoff + 3 * 64 + 24),
            notes,
            bytes,
        }
    }

    fn simple() -> Pv {
        Pv::new(&SynthSpec::simple(11, 1, 2))
    }

    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The first note of this type.
    fn note(&self, n_type: u32) -> (u64, u64) {
        self.notes.iter().find(|n| n.2 == n_type).map(|n| (n.0, n.3)).unwrap()
    }
}

/// Parses a damaged PV dump the way `pvdump decrypt` does before it needs the key: the
/// structure, then the completion data, every CPU note and every page state.
fn pv_error(bytes: &[u8]) -> FormatError {
    let pv = match PvDump::parse(bytes) {
        Ok(pv) => pv,
        Err(e) => return e,
    };
    if let Err(e) = pv.completion() {
        return e;
    }
    for c in pv.cpus() {
        if let Err(e) = c.dump_v1() {
            return e;
        }
    }
    match pv.page_counts() {
        Err(e) => e,
        Ok(_) => panic!("the damaged dump parsed"),
    }
}

/// Checks one error: its offset, its structure and its problem (by variant name).
#[track_caller]
fn expect(e: &FormatError, offset: Option<u64>, structure: Option<&Structure>, problem: &str) {
    assert_eq!(e.offset(), offset, "offset of {e}");
    if let Some(s) = structure {
        assert_eq!(e.structure(), Some(s), "structure of {e}");
    }
    let name = match e {
        FormatError::Invalid { problem, .. } => format!("{problem:?}"),
        other => format!("{other:?}"),
    };
    assert!(name.starts_with(problem), "{e}: expected {problem}, got {name}");
    // The message names the offset too.
    if let Some(o) = offset
        && o != 0
    {
        assert!(e.to_string().contains(&format!("{o:#x}")), "{e}");
    }
}

#[test]
fn elf_header_errors() {
    let pv = Pv::simple();
    let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = pv.bytes.clone();
        f(&mut b);
        pv_error(&b)
    };
    expect(&pv_error(&pv.bytes[..10]), None, None, "TooShort");
    expect(&damaged(&|b| b[1] = b'X'), Some(0), None, "NotElf");
    expect(&damaged(&|b| b[4] = 1), Some(4), None, "WrongElfKind");
    expect(&damaged(&|b| b[5] = 1), Some(5), None, "WrongElfKind");
    expect(&damaged(&|b| put16(b, 16, 2)), Some(16), None, "WrongElfKind");
    expect(&damaged(&|b| put16(b, 18, 62)), Some(18), None, "WrongElfKind");
    expect(
        &damaged(&|b| put16(b, 54, 57)),
        Some(54),
        Some(&Structure::ElfHeader),
        "EntrySize",
    );
    expect(
        &damaged(&|b| put16(b, 58, 65)),
        Some(58),
        Some(&Structure::ElfHeader),
        "EntrySize",
    );
    // PN_XNUM without a section header table, or with a count below 0xffff in sh_info.
    expect(
        &damaged(&|b| {
            put16(b, 56, 0xffff);
            put64(b, 40, 0);
        }),
        Some(56),
        Some(&Structure::ElfHeader),
        "XnumWithoutSection0",
    );
    expect(
        &damaged(&|b| {
            put16(b, 56, 0xffff);
            put32(b, pv.shoff + 44, 5);
        }),
        Some(pv.shoff),
        Some(&Structure::SectionHeader { index: 0 }),
        "XnumCountTooSmall",
    );
    expect(
        &damaged(&|b| {
            put16(b, 56, 0xffff);
            put32(b, pv.shoff + 44, 1 << 23);
        }),
        Some(56),
        Some(&Structure::ElfHeader),
        "TooManyHeaders",
    );
    expect(
        &damaged(&|b| put64(b, 32, pv.len() - 10)),
        Some(pv.len() - 10),
        Some(&Structure::ProgramHeaderTable { entries: 2 }),
        "OutOfBounds",
    );
}

#[test]
fn program_header_errors() {
    let pv = Pv::simple();
    let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = pv.bytes.clone();
        f(&mut b);
        pv_error(&b)
    };
    let load = Structure::ProgramHeader {
        index: 1,
        kind: Some("PT_LOAD"),
    };
    // Header fields that are wrong: the program header's offset.
    expect(
        &damaged(&|b| put64(b, pv.load_phdr + 32, 2 << 20)),
        Some(pv.load_phdr),
        Some(&load),
        "FileszOverMemsz",
    );
    expect(
        &damaged(&|b| put64(b, pv.load_phdr + 24, u64::MAX - 4095)),
        Some(pv.load_phdr),
        Some(&load),
        "AddressOverflow",
    );
    // Memory beyond the file: the data's offset.
    expect(
        &damaged(&|b| put64(b, pv.load_phdr + 8, pv.len() - 4096)),
        Some(pv.len() - 4096),
        Some(&Structure::LoadData { index: 1, paddr: 0 }),
        "OutOfBounds",
    );
    expect(
        &damaged(&|b| put64(b, pv.note_phdr + 32, pv.len())),
        Some(pv.note_off),
        Some(&Structure::NoteData { index: 0 }),
        "OutOfBounds",
    );
    expect(
        &damaged(&|b| put64(b, pv.load_phdr + 40, pv.len() * 4097)),
        Some(pv.phoff),
        Some(&Structure::ProgramHeaderTable { entries: 2 }),
        "MemoryTooLarge",
    );
    // Two PT_LOADs: the second one moved into the first.
    let mut spec = SynthSpec::simple(12, 1, 1);
    spec.blocks = vec![
        pvdump_format::MemoryBlock {
            paddr: 0,
            size: 1 << 20,
        },
        pvdump_format::MemoryBlock {
            paddr: 4 << 20,
            size: 1 << 20,
        },
    ];
    let two = Pv::new(&spec);
    let mut b = two.bytes.clone();
    let second = two.load_phdr + 56;
    put64(&mut b, second + 24, 0x8_0000);
    expect(
        &pv_error(&b),
        Some(second),
        Some(&Structure::ProgramHeader {
            index: 2,
            kind: Some("PT_LOAD"),
        }),
        "Overlap",
    );
}

#[test]
fn section_errors() {
    let pv = Pv::simple();
    let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = pv.bytes.clone();
        f(&mut b);
        pv_error(&b)
    };
    let meta_data = Structure::SectionData {
        index: 1,
        name: "pv_mem_meta".into(),
    };
    expect(
        &damaged(&|b| {
            put16(b, 60, 0);
            put64(b, pv.shoff + 32, 1 << 23);
        }),
        Some(60),
        Some(&Structure::ElfHeader),
        "TooManyHeaders",
    );
    expect(
        &damaged(&|b| put16(b, 60, 0xfe00)),
        Some(pv.shoff),
        Some(&Structure::SectionHeaderTable { entries: 0xfe00 }),
        "OutOfBounds",
    );
    expect(
        &damaged(&|b| put16(b, 62, 9)),
        Some(62),
        Some(&Structure::ElfHeader),
        "StrndxOutOfRange",
    );
    expect(
        &damaged(&|b| put64(b, pv.strtab_hdr + 32, 2 << 20)),
        Some(pv.strtab_hdr),
        Some(&Structure::StringTableHeader { index: 3 }),
        "StringTableTooLarge",
    );
    expect(
        &damaged(&|b| put64(b, pv.strtab_hdr + 24, pv.len() - 4)),
        Some(pv.len() - 4),
        Some(&Structure::StringTable { index: 3 }),
        "OutOfBounds",
    );
    expect(
        &damaged(&|b| put32(b, pv.shoff + 64, 1000)),
        Some(pv.shoff + 64),
        Some(&Structure::SectionHeader { index: 1 }),
        "NameOutOfRange",
    );
    // Section names changed in the string table.
    expect(
        &damaged(&|b| b[pv.strtab_off as usize + 13] = b'X'),
        None,
        None,
        "NotPvDump",
    );
    expect(
        &damaged(&|b| b[pv.strtab_off as usize + 1] = b'X'),
        Some(pv.compl_hdr),
        Some(&Structure::Section {
            index: 2,
            name: "pv_compl".into(),
        }),
        "NoMemMeta",
    );
    // Section data past the end of the file: the data's offset.
    expect(
        &damaged(&|b| put64(b, pv.compl_hdr + 24, pv.len() - 100)),
        Some(pv.len() - 100),
        Some(&Structure::SectionData {
            index: 2,
            name: "pv_compl".into(),
        }),
        "OutOfBounds",
    );
    expect(
        &damaged(&|b| put64(b, pv.meta_hdr + 24, pv.len() - 16)),
        Some(pv.len() - 16),
        Some(&meta_data),
        "OutOfBounds",
    );
    // sh_size of pv_mem_meta is what is wrong: its header.
    expect(
        &damaged(&|b| put64(b, pv.meta_hdr + 32, 15)),
        Some(pv.meta_hdr),
        Some(&Structure::Section {
            index: 1,
            name: "pv_mem_meta".into(),
        }),
        "MemMetaSize",
    );
    // Too few tweak components for the memory: the data of pv_mem_meta, not its header
    // (zgetdump's differential run found the header's 0x80 here).
    expect(
        &damaged(&|b| put64(b, pv.meta_hdr + 32, 16)),
        Some(pv.meta_off),
        Some(&meta_data),
        "MemMetaTooSmall",
    );
}

#[test]
fn note_and_cpu_errors() {
    let pv = Pv::simple();
    let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = pv.bytes.clone();
        f(&mut b);
        pv_error(&b)
    };
    let header = Structure::NoteHeader { segment: 0 };
    expect(
        &damaged(&|b| put64(b, pv.note_phdr + 32, pv.note_size + 4)),
        Some(pv.note_off + pv.note_size),
        Some(&header),
        "NoteHeaderTruncated",
    );
    let (second, _) = (pv.notes[1].0, ());
    expect(
        &damaged(&|b| put32(b, second + 4, 0x10_0000)),
        Some(second),
        Some(&header),
        "NoteOverrunsSegment",
    );
    let (_, cpu_desc) = pv.note(NT_S390_PV_CPU_DATA);
    // The CPU note's own contents: its descriptor.
    expect(
        &damaged(&|b| b[cpu_desc as usize + 3] = 2),
        Some(cpu_desc),
        Some(&Structure::CpuNote { cpu: 0 }),
        "UnknownVersion",
    );
    // A one-CPU dump whose note is too short (the last note of the segment shrunk).
    let one = Pv::new(&SynthSpec::simple(13, 1, 1));
    let (n, desc) = one.note(NT_S390_PV_CPU_DATA);
    let mut b = one.bytes.clone();
    put32(&mut b, n + 4, 1000);
    put64(&mut b, one.note_phdr + 32, one.note_size - 568);
    expect(
        &pv_error(&b),
        Some(desc),
        Some(&Structure::CpuNote { cpu: 0 }),
        "CpuNoteSize",
    );
}

#[test]
fn completion_and_page_state_errors() {
    let pv = Pv::simple();
    let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = pv.bytes.clone();
        f(&mut b);
        pv_error(&b)
    };
    let compl = Some(&Structure::CompletionData);
    expect(
        &damaged(&|b| put64(b, pv.compl_hdr + 32, 2)),
        Some(pv.compl_off),
        compl,
        "CompletionNoVersion",
    );
    expect(
        &damaged(&|b| b[pv.compl_off as usize + 3] = 2),
        Some(pv.compl_off),
        compl,
        "UnknownVersion",
    );
    expect(
        &damaged(&|b| put64(b, pv.compl_hdr + 32, 200)),
        Some(pv.compl_off),
        compl,
        "CompletionTooSmall",
    );
    expect(
        &damaged(&|b| b[pv.compl_off as usize + 7] = 0),
        Some(pv.compl_off + 4),
        compl,
        "LengthField",
    );
    // 5000 bytes of completion data: a copy of it placed in the (encrypted) memory.
    let at = pv.load_off + 0x4000;
    expect(
        &damaged(&|b| {
            let c = b[pv.compl_off as usize..pv.compl_off as usize + 288].to_vec();
            b[at as usize..at as usize + 288].copy_from_slice(&c);
            put64(b, pv.compl_hdr + 24, at);
            put64(b, pv.compl_hdr + 32, 5000);
        }),
        Some(at),
        compl,
        "CompletionTooLarge",
    );
    // An invalid tweak component: the component's own offset.
    let pfn = 5;
    let comp = pv.meta_off + pfn * 16;
    let e = damaged(&|b| {
        put32(b, comp, 0xffff_ffff);
        b[comp as usize + 15] = 0x08;
    });
    assert!(matches!(e, FormatError::InvalidPageState { pfn: 5, .. }), "{e}");
    expect(&e, Some(comp), None, "InvalidPageState");
    // A page past the components: where its component would be.
    let parsed = PvDump::parse(&pv.bytes).unwrap();
    let far = 1 << 20;
    expect(
        &parsed.page_state(far).unwrap_err(),
        Some(pv.meta_off + far * 16),
        Some(&Structure::SectionData {
            index: 1,
            name: "pv_mem_meta".into(),
        }),
        "NoComponent",
    );
}

/// A plain ELF core: PT_NOTE (notes) and one PT_LOAD of `mem` at `paddr`.
fn plain_elf(notes: &[u8], paddr: u64, mem: &[u8]) -> (Vec<u8>, u64) {
    let mut h = s390x_core_header();
    h.e_phoff = 64;
    h.e_phnum = 2;
    let note_off = 64 + 2 * 56;
    let mem_off = note_off + notes.len() as u64;
    let ph = |p_type, off, addr, size| ProgramHeader {
        p_type,
        p_offset: off,
        p_paddr: addr,
        p_vaddr: addr,
        p_filesz: size,
        p_memsz: size,
        ..ProgramHeader::default()
    };
    let mut f = file_header_bytes(&h).to_vec();
    f.extend_from_slice(&program_header_bytes(&ph(PT_NOTE, note_off, 0, notes.len() as u64)));
    f.extend_from_slice(&program_header_bytes(&ph(PT_LOAD, mem_off, paddr, mem.len() as u64)));
    f.extend_from_slice(notes);
    f.extend_from_slice(mem);
    (f, note_off)
}

#[test]
fn plain_elf_errors() {
    let mut notes = Vec::new();
    push_cpu_notes(&mut notes, 1, &CpuRegisters::default());
    let ctrs = notes.len() as u64;
    push_note(&mut notes, "LINUX", NT_S390_CTRS, &[0; 64]);
    let (elf, note_off) = plain_elf(&notes, 0, &[1; 4096]);
    let plain = PlainElf::parse(&elf).unwrap();
    let e = pvdump_format::cpus_from_notes(plain.core().notes()).unwrap_err();
    expect(
        &e,
        Some(note_off + ctrs),
        Some(&Structure::Note { n_type: NT_S390_CTRS }),
        "DescriptorTooShort",
    );
    // A segment whose page-rounded end is past the top of the address space.
    let (top, _) = plain_elf(&[], u64::MAX - 0x7ff, &[1; 0x100]);
    expect(
        &PlainElf::parse(&top).unwrap_err(),
        Some(64 + 56),
        Some(&Structure::ProgramHeader {
            index: 1,
            kind: Some("PT_LOAD"),
        }),
        "EndsAtTopOfAddressSpace",
    );
    // An encrypted dump is no plain memory; memory outside every block is no place.
    let pv = Pv::simple();
    expect(&PlainElf::parse(&pv.bytes).unwrap_err(), None, None, "EncryptedInput");
    let mut page = [0u8; 4096];
    let e = plain.read_pages(1 << 20, &mut page, &mut [false]).unwrap_err();
    expect(&e, None, None, "OutsideMemory");
}

/// A kdump file of one 4 KiB page, stored raw, with CPU notes and VMCOREINFO.
struct Kdump {
    bytes: Vec<u8>,
    notes_at: u64,
    ctrs_at: u64,
    vmcoreinfo_at: u64,
    desc_at: u64,
    page_at: u64,
}

fn kdump() -> Kdump {
    let mut notes = Vec::new();
    push_cpu_notes(&mut notes, 1, &CpuRegisters::default());
    let ctrs = notes.len() as u64;
    push_note(&mut notes, "LINUX", NT_S390_CTRS, &[0; 128]);
    let vmci = push_note(&mut notes, "VMCOREINFO", NT_VMCOREINFO, b"OSRELEASE=6.1\n") as u64;
    let notes_at = 4096 + KdumpSubHeader::SIZE as u64;
    let header = DiskDumpHeader {
        signature: KDUMP_SIGNATURE,
        header_version: 6,
        block_size: 4096,
        sub_hdr_size: 1,
        bitmap_blocks: 2,
        max_mapnr: 1,
        nr_cpus: 1,
        ..DiskDumpHeader::default()
    };
    let sub = KdumpSubHeader {
        offset_vmcoreinfo: notes_at + vmci,
        size_vmcoreinfo: 14,
        offset_note: notes_at,
        size_note: notes.len() as u64,
        max_mapnr_64: 1,
        ..KdumpSubHeader::default()
    };
    let mut b = vec![0u8; 6 * 4096];
    b[..DiskDumpHeader::SIZE].copy_from_slice(&header.to_bytes());
    b[4096..4096 + KdumpSubHeader::SIZE].copy_from_slice(&sub.to_bytes());
    b[notes_at as usize..notes_at as usize + notes.len()].copy_from_slice(&notes);
    b[2 * 4096] = 1; // 1st bitmap
    b[3 * 4096] = 1; // 2nd bitmap
    let desc = PageDesc {
        offset: 5 * 4096,
        size: 4096,
        flags: 0,
        page_flags: 0,
    };
    b[4 * 4096..4 * 4096 + 24].copy_from_slice(&desc.to_bytes());
    b[5 * 4096..].fill(0x5a);
    Kdump {
        bytes: b,
        notes_at,
        ctrs_at: notes_at + ctrs,
        vmcoreinfo_at: notes_at + vmci,
        desc_at: 4 * 4096,
        page_at: 5 * 4096,
    }
}

/// Parses a kdump file and reads everything in it.
fn kdump_error(bytes: &[u8]) -> FormatError {
    let k = match KdumpFile::parse(bytes) {
        Ok(k) => k,
        Err(e) => return e,
    };
    if let Err(e) = k.cpus() {
        return e;
    }
    if let Err(e) = k.vmcoreinfo() {
        return e;
    }
    match k.for_each_page(|_, _| {}) {
        Err(e) => e,
        Ok(()) => panic!("the damaged kdump file parsed"),
    }
}

#[test]
fn kdump_errors() {
    let k = kdump();
    // The valid file reads.
    let parsed = KdumpFile::parse(&k.bytes).unwrap();
    assert_eq!(parsed.cpus().unwrap().len(), 1);
    assert_eq!(parsed.vmcoreinfo().unwrap().unwrap().as_ref(), b"OSRELEASE=6.1\n");
    parsed.for_each_page(|_, p| assert_eq!(p, [0x5a; 4096])).unwrap();

    let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = k.bytes.clone();
        f(&mut b);
        kdump_error(&b)
    };
    let hdr = Some(&Structure::KdumpHeader);
    expect(&damaged(&|b| b[7] = b'X'), Some(0), hdr, "NoKdumpSignature");
    expect(&damaged(&|b| put32(b, 428, 100)), Some(428), hdr, "BlockSize");
    expect(
        &damaged(&|b| put64(b, 4096 + 96, 1 << 20)),
        Some(436),
        hdr,
        "BitmapTooSmall",
    );
    expect(
        &kdump_error(&k.bytes[..4100]),
        Some(4096),
        Some(&Structure::KdumpSubHeader),
        "PastEnd",
    );
    expect(
        &damaged(&|b| put64(b, 4096 + 56, 1 << 30)),
        Some(k.notes_at),
        Some(&Structure::KdumpNotes),
        "PastEnd",
    );
    expect(
        &damaged(&|b| put64(b, 4096 + 40, 1 << 30)),
        Some(k.vmcoreinfo_at),
        Some(&Structure::KdumpVmcoreinfo),
        "PastEnd",
    );
    expect(
        &damaged(&|b| put32(b, k.ctrs_at + 4, 64)),
        Some(k.ctrs_at),
        Some(&Structure::Note { n_type: NT_S390_CTRS }),
        "DescriptorTooShort",
    );
    expect(
        &kdump_error(&k.bytes[..k.desc_at as usize + 10]),
        Some(k.desc_at),
        Some(&Structure::PageDescriptor { index: 0 }),
        "PastEnd",
    );
    expect(
        &damaged(&|b| put64(b, k.desc_at, 1 << 30)),
        Some(1 << 30),
        Some(&Structure::PageData { pfn: 0 }),
        "PastEnd",
    );
    expect(
        &damaged(&|b| put32(b, k.desc_at + 12, 1)),
        Some(k.page_at),
        Some(&Structure::PageData { pfn: 0 }),
        "BadPage",
    );
}

/// The kdump file as a flattened stream: one record per 4 KiB block.
fn flattened(file: &[u8]) -> (Vec<u8>, Vec<u64>) {
    let mut s = FlatHeader::new().to_bytes().to_vec();
    let mut records = Vec::new();
    for (i, block) in file.chunks(4096).enumerate() {
        records.push(s.len() as u64);
        s.extend_from_slice(
            &FlatRecord {
                offset: i as i64 * 4096,
                size: block.len() as i64,
            }
            .to_bytes(),
        );
        s.extend_from_slice(block);
    }
    s.extend_from_slice(&FlatRecord::END.to_bytes());
    (s, records)
}

#[test]
fn flattened_errors() {
    let k = kdump();
    let (flat, records) = flattened(&k.bytes);
    assert!(KdumpFile::parse(&flat).unwrap().is_flat());
    let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = flat.clone();
        f(&mut b);
        kdump_error(&b)
    };
    let rec = Some(&Structure::FlatRecord);
    expect(
        &kdump_error(&FLAT_SIGNATURE),
        Some(0),
        Some(&Structure::FlatHeader),
        "FlatTooShort",
    );
    expect(
        &damaged(&|b| put64(b, 24, 2)),
        Some(16),
        Some(&Structure::FlatHeader),
        "FlatVersion",
    );
    expect(
        &kdump_error(&flat[..records[2] as usize]),
        Some(records[2]),
        rec,
        "FlatNoEnd",
    );
    expect(
        &damaged(&|b| put64(b, records[1] + 8, 0)),
        Some(records[1]),
        rec,
        "FlatBadRecord",
    );
    expect(
        &damaged(&|b| put64(b, records[5] + 8, 1 << 20)),
        Some(records[5]),
        rec,
        "FlatPayloadShort",
    );
    // Record 2 claims record 1's place.
    expect(
        &damaged(&|b| put64(b, records[2], 4096 + 8)),
        Some(records[2]),
        rec,
        "FlatOverlap",
    );
}
