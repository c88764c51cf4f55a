//! Unit tests of the parent module.

use super::*;
use crate::layout::elf::push_note;
use crate::layout::kdump::{HEADER_VERSION, NewUtsname, uts_field};
use crate::layout::s390::push_cpu_notes;

/// A kdump file by hand: pages 1, 2 and 5 of 6 dumped, raw, filled with their pfn.
fn file() -> Vec<u8> {
    let bs = 4096usize;
    let mut notes = Vec::new();
    let regs = CpuRegisters {
        psw: [1, 2],
        prefix: 0x2000,
        ..CpuRegisters::default()
    };
    push_cpu_notes(&mut notes, 1, &regs);
    let vmci_at = push_note(&mut notes, "VMCOREINFO", 0, b"OSRELEASE=6.1\n");
    let header = DiskDumpHeader {
        signature: KDUMP_SIGNATURE,
        header_version: HEADER_VERSION,
        utsname: NewUtsname {
            sysname: uts_field("Linux"),
            release: uts_field("6.1"),
            ..NewUtsname::default()
        },
        block_size: bs as i32,
        sub_hdr_size: 1,
        bitmap_blocks: 2,
        max_mapnr: 6,
        nr_cpus: 1,
        ..DiskDumpHeader::default()
    };
    let sub = KdumpSubHeader {
        offset_vmcoreinfo: (bs + KdumpSubHeader::SIZE + vmci_at) as u64,
        size_vmcoreinfo: 14,
        offset_note: (bs + KdumpSubHeader::SIZE) as u64,
        size_note: notes.len() as u64,
        max_mapnr_64: 6,
        ..KdumpSubHeader::default()
    };
    let mut f = vec![0u8; 2 * bs];
    f[..DiskDumpHeader::SIZE].copy_from_slice(&header.to_bytes());
    f[bs..bs + KdumpSubHeader::SIZE].copy_from_slice(&sub.to_bytes());
    f[bs + KdumpSubHeader::SIZE..bs + KdumpSubHeader::SIZE + notes.len()].copy_from_slice(&notes);
    let mut bitmap = vec![0u8; bs];
    bitmap[0] = 0b0010_0110;
    f.extend_from_slice(&bitmap);
    f.extend_from_slice(&bitmap);
    let data_at = f.len() + 3 * PageDesc::SIZE;
    for (i, _) in [1u8, 2, 5].iter().enumerate() {
        let d = PageDesc {
            offset: (data_at + i * bs) as u64,
            size: bs as u32,
            flags: 0,
            page_flags: 0,
        };
        f.extend_from_slice(&d.to_bytes());
    }
    for pfn in [1u8, 2, 5] {
        f.extend(std::iter::repeat_n(pfn, bs));
    }
    f
}

/// The same file as a flattened stream, its records in reverse order.
fn flatten(f: &[u8]) -> Vec<u8> {
    let mut s = FlatHeader::new().to_bytes().to_vec();
    for (i, chunk) in f.chunks(5000).enumerate().rev() {
        let r = FlatRecord {
            offset: (i * 5000) as i64,
            size: chunk.len() as i64,
        };
        s.extend_from_slice(&r.to_bytes());
        s.extend_from_slice(chunk);
    }
    s.extend_from_slice(&FlatRecord::END.to_bytes());
    s
}

#[test]
fn reads_headers_notes_and_every_page_plain_and_flattened() {
    let f = file();
    let s = flatten(&f);
    for (data, flat) in [(&f, false), (&s, true)] {
        let k = KdumpFile::parse(data).unwrap();
        assert_eq!(k.is_flat(), flat);
        assert_eq!(k.len(), f.len() as u64);
        assert_eq!(k.utsname().release, "6.1");
        assert_eq!(k.max_mapnr(), 6);
        assert_eq!(k.page_counts().unwrap(), (3, 3));
        assert_eq!(k.vmcoreinfo().unwrap().unwrap().as_ref(), b"OSRELEASE=6.1\n");
        let cpus = k.cpus().unwrap();
        assert_eq!((cpus.len(), cpus[0].regs.psw, cpus[0].regs.prefix), (1, [1, 2], 0x2000));
        let mut seen = Vec::new();
        k.for_each_page(|pfn, page| {
            assert!(page.iter().all(|&b| u64::from(b) == pfn));
            seen.push(pfn);
        })
        .unwrap();
        assert_eq!(seen, [1, 2, 5]);
        // Random access: runs of dumped pages, any page by address.
        assert_eq!(
            k.blocks(),
            [
                MemoryBlock {
                    paddr: 0x1000,
                    size: 0x2000
                },
                MemoryBlock {
                    paddr: 0x5000,
                    size: 0x1000
                }
            ]
        );
        let mut page = vec![0u8; 4096];
        k.read_pages(0x5000, &mut page, &mut [false]).unwrap();
        assert!(page.iter().all(|&b| b == 5));
        assert_eq!(
            k.read_pages(0x3000, &mut page, &mut [false]).unwrap_err(),
            FormatError::outside_memory(0x3000)
        );
    }
}

#[test]
fn damaged_headers_are_refused_with_their_offsets() {
    let f = file();
    let mut g = f.clone();
    g[0] = b'X';
    assert_eq!(
        KdumpFile::parse(&g).unwrap_err().to_string(),
        "disk_dump_header at file offset 0x0: no \"KDUMP   \" signature: not a kdump-compressed file"
    );
    let mut g = f.clone();
    g[428..432].copy_from_slice(&1000i32.to_be_bytes());
    assert_eq!(KdumpFile::parse(&g).unwrap_err().offset(), Some(428));
    let mut g = f.clone();
    g[436..440].copy_from_slice(&0u32.to_be_bytes());
    assert!(matches!(
        KdumpFile::parse(&g).unwrap_err(),
        FormatError::Invalid {
            problem: Problem::BitmapTooSmall { blocks: 0, pages: 6 },
            ..
        }
    ));
    // A descriptor pointing past the end names the page.
    let mut g = f.clone();
    let desc0 = 4 * 4096;
    g[desc0..desc0 + 8].copy_from_slice(&u64::MAX.to_be_bytes());
    let k = KdumpFile::parse(&g).unwrap();
    let e = k.for_each_page(|_, _| {}).unwrap_err();
    assert!(e.to_string().starts_with("page data of pfn 0x1"), "{e}");
}

#[test]
fn damaged_flattened_streams_are_refused() {
    let s = flatten(&file());
    let e = KdumpFile::parse(&s[..s.len() - 16]).unwrap_err();
    assert!(e.to_string().contains("stream ends without the end marker"), "{e}");
    let mut t = s.clone();
    t[16..24].copy_from_slice(&2i64.to_be_bytes());
    assert_eq!(KdumpFile::parse(&t).unwrap_err().offset(), Some(16));
    // Two records for the same bytes.
    let mut u = FlatHeader::new().to_bytes().to_vec();
    for _ in 0..2 {
        u.extend_from_slice(&FlatRecord { offset: 0, size: 8 }.to_bytes());
        u.extend_from_slice(b"KDUMP   ");
    }
    u.extend_from_slice(&FlatRecord::END.to_bytes());
    assert!(
        KdumpFile::parse(&u)
            .unwrap_err()
            .to_string()
            .contains("records overlap")
    );
    assert!(
        KdumpFile::parse(&s[..100])
            .unwrap_err()
            .to_string()
            .contains("shorter than 4096")
    );
}
