//! The ELF layout QEMU writes for a PV guest (formats.md A.3-A.7): ELF header, four section
//! headers, program headers, per-CPU notes, memory, `pv_mem_meta`, `pv_compl`, `.shstrtab`.
//! Used by the simulated Ultravisor to build test dumps byte-compatible with QEMU's.

use pvdump_format::consts::*;
use pvdump_format::{CpuRegisters, MemoryBlock};

use crate::notes::push_note;

/// The 35-byte section-name table QEMU writes for PV dumps.
pub const PV_SHSTRTAB: &[u8; 35] = b"\0pv_mem_meta\0pv_compl\0\0\0\0.shstrtab\0";

/// File offsets of everything in a QEMU PV dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvElfLayout {
    pub phnum: u64,
    pub phoff: u64,
    pub note_offset: u64,
    pub note_size: u64,
    /// Each block with the file offset of its memory.
    pub loads: Vec<(MemoryBlock, u64)>,
    pub mem_meta_offset: u64,
    pub mem_meta_size: u64,
    pub compl_offset: u64,
    pub compl_size: u64,
    pub strtab_offset: u64,
    pub file_len: u64,
}

impl PvElfLayout {
    pub fn new(blocks: &[MemoryBlock], note_size: u64, mem_meta_size: u64, compl_size: u64) -> Self {
        let shnum = 4u64;
        let phnum = 1 + blocks.len() as u64;
        let phoff = EHDR_SIZE as u64 + shnum * SHDR_SIZE as u64;
        let note_offset = phoff + phnum * PHDR_SIZE as u64;
        let mut pos = note_offset + note_size;
        let loads = blocks
            .iter()
            .map(|b| {
                let at = pos;
                pos += b.size;
                (*b, at)
            })
            .collect();
        let mem_meta_offset = pos;
        let compl_offset = mem_meta_offset + mem_meta_size;
        let strtab_offset = compl_offset + compl_size;
        PvElfLayout {
            phnum,
            phoff,
            note_offset,
            note_size,
            loads,
            mem_meta_offset,
            mem_meta_size,
            compl_offset,
            compl_size,
            strtab_offset,
            file_len: strtab_offset + PV_SHSTRTAB.len() as u64,
        }
    }

