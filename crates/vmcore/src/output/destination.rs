//! [`Destination::open`]: deciding what the output path is before anything is written.

use std::ffi::{CString, OsStr};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Output;
use super::error::{NodeKind, OutputError, Role};
use super::private::PrivateFile;
use super::sys;

/// How an output path may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Replace an existing regular file (atomically, at commit). Never needed for a stream
    /// (a character device or FIFO), and never enough for anything else.
    pub force: bool,
    /// Use an unnamed `O_TMPFILE` on Linux where the file system supports it (the default).
    /// `false` forces the named temporary file used elsewhere (tests).
    pub allow_tmpfile: bool,
}

impl Policy {
    /// The default policy, with `force` as given.
    pub fn new(force: bool) -> Policy {
        Policy {
            force,
            allow_tmpfile: true,
        }
    }
}

impl Default for Policy {
    /// No `force`, `O_TMPFILE` allowed.
    fn default() -> Policy {
        Policy::new(false)
    }
}

/// An input the output must never be written over: a file identified by device and inode,
/// so that every path to it (symbolic links, hard links, `/proc/self/fd/N`) is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtectedInput {
    /// Device number of the file.
    pub dev: u64,
    /// Inode number of the file.
    pub ino: u64,
    /// Which input it is (named in the refusal).
    pub role: Role,
}

impl ProtectedInput {
    /// The input at `path` (following symbolic links).
    pub fn from_path(path: &Path, role: Role) -> io::Result<ProtectedInput> {
        std::fs::metadata(path).map(|m| ProtectedInput::from_metadata(&m, role))
    }

    /// The input open as `file`.
    pub fn from_file(file: &File, role: Role) -> io::Result<ProtectedInput> {
        file.metadata().map(|m| ProtectedInput::from_metadata(&m, role))
    }

    /// The input these metadata describe.
    pub fn from_metadata(meta: &Metadata, role: Role) -> ProtectedInput {
        ProtectedInput {
            dev: meta.dev(),
            ino: meta.ino(),
            role,
        }
    }

    fn matches(&self, meta: &Metadata) -> bool {
        self.dev == meta.dev() && self.ino == meta.ino()
    }
}

/// Where a dump goes, decided by [`Destination::open`] before anything is written.
#[derive(Debug)]
pub enum Destination {
    /// A new private file, published at the path by [`PrivateFile::commit`]: write the file
    /// format (positional writes, holes for zero pages) through [`Output::File`].
    File(PrivateFile),
    /// An existing character device or FIFO, opened for writing: write the stream format
    /// (bytes in order) through [`Output::Stream`]. It is never replaced or removed.
    Stream(File),
}

