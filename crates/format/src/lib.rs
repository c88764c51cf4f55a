//! Parsing for pvdump: zero-copy, bounds-checked views of the dumps pvdump reads and writes.
//!
//! - Encrypted QEMU Protected Virtualization (IBM Z Secure Execution) guest dumps: big-endian
//!   s390x ELF core files with encrypted memory, encrypted `NT_S390_PV_CPU_DATA` notes and the
//!   `pv_compl` / `pv_mem_meta` sections ([`PvDump`]).
//! - Plain s390x ELF vmcores ([`PlainElf`]) and kdump-compressed files, plain or flattened
//!   ([`KdumpFile`]): pvdump's own outputs, QEMU's and the kernel's dumps.
//! - [`layout`]: one definition of every on-disk structure, shared with the writers.
//!
//! Every read of a file-provided offset or size is checked and fails with a [`FormatError`]
//! that names the structure and the file offset; nothing here panics on hostile input, and
//! nothing allocates in proportion to a number the file merely claims. This crate has no
//! `unsafe` code, no cryptography and no I/O: callers hand it bytes (usually a memory map).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Any bytes: here 64 bytes that are not an ELF file. Errors name the file offset.
//! let err = pvdump_format::PvDump::parse(&[b'x'; 64]).unwrap_err();
//! assert_eq!(err.offset(), Some(0));
//! assert!(err.to_string().starts_with("not an ELF file"));
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bytes;
mod compl;
pub mod consts;
mod cpu;
mod elf;
mod error;
mod kdump;
pub mod layout;
mod note_cpus;
mod page;
mod plain;
mod pv;
mod source;
mod uts;
pub mod vmcoreinfo;

#[cfg(test)]
mod testutil;

pub use compl::CompletionData;
pub use cpu::{CpuDump, CpuRegisters};
pub use elf::{ElfCore, LoadSegment, MAX_HEADERS, MAX_MEMORY_PER_FILE_BYTE, Note, NoteIter, NoteSegment, Section};
pub use error::{FormatError, Problem, Result, Structure};
pub use kdump::KdumpFile;
pub use layout::kdump::Compression;
pub use note_cpus::{NoteCpu, cpus_from_notes};
pub use page::{FLAG_MAPPED, FLAG_RESERVED, FLAG_SHARED, FLAG_ZERO, InvalidPageState, PageCounts, PageState};
pub use plain::PlainElf;
pub use pv::{Irregularity, PvCpuNote, PvDump, file_pages, frames_of};
pub use source::{MemoryBlock, PageSource, read_phys};
pub use uts::{Utsname, guest_utsname, utsname_paddr};
pub use vmcoreinfo::{Vmcoreinfo, VmcoreinfoSource, find_vmcoreinfo};
