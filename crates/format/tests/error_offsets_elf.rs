//! Every `FormatError` names the file offset of the structure it is about: the section data,
//! not the section header, unless a header field is what is wrong (issue 11). One crafted
//! input per variant and problem that a file can reach, with the offset pinned.
//!
//! PV dumps come from the simulated Ultravisor (pvdump-synth) and are damaged in one field
//! each; plain ELF and kdump inputs are built here from the layout structures.
//!
//! This file: the ELF header, program headers and sections of PV dumps, and plain ELF cores.
//! The PV structures are in error_offsets_pv.rs, kdump files in error_offsets_kdump.rs.

mod common_offsets;
use common_offsets::*;

use pvdump_format::consts::*;
use pvdump_format::layout::elf::{
    ProgramHeader, file_header_bytes, program_header_bytes, push_note, s390x_core_header,
};
use pvdump_format::layout::s390::push_cpu_notes;
use pvdump_format::{CpuRegisters, PageSource, PlainElf, Structure};
use pvdump_synth::SynthSpec;

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
