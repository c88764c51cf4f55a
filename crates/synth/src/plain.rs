//! A small "real-like" plain guest: what QEMU's `dump-guest-memory` writes for a normal
//! (non-PV) s390x Linux guest, with the structures real readers look for in its memory:
//! VMCOREINFO reached through the lowcore pointer at 0xE0C (an ELF note, as the kernel
//! leaves it) and `init_uts_ns` where VMCOREINFO says, in either kernel layout (identity
//! mapped before Linux 6.10, the image in its own virtual area since). Sealed with
//! [`crate::seal_plain`], it stands in for a real kernel in fast tests that need no network.

use pvdump_format::consts::{PAGE_SIZE, PT_LOAD, PT_NOTE, SHT_STRTAB};
use pvdump_format::layout::elf::{
    ProgramHeader, file_header_bytes, program_header_bytes, push_note, s390x_core_header,
};
use pvdump_format::layout::s390::push_cpu_notes;
use pvdump_format::vmcoreinfo::LC_VMCORE_INFO;
use pvdump_format::{CpuRegisters, Utsname};

use crate::spec::{Rng, mix};

/// How the guest kernel maps its image (what decides the virtual-to-physical rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelLayout {
    /// Linux before 6.10 (Debian 12's 6.1): the image is identity-mapped, pa = va.
    Identity,
    /// Linux 6.10 and later (Debian 13's 6.12): the image lives at `KERNELOFFSET` and is
    /// loaded at `KERNELOFFPHYS`; VMCOREINFO says so.
    Image,
}

/// `KERNELOFFSET` of the [`KernelLayout::Image`] guest (Debian 6.12.107's value).
pub const IMAGE_VIRT: u64 = 0x3ff_fe7f_8000;
/// `KERNELOFFPHYS` of the [`KernelLayout::Image`] guest.
pub const IMAGE_PHYS: u64 = 0x10_0000;
/// Guest physical address of the kernel's VMCOREINFO note.
const VMCOREINFO_NOTE: u64 = 0x7000;
/// Offset of `init_uts_ns` inside the kernel image, and of `name` inside it.
const UTS_NS_IN_IMAGE: u64 = 0x2b90;
const UTS_NAME_OFFSET: u64 = 8;

/// A plain guest dump and everything a reader should find in it.
#[derive(Debug, Clone)]
pub struct PlainGuest {
    /// Guest memory from address 0.
    pub memory: Vec<u8>,
    /// The CPUs: pr_pid (QEMU's cpu_index + 1) and registers.
    pub cpus: Vec<(u32, CpuRegisters)>,
    /// The VMCOREINFO text the kernel left in memory.
    pub vmcoreinfo: String,
    /// The kernel's `init_uts_ns.name`.
    pub utsname: Utsname,
    /// Where `init_uts_ns.name` is (guest physical).
    pub utsname_paddr: u64,
}

