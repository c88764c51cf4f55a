//! The ELF layout QEMU writes for a PV guest (formats.md A.3-A.7): ELF header, four section
//! headers, program headers, per-CPU notes, memory, `pv_mem_meta`, `pv_compl`, `.shstrtab`.
//! Used by the simulated Ultravisor to build test dumps byte-compatible with QEMU's.

use pvdump_format::consts::*;
use pvdump_format::layout::elf::{
    ProgramHeader, SectionHeader, file_header_bytes, program_header_bytes, push_note, s390x_core_header,
    section_header_bytes,
};
use pvdump_format::layout::s390::{Ctrs, FpRegSet, GsCb, Prefix, Timer, TodCmp, TodPreg, VxrsHigh, VxrsLow, prstatus};
use pvdump_format::{CpuRegisters, MemoryBlock};

/// The 35-byte section-name table QEMU writes for PV dumps.
pub const PV_SHSTRTAB: &[u8; 35] = b"\0pv_mem_meta\0pv_compl\0\0\0\0.shstrtab\0";

/// File offsets of everything in a QEMU PV dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvElfLayout {
    /// Number of program headers.
    pub phnum: u64,
    /// File offset of the program headers (after the section headers).
    pub phoff: u64,
    /// File offset of the notes.
    pub note_offset: u64,
    /// Bytes of notes.
    pub note_size: u64,
    /// Each block with the file offset of its memory.
    pub loads: Vec<(MemoryBlock, u64)>,
    /// File offset of `pv_mem_meta`.
    pub mem_meta_offset: u64,
    /// Bytes of `pv_mem_meta`.
    pub mem_meta_size: u64,
    /// File offset of `pv_compl`.
    pub compl_offset: u64,
    /// Bytes of `pv_compl`.
    pub compl_size: u64,
    /// File offset of `.shstrtab`.
    pub strtab_offset: u64,
    /// Total file length.
    pub file_len: u64,
}

impl PvElfLayout {
    /// The layout for these memory blocks, notes and sections.
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
    /// `e_ehsize` is what QEMU writes (8, the size of a pointer, on its hosts).
    pub fn header_bytes(&self, notes: &[u8], e_ehsize: u16) -> Vec<u8> {
        let mut h = Vec::with_capacity(self.note_offset as usize + notes.len());
        let mut ehdr = s390x_core_header();
        ehdr.e_phoff = self.phoff;
        ehdr.e_shoff = EHDR_SIZE as u64;
        ehdr.e_ehsize = e_ehsize;
        ehdr.e_phnum = self.phnum.min(u64::from(PN_XNUM)) as u16;
        ehdr.e_shentsize = SHDR_SIZE as u16;
        ehdr.e_shnum = 4;
        ehdr.e_shstrndx = 3;
        h.extend_from_slice(&file_header_bytes(&ehdr));
        // Section headers 0..3; section 0 carries the real phnum when PN_XNUM is used.
        let sh0 = SectionHeader {
            sh_info: if self.phnum >= u64::from(PN_XNUM) {
                self.phnum as u32
            } else {
                0
            },
            ..SectionHeader::default()
        };
        h.extend_from_slice(&section_header_bytes(&sh0));
        let section = |name: u32, sh_type: u32, offset: u64, size: u64| SectionHeader {
            sh_name: name,
            sh_type,
            sh_offset: offset,
            sh_size: size,
            ..SectionHeader::default()
        };
        h.extend_from_slice(&section_header_bytes(&section(
            1,
            SHT_PROGBITS,
            self.mem_meta_offset,
            self.mem_meta_size,
        )));
        h.extend_from_slice(&section_header_bytes(&section(
            13,
            SHT_PROGBITS,
            self.compl_offset,
            self.compl_size,
        )));
        h.extend_from_slice(&section_header_bytes(&section(
            25,
            SHT_STRTAB,
            self.strtab_offset,
            PV_SHSTRTAB.len() as u64,
        )));
        // Program headers: QEMU writes p_flags 0 and p_align 0.
        let phdr = |p_type: u32, offset: u64, paddr: u64, size: u64| ProgramHeader {
            p_type,
            p_offset: offset,
            p_vaddr: paddr,
            p_paddr: paddr,
            p_filesz: size,
            p_memsz: size,
            ..ProgramHeader::default()
        };
        h.extend_from_slice(&program_header_bytes(&phdr(
            PT_NOTE,
            self.note_offset,
            0,
            self.note_size,
        )));
        for (b, off) in &self.loads {
            h.extend_from_slice(&program_header_bytes(&phdr(PT_LOAD, *off, b.paddr, b.size)));
        }
        h.extend_from_slice(notes);
        h
    }
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
    // The other notes carry the decoy byte pattern, each as long as its structure.
    let d = DECOY.to_be_bytes();
    let fill = |n: usize| -> Vec<u8> { d.iter().copied().cycle().take(n).collect() };
    push_note(buf, "CORE", NT_PRSTATUS, &prstatus(pid, &decoy).to_bytes());
    push_note(buf, "CORE", NT_FPREGSET, &fill(FpRegSet::SIZE));
    push_note(buf, "LINUX", NT_S390_PREFIX, &fill(Prefix::SIZE));
    push_note(buf, "LINUX", NT_S390_CTRS, &fill(Ctrs::SIZE));
    push_note(buf, "LINUX", NT_S390_TIMER, &fill(Timer::SIZE));
    push_note(buf, "LINUX", NT_S390_TODCMP, &fill(TodCmp::SIZE));
    push_note(buf, "LINUX", NT_S390_TODPREG, &fill(TodPreg::SIZE));
    push_note(buf, "LINUX", NT_S390_VXRS_LOW, &fill(VxrsLow::SIZE));
    push_note(buf, "LINUX", NT_S390_VXRS_HIGH, &fill(VxrsHigh::SIZE));
    push_note(buf, "LINUX", NT_S390_GS_CB, &fill(GsCb::SIZE));
    push_note(buf, "LINUX", NT_S390_PV_CPU_DATA, pv_desc);
}