    /// ELF header, section headers, program headers and notes: everything before memory.
    pub fn header_bytes(&self, notes: &[u8], e_ehsize: u16) -> Vec<u8> {
        let mut h = Vec::with_capacity(self.note_offset as usize + notes.len());
        h.extend_from_slice(b"\x7fELF");
        h.extend_from_slice(&[ELFCLASS64, ELFDATA2MSB, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        h.extend_from_slice(&ET_CORE.to_be_bytes());
        h.extend_from_slice(&EM_S390.to_be_bytes());
        h.extend_from_slice(&1u32.to_be_bytes());
        h.extend_from_slice(&0u64.to_be_bytes());
        h.extend_from_slice(&self.phoff.to_be_bytes());
        h.extend_from_slice(&(EHDR_SIZE as u64).to_be_bytes()); // e_shoff
        h.extend_from_slice(&0u32.to_be_bytes());
        h.extend_from_slice(&e_ehsize.to_be_bytes()); // QEMU writes 8
        h.extend_from_slice(&(PHDR_SIZE as u16).to_be_bytes());
        h.extend_from_slice(&(self.phnum.min(u64::from(PN_XNUM)) as u16).to_be_bytes());
        h.extend_from_slice(&(SHDR_SIZE as u16).to_be_bytes());
        h.extend_from_slice(&4u16.to_be_bytes());
        h.extend_from_slice(&3u16.to_be_bytes());
        // Section headers 0..3
        let mut sh0 = [0u8; SHDR_SIZE];
        if self.phnum >= u64::from(PN_XNUM) {
            sh0[44..48].copy_from_slice(&(self.phnum as u32).to_be_bytes());
        }
        h.extend_from_slice(&sh0);
        shdr(&mut h, 1, SHT_PROGBITS, self.mem_meta_offset, self.mem_meta_size);
        shdr(&mut h, 13, SHT_PROGBITS, self.compl_offset, self.compl_size);
        shdr(&mut h, 25, SHT_STRTAB, self.strtab_offset, PV_SHSTRTAB.len() as u64);
        // Program headers: QEMU's p_flags 0, p_align 0.
        phdr(&mut h, PT_NOTE, self.note_offset, 0, self.note_size, self.note_size);
        for (b, off) in &self.loads {
            phdr(&mut h, PT_LOAD, *off, b.paddr, b.size, b.size);
        }
        h.extend_from_slice(notes);
        h
    }
}

fn shdr(h: &mut Vec<u8>, name: u32, ty: u32, offset: u64, size: u64) {
    let mut s = [0u8; SHDR_SIZE];
    s[0..4].copy_from_slice(&name.to_be_bytes());
    s[4..8].copy_from_slice(&ty.to_be_bytes());
    s[24..32].copy_from_slice(&offset.to_be_bytes());
    s[32..40].copy_from_slice(&size.to_be_bytes());
    h.extend_from_slice(&s);
}

fn phdr(h: &mut Vec<u8>, ty: u32, offset: u64, paddr: u64, filesz: u64, memsz: u64) {
    h.extend_from_slice(&ty.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes());
    h.extend_from_slice(&offset.to_be_bytes());
    h.extend_from_slice(&paddr.to_be_bytes());
    h.extend_from_slice(&paddr.to_be_bytes());
    h.extend_from_slice(&filesz.to_be_bytes());
    h.extend_from_slice(&memsz.to_be_bytes());
    h.extend_from_slice(&0u64.to_be_bytes());
}

/// The decoy pattern QEMU's hypervisor-side notes carry in test dumps: it must never show up
/// in decrypted output.
pub const DECOY: u64 = 0xdec0_dede_c0de_dec0;

/// QEMU's per-CPU notes for a PV guest: ten hypervisor-view notes filled with the decoy
/// pattern (pr_pid = `pid`), then NT_S390_PV_CPU_DATA with `pv_desc`.
pub fn qemu_cpu_notes(buf: &mut Vec<u8>, pid: u32, pv_desc: &[u8]) {
    let decoy = CpuRegisters {
        gprs: [DECOY; 16],
        psw: [DECOY; 2],
        prefix: DECOY as u32,
        fpc: DECOY as u32,
        todpreg: DECOY as u32,
        timer: DECOY,
        todcmp: DECOY,
        acrs: [DECOY as u32; 16],
        ctrs: [DECOY; 16],
        fprs: [DECOY; 16],
        vxrs_low: [DECOY; 16],
        vxrs_high: [[0xde; 16]; 16],
        gs_cb: [DECOY; 4],
        has_osii: false,
    };
    let d = decoy.gprs[0].to_be_bytes();
    let fill = |n: usize| -> Vec<u8> { d.iter().copied().cycle().take(n).collect() };
    push_note(buf, "CORE", NT_PRSTATUS, &crate::notes::prstatus(pid, &decoy));
    push_note(buf, "CORE", NT_FPREGSET, &fill(136));
    push_note(buf, "LINUX", NT_S390_PREFIX, &fill(4));
    push_note(buf, "LINUX", NT_S390_CTRS, &fill(128));
    push_note(buf, "LINUX", NT_S390_TIMER, &fill(8));
    push_note(buf, "LINUX", NT_S390_TODCMP, &fill(8));
    push_note(buf, "LINUX", NT_S390_TODPREG, &fill(4));
    push_note(buf, "LINUX", NT_S390_VXRS_LOW, &fill(128));
    push_note(buf, "LINUX", NT_S390_VXRS_HIGH, &fill(256));
    push_note(buf, "LINUX", NT_S390_GS_CB, &fill(32));
    push_note(buf, "LINUX", NT_S390_PV_CPU_DATA, pv_desc);
}
