//! Where output goes, and every output file pvdump creates.
//!
//! - [`Output`]: what the writers see, a regular file (positional, sparse writes) or a stream
//!   (bytes in order).
//! - [`Destination::open`]: decides what an output path is before anything is written: a new
//!   [`PrivateFile`], an existing character device or FIFO written as a stream, or a refusal
//!   ([`OutputError`]) for directories, block devices, sockets, symbolic links, an existing
//!   file without `force`, and the inputs themselves ([`ProtectedInput`]).
//! - [`PrivateFile`]: mode 0600 from its first byte, unnamed (Linux `O_TMPFILE`) until
//!   [`PrivateFile::commit`] gives it its name atomically, without replacing anything unless
//!   `force` was given, and then only a regular file.
//! - [`remove_temp_files_from_signal_handler`] and [`remove_pending_temp_files`]: the named
//!   temporary files of the fallback, removed on signals.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use crate::error::WriteError;

mod destination;
mod error;
mod private;
mod registry;
mod sys;
#[cfg(test)]
mod tests;

pub use destination::{Destination, Policy, ProtectedInput};
pub use error::{NodeKind, OutputError, OutputErrorKind, Role};
pub use private::PrivateFile;
pub use registry::{remove_pending_temp_files, remove_temp_files_from_signal_handler};

/// A destination for a dump.
pub enum Output<'a> {
    /// A seekable regular file: pages are written at their offsets from many threads and
    /// all-zero pages are left as holes.
    File(&'a File),
    /// A pipe or terminal: bytes are written strictly in order; zero pages are written out.
    Stream(&'a mut dyn Write),
}

impl Output<'_> {
    /// Whether zero pages can be skipped (holes).
    pub fn is_sparse(&self) -> bool {
        matches!(self, Output::File(_))
    }
}

/// Positional write of a whole buffer.
pub(crate) fn write_at(file: &File, buf: &[u8], offset: u64) -> Result<(), WriteError> {
    file.write_all_at(buf, offset)
        .map_err(|e| WriteError::io(format!("writing {} bytes at output offset {offset:#x}", buf.len()), e))
}
