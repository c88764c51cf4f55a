//! Zero-copy, bounds-checked views of QEMU Protected Virtualization (IBM Z Secure Execution)
//! guest dumps: big-endian s390x ELF core files with encrypted memory, encrypted
//! `NT_S390_PV_CPU_DATA` notes and the `pv_compl` / `pv_mem_meta` sections.
//!
//! Every read of a file-provided offset or size is checked and fails with a [`FormatError`]
//! that names the structure and the file offset; nothing here panics on hostile input, and
//! nothing allocates in proportion to a number the file merely claims.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bytes = std::fs::read("pvdump.elf")?;
//! let dump = pvdump_format::PvDump::parse(&bytes)?;
//! println!("{} CPUs, {:?}", dump.cpus().len(), dump.page_counts()?);
//! # Ok(()) }
//! ```

pub mod bytes;
mod compl;
pub mod consts;
mod cpu;
mod elf;
mod error;
mod note_cpus;
mod page;
mod plain;
mod pv;
mod source;
pub mod vmcoreinfo;

pub use compl::CompletionDataV1;
pub use cpu::{CpuDumpV1, CpuRegisters, DUMP_FLAG_HAS_OSII};
pub use elf::{ElfCore, LoadSegment, MAX_HEADERS, Note, NoteSegment, Section};
pub use error::{FormatError, Result};
pub use note_cpus::{NoteCpu, cpus_from_notes};
pub use page::{FLAG_MAPPED, FLAG_RESERVED, FLAG_SHARED, FLAG_ZERO, InvalidPageState, PageCounts, PageState};
pub use plain::PlainElf;
pub use pv::{PvCpuNote, PvDump};
pub use source::{MemoryBlock, PageSource, read_phys};
pub use vmcoreinfo::{Vmcoreinfo, VmcoreinfoSource, find_vmcoreinfo};
