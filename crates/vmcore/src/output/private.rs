//! [`PrivateFile`]: the output file while it is written, private from its first byte and
//! published under its name only when complete.

use std::ffi::{CStr, CString, OsStr};
use std::fs::{File, Permissions};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{NodeKind, OutputError};
use super::registry::{self, Registration};
use super::sys;

/// Attempts at finding a free temporary name before giving up.
const NAME_TRIES: u32 = 64;

/// Bytes of the final name kept in a temporary name (so it stays under NAME_MAX = 255).
const NAME_KEEP: usize = 128;

/// The output file being written. Its mode is 0600 before its first byte, whatever the
/// umask. On Linux it is an unnamed `O_TMPFILE` in the destination directory: no signal, not
/// even SIGKILL, nor a power cut can leave a named fragment of it. Where that is not available
/// it is a named `.NAME.pvdump-PID-RANDOM.tmp` file (mode 0600, registered so that
/// [`remove_pending_temp_files`](super::remove_pending_temp_files) and
/// [`remove_temp_files_from_signal_handler`](super::remove_temp_files_from_signal_handler) can
/// remove it; only SIGKILL or a power cut can leave it behind).
///
/// [`commit`](PrivateFile::commit) gives it its name; dropped without commit, it is gone.
///
/// No fsync: like `cp`, pvdump leaves durability to the kernel. Every write error (a full disk
/// included) is reported by the positional writes themselves; after a power cut shortly after
/// commit, the file may be shorter or have zeroed blocks, depending on the file system.
#[derive(Debug)]
pub struct PrivateFile {
    file: File,
    /// The destination directory, opened once: every later call is relative to it.
    dir: OwnedFd,
    /// Its path (for the registry's absolute temporary paths; read again only by the Linux
    /// forced commit of an `O_TMPFILE`).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    dir_path: PathBuf,
    /// The output path as given (for messages).
    path: PathBuf,
    /// Its last component.
    name: CString,
    force: bool,
    temp: Temp,
}

#[derive(Debug)]
enum Temp {
    /// An `O_TMPFILE`, which has no name until commit.
    #[cfg(target_os = "linux")]
    Unnamed,
    /// A named temporary file (the fallback), or `None` once published or removed.
    Named(Option<NamedTemp>),
}

/// A temporary name in the destination directory, registered for removal on signals.
#[derive(Debug)]
struct NamedTemp {
    name: CString,
    registration: Registration,
}

