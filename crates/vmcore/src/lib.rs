//! Writers for pvdump: the plain s390x ELF vmcore that crash, gdb and drgn read, and the
//! kdump-compressed file (plain or flattened) that crash, libkdumpfile, drgn and
//! makedumpfile read.
//!
//! Writers take any [`pvdump_format::PageSource`] (decrypted PV memory, a plain ELF, a kdump
//! file) and an [`Output`]: a regular file gets parallel positional writes with holes for
//! zero pages, a stream gets the bytes in order through a bounded window. [`ElfImage`] gives
//! random access to the ELF output's bytes without writing them. The on-disk structures come
//! from `pvdump_format::layout`; this crate reads nothing but pages.

#![warn(missing_docs)]

mod elf;
mod error;
pub mod kdump;
mod notes;
mod output;
mod pump;

pub use elf::{ElfImage, ElfLayout, WriteStats, write_elf};
pub use error::WriteError;
pub use kdump::{KdumpInfo, KdumpLayout, KdumpStats, write_kdump};
pub use notes::{NoteBlob, build_notes};
pub use output::{
    DISK_MIN_HOLE_PAGES, Destination, NodeKind, Output, OutputError, OutputErrorKind, Policy, PrivateFile,
    ProtectedInput, Role, min_hole_pages, remove_pending_temp_files, remove_temp_files_from_signal_handler,
};
pub use pump::{Progress, WriteOptions, is_zero, pump};
pub use pvdump_format::Compression;
