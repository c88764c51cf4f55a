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
    /// A seekable regular file: pages are written at their offsets and runs of all-zero
    /// pages are left as holes ([`min_hole_pages`]).
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

/// The shortest run of zero pages a file on a disk file system gets as a hole (64 KiB).
/// Every hole splits the file's extents: on ext4, a hole for each scattered zero page (20% of
/// the pages of the synthetic dump) made writing 1 GiB take 0.34-0.41 s instead of 0.25-0.29
/// s, slower than `cp`, spent in the extent-status tree and one `pwrite` per run
/// (docs/decisions/holes.md). Free memory in a real guest is zero in long runs, which stay
/// holes (99% of its zero pages in the real-kernel dump).
pub const DISK_MIN_HOLE_PAGES: usize = 16;

/// The shortest run of zero pages left as a hole in `file`: every zero page in memory file
/// systems (tmpfs, ramfs), where a hole costs nothing and saves memory;
/// [`DISK_MIN_HOLE_PAGES`] elsewhere.
pub fn min_hole_pages(file: &File) -> usize {
    if sys::in_memory(file) { 1 } else { DISK_MIN_HOLE_PAGES }
}

/// Positional write of a whole buffer.
pub(crate) fn write_at(file: &File, buf: &[u8], offset: u64) -> Result<(), WriteError> {
    file.write_all_at(buf, offset)
        .map_err(|e| WriteError::io(format!("writing {} bytes at output offset {offset:#x}", buf.len()), e))
}