impl PrivateFile {
    /// Creates the private file in `dir` (opened from `dir_path`, the directory of `path`,
    /// whose last component is `name`). Tries `O_TMPFILE` first on Linux when `allow_tmpfile`.
    pub(super) fn create(
        dir: OwnedFd,
        dir_path: &Path,
        path: &Path,
        name: CString,
        force: bool,
        allow_tmpfile: bool,
    ) -> Result<PrivateFile, OutputError> {
        #[cfg(target_os = "linux")]
        if allow_tmpfile && sys::proc_fd_available() {
            match sys::open_tmpfile(dir.as_fd()) {
                Ok(file) => {
                    make_private(&file).map_err(|e| OutputError::io(path, "cannot make the output private", e))?;
                    return Ok(PrivateFile {
                        file,
                        dir,
                        dir_path: dir_path.to_path_buf(),
                        path: path.to_path_buf(),
                        name,
                        force,
                        temp: Temp::Unnamed,
                    });
                }
                Err(e) if tmpfile_unsupported(&e) => {}
                Err(e) => return Err(OutputError::io(path, CREATE, e)),
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = allow_tmpfile;
        let (file, temp) = create_named(dir.as_fd(), dir_path, &name).map_err(|e| OutputError::io(path, CREATE, e))?;
        Ok(PrivateFile {
            file,
            dir,
            dir_path: dir_path.to_path_buf(),
            path: path.to_path_buf(),
            name,
            force,
            temp: Temp::Named(Some(temp)),
        })
    }

    /// The open file, for the writers ([`Output::File`](super::Output::File)).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The output path this file will be published at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file has no name yet (a Linux `O_TMPFILE`), so nothing is visible in the
    /// directory until [`commit`](PrivateFile::commit).
    pub fn is_unnamed(&self) -> bool {
        self.temp_path().is_none()
    }

    /// The absolute path of the named temporary file, when the fallback is in use.
    pub fn temp_path(&self) -> Option<&Path> {
        match &self.temp {
            #[cfg(target_os = "linux")]
            Temp::Unnamed => None,
            Temp::Named(t) => t.as_ref().map(|t| t.registration.path()),
        }
    }

    /// Publishes the complete file at its path.
    ///
    /// Without `force` the name is claimed atomically (`linkat` of the `O_TMPFILE`, or
    /// `renameat2(RENAME_NOREPLACE)` of the named temp, or link + unlink where that is not
    /// supported): if anything exists there by now, this fails with [`OutputError::Exists`] and
    /// leaves it alone.
    ///
    /// With `force` the path must still be absent or a regular file (anything else that
    /// appeared meanwhile fails with [`OutputError::Changed`] and is left alone); it is then
    /// replaced atomically: readers see the old file or the new one, never a mix. (Between
    /// that check and the replacement, a few microseconds, a node swapped in by someone who
    /// can write the directory would be replaced.) On Linux the new file and the old one
    /// swap names (`renameat2(RENAME_EXCHANGE)`), then the old one is unlinked: rename(2)
    /// over an existing file makes ext4 (`auto_da_alloc`) allocate and start writing back
    /// the whole new file inside the call, 1.2 s for 1 GiB where the swap and unlink take
    /// 0.07 s (docs/decisions/replace.md). Like `cp`, pvdump does not wait for the data to
    /// reach the disk either way. Where the swap is not supported, rename(2) replaces.
    ///
    /// On any error the output is discarded: nothing new is left in the directory.
    pub fn commit(mut self) -> Result<(), OutputError> {
        match &mut self.temp {
            #[cfg(target_os = "linux")]
            Temp::Unnamed => self.commit_unnamed(),
            Temp::Named(slot) => {
                let Some(temp) = slot.take() else {
                    return Err(OutputError::io(
                        &self.path,
                        PUBLISH,
                        io::Error::new(io::ErrorKind::NotFound, "the temporary file is gone"),
                    ));
                };
                let result = self.commit_named(&temp.name);
                if result.is_err() {
                    let _ = sys::unlink_at(self.dir.as_fd(), &temp.name);
                }
                drop(temp);
                result
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn commit_unnamed(&self) -> Result<(), OutputError> {
        let dir = self.dir.as_fd();
        if !self.force {
            return sys::link_fd_at(&self.file, dir, &self.name).map_err(|e| self.publish_error(e));
        }
        self.recheck()?;
        // linkat cannot replace: link to a fresh temporary name, then rename that over the
        // output. The named window is these two system calls; the name is registered for it.
        let mut last = None;
        for _ in 0..NAME_TRIES {
            let (name, full) = temp_name(&self.dir_path, &self.name).map_err(|e| self.publish_error(e))?;
            let registration = registry::register(&full).map_err(|e| self.publish_error(e))?;
            match sys::link_fd_at(&self.file, dir, &name) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(self.publish_error(e)),
            }
            let replaced = self.replace(&name);
            if replaced.is_err() {
                let _ = sys::unlink_at(dir, &name);
            }
            drop(registration);
            return replaced;
        }
        Err(self.publish_error(last.unwrap_or_else(|| io::Error::other("no free temporary name"))))
    }

    fn commit_named(&self, temp: &CStr) -> Result<(), OutputError> {
        let dir = self.dir.as_fd();
        if self.force {
            self.recheck()?;
            return self.replace(temp);
        }
        #[cfg(target_os = "linux")]
        match sys::rename_noreplace_at(dir, temp, &self.name) {
            Ok(()) => return Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)) => {}
            Err(e) => return Err(self.publish_error(e)),
        }
        // No RENAME_NOREPLACE: link(2) claims the name just as atomically, then the temporary
        // name goes.
        match sys::link_at(dir, temp, &self.name) {
            Ok(()) => sys::unlink_at(dir, temp)
                .map_err(|e| OutputError::io(&self.path, "cannot remove the temporary file", e)),
            // A file system without hard links (FAT, some network file systems): check, then
            // rename. Not atomic: a file created in between would be replaced.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EOPNOTSUPP | libc::EMLINK)) => {
                match sys::node_at(dir, &self.name) {
                    Ok(None) => sys::rename_at(dir, temp, &self.name).map_err(|e| self.publish_error(e)),
                    Ok(Some(_)) => Err(OutputError::Exists {
                        path: self.path.clone(),
                    }),
                    Err(e) => Err(self.publish_error(e)),
                }
            }
            Err(e) => Err(self.publish_error(e)),
        }
    }

    /// Puts the finished file, named `temp`, at the output path in place of whatever is
    /// there (see [`commit`](PrivateFile::commit)). On error `temp` may name the new file or,
    /// after a swap whose old file could not be unlinked, the old one; the caller removes it.
    fn replace(&self, temp: &CStr) -> Result<(), OutputError> {
        let dir = self.dir.as_fd();
        #[cfg(target_os = "linux")]
        match sys::exchange_at(dir, temp, &self.name) {
            Ok(()) => return self.remove_replaced(temp),
            // Nothing to swap with (the path is free), or no RENAME_EXCHANGE here.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                ) => {}
            Err(e) => return Err(OutputError::io(&self.path, REPLACE, e)),
        }
        sys::rename_at(dir, temp, &self.name).map_err(|e| OutputError::io(&self.path, REPLACE, e))
    }

    /// After the swap: unlinks the old node, now named `temp`. A directory (swapped in
    /// after [`recheck`](Self::recheck); rename(2) would have refused it) is swapped back
    /// and reported as [`OutputError::Changed`].
    #[cfg(target_os = "linux")]
    fn remove_replaced(&self, temp: &CStr) -> Result<(), OutputError> {
        let dir = self.dir.as_fd();
        let Err(e) = sys::unlink_at(dir, temp) else {
            return Ok(());
        };
        if matches!(sys::node_at(dir, temp), Ok(Some(NodeKind::Directory)))
            && sys::exchange_at(dir, temp, &self.name).is_ok()
        {
            return Err(OutputError::Changed {
                path: self.path.clone(),
                now: NodeKind::Directory,
            });
        }
        Err(OutputError::io(
            &self.path,
            "replaced the file, but cannot remove the old one",
            e,
        ))
    }

    /// With `force`, before replacing: the output path must be absent or a regular file.
    fn recheck(&self) -> Result<(), OutputError> {
        match sys::node_at(self.dir.as_fd(), &self.name) {
            Ok(None | Some(NodeKind::Regular)) => Ok(()),
            Ok(Some(now)) => Err(OutputError::Changed {
                path: self.path.clone(),
                now,
            }),
            Err(e) => Err(OutputError::io(
                &self.path,
                "cannot check the output path before replacing it",
                e,
            )),
        }
    }

    /// `AlreadyExists` from a no-replace publish is [`OutputError::Exists`].
    fn publish_error(&self, e: io::Error) -> OutputError {
        if e.kind() == io::ErrorKind::AlreadyExists {
            OutputError::Exists {
                path: self.path.clone(),
            }
        } else {
            OutputError::io(&self.path, PUBLISH, e)
        }
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        // An O_TMPFILE vanishes when `file` is closed; a named temp is removed (then its
        // registration is dropped, in that order, so a signal in between finds nothing).
        if let Temp::Named(slot) = &mut self.temp
            && let Some(temp) = slot.take()
        {
            let _ = sys::unlink_at(self.dir.as_fd(), &temp.name);
        }
    }
}

const CREATE: &str = "cannot create a file in the output's directory";
const PUBLISH: &str = "cannot give the finished output its name";
const REPLACE: &str = "cannot replace the existing file";

/// Sets mode 0600 exactly (fchmod): creation already masked 0600 with the umask, so the file
/// was never more open than this; the umask might have made it less (0400 under umask 0277).
pub(super) fn make_private(file: &File) -> io::Result<()> {
    file.set_permissions(Permissions::from_mode(u32::from(sys::PRIVATE_MODE)))
}

/// Errors of `O_TMPFILE` that mean "not supported here" rather than "not allowed": the file
/// system lacks it (EOPNOTSUPP), or the kernel predates it (3.11) and took the flags for a
/// directory open (EISDIR), or rejects them (EINVAL).
#[cfg(target_os = "linux")]
fn tmpfile_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL))
}

