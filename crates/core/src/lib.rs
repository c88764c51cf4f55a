//! The pvdump library: open any s390x dump pvdump reads, inspect it, read guest memory,
//! write it as an ELF vmcore or a kdump file.
//!
//! [`Dump`] is the entry point. It identifies the file (an encrypted IBM Z Secure Execution
//! dump, a plain ELF vmcore, a kdump file or flattened stream), checks it, and with the
//! customer communication key ([`Cck`], read with [`read_key_file`]) unlocks an encrypted
//! one: every page state and CPU note is validated before anything is returned. The crates
//! below do the work: `pvdump-format` parses, `pvdump-crypto` decrypts, `pvdump-vmcore`
//! writes; this crate is the glue every front end (the `pvdump` binary, its mount, xtask,
//! the fuzz targets) shares.
//!
//! ```no_run
//! use pvdump_core::{Dump, Format, Output, WriteOptions, read_key_file};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = read_key_file("cck.bin".as_ref())?;
//! let dump = Dump::open("guest.elf".as_ref(), Some(&key.cck))?;
//! for cpu in dump.cpus()? {
//!     println!("CPU {}: PSW {:#018x} {:#018x}", cpu.index, cpu.regs.psw[0], cpu.regs.psw[1]);
//! }
//! if let Some(v) = dump.vmcoreinfo() {
//!     println!("kernel {}", v.osrelease().unwrap_or("?"));
//! }
//! let out = std::fs::File::create("vmcore")?;
//! dump.write(Format::Elf, &mut Output::File(&out), &WriteOptions::default())?;
//! # Ok(()) }
//! ```
//!
//! See `examples/describe.rs` for a complete program.

#![warn(missing_docs)]

mod dump;
mod error;
mod input;
mod key;

pub use dump::{Compression, Cpu, Dump, DumpKind, Format, Written, vmcoreinfo_source};
pub use error::{Error, ErrorKind};
pub use input::Input;
pub use key::{KeyError, KeyFile, KeySource, MAX_KEY_FILE, file_kind, read_key, read_key_file};
pub use pvdump_crypto::{Cck, OpenError};
pub use pvdump_format::{
    CpuRegisters, FormatError, KdumpFile, MemoryBlock, PageCounts, PageSource, PvDump, Utsname, Vmcoreinfo,
    VmcoreinfoSource,
};
pub use pvdump_vmcore::{ElfImage, KdumpStats, NoteBlob, Output, Progress, WriteError, WriteOptions};
