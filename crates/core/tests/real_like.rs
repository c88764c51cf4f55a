//! A real-like guest (QEMU's plain dump of an s390x Linux guest, in both kernel layouts),
//! sealed by the simulated Ultravisor and read back through `pvdump_core::Dump`: memory,
//! registers, VMCOREINFO and the guest's utsname must come out exactly, in the decrypted
//! dump and in its ELF and kdump outputs; and the same checks must fail when a memory byte,
//! a register or the VMCOREINFO note is wrong or missing. The fast, offline counterpart of
//! `cargo xtask real-kernel`.

use std::path::PathBuf;

use pvdump_core::{Cck, Compression, Dump, DumpKind, Format, Output, VmcoreinfoSource, WriteOptions};
use pvdump_format::PlainElf;
use pvdump_synth::{KernelLayout, PlainGuest, SealOptions, real_like_guest, seal_plain};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("pvdump-core-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What a reader must find in `dump`; `Err` names the first difference.
fn verify(dump: &Dump, guest: &PlainGuest, what: &str) -> Result<(), String> {
    let mut mem = vec![0u8; guest.memory.len()];
    dump.read_phys(0, &mut mem).map_err(|e| format!("{what}: {e}"))?;
    if let Some(at) = mem.iter().zip(&guest.memory).position(|(a, b)| a != b) {
        return Err(format!("{what}: memory differs at {at:#x}"));
    }
    let cpus: Vec<(u32, _)> = dump
        .cpus()
        .map_err(|e| format!("{what}: {e}"))?
        .into_iter()
        .map(|c| (c.pid.unwrap_or(0), c.regs))
        .collect();
    if cpus != guest.cpus {
        return Err(format!("{what}: registers differ"));
    }
    let v = dump.vmcoreinfo().ok_or(format!("{what}: no VMCOREINFO"))?;
    if v.text != guest.vmcoreinfo.as_bytes() {
        return Err(format!("{what}: VMCOREINFO differs"));
    }
    if dump.utsname().as_ref() != Some(&guest.utsname) {
        return Err(format!("{what}: utsname {:?}", dump.utsname()));
    }
    Ok(())
}

/// An output dump must also carry VMCOREINFO in its notes (ELF) or sub-header (kdump), and
/// a kdump header the guest's utsname and crash time.
fn verify_output(dump: &Dump, guest: &PlainGuest, what: &str, crashtime: Option<u64>) -> Result<(), String> {
    verify(dump, guest, what)?;
    let v = dump.vmcoreinfo().ok_or(format!("{what}: no VMCOREINFO"))?;
    if !matches!(v.source, VmcoreinfoSource::ElfNote { .. }) {
        return Err(format!("{what}: no VMCOREINFO note ({:?})", v.source));
    }
    if let Some(k) = dump.kdump() {
        if k.utsname() != guest.utsname {
            return Err(format!("{what}: kdump header utsname {:?}", k.utsname()));
        }
        if k.header.tv_sec != crashtime.map_or(0, |t| t as i64) {
            return Err(format!("{what}: kdump header time {}", k.header.tv_sec));
        }
    }
    Ok(())
}

fn sealed(guest: &PlainGuest) -> (Vec<u8>, Cck) {
    let elf = guest.qemu_elf();
    let plain = PlainElf::parse(&elf).unwrap();
    let opts = SealOptions {
        shared_permille: 50,
        ..SealOptions::default()
    };
    let mut out = Vec::new();
    let s = seal_plain(&plain, &opts, &mut out).unwrap();
    assert!(s.zero > 0 && s.shared > 0 && s.encrypted > 0, "{s:?}");
    (out, Cck::from_bytes(opts.cck()))
}

fn write(dump: &Dump, format: Format, name: &str) -> (Scratch, Dump) {
    let s = Scratch::new(name);
    let f = std::fs::File::create(&s.0).unwrap();
    dump.write(format, &mut Output::File(&f), &WriteOptions::default())
        .unwrap();
    drop(f);
    let d = Dump::open(&s.0, None).unwrap();
    (s, d)
}

fn round_trip(layout: KernelLayout, crashtime: Option<u64>) {
    let name = format!("{layout:?}").to_lowercase();
    let guest = real_like_guest(7, 1024, 2, layout, crashtime);

    // QEMU's plain dump itself (little-endian .shstrtab header and all) reads as it is.
    let plain = Dump::from_bytes(guest.qemu_elf(), None).unwrap();
    assert_eq!(plain.kind(), DumpKind::PlainElf);
    verify(&plain, &guest, "plain").unwrap();
    assert!(matches!(
        plain.vmcoreinfo().unwrap().source,
        VmcoreinfoSource::LowcoreNote { .. }
    ));

    let (pv, cck) = sealed(&guest);
    let dump = Dump::from_bytes(pv, Some(&cck)).unwrap();
    assert_eq!(dump.kind(), DumpKind::EncryptedPv);
    verify(&dump, &guest, "decrypted").unwrap();

    let (_e, elf) = write(&dump, Format::Elf, &format!("{name}.elf"));
    verify_output(&elf, &guest, "ELF", crashtime).unwrap();
    let (_k, kdump) = write(&dump, Format::Kdump(Compression::Zlib), &format!("{name}.kdump"));
    assert_eq!(kdump.kind(), DumpKind::Kdump);
    verify_output(&kdump, &guest, "kdump", crashtime).unwrap();
}

#[test]
fn identity_mapped_kernel_round_trips_exactly() {
    round_trip(KernelLayout::Identity, None);
}

#[test]
fn image_mapped_kernel_round_trips_exactly() {
    round_trip(KernelLayout::Image, Some(1_700_000_000));
}

#[test]
fn a_wrong_byte_register_or_missing_note_fails_the_checks() {
    let guest = real_like_guest(8, 512, 2, KernelLayout::Image, None);
    let (pv, cck) = sealed(&guest);
    let dump = Dump::from_bytes(pv, Some(&cck)).unwrap();
    let (out, _) = write(&dump, Format::Elf, "negative.elf");
    let bytes = std::fs::read(&out.0).unwrap();
    verify_output(&Dump::from_bytes(bytes.clone(), None).unwrap(), &guest, "copy", None).unwrap();

    let (psw, vmci, mem) = {
        let core = pvdump_format::ElfCore::parse(&bytes).unwrap();
        let mut psw = None;
        let mut vmci = None;
        for n in core.notes() {
            let n = n.unwrap();
            if n.name == b"CORE" && n.n_type == pvdump_format::consts::NT_PRSTATUS && psw.is_none() {
                psw = Some(n.desc_offset as usize + 112 + 8);
            }
            if n.name == b"VMCOREINFO" {
                vmci = Some(n.offset as usize + 12);
            }
        }
        let load = core.loads()[0];
        let mem = load.file_offset as usize + 0x2000 + 100;
        (psw.unwrap(), vmci.unwrap(), mem)
    };
    let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        f(&mut b);
        verify_output(&Dump::from_bytes(b, None).unwrap(), &guest, "copy", None).unwrap_err()
    };
    assert!(damaged(&|b| b[mem] ^= 1).contains("memory differs"));
    assert!(damaged(&|b| b[psw + 7] ^= 0x80).contains("registers differ"));
    assert!(damaged(&|b| b[vmci + 9] = b'X').contains("no VMCOREINFO note"));
}