/// Creates a named temporary file next to `path` (O_EXCL, O_NOFOLLOW, 0600), registered.
fn create_named(dir: BorrowedFd<'_>, dir_path: &Path, name: &CStr) -> io::Result<(File, NamedTemp)> {
    let mut last = None;
    for _ in 0..NAME_TRIES {
        let (temp, full) = temp_name(dir_path, name)?;
        // Registered before it exists, so no moment has an unregistered named file.
        let registration = registry::register(&full)?;
        match sys::create_excl(dir, &temp) {
            Ok(file) => {
                let temp = NamedTemp {
                    name: temp,
                    registration,
                };
                if let Err(e) = make_private(&file) {
                    let _ = sys::unlink_at(dir, &temp.name);
                    return Err(e);
                }
                return Ok((file, temp));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// A fresh `.NAME.pvdump-PID-RANDOM.tmp` for the output `name` in `dir_path`: the name in the
/// directory, and the full path (for the registry and messages).
fn temp_name(dir_path: &Path, name: &CStr) -> io::Result<(CString, PathBuf)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    let bytes = name.to_bytes();
    let mut v = Vec::with_capacity(NAME_KEEP + 48);
    v.push(b'.');
    v.extend_from_slice(&bytes[..bytes.len().min(NAME_KEEP)]);
    v.extend_from_slice(format!(".pvdump-{}-{:016x}.tmp", std::process::id(), h.finish()).as_bytes());
    let full = dir_path.join(OsStr::from_bytes(&v));
    Ok((sys::cstring(&v)?, full))
}
