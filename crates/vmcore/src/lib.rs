//! Writers for plain s390x dumps: the ELF vmcore that crash, gdb, drgn and libkdumpfile
//! read, and (with the `synth` feature) the QEMU PV dump layout for the simulated Ultravisor.
//!
//! Writers take any [`pvdump_format::PageSource`] (decrypted PV memory, or a plain ELF) and
//! an [`Output`]: a regular file gets parallel positional writes with holes for zero pages,
//! a stream gets the bytes in order through a bounded window.

mod elf;
mod error;
pub mod kdump;
pub mod kdump_read;
mod notes;
mod output;
mod pump;
pub mod pvelf;
#[cfg(feature = "synth")]
pub mod synth;

pub use elf::{ElfLayout, WriteStats, write_elf};
pub use error::WriteError;
pub use kdump::{Compression, KdumpInfo, KdumpLayout, KdumpStats, write_kdump};
pub use kdump_read::KdumpFile;
pub use notes::{NOTE_BYTES_PER_CPU, NoteBlob, build_notes, prpsinfo, prstatus, push_note};
pub use output::{
    AtomicFile, Destination, NodeKind, Output, OutputError, OutputErrorKind, Policy, PrivateFile, ProtectedInput, Role,
    remove_pending_temp_files, remove_temp_files_from_signal_handler, same_file,
};
pub use pump::{Progress, WriteOptions, is_zero, pump};
