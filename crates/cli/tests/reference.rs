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
fn stream_output_is_identical_to_file_output() {
    for dir in reference_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = TempDir::new(&format!("stream-{name}"));
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
    }
}

/// Zero pages and holes: on tmpfs every zero page is a hole; on a disk file system runs of
/// 16 or more zero pages are holes and shorter ones are written (a hole per scattered zero
/// page made ext4 slower than `cp`: docs/decisions/holes.md). Checked on a dump that is 95%
/// zero pages, many of them in aligned runs of 16 or more, decrypted to the test target
/// directory (a disk) and to /dev/shm (tmpfs).
#[test]
fn zero_runs_are_holes_as_the_file_system_suits() {
    use std::io::Write;
    let tmp = TempDir::new("holes");
    let mut spec = pvdump_synth::SynthSpec::simple(0x401e5, 8, 1);
    spec.zero_permille = 950;
    let (dump, key) = (tmp.path("dump.elf"), tmp.path("cck.bin"));
    let mut w = std::io::BufWriter::new(std::fs::File::create(&dump).unwrap());
    spec.write_dump(&mut w).unwrap();
    w.flush().unwrap();
    std::fs::write(&key, spec.cck()).unwrap();
    let mut seen = Vec::new();
    for dir in [scratch("holes"), std::path::PathBuf::from("/dev/shm")] {
        if !dir.is_dir() {
            assert!(!on_ci(), "{} is missing", dir.display());
            skip(&format!("{} is missing", dir.display()));
            continue;
        }
        let out = dir.join(format!("pvdump-holes-{}.elf", std::process::id()));
        let o = run(&[&"decrypt", &"-q", &"--key", &key, &dump, &"-o", &out]);
        assert!(o.status.success(), "{}", stderr(&o));
        let in_memory = fs_type(&out) == TMPFS_MAGIC;
        seen.push(in_memory);
        check_holes(&out, in_memory);
        std::fs::remove_file(&out).unwrap();
    }
    if on_ci() {
        assert!(
            seen.contains(&true) && seen.contains(&false),
            "both a disk and a tmpfs are needed: {seen:?}"
        );
    }
}

const TMPFS_MAGIC: u64 = 0x0102_1994;

/// `f_type` of the file system holding `path`, as a 32-bit magic number (its C type differs
/// between C libraries and architectures).
fn fs_type(path: &std::path::Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: statfs fills the struct we pass; we read it only on success.
    assert_eq!(unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) }, 0);
    // SAFETY: statfs returned 0.
    #[allow(clippy::unnecessary_cast)]
    let f_type = unsafe { st.assume_init() }.f_type as u64;
    f_type & 0xffff_ffff
}

fn check_holes(out: &std::path::Path, in_memory: bool) {
    use std::os::fd::AsRawFd;
    let bytes = std::fs::read(out).unwrap();
    let mem = Vmcore::read(out).core().loads()[0];
    let file = std::fs::File::open(out).unwrap();
    let is_hole = |k: u64| {
        let off = (mem.file_offset + k * 4096) as libc::off_t;
        // SAFETY: lseek on an open descriptor; no memory is passed.
        let data = unsafe { libc::lseek(file.as_raw_fd(), off, libc::SEEK_DATA) };
        data == -1 || data >= off + 4096
    };
    let pages = mem.filesz / 4096;
    let zero: Vec<bool> = (0..pages)
        .map(|k| {
            let at = (mem.file_offset + k * 4096) as usize;
            bytes[at..at + 4096].iter().all(|&b| b == 0)
        })
        .collect();
    let ctx = out.display();
    let holes: Vec<bool> = (0..pages).map(is_hole).collect();
    for k in 0..pages as usize {
        assert!(!holes[k] || zero[k], "{ctx}: page {k} is a hole but holds data");
    }
    if in_memory {
        assert_eq!(holes, zero, "{ctx}: every zero page is a hole on tmpfs");
        return;
    }
    // Every all-zero group of 16 pages (counted from the segment's start; the writers'
    // 512 KiB chunks are whole groups) lies in a run of 16 or more: a hole.
    let mut zero_in_groups = 0;
    for g in (0..pages as usize).step_by(16).filter(|g| g + 16 <= pages as usize) {
        if zero[g..g + 16].iter().all(|&z| z) {
            zero_in_groups += 16;
            assert!(
                holes[g..g + 16].iter().all(|&h| h),
                "{ctx}: pages {g}..+16 are zero but not holes"
            );
        }
    }
    assert!(
        zero_in_groups > pages / 4,
        "{ctx}: too few long zero runs to test: {zero_in_groups} of {pages}"
    );
    // Short runs are written: fewer holes than zero pages.
    let (h, z) = (
        holes.iter().filter(|&&h| h).count(),
        zero.iter().filter(|&&z| z).count(),
    );
    assert!(h < z, "{ctx}: {h} holes for {z} zero pages");
}
