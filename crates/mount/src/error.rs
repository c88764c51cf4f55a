//! What can go wrong when mounting, serving or unmounting.

use std::io;
use std::path::PathBuf;

/// Why mounting or unmounting failed. Messages do not repeat their cause: print the
/// [`std::error::Error::source`] chain (as `anyhow`'s `{:#}` does).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// The dump cannot be served (an encrypted dump opened without its key).
    #[error(transparent)]
    Dump(#[from] pvdump_core::Error),
    /// The mount point cannot be used.
    #[error("mount point {}", path.display())]
    MountPoint {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The mount point is not a directory.
    #[error("mount point {}: not a directory", path.display())]
    NotADirectory {
        /// The mount point.
        path: PathBuf,
    },
    /// The decryption thread pool cannot be started.
    #[error("cannot start the decryption threads")]
    Threads(#[from] rayon::ThreadPoolBuildError),
    /// The kernel refused the mount, or the FUSE handshake failed.
    #[error("cannot mount a FUSE filesystem at {}{hint}", path.display())]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
        /// What to check, when the cause suggests it.
        hint: &'static str,
    },
    /// The FUSE session ended with an error.
    #[error("the FUSE session at {} failed", path.display())]
    Session {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The mounted file cannot be read back.
    #[error("{} is not readable through the mount", path.display())]
    NotReadable {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Unmounting failed.
    #[error("cannot unmount {}", path.display())]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// A hint for a failed mount: FUSE missing or not permitted.
pub(crate) fn mount_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
            " (is FUSE available? /dev/fuse must exist: load the module with `modprobe fuse`, or in a container pass --device /dev/fuse)"
        }
        Some(libc::EPERM) | Some(libc::EACCES) => {
            " (mounting needs root, or /dev/fuse readable and writable plus the setuid fusermount3 from the fuse3 package)"
        }
        _ => "",
    }
}
