//! The libc calls the output module needs, each behind a small safe function. Every `unsafe`
//! block of the module outside the signal-safe registry is here.
//!
//! All paths are relative to a directory handle (`*at()` calls), so a parent directory renamed
//! while pvdump works cannot redirect where the output lands.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::error::NodeKind;

/// Mode of every file the module creates: owner read/write, nothing for anyone else. (A
/// `u16`, which widens losslessly to `mode_t` and `c_uint` on every Unix.)
pub(super) const PRIVATE_MODE: u16 = 0o600;

/// A C string from path bytes (which cannot hold a NUL on Unix unless built by hand).
pub(super) fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Runs an open-like call again when a signal interrupted it (opening a FIFO blocks until a
/// reader comes, and a handler installed without SA_RESTART makes it fail with EINTR).
fn retry_open(mut call: impl FnMut() -> libc::c_int) -> io::Result<OwnedFd> {
    loop {
        match check(call()) {
            // SAFETY: the call returned a new descriptor that nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Opens a directory as a handle for the `*at()` calls: `O_PATH` on Linux (needs no read
/// permission on the directory), read-only elsewhere.
pub(super) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = cstring(path.as_os_str().as_bytes())?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: `c` is NUL-terminated and outlives the call.
    retry_open(|| unsafe { libc::open(c.as_ptr(), flags) })
}

/// What `name` in `dir` is, without following a symbolic link; `None` when nothing is there.
pub(super) fn node_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<NodeKind>> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `dir` is an open descriptor, `name` is NUL-terminated, and `st` points to
    // writable memory the size of a `struct stat`.
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENOENT) {
            Ok(None)
        } else {
            Err(e)
        };
    }
    // SAFETY: fstatat succeeded, so it filled in `st`.
    let st = unsafe { st.assume_init() };
    Ok(Some(NodeKind::from_mode(st.st_mode)))
}

/// Creates an unnamed regular file in `dir` (Linux `O_TMPFILE`), readable and writable, mode
/// 0600 masked by the umask (the caller sets 0600 exactly). It can be given a name later with
/// [`link_fd_at`]; closed without one, it disappears.
#[cfg(target_os = "linux")]
pub(super) fn open_tmpfile(dir: BorrowedFd<'_>) -> io::Result<File> {
    let flags = libc::O_RDWR | libc::O_TMPFILE | libc::O_CLOEXEC;
    // SAFETY: the path is a NUL-terminated literal; the mode argument is the variadic third
    // argument open(2) expects with O_TMPFILE.
    retry_open(|| unsafe { libc::openat(dir.as_raw_fd(), c".".as_ptr(), flags, libc::c_uint::from(PRIVATE_MODE)) })
        .map(File::from)
}

/// Creates `name` in `dir` as a new regular file, failing with `AlreadyExists` if anything,
/// even a dangling symbolic link, is there. Mode 0600 masked by the umask.
pub(super) fn create_excl(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<File> {
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `name` is NUL-terminated; the mode is the variadic argument O_CREAT requires.
    retry_open(|| unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, libc::c_uint::from(PRIVATE_MODE)) })
        .map(File::from)
}