impl Destination {
    /// Decides what the output path `path` is and opens it, before anything is written:
    ///
    /// - nothing there: a new [`PrivateFile`];
    /// - a regular file: [`OutputError::Exists`], unless `policy.force` (then a new
    ///   [`PrivateFile`] that replaces it atomically at commit; the old file is untouched
    ///   until then);
    /// - a character device or a FIFO: [`Destination::Stream`], opened write-only without
    ///   creating or truncating (no `force` needed; opening a FIFO waits for a reader);
    /// - a directory, block device, socket or symbolic link (even with `force`): refused with
    ///   [`OutputError::Directory`], [`OutputError::BlockDevice`], [`OutputError::Socket`] or
    ///   [`OutputError::Symlink`]; a link is never followed for creation nor replaced;
    /// - a path that resolves (through symbolic links, or as a hard link) to one of `protect`:
    ///   [`OutputError::IsInput`], checked first.
    ///
    /// `-` is an ordinary name here: mapping it to standard output is the caller's business.
    /// Symbolic links in the directory part of the path are followed as usual.
    pub fn open(path: &Path, policy: Policy, protect: &[ProtectedInput]) -> Result<Destination, OutputError> {
        let (dir_path, name) = split(path)?;
        check_inputs(path, protect)?;
        let dir =
            sys::open_dir(&dir_path).map_err(|e| OutputError::io(path, "cannot open the output's directory", e))?;
        let node =
            sys::node_at(dir.as_fd(), &name).map_err(|e| OutputError::io(path, "cannot inspect the output path", e))?;
        match node {
            None => PrivateFile::create(dir, &dir_path, path, name, policy.force, policy.allow_tmpfile)
                .map(Destination::File),
            Some(NodeKind::Regular) if policy.force => {
                // The file is replaced at commit and its cached pages go then. Dropping them
                // now (its contents stay) lets the new file reuse that memory, as `cp` reuses
                // it when it truncates, instead of taking as much memory again from what is
                // free (on a virtual machine that gives free memory back to its host, that
                // is slow to touch: docs/decisions/replace.md). Best effort: a file we may
                // not read keeps its cache, and tmpfs has none to drop.
                #[cfg(target_os = "linux")]
                let _ = sys::drop_cache_at(dir.as_fd(), &name);
                PrivateFile::create(dir, &dir_path, path, name, true, policy.allow_tmpfile).map(Destination::File)
            }
            Some(NodeKind::Regular) => Err(OutputError::Exists {
                path: path.to_path_buf(),
            }),
            Some(NodeKind::CharDevice | NodeKind::Fifo) => {
                let file = sys::open_stream(dir.as_fd(), &name).map_err(|e| {
                    if e.raw_os_error() == Some(libc::ELOOP) {
                        OutputError::Changed {
                            path: path.to_path_buf(),
                            now: NodeKind::Symlink,
                        }
                    } else {
                        OutputError::io(path, "cannot open the output for writing", e)
                    }
                })?;
                // The node may have been swapped between the check and the open: what was
                // opened must still be a stream and not an input. Nothing was written yet.
                let meta = file
                    .metadata()
                    .map_err(|e| OutputError::io(path, "cannot inspect the output", e))?;
                let now = NodeKind::from(meta.file_type());
                if !matches!(now, NodeKind::CharDevice | NodeKind::Fifo) {
                    return Err(OutputError::Changed {
                        path: path.to_path_buf(),
                        now,
                    });
                }
                if let Some(p) = protect.iter().find(|p| p.matches(&meta)) {
                    return Err(OutputError::IsInput {
                        path: path.to_path_buf(),
                        role: p.role,
                    });
                }
                Ok(Destination::Stream(file))
            }
            Some(other) => Err(
                OutputError::refusal(path.to_path_buf(), other).unwrap_or(OutputError::Unsupported {
                    path: path.to_path_buf(),
                    node: other,
                }),
            ),
        }
    }

    /// The writers' view of this destination.
    pub fn output(&mut self) -> Output<'_> {
        match self {
            Destination::File(f) => Output::File(f.file()),
            Destination::Stream(s) => Output::Stream(s),
        }
    }

    /// Finishes: commits a [`PrivateFile`]; closes a stream (its bytes are already written).
    pub fn finish(self) -> Result<(), OutputError> {
        match self {
            Destination::File(f) => f.commit(),
            Destination::Stream(_) => Ok(()),
        }
    }
}

/// Refuses an output path that is (through links) one of the inputs.
fn check_inputs(path: &Path, protect: &[ProtectedInput]) -> Result<(), OutputError> {
    if protect.is_empty() {
        return Ok(());
    }
    // Follows symbolic links; a path that does not resolve cannot be an input.
    if let Ok(meta) = std::fs::metadata(path)
        && let Some(p) = protect.iter().find(|p| p.matches(&meta))
    {
        return Err(OutputError::IsInput {
            path: path.to_path_buf(),
            role: p.role,
        });
    }
    Ok(())
}

/// Splits the output path into its directory and last component, refusing paths that do not
/// end in a file name (`dir/`, `.`, `..`, empty). Works on the bytes, without the
/// normalisation of [`Path::file_name`] (which would turn `a/.` into `a`).
fn split(path: &Path) -> Result<(PathBuf, CString), OutputError> {
    let bytes = path.as_os_str().as_bytes();
    let (dir, name) = match bytes.iter().rposition(|&b| b == b'/') {
        Some(0) => (&b"/"[..], &bytes[1..]),
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (&b"."[..], bytes),
    };
    let reason = match name {
        [] if bytes.is_empty() => Some("the path is empty"),
        [] => Some("it ends with a slash"),
        b"." | b".." => Some("it ends with a dot component"),
        _ => None,
    };
    if let Some(reason) = reason {
        return Err(if path.is_dir() {
            OutputError::Directory {
                path: path.to_path_buf(),
            }
        } else {
            OutputError::InvalidName {
                path: path.to_path_buf(),
                reason,
            }
        });
    }
    let name = sys::cstring(name).map_err(|e| OutputError::io(path, "cannot use this path", e))?;
    Ok((PathBuf::from(OsStr::from_bytes(dir)), name))
}
