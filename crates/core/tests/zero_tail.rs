//! A PV dump whose PT_LOAD claims more memory (p_memsz) than its file holds (p_filesz),
//! with `pv_mem_meta` covering only the file part: zgetdump decrypts it (the tail is zero
//! memory) and so must pvdump, end to end: the tail reads as zero, is a hole in the ELF
//! output and zero pages in the kdump output (issue 11).

use std::os::unix::fs::MetadataExt;

use pvdump_core::{Cck, Compression, Dump, Format, MemoryBlock, Output, WriteOptions};
use pvdump_format::ElfCore;
use pvdump_synth::SynthSpec;

const MIB: u64 = 1 << 20;

#[test]
fn memsz_past_filesz_is_zero_memory() {
    let spec = SynthSpec::simple(21, 1, 2);
    let mut bytes = spec.dump_bytes();
    let expected = spec.expected_memory();
    let load = ElfCore::parse(&bytes).unwrap().loads()[0];
    // p_memsz: 1 MiB in the file, 3 MiB of memory; pv_mem_meta stays at 256 components.
    let at = load.phdr_offset as usize + 40;
    bytes[at..at + 8].copy_from_slice(&(3 * MIB).to_be_bytes());

    let dump = Dump::from_bytes(bytes, Some(&Cck::from_bytes(spec.cck()))).unwrap();
    assert_eq!(
        dump.memory(),
        [MemoryBlock {
            paddr: 0,
            size: 3 * MIB
        }]
    );
    let counts = dump.page_counts().unwrap();
    assert_eq!(counts.unbacked, 512, "{counts:?}");
    let mut mem = vec![0xffu8; (3 * MIB) as usize];
    dump.read_phys(0, &mut mem).unwrap();
    assert!(mem[..MIB as usize] == expected[..], "the file part decrypts as before");
    assert!(mem[MIB as usize..].iter().all(|&b| b == 0), "the tail is zero");

    let dir = std::env::temp_dir();
    let elf_path = dir.join(format!("pvdump-zero-tail-{}.elf", std::process::id()));
    let kdump_path = dir.join(format!("pvdump-zero-tail-{}.kdump", std::process::id()));
    for (path, format) in [
        (&elf_path, Format::Elf),
        (&kdump_path, Format::Kdump(Compression::Zlib)),
    ] {
        let f = std::fs::File::create(path).unwrap();
        dump.write(format, &mut Output::File(&f), &WriteOptions::default())
            .unwrap();
    }

    // ELF: one PT_LOAD of 3 MiB whose last 2 MiB are a hole in the file.
    let elf = Dump::open(&elf_path, None).unwrap();
    let e = ElfCore::parse(elf.bytes()).unwrap();
    assert_eq!(e.loads().len(), 1);
    assert_eq!((e.loads()[0].paddr, e.loads()[0].memsz), (0, 3 * MIB));
    let mut out = vec![0xffu8; (3 * MIB) as usize];
    elf.read_phys(0, &mut out).unwrap();
    assert!(out == mem);
    let meta = std::fs::metadata(&elf_path).unwrap();
    assert!(
        meta.blocks() * 512 + 2 * MIB <= meta.len(),
        "{} bytes allocated for a {}-byte ELF with a 2 MiB zero tail (filesystems without holes fail here)",
        meta.blocks() * 512,
        meta.len()
    );

    // kdump: every page present; the tail's pages are zero pages (they share the zero block).
    let kdump = Dump::open(&kdump_path, None).unwrap();
    assert_eq!(
        kdump.memory(),
        [MemoryBlock {
            paddr: 0,
            size: 3 * MIB
        }]
    );
    let mut out = vec![0xffu8; (3 * MIB) as usize];
    kdump.read_phys(0, &mut out).unwrap();
    assert!(out == mem);
    assert!(std::fs::metadata(&kdump_path).unwrap().len() < 2 * MIB);
    assert_eq!(kdump.cpus().unwrap().len(), 2);

    let _ = std::fs::remove_file(&elf_path);
    let _ = std::fs::remove_file(&kdump_path);
}

#[test]
fn memsz_past_filesz_is_still_bounded() {
    // More than 4096 bytes of memory per byte of file is refused, with the table's offset.
    let spec = SynthSpec::simple(22, 1, 1);
    let mut bytes = spec.dump_bytes();
    let core = ElfCore::parse(&bytes).unwrap();
    let (phoff, load) = (core.header().e_phoff, core.loads()[0]);
    let huge = bytes.len() as u64 * 4096 + MIB;
    let at = load.phdr_offset as usize + 40;
    bytes[at..at + 8].copy_from_slice(&huge.to_be_bytes());
    let e = Dump::from_bytes(bytes, Some(&Cck::from_bytes(spec.cck()))).unwrap_err();
    assert!(e.to_string().contains(&format!("file offset {phoff:#x}")), "{e}");
    assert!(
        e.to_string().contains("more than a dump of this size can describe"),
        "{e}"
    );
}