/// Opens an existing `name` in `dir` for writing without creating, truncating or following a
/// symbolic link, and without making a terminal the controlling one. Blocks on a FIFO until a
/// reader opens it.
pub(super) fn open_stream(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<File> {
    let flags = libc::O_WRONLY | libc::O_NOCTTY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `name` is NUL-terminated and outlives the call.
    retry_open(|| unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(File::from)
}

/// Asks the kernel to drop the page cache of the regular file `name` in `dir`
/// (`POSIX_FADV_DONTNEED`), leaving its contents as they are: clean pages are freed now,
/// dirty ones are written back first and stay cached. Opens it read-only without following a
/// symbolic link, making a terminal the controlling one or waiting for a FIFO's writer, and
/// does nothing unless what it opened is a regular file. Returns whether it asked. A file
/// system that keeps files only in memory (tmpfs) ignores the advice.
#[cfg(target_os = "linux")]
pub(super) fn drop_cache_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<bool> {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: `name` is NUL-terminated and outlives the call.
    let file = File::from(retry_open(|| unsafe {
        libc::openat(dir.as_raw_fd(), name.as_ptr(), flags)
    })?);
    if !file.metadata()?.is_file() {
        return Ok(false);
    }
    // SAFETY: posix_fadvise on an open descriptor; no memory is passed. It returns the error
    // number instead of setting errno.
    match unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) } {
        0 => Ok(true),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Gives the open file `file` (an `O_TMPFILE`) the name `name` in `dir`, through its
/// `/proc/self/fd` link: linkat with `AT_SYMLINK_FOLLOW` works unprivileged, unlike
/// `AT_EMPTY_PATH`, which needs CAP_DAC_READ_SEARCH. Fails with `AlreadyExists` if anything is
/// at `name`; never follows or replaces it.
#[cfg(target_os = "linux")]
pub(super) fn link_fd_at(file: &File, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let src = cstring(format!("/proc/self/fd/{}", file.as_raw_fd()).as_bytes())?;
    // SAFETY: both strings are NUL-terminated and outlive the call; the descriptors are open.
    check(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            src.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

/// Whether `/proc/self/fd` exists, which [`link_fd_at`] needs.
#[cfg(target_os = "linux")]
pub(super) fn proc_fd_available() -> bool {
    Path::new("/proc/self/fd").is_dir()
}

/// Hard-links `old` to `new`, both in `dir`; `AlreadyExists` if `new` exists.
pub(super) fn link_at(dir: BorrowedFd<'_>, old: &CStr, new: &CStr) -> io::Result<()> {
    let d = dir.as_raw_fd();
    // SAFETY: both names are NUL-terminated; flags 0 follows nothing.
    check(unsafe { libc::linkat(d, old.as_ptr(), d, new.as_ptr(), 0) }).map(drop)
}

/// Renames `old` to `new` in `dir`, replacing `new` if it exists.
pub(super) fn rename_at(dir: BorrowedFd<'_>, old: &CStr, new: &CStr) -> io::Result<()> {
    let d = dir.as_raw_fd();
    // SAFETY: both names are NUL-terminated and outlive the call.
    check(unsafe { libc::renameat(d, old.as_ptr(), d, new.as_ptr()) }).map(drop)
}

/// Renames `old` to `new` in `dir` only if `new` does not exist (`renameat2` with
/// `RENAME_NOREPLACE`, Linux 3.15+, called through syscall(2) so an older C library does not
/// matter). File systems that lack it answer EINVAL; old kernels ENOSYS.
#[cfg(target_os = "linux")]
pub(super) fn rename_noreplace_at(dir: BorrowedFd<'_>, old: &CStr, new: &CStr) -> io::Result<()> {
    let d = libc::c_long::from(dir.as_raw_fd());
    // SAFETY: renameat2 takes (int, const char *, int, const char *, unsigned int); the names
    // are NUL-terminated and outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            d,
            old.as_ptr(),
            d,
            new.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Swaps `a` and `b` in `dir` atomically (`renameat2` with `RENAME_EXCHANGE`, Linux 3.15+,
/// through syscall(2)); both must exist (ENOENT otherwise). File systems that lack it answer
/// EINVAL; old kernels ENOSYS.
#[cfg(target_os = "linux")]
pub(super) fn exchange_at(dir: BorrowedFd<'_>, a: &CStr, b: &CStr) -> io::Result<()> {
    let d = libc::c_long::from(dir.as_raw_fd());
    // SAFETY: renameat2 takes (int, const char *, int, const char *, unsigned int); the names
    // are NUL-terminated and outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_renameat2, d, a.as_ptr(), d, b.as_ptr(), libc::RENAME_EXCHANGE) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Removes `name` from `dir` (not a directory).
pub(super) fn unlink_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; flags 0 removes a non-directory entry.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }).map(drop)
}

/// Whether `file` lives in memory (tmpfs or ramfs), by `fstatfs`. False where that cannot be
/// told.
#[cfg(target_os = "linux")]
pub(super) fn in_memory(file: &File) -> bool {
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    const RAMFS_MAGIC: u64 = 0x8584_58f6;
    let mut st = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs writes one `statfs` into the buffer we pass; we read it only on success.
    if unsafe { libc::fstatfs(file.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: fstatfs returned 0, so it filled the struct.
    let f_type = unsafe { st.assume_init() }.f_type;
    // `f_type` is i64 (glibc x86_64, arm64), u64 (musl) or u32 (glibc s390x); the magic
    // numbers are 32-bit, and a 32-bit signed field would sign-extend the top one.
    #[allow(clippy::unnecessary_cast)]
    let f_type = (f_type as u64) & 0xffff_ffff;
    matches!(f_type, TMPFS_MAGIC | RAMFS_MAGIC)
}

#[cfg(not(target_os = "linux"))]
pub(super) fn in_memory(_: &File) -> bool {
    false
}
