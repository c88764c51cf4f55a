//! Every `FormatError` about a kdump file names its file offset (issue 11): the compressed
//! format and its flattened stream, built here from the layout structures, damaged in one
//! field each. (More in error_offsets_elf.rs and error_offsets_pv.rs.)

mod common_offsets;
use common_offsets::*;

use pvdump_format::consts::*;
use pvdump_format::layout::elf::push_note;
use pvdump_format::layout::kdump::{
    DiskDumpHeader, FLAT_SIGNATURE, FlatHeader, FlatRecord, KDUMP_SIGNATURE, KdumpSubHeader, PageDesc,
};
use pvdump_format::layout::s390::push_cpu_notes;
use pvdump_format::{CpuRegisters, FormatError, KdumpFile, Structure};

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
