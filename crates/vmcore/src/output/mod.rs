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
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

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

/// True when both paths name the same existing file (same device and inode).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// An output file written under a registered, mode-0600 temporary name in the destination
/// folder and published by [`AtomicFile::commit`]; dropped without commit, it is removed.
///
/// The earlier interface, kept while the command line moves to [`Destination`]: it is a
/// [`PrivateFile`] that always uses the named temporary file (so [`AtomicFile::temp_path`]
/// exists) and refuses anything but a regular file or nothing at the path.
#[derive(Debug)]
pub struct AtomicFile(PrivateFile);

impl AtomicFile {
    /// Creates the temporary file next to `dest`. Without `force`, an existing `dest` is an
    /// error and is left untouched; with it, only a regular file is replaced (at commit).
    pub fn create(dest: &Path, force: bool) -> Result<AtomicFile, WriteError> {
        // Refuse streams here rather than open them: opening a FIFO would wait for a reader.
        if let Ok(meta) = std::fs::symlink_metadata(dest) {
            let node = NodeKind::from(meta.file_type());
            if matches!(node, NodeKind::CharDevice | NodeKind::Fifo) {
                return Err(WriteError::io(
                    "cannot use the output path",
                    io::Error::other(OutputError::Unsupported {
                        path: dest.to_path_buf(),
                        node,
                    }),
                ));
            }
        }
        let policy = Policy {
            force,
            allow_tmpfile: false,
        };
        match Destination::open(dest, policy, &[]) {
            Ok(Destination::File(f)) => Ok(AtomicFile(f)),
            Ok(Destination::Stream(_)) => Err(WriteError::io(
                "cannot use the output path",
                io::Error::other(format!("{} is not a regular file", dest.display())),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The open temporary file.
    pub fn file(&self) -> &File {
        self.0.file()
    }

    /// The temporary path (for tests, messages and signal handlers).
    pub fn temp_path(&self) -> &Path {
        self.0.temp_path().unwrap_or_else(|| self.0.path())
    }

    /// Publishes the file at its destination, as [`PrivateFile::commit`] does.
    pub fn commit(self) -> Result<(), WriteError> {
        self.0.commit().map_err(WriteError::from)
    }
}

impl From<OutputError> for WriteError {
    fn from(e: OutputError) -> WriteError {
        match e {
            OutputError::Exists { path } => WriteError::OutputExists { path },
            OutputError::Io { path, action, source } => WriteError::io(format!("{}: {action}", path.display()), source),
            other => WriteError::io("cannot use the output path", io::Error::other(other)),
        }
    }
}
