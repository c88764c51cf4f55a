//! The façade on every bundled fixture and reference dump: open with and without the key,
//! read guest memory anywhere, registers, VMCOREINFO, the random-access ELF image, and the
//! round trip through pvdump's own ELF and kdump outputs read back as dumps.

use std::path::{Path, PathBuf};

use pvdump_core::{Cck, Compression, Dump, DumpKind, ErrorKind, Format, Output, WriteOptions};
use sha2::{Digest, Sha256};

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut v = Vec::new();
    for base in [root.join("fixtures"), shared_reference(&root)] {
        let Ok(rd) = std::fs::read_dir(&base) else { continue };
        v.extend(
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.join("pvdump.elf").is_file()),
        );
    }
    v.sort();
    assert!(v.len() >= 6, "fixtures/ holds no dumps");
    v
}

/// `../shared/fixtures/reference` (or `$PVDUMP_SHARED/fixtures/reference`); under CI=true it
/// must exist.
fn shared_reference(root: &Path) -> PathBuf {
    let shared = std::env::var_os("PVDUMP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared"));
    let dir = shared.join("fixtures/reference");
    if !dir.is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but the reference dumps are missing at {}",
            dir.display()
        );
        eprintln!(
            "!!!!!!!! SKIPPED: reference dumps not found at {} !!!!!!!!",
            dir.display()
        );
    }
    dir
}