/// A guest of `pages` pages (at least 512) and `cpus` CPUs, deterministic in `seed`:
/// kernel-like pages with many zero pages between them, the lowcore pointing at a
/// VMCOREINFO note, `init_uts_ns` at the address VMCOREINFO's rule gives, and registers
/// whose PSWs point into the kernel image. `crashtime` adds a `CRASHTIME=` line.
pub fn real_like_guest(seed: u64, pages: u64, cpus: usize, layout: KernelLayout, crashtime: Option<u64>) -> PlainGuest {
    let pages = pages.max(512);
    let mut memory = vec![0u8; (pages * PAGE_SIZE) as usize];
    let mut rng = Rng::new(mix(seed, 0x9e41));
    for pfn in 0..pages {
        // About a third of the pages hold data, the rest is free (zero) memory.
        if rng.permille() < 330 || pfn < 4 {
            let p = &mut memory[(pfn * PAGE_SIZE) as usize..((pfn + 1) * PAGE_SIZE) as usize];
            let used = 512 + (rng.next_u64() % 3584) as usize;
            rng.fill(&mut p[..used]);
        }
    }
    let (kind, release) = match layout {
        KernelLayout::Identity => ("identity", "6.1.0-synth-s390x"),
        KernelLayout::Image => ("image", "6.12.0-synth-s390x"),
    };
    let utsname = Utsname {
        sysname: "Linux".into(),
        nodename: format!("guest-{seed}"),
        release: release.into(),
        version: format!("#1 SMP Synth {kind} {seed}"),
        machine: "s390x".into(),
        domainname: "(none)".into(),
    };
    // Where the kernel image is: physical IMAGE_PHYS in both layouts; virtual the same
    // address (identity) or IMAGE_VIRT.
    let image_va = match layout {
        KernelLayout::Identity => IMAGE_PHYS,
        KernelLayout::Image => IMAGE_VIRT,
    };
    let uts_ns_va = image_va + UTS_NS_IN_IMAGE;
    let utsname_paddr = IMAGE_PHYS + UTS_NS_IN_IMAGE + UTS_NAME_OFFSET;
    let mut text = format!(
        "OSRELEASE={release}\nBUILD-ID={:016x}{:016x}\nPAGESIZE=4096\n",
        rng.next_u64(),
        rng.next_u64()
    );
    if layout == KernelLayout::Image {
        text += &format!("IDENTITYBASE=0\nKERNELOFFSET={IMAGE_VIRT:x}\nKERNELOFFPHYS={IMAGE_PHYS:x}\n");
    }
    text += &format!(
        "SYMBOL(init_uts_ns)={uts_ns_va:x}\nOFFSET(uts_namespace.name)={UTS_NAME_OFFSET}\nSYMBOL(_stext)={:x}\n",
        image_va
    );
    if let Some(t) = crashtime {
        text += &format!("CRASHTIME={t}\n");
    }
    let mut put = |at: u64, b: &[u8]| memory[at as usize..at as usize + b.len()].copy_from_slice(b);
    let mut note = Vec::new();
    push_note(&mut note, "VMCOREINFO", 0, text.as_bytes());
    put(VMCOREINFO_NOTE, &note);
    put(LC_VMCORE_INFO, &VMCOREINFO_NOTE.to_be_bytes());
    put(utsname_paddr, &utsname.to_raw().to_bytes());

    let cpus = (0..cpus)
        .map(|i| {
            let mut r = Rng::new(mix(seed, 0xc9 + i as u64));
            let regs = CpuRegisters {
                gprs: std::array::from_fn(|_| r.next_u64()),
                psw: [0x0704_c001_8000_0000, image_va + ((r.next_u64() % 0x10_0000) & !1)],
                prefix: (i as u32 + 1) << 13,
                fpc: 0,
                todpreg: 0,
                timer: r.next_u64(),
                todcmp: r.next_u64(),
                acrs: std::array::from_fn(|_| r.next_u64() as u32),
                ctrs: std::array::from_fn(|_| r.next_u64()),
                fprs: std::array::from_fn(|_| r.next_u64()),
                vxrs_low: std::array::from_fn(|_| r.next_u64()),
                vxrs_high: std::array::from_fn(|_| r.bytes()),
                gs_cb: [0, 0, 0, 0],
                has_osii: false,
            };
            (i as u32 + 1, regs)
        })
        .collect();
    PlainGuest {
        memory,
        cpus,
        vmcoreinfo: text,
        utsname,
        utsname_paddr,
    }
}

impl PlainGuest {
    /// The dump as QEMU writes it for a normal guest on an x86_64 host: ELF header, a
    /// null and a `.shstrtab` section header (the latter in the host's little-endian byte
    /// order, as QEMU writes it), PT_NOTE, one PT_LOAD at 0, the notes (per CPU PRSTATUS
    /// and the register notes; QEMU writes no PRPSINFO), memory, the string table.
    pub fn qemu_elf(&self) -> Vec<u8> {
        let mut notes = Vec::new();
        for (pid, regs) in &self.cpus {
            push_cpu_notes(&mut notes, *pid, regs);
        }
        let shoff = 64u64;
        let phoff = shoff + 2 * 64;
        let note_off = phoff + 2 * 56;
        let mem_off = note_off + notes.len() as u64;
        let strtab_off = mem_off + self.memory.len() as u64;
        let strtab: &[u8] = b"\0.shstrtab\0";
        let mut h = s390x_core_header();
        h.e_phoff = phoff;
        h.e_phnum = 2;
        h.e_shoff = shoff;
        h.e_shentsize = 64;
        h.e_shnum = 2;
        h.e_shstrndx = 1;
        h.e_ehsize = 8; // QEMU's sizeof(pointer)
        let mut f = file_header_bytes(&h).to_vec();
        f.extend_from_slice(&[0u8; 64]);
        // The .shstrtab header, little-endian: sh_name 1, sh_type SHT_STRTAB.
        let mut sh = [0u8; 64];
        sh[0..4].copy_from_slice(&1u32.to_le_bytes());
        sh[4..8].copy_from_slice(&SHT_STRTAB.to_le_bytes());
        sh[24..32].copy_from_slice(&strtab_off.to_le_bytes());
        sh[32..40].copy_from_slice(&(strtab.len() as u64).to_le_bytes());
        f.extend_from_slice(&sh);
        let ph = |p_type, off, size| ProgramHeader {
            p_type,
            p_offset: off,
            p_filesz: size,
            p_memsz: size,
            ..ProgramHeader::default()
        };
        f.extend_from_slice(&program_header_bytes(&ph(PT_NOTE, note_off, notes.len() as u64)));
        f.extend_from_slice(&program_header_bytes(&ph(PT_LOAD, mem_off, self.memory.len() as u64)));
        f.extend_from_slice(&notes);
        f.extend_from_slice(&self.memory);
        f.extend_from_slice(strtab);
        f
    }
}
