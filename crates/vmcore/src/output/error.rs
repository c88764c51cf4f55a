//! Why an output path cannot be used, and what kind of node a path names.

use std::fmt;
use std::fs::FileType;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

/// Why [`Destination::open`](super::Destination::open) or
/// [`PrivateFile::commit`](super::PrivateFile::commit) refused or failed. Every message starts
/// with the output path. [`OutputError::kind`] groups the variants for exit codes.
///
/// For [`OutputError::Io`] the operating-system error is the [`source`](std::error::Error::source),
/// not part of the `Display` text, so a chain printer (`{:#}` in anyhow) shows it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// Something exists at the output path (at open time, or it appeared while the output was
    /// written) and `force` was not given. That file was left alone.
    #[error("{}: already exists; pass --force to replace it", path.display())]
    Exists {
        /// The output path.
        path: PathBuf,
    },
    /// The output path is (through symbolic or hard links) one of the inputs.
    #[error("{}: is {role}; refusing to write the output over an input", path.display())]
    IsInput {
        /// The output path.
        path: PathBuf,
        /// Which input it is.
        role: Role,
    },
    /// The output path is a directory.
    #[error("{}: is a directory; give the output a file name", path.display())]
    Directory {
        /// The output path.
        path: PathBuf,
    },
    /// The output path is a block device.
    #[error(
        "{}: is a block device; pvdump writes regular files and streams, never block devices",
        path.display()
    )]
    BlockDevice {
        /// The output path.
        path: PathBuf,
    },
    /// The output path is a Unix-domain socket.
    #[error(
        "{}: is a socket; pvdump writes regular files, character devices and FIFOs, never sockets",
        path.display()
    )]
    Socket {
        /// The output path.
        path: PathBuf,
    },
    /// The output path is a symbolic link: pvdump neither creates a file through one nor
    /// replaces one.
    #[error(
        "{}: is a symbolic link; pvdump does not write through or replace links, give the path it points to",
        path.display()
    )]
    Symlink {
        /// The output path.
        path: PathBuf,
    },
    /// The output path is some other kind of node pvdump does not write to.
    #[error("{}: is {node}, which pvdump does not write to", path.display())]
    Unsupported {
        /// The output path.
        path: PathBuf,
        /// What it is.
        node: NodeKind,
    },
    /// The output path changed into something that must not be replaced while pvdump was
    /// working (with `force`, between open and commit; or while a stream was being opened). It
    /// was left alone and the output was discarded.
    #[error(
        "{}: turned into {now} while pvdump was working; it was left alone and the output was discarded",
        path.display()
    )]
    Changed {
        /// The output path.
        path: PathBuf,
        /// What it is now.
        now: NodeKind,
    },
    /// The path cannot name an output file (empty, ends with a slash, `.` or `..`).
    #[error("{}: does not name a file ({reason})", path.display())]
    InvalidName {
        /// The output path.
        path: PathBuf,
        /// Why not.
        reason: &'static str,
    },
    /// A system call failed (permissions, a missing or read-only directory, a full disk...).
    #[error("{}: {action}", path.display())]
    Io {
        /// The output path.
        path: PathBuf,
        /// What pvdump was doing, e.g. "cannot create a file in the output's directory".
        action: &'static str,
        /// The operating-system error.
        #[source]
        source: io::Error,
    },
}

/// The groups of [`OutputError`] a command line maps to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputErrorKind {
    /// The output exists and `force` was not given (a usage error).
    Exists,
    /// The output is one of the inputs (a usage error).
    IsInput,
    /// The output path names something pvdump refuses to write (a directory, block device,
    /// socket, symbolic link, a node that changed, a bad name): a usage error.
    Refused,
    /// A system call failed: an I/O error.
    Io,
}

impl OutputError {
    /// The group this error belongs to: `Exists`, `IsInput` and `Refused` are the user's to fix
    /// (usage, exit code 2 in pvdump), `Io` is an I/O failure (exit code 5).
    pub fn kind(&self) -> OutputErrorKind {
        match self {
            OutputError::Exists { .. } => OutputErrorKind::Exists,
            OutputError::IsInput { .. } => OutputErrorKind::IsInput,
            OutputError::Io { .. } => OutputErrorKind::Io,
            OutputError::Directory { .. }
            | OutputError::BlockDevice { .. }
            | OutputError::Socket { .. }
            | OutputError::Symlink { .. }
            | OutputError::Unsupported { .. }
            | OutputError::Changed { .. }
            | OutputError::InvalidName { .. } => OutputErrorKind::Refused,
        }
    }

    pub(super) fn io(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Self {
        OutputError::Io {
            path: path.into(),
            action,
            source,
        }
    }

    /// The refusal for an existing node of this kind at `path` (`None` for the kinds that can
    /// be written: regular files, character devices and FIFOs).
    pub(super) fn refusal(path: PathBuf, node: NodeKind) -> Option<Self> {
        Some(match node {
            NodeKind::Regular | NodeKind::CharDevice | NodeKind::Fifo => return None,
            NodeKind::Directory => OutputError::Directory { path },
            NodeKind::BlockDevice => OutputError::BlockDevice { path },
            NodeKind::Socket => OutputError::Socket { path },
            NodeKind::Symlink => OutputError::Symlink { path },
            NodeKind::Other => OutputError::Unsupported { path, node },
        })
    }
}

/// Which input a [`ProtectedInput`](super::ProtectedInput) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The key file (the customer communication key).
    Key,
    /// The dump being decrypted or converted.
    Dump,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Key => "the key file",
            Role::Dump => "the input dump",
        })
    }
}

/// What kind of file-system node a path names (without following a final symbolic link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A character device, such as `/dev/null`.
    CharDevice,
    /// A block device, such as a disk.
    BlockDevice,
    /// A FIFO (named pipe).
    Fifo,
    /// A Unix-domain socket.
    Socket,
    /// Anything else the system may have.
    Other,
}

impl NodeKind {
    /// The kind of a `st_mode` value.
    pub(super) fn from_mode(mode: libc::mode_t) -> NodeKind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => NodeKind::Regular,
            libc::S_IFDIR => NodeKind::Directory,
            libc::S_IFLNK => NodeKind::Symlink,
            libc::S_IFCHR => NodeKind::CharDevice,
            libc::S_IFBLK => NodeKind::BlockDevice,
            libc::S_IFIFO => NodeKind::Fifo,
            libc::S_IFSOCK => NodeKind::Socket,
            _ => NodeKind::Other,
        }
    }
}

impl From<FileType> for NodeKind {
    fn from(t: FileType) -> NodeKind {
        if t.is_file() {
            NodeKind::Regular
        } else if t.is_dir() {
            NodeKind::Directory
        } else if t.is_symlink() {
            NodeKind::Symlink
        } else if t.is_char_device() {
            NodeKind::CharDevice
        } else if t.is_block_device() {
            NodeKind::BlockDevice
        } else if t.is_fifo() {
            NodeKind::Fifo
        } else if t.is_socket() {
            NodeKind::Socket
        } else {
            NodeKind::Other
        }
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeKind::Regular => "a regular file",
            NodeKind::Directory => "a directory",
            NodeKind::Symlink => "a symbolic link",
            NodeKind::CharDevice => "a character device",
            NodeKind::BlockDevice => "a block device",
            NodeKind::Fifo => "a FIFO",
            NodeKind::Socket => "a socket",
            NodeKind::Other => "an unusual kind of file",
        })
    }
}