fn key(dir: &Path) -> Cck {
    pvdump_core::read_key_file(&dir.join("cck.bin")).unwrap().cck
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// SHA-256 of guest memory from address 0 to the end of the last block (holes zero).
fn memory_sha(dump: &Dump) -> String {
    let mut h = Sha256::new();
    let mut page = vec![0u8; 4096];
    let mut at = 0;
    for b in dump.memory() {
        while at < b.paddr {
            h.update([0u8; 4096]);
            at += 4096;
        }
        while at < b.end() {
            dump.read_phys(at, &mut page).unwrap();
            h.update(&page);
            at += 4096;
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn write(dump: &Dump, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    dump.write(format, &mut Output::Stream(&mut out), &WriteOptions::default())
        .unwrap();
    out
}

#[test]
fn every_fixture_decrypts_to_its_manifest_memory_and_registers() {
    for dir in fixture_dirs() {
        let dump = Dump::open_encrypted(&dir.join("pvdump.elf"), &key(&dir)).unwrap();
        assert_eq!(dump.kind(), DumpKind::EncryptedPv);
        assert!(!dump.is_locked());
        let m = manifest(&dir);
        assert_eq!(
            memory_sha(&dump),
            m["memory"]["sha256"].as_str().unwrap(),
            "{}",
            dir.display()
        );
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("expected_cpus.json")).unwrap()).unwrap();
        let cpus = dump.cpus().unwrap();
        let want = expected["cpus"].as_array().unwrap();
        assert_eq!(cpus.len(), want.len(), "{}", dir.display());
        for (c, w) in cpus.iter().zip(want) {
            let hex =
                |v: &serde_json::Value| u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
            assert_eq!(c.regs.psw, [hex(&w["psw"][0]), hex(&w["psw"][1])]);
            assert_eq!(c.regs.gprs[15], hex(&w["gprs"][15]));
            assert_eq!(c.regs.prefix as u64, hex(&w["prefix"]));
            assert_eq!(c.regs.has_osii, w["has_osii"].as_bool().unwrap());
        }
        if let Some(text) = m["vmcoreinfo"]["text"].as_str() {
            assert_eq!(dump.vmcoreinfo().unwrap().text, text.as_bytes(), "{}", dir.display());
        }
    }
}

#[test]
fn elf_image_is_byte_identical_to_the_written_elf_at_any_offset() {
    for dir in fixture_dirs() {
        let dump = Dump::open_encrypted(&dir.join("pvdump.elf"), &key(&dir)).unwrap();
        let elf = write(&dump, Format::Elf);
        let image = dump.elf_image().unwrap();
        assert_eq!(image.len(), elf.len() as u64);
        let mut whole = vec![0u8; elf.len() + 100];
        assert_eq!(image.read_at(0, &mut whole).unwrap(), elf.len());
        assert!(whole[..elf.len()] == elf[..], "{}", dir.display());
        // Reads that start and end anywhere: inside the headers, across the start of
        // memory, across page boundaries, at the very end.
        let mem = image.layout().memory_offset() as usize;
        for (off, len) in [
            (0, 1),
            (63, 130),
            (mem - 10, 20),
            (mem + 4095, 2),
            (mem + 4096 * 3 + 17, 4096 * 5 + 100),
            (elf.len() - 1, 1),
            (elf.len() - 5000, 4999),
        ] {
            let mut buf = vec![0xa5u8; len];
            assert_eq!(image.read_at(off as u64, &mut buf).unwrap(), len);
            assert!(buf == elf[off..off + len], "{} at {off:#x}+{len}", dir.display());
        }
        let mut past = [0u8; 8];
        assert_eq!(image.read_at(elf.len() as u64, &mut past).unwrap(), 0);
    }
}

#[test]
fn outputs_read_back_as_dumps_with_the_same_memory_registers_and_vmcoreinfo() {
    for dir in fixture_dirs() {
        let pv = Dump::open_encrypted(&dir.join("pvdump.elf"), &key(&dir)).unwrap();
        let sha = memory_sha(&pv);
        let regs: Vec<_> = pv.cpus().unwrap().into_iter().map(|c| c.regs).collect();
        for format in [
            Format::Elf,
            Format::Kdump(Compression::Zlib),
            Format::Kdump(Compression::Zstd),
            Format::Kdump(Compression::None),
        ] {
            let bytes = write(&pv, format);
            let back = Dump::from_bytes(bytes, None).unwrap();
            let kind = match format {
                Format::Elf => DumpKind::PlainElf,
                Format::Kdump(_) => DumpKind::FlattenedKdump,
            };
            assert_eq!(back.kind(), kind);
            assert_eq!(memory_sha(&back), sha, "{} {format:?}", dir.display());
            let back_regs: Vec<_> = back.cpus().unwrap().into_iter().map(|c| c.regs).collect();
            assert_eq!(back_regs.len(), regs.len());
            for (b, r) in back_regs.iter().zip(&regs) {
                // A plain vmcore has no place for the has_osii flag.
                let mut r = r.clone();
                r.has_osii = false;
                assert_eq!(b, &r, "{} {format:?}", dir.display());
            }
            assert_eq!(
                back.vmcoreinfo().map(|v| v.text.clone()),
                pv.vmcoreinfo().map(|v| v.text.clone())
            );
        }
    }
}

#[test]
fn a_locked_dump_shows_structure_but_no_plaintext() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mixed-2m-3cpu");
    let dump = Dump::open(&dir.join("pvdump.elf"), None).unwrap();
    assert!(dump.is_locked());
    assert_eq!(dump.kind(), DumpKind::EncryptedPv);
    assert_eq!(dump.pv().unwrap().cpus().len(), 3);
    assert_eq!(dump.memory().iter().map(|b| b.size).sum::<u64>(), 2 << 20);
    assert!(dump.cpus().unwrap().is_empty());
    assert!(dump.vmcoreinfo().is_none());
    let e = dump.read_phys(0, &mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage);
    assert!(e.to_string().contains("needs the customer communication key"), "{e}");
    assert!(dump.notes().is_err() && dump.elf_image().is_err());
}

#[test]
fn wrong_key_and_outside_reads_are_typed_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/gap-2loads-2cpu");
    let e = Dump::open_encrypted(&dir.join("pvdump.elf"), &Cck::from_bytes([7; 32])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongKey);
    let dump = Dump::open_encrypted(&dir.join("pvdump.elf"), &key(&dir)).unwrap();
    let blocks = dump.memory();
    assert_eq!(blocks.len(), 2, "the fixture has two PT_LOADs with a gap");
    let gap = blocks[0].end();
    assert!(gap < blocks[1].paddr);
    let e = dump.read_phys(gap, &mut [0u8; 16]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadDump);
    assert!(e.to_string().contains(&format!("guest address {gap:#x}")), "{e}");
    // A read across the end of a block fails too, one inside succeeds.
    assert!(dump.read_phys(gap - 8, &mut [0u8; 16]).is_err());
    dump.read_phys(gap - 16, &mut [0u8; 16]).unwrap();
}
