//! End to end on the reference dumps (independently produced, cross-checked with zgetdump):
//! `pvdump decrypt` must reproduce every byte of memory and every register.

mod common;
use common::*;

use pvdump_synth::pvelf::DECOY;

const NOTE_ORDER_LEN: usize = 10;

#[test]
fn reference_dumps_decrypt_exactly() {
    let dirs = reference_dirs();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = TempDir::new(&format!("ref-{name}"));
        let out = tmp.path("vmcore.elf");
        let o = run(&[
            &"decrypt",
            &"--key",
            &dir.join("cck.bin"),
            &dir.join("pvdump.elf"),
            &"-o",
            &out,
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let v = Vmcore::read(&out);

        // Memory, byte for byte.
        let expected = std::fs::read(dir.join("expected_mem.bin")).unwrap();
        assert!(
            v.memory() == expected,
            "{name}: decrypted memory differs from expected_mem.bin"
        );

        // Registers, in note order, from the decrypted PV notes.
        let exp = expected_cpus(dir);
        let want: Vec<_> = exp.iter().map(|c| c.regs.clone()).collect();
        assert_cpus(&v.cpus(), &want, &name);

        // has_osii produces a warning that names the CPU.
        for c in exp.iter().filter(|c| c.regs.has_osii) {
            assert!(
                stderr(&o).contains(&format!(
                    "CPU {} was dumped in the middle of an instruction",
                    c.cpu_index
                )),
                "{name}: {}",
                stderr(&o)
            );
        }

        // No decoy value from QEMU's hypervisor-side notes in any output note.
        let core = v.core();
        let note_seg = core.note_segments()[0];
        let notes = &v.bytes[note_seg.file_offset as usize..(note_seg.file_offset + note_seg.size) as usize];
        for pat in [&DECOY.to_be_bytes()[..4], &[0xde, 0xc0, 0xde][..]] {
            assert!(
                !notes.windows(pat.len()).any(|w| w == pat),
                "{name}: decoy pattern {pat:02x?} found in the output notes"
            );
        }

        // VMCOREINFO note holds the manifest's text where there is one.
        let m = json(&dir.join("manifest.json"));
        match m["vmcoreinfo"]["text"].as_str() {
            Some(t) => assert_eq!(v.vmcoreinfo_note().as_deref(), Some(t.as_bytes()), "{name}"),
            None => assert_eq!(v.vmcoreinfo_note(), None, "{name}"),
        }
    }
    eprintln!("checked {} reference dumps", dirs.len());
}

#[test]
fn output_layout_is_what_crash_and_drgn_need() {
    for dir in reference_dirs().iter().take(1) {
        let tmp = TempDir::new("layout");
        let (out, _) = decrypt_quietly(dir, &tmp);
        let v = Vmcore::read(&out);
        let core = v.core();
        let h = core.header();
        assert_eq!((h.e_phoff, h.e_ehsize, h.e_shoff, h.e_shnum), (64, 64, 0, 0));
        assert_eq!(core.phnum(), 2);
        // phdr[0] is PT_NOTE, notes lie before the first byte of memory.
        assert_eq!(u32::from_be_bytes(v.bytes[64..68].try_into().unwrap()), 4);
        let seg = core.note_segments()[0];
        let mem = core.loads()[0];
        assert!(seg.file_offset + seg.size <= mem.file_offset);
        assert_eq!(
            mem.file_offset % 4096,
            0,
            "memory is page aligned so zero pages can be holes"
        );
        assert_eq!((mem.paddr, mem.vaddr), (0, 0));
        // First note is PRPSINFO "CORE"; each CPU has ten notes starting with PRSTATUS.
        let notes: Vec<_> = core.notes().map(|n| n.unwrap()).collect();
        assert_eq!((notes[0].name, notes[0].n_type), (&b"CORE"[..], 3));
        for (i, cpu) in v.cpus().iter().enumerate() {
            assert_eq!(cpu.note_types.len(), NOTE_ORDER_LEN);
            assert_eq!(cpu.pid, i as u32 + 1);
        }
        for n in &notes[1..] {
            let want: &[u8] = match n.n_type {
                1..=3 => b"CORE",
                0 => b"VMCOREINFO",
                _ => b"LINUX",
            };
            assert_eq!(n.name, want, "note type {:#x}", n.n_type);
        }
    }
}

#[test]
fn zero_pages_are_holes_and_stream_output_is_identical() {
    use std::os::unix::fs::MetadataExt;
    for dir in reference_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = TempDir::new(&format!("sparse-{name}"));
        let (out, _) = decrypt_quietly(&dir, &tmp);
        let streamed = pvdump()
            .args(["decrypt", "-q", "--threads", "2", "--key"])
            .arg(dir.join("cck.bin"))
            .arg(dir.join("pvdump.elf"))
            .args(["-o", "-"])
            .output()
            .unwrap();
        assert!(streamed.status.success(), "{}", stderr(&streamed));
        let file = std::fs::read(&out).unwrap();
        assert!(
            streamed.stdout == file,
            "{name}: stream output differs from file output"
        );
        let meta = std::fs::metadata(&out).unwrap();
        let m = json(&dir.join("manifest.json"));
        let zero_pages = m["memory"]["pages"]["zero"].as_u64().unwrap();
        // Allocated blocks are fewer than the file's length by at least most zero pages
        // (filesystems without holes would fail here: tmpfs and ext4 have them).
        let allocated = meta.blocks() * 512;
        assert!(
            allocated + zero_pages * 4096 / 2 <= meta.len(),
            "{name}: {allocated} bytes allocated for a {}-byte file with {zero_pages} zero pages",
            meta.len()
        );
    }
}
