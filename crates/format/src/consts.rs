//! Numbers from the ELF specification, the s390x ABI and the PV dump format.
#![allow(missing_docs)]

pub const EHDR_SIZE: usize = 64;
pub const PHDR_SIZE: usize = 56;
pub const SHDR_SIZE: usize = 64;
pub const NHDR_SIZE: u64 = 12;

pub const ELFCLASS64: u8 = 2;
pub const ELFDATA2MSB: u8 = 2;
pub const ET_CORE: u16 = 4;
pub const EM_S390: u16 = 22;
pub const PN_XNUM: u16 = 0xffff;
pub const SHN_UNDEF: u16 = 0;

pub const PT_LOAD: u32 = 1;
pub const PT_NOTE: u32 = 4;
pub const SHT_PROGBITS: u32 = 1;
pub const SHT_STRTAB: u32 = 3;

/// Largest section-name string table accepted (QEMU writes 35 bytes).
pub const MAX_STRTAB: u64 = 1 << 20;

pub const NT_PRSTATUS: u32 = 1;
pub const NT_FPREGSET: u32 = 2;
pub const NT_PRPSINFO: u32 = 3;
pub const NT_S390_TIMER: u32 = 0x301;
pub const NT_S390_TODCMP: u32 = 0x302;
pub const NT_S390_TODPREG: u32 = 0x303;
pub const NT_S390_CTRS: u32 = 0x304;
pub const NT_S390_PREFIX: u32 = 0x305;
pub const NT_S390_VXRS_LOW: u32 = 0x309;
pub const NT_S390_VXRS_HIGH: u32 = 0x30a;
pub const NT_S390_GS_CB: u32 = 0x30b;
pub const NT_S390_PV_CPU_DATA: u32 = 0x30e;
pub const NT_VMCOREINFO: u32 = 0;

/// Guest page size used by the Ultravisor storage state.
pub const PAGE_SIZE: u64 = 4096;
/// Bytes of `pv_mem_meta` per 4 KiB page.
pub const TWEAK_COMPONENT_SIZE: u64 = 16;

pub const SECTION_PV_COMPL: &str = "pv_compl";
pub const SECTION_PV_MEM_META: &str = "pv_mem_meta";

/// Completion data v1 is 288 bytes; the section may be larger but at most 4 KiB.
pub const COMPL_V1_SIZE: usize = 288;
pub const COMPL_MAX_SIZE: u64 = 4096;
/// CPU dump v1 uses 1568 bytes of a note that may be at most 4 KiB.
pub const CPU_DUMP_V1_SIZE: usize = 1568;
pub const CPU_DUMP_MAX_SIZE: u64 = 4096;
/// Size of the confidential (encrypted) area of a CPU dump v1.
pub const CPU_CONFIDENTIAL_SIZE: usize = 1520;

/// Key-derivation `info` for the dump key.
pub const DUMP_KEY_INFO: &[u8] = b"IBM Z Ultravisor Dump";
