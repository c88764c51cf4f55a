//! Where output goes: a regular file (positional, sparse writes) or a stream (in order), and
//! the temp-file-then-rename discipline that never leaves a half-written file behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::WriteError;

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

/// Temp files not yet committed, so a signal handler can remove them.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes every temp file that has not been committed. Safe to call from a signal-handling
/// thread before exiting.
pub fn remove_pending_temp_files() {
    if let Ok(mut v) = PENDING.lock() {
        for p in v.drain(..) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// An output file written under a temporary name in the destination folder and renamed into
/// place by [`AtomicFile::commit`]. Dropped without commit, the temporary file is removed.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    temp: PathBuf,
    dest: PathBuf,
}

/// True when both paths name the same existing file (same device and inode).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

impl AtomicFile {
    /// Creates the temporary file next to `dest`. Without `force`, an existing `dest` is an
    /// error and is left untouched.
    pub fn create(dest: &Path, force: bool) -> Result<AtomicFile, WriteError> {
        if !force && std::fs::symlink_metadata(dest).is_ok() {
            return Err(WriteError::OutputExists {
                path: dest.to_path_buf(),
            });
        }
        if dest.is_dir() {
            return Err(WriteError::io(
                format!("creating {}", dest.display()),
                io::Error::new(io::ErrorKind::IsADirectory, "the output path is a directory"),
            ));
        }
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "vmcore".into());
        let pid = std::process::id();
        let mut last_err = None;
        for attempt in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let temp = dir.join(format!(
                ".{name}.pvdump-{pid}-{:08x}.tmp",
                nanos ^ attempt.wrapping_mul(0x9e37_79b9)
            ));
            match OpenOptions::new().read(true).write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    if let Ok(mut v) = PENDING.lock() {
                        v.push(temp.clone());
                    }
                    return Ok(AtomicFile {
                        file: Some(file),
                        temp,
                        dest: dest.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => {
                    return Err(WriteError::io(
                        format!("creating a temporary file in {}", dir.display()),
                        e,
                    ));
                }
            }
        }
        Err(WriteError::io(
            format!("creating a temporary file in {}", dir.display()),
            last_err.unwrap_or_else(|| io::Error::other("no free temporary name")),
        ))
    }

    /// The open temporary file.
    pub fn file(&self) -> &File {
        self.file.as_ref().expect("AtomicFile used after commit")
    }

    /// The temporary path (for tests and messages).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Renames the temporary file to its destination. No fsync: like `cp`, durability is
    /// left to the kernel; every write error (ENOSPC included) was already reported by pwrite.
    pub fn commit(mut self) -> Result<(), WriteError> {
        let file = self.file.take().expect("AtomicFile committed twice");
        drop(file);
        std::fs::rename(&self.temp, &self.dest).map_err(|e| {
            WriteError::io(
                format!("renaming {} to {}", self.temp.display(), self.dest.display()),
                e,
            )
        })?;
        self.forget_pending();
        Ok(())
    }

    fn forget_pending(&self) {
        if let Ok(mut v) = PENDING.lock() {
            v.retain(|p| p != &self.temp);
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
            self.forget_pending();
        }
    }
}
