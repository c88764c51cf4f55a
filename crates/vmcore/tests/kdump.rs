//! The kdump writer against an in-memory source: holes, zero/raw/compressed pages, every
//! compression, file and flattened stream, tiny chunks and windows, and failures.

use std::sync::atomic::{AtomicU64, Ordering};

use pvdump_format::KdumpFile;
use pvdump_format::layout::kdump::PageDesc;
use pvdump_format::{CpuRegisters, FormatError, MemoryBlock, PageSource};
use pvdump_vmcore::kdump::KdumpLayout;
use pvdump_vmcore::{
    Compression, Destination, KdumpInfo, Output, Policy, PrivateFile, WriteError, WriteOptions, build_notes,
    write_kdump,
};

const PAGE: u64 = 4096;

/// Memory from a byte vector indexed by guest address; fails at `fail_at` when set.
struct Mem {
    blocks: Vec<MemoryBlock>,
    bytes: Vec<u8>,
    fail_at: Option<u64>,
    reads: AtomicU64,
}

impl PageSource for Mem {
    fn blocks(&self) -> &[MemoryBlock] {
        &self.blocks
    }
    fn read_pages(&self, paddr: u64, out: &mut [u8], zero: &mut [bool]) -> Result<(), FormatError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = self.fail_at
            && (paddr..paddr + out.len() as u64).contains(&f)
        {
            return Err(FormatError::outside_memory(f));
        }
        out.copy_from_slice(&self.bytes[paddr as usize..paddr as usize + out.len()]);
        zero.fill(false);
        Ok(())
    }
}

/// Blocks [0, 40 pages) and [64, 100 pages): pfn % 3 == 0 zero, pfn % 3 == 1 random
/// (incompressible), pfn % 3 == 2 text.
fn mem() -> Mem {
    let blocks = vec![
        MemoryBlock {
            paddr: 0,
            size: 40 * PAGE,
        },
        MemoryBlock {
            paddr: 64 * PAGE,
            size: 36 * PAGE,
        },
    ];
    let mut bytes = vec![0u8; 100 * PAGE as usize];
    let mut x = 0x1234_5678_9abc_def0u64;
    for pfn in 0..100usize {
        let p = &mut bytes[pfn * 4096..(pfn + 1) * 4096];
        match pfn % 3 {
            0 => {}
            1 => {
                for b in p.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
            }
            _ => {
                for (i, b) in p.iter_mut().enumerate() {
                    *b = b"kernel page text "[(i + pfn) % 17];
                }
            }
        }
    }
    Mem {
        blocks,
        bytes,
        fail_at: None,
        reads: AtomicU64::new(0),
    }
}

fn in_block(m: &Mem, pfn: u64) -> bool {
    m.blocks.iter().any(|b| b.contains(pfn * PAGE))
}

fn notes() -> pvdump_vmcore::NoteBlob {
    let r = CpuRegisters {
        psw: [1, 2],
        ..CpuRegisters::default()
    };
    build_notes(&[r], Some(b"OSRELEASE=6.9.1\nCRASHTIME=42\n"))
}

fn info() -> KdumpInfo {
    KdumpInfo {
        utsname: pvdump_vmcore::kdump::placeholder_utsname(Some("6.9.1")),
        crashtime: Some(42),
        nr_cpus: 1,
    }
}

fn opts() -> WriteOptions<'static> {
    WriteOptions {
        chunk_pages: 3,
        window: 2,
        ..WriteOptions::default()
    }
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn check(bytes: &[u8], m: &Mem, c: Compression) {
    let k = KdumpFile::parse(bytes).unwrap();
    assert_eq!(k.max_mapnr(), 100);
    assert_eq!(k.compression(), c);
    assert_eq!(k.utsname().release, "6.9.1");
    assert_eq!(k.header.tv_sec, 42);
    assert_eq!(
        k.vmcoreinfo().unwrap().unwrap().as_ref(),
        b"OSRELEASE=6.9.1\nCRASHTIME=42\n"
    );
    assert_eq!(k.page_counts().unwrap(), (76, 76));
    let mut seen = Vec::new();
    k.for_each_page(|pfn, p| {
        assert_eq!(
            p,
            &m.bytes[(pfn * PAGE) as usize..((pfn + 1) * PAGE) as usize],
            "pfn {pfn}"
        );
        seen.push(pfn);
    })
    .unwrap();
    let expected: Vec<u64> = (0..100).filter(|&p| in_block(m, p)).collect();
    assert_eq!(seen, expected, "holes are absent, every page present once");
}

/// Descriptors of the plain file: zero pages share one block, random pages are raw.
fn check_descriptors(bytes: &[u8], c: Compression) {
    let l = KdumpLayout::new(&mem().blocks, notes().bytes.len() as u64);
    // Bitmaps: pfns 40..64 (the hole) are clear in both.
    for base in [l.bitmap1_offset, l.bitmap2_offset] {
        let bm = &bytes[base as usize..(base + l.bitmap_len) as usize];
        for pfn in 0..100u64 {
            let set = bm[(pfn / 8) as usize] & (1 << (pfn % 8)) != 0;
            assert_eq!(set, !(40..64).contains(&pfn), "bitmap bit of pfn {pfn}");
        }
    }
    let pfns = (0..40).chain(64..100);
    for (k, pfn) in pfns.enumerate() {
        let d = &bytes[(l.desc_offset + k as u64 * PageDesc::SIZE as u64) as usize..][..24];
        let (off, size, flags) = (be64(d, 0), be32(d, 8), be32(d, 12));
        assert_eq!(be64(d, 16), 0);
        match pfn % 3 {
            0 => assert_eq!((off, size, flags), (l.zero_offset, 4096, 0), "zero pfn {pfn}"),
            1 => assert_eq!((size, flags), (4096, 0), "incompressible pfn {pfn} stored raw"),
            _ if c == Compression::None => assert_eq!((size, flags), (4096, 0)),
            _ => {
                assert_eq!(flags, c.flag(), "pfn {pfn}");
                assert!(size < 1024, "text page compressed to {size}");
            }
        }
        assert!(off >= l.zero_offset);
    }
    assert!(bytes[l.zero_offset as usize..][..4096].iter().all(|&b| b == 0));
}

