//! Every `FormatError` about a PV structure names its file offset (issue 11): CPU notes,
//! the completion data and the page states of dumps from the simulated Ultravisor, damaged
//! in one field each. (More in error_offsets_elf.rs and error_offsets_kdump.rs.)

mod common_offsets;
use common_offsets::*;

use pvdump_format::consts::*;
use pvdump_format::{FormatError, PvDump, Structure};
use pvdump_synth::SynthSpec;

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