/// A new private output file at `path` (which must not be a device or FIFO).
fn private_file(path: &std::path::Path, force: bool) -> PrivateFile {
    match Destination::open(path, Policy::new(force), &[]) {
        Ok(Destination::File(f)) => f,
        other => panic!("{}: {other:?}", path.display()),
    }
}

#[test]
fn every_compression_file_and_stream() {
    let m = mem();
    let dir = std::env::temp_dir().join(format!("pvdump-vmcore-kdump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for c in Compression::ALL {
        let path = dir.join(format!("out.{c}"));
        let f = private_file(&path, true);
        let stats = write_kdump(&m, &notes(), &info(), c, &mut Output::File(f.file()), &opts()).unwrap();
        f.commit().unwrap();
        let file = std::fs::read(&path).unwrap();
        assert_eq!(stats.bytes, file.len() as u64);
        assert_eq!(stats.pages, 76);
        assert_eq!(
            stats.zero_pages,
            (0..100).filter(|&p| in_block(&m, p) && p % 3 == 0).count() as u64
        );
        check(&file, &m, c);
        check_descriptors(&file, c);

        let mut stream = Vec::new();
        write_kdump(&m, &notes(), &info(), c, &mut Output::Stream(&mut stream), &opts()).unwrap();
        assert!(stream.starts_with(b"makedumpfile\0\0\0\0\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01"));
        assert!(stream.ends_with(&[0xff; 16]));
        check(&stream, &m, c);
        // Descriptors are batched: far fewer records than pages.
        let k = KdumpFile::parse(&stream).unwrap();
        assert!(k.record_count().unwrap() < 76, "{} records", k.record_count().unwrap());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn source_failure_leaves_no_file_and_stops_early() {
    let mut m = mem();
    m.fail_at = Some(10 * PAGE);
    let dir = std::env::temp_dir().join(format!("pvdump-vmcore-kdump-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("out.kdump");
    let f = private_file(&path, false);
    let r = write_kdump(
        &m,
        &notes(),
        &info(),
        Compression::Zlib,
        &mut Output::File(f.file()),
        &opts(),
    );
    assert!(matches!(r, Err(WriteError::Source(_))), "{r:?}");
    drop(f);
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing left behind");
    // Stopped within a window or two of the failure, not after reading everything.
    assert!(
        m.reads.load(Ordering::Relaxed) < 12,
        "{} reads",
        m.reads.load(Ordering::Relaxed)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cancel_stops_with_cancelled() {
    let m = mem();
    let cancel = std::sync::atomic::AtomicBool::new(true);
    let o = WriteOptions {
        cancel: Some(&cancel),
        ..opts()
    };
    let mut sink = Vec::new();
    let r = write_kdump(
        &m,
        &notes(),
        &info(),
        Compression::Zstd,
        &mut Output::Stream(&mut sink),
        &o,
    );
    assert!(matches!(r, Err(WriteError::Cancelled)));
}

/// `PlainElf` reads pvdump's own ELF output back page for page; bytes past p_filesz read as
/// zero and a segment that ends inside a page is rounded out to the page.
#[test]
fn plain_elf_source_reads_elf_output() {
    use pvdump_format::PlainElf;
    let m = mem();
    let mut elf = Vec::new();
    pvdump_vmcore::write_elf(&m, &notes(), &mut Output::Stream(&mut elf), &opts()).unwrap();
    let plain = PlainElf::parse(&elf).unwrap();
    assert_eq!(plain.blocks(), m.blocks.as_slice());
    let mut buf = vec![0u8; 36 * 4096];
    let mut zero = vec![false; 36];
    plain.read_pages(64 * PAGE, &mut buf, &mut zero).unwrap();
    assert!(buf == m.bytes[64 * 4096..100 * 4096]);
    // Shrink the second PT_LOAD's p_filesz to 10 pages + 100 bytes and its p_memsz by 50 bytes.
    let ph = 64 + 2 * 56;
    elf[ph + 32..ph + 40].copy_from_slice(&(10 * PAGE + 100).to_be_bytes());
    elf[ph + 40..ph + 48].copy_from_slice(&(36 * PAGE - 50).to_be_bytes());
    let plain = PlainElf::parse(&elf).unwrap();
    assert_eq!(plain.blocks(), m.blocks.as_slice(), "rounded out to whole pages");
    plain.read_pages(64 * PAGE, &mut buf, &mut zero).unwrap();
    let filled = (10 * PAGE + 100) as usize;
    assert!(buf[..filled] == m.bytes[64 * 4096..64 * 4096 + filled]);
    assert!(buf[filled..].iter().all(|&b| b == 0));
    assert_eq!(
        zero.iter().filter(|&&z| z).count(),
        36 - 11,
        "pages with no file bytes are known zero"
    );
    assert!(
        plain.read_pages(40 * PAGE, &mut buf[..4096], &mut zero[..1]).is_err(),
        "hole"
    );
}
