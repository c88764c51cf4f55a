//! The named temporary files not yet published, kept where a signal handler can remove them.
//!
//! A fixed array of atomic pointers to NUL-terminated absolute paths: registering allocates
//! (in normal context), while [`remove_temp_files_from_signal_handler`] only loads atomics and
//! calls unlink(2), both async-signal-safe: no allocation, no lock. A path is freed only after
//! it was taken out of its slot *and* no remover is running (a counter of removers in
//! progress), so a handler on another thread never reads freed memory.
//!
//! On Linux the output is normally an unnamed `O_TMPFILE` and nothing is registered at all;
//! the registry holds the fallback temp files and the short-lived name used when `--force`
//! replaces a file.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use super::sys;

/// How many temporary files can be pending at once (pvdump itself uses one).
const SLOTS: usize = 64;

static PENDING: [AtomicPtr<libc::c_char>; SLOTS] = [const { AtomicPtr::new(ptr::null_mut()) }; SLOTS];

/// Removers (signal handlers or [`remove_pending_temp_files`]) reading [`PENDING`] right now.
static REMOVERS: AtomicUsize = AtomicUsize::new(0);

/// A registered path. Dropping it takes the path out of the registry (the file itself is the
/// owner's to remove or rename first).
#[derive(Debug)]
pub(super) struct Registration {
    slot: usize,
    path: PathBuf,
}

impl Registration {
    /// The absolute path registered.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

/// Registers `path` (made absolute, so a handler's unlink does not depend on the working
/// directory). Fails when the path holds a NUL byte or every slot is taken.
pub(super) fn register(path: &Path) -> std::io::Result<Registration> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let raw = sys::cstring(path.as_os_str().as_bytes())?.into_raw();
    for (slot, cell) in PENDING.iter().enumerate() {
        if cell
            .compare_exchange(ptr::null_mut(), raw, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return Ok(Registration { slot, path });
        }
    }
    // SAFETY: `raw` came from CString::into_raw above and was never published.
    drop(unsafe { CString::from_raw(raw) });
    Err(std::io::Error::other(format!(
        "more than {SLOTS} temporary output files pending at once"
    )))
}

impl Drop for Registration {
    fn drop(&mut self) {
        let raw = PENDING[self.slot].swap(ptr::null_mut(), Ordering::SeqCst);
        if raw.is_null() {
            return;
        }
        // A remover that loaded `raw` before the swap is still counted in REMOVERS; one that
        // starts after it finds the slot empty. Wait for the former (a remover runs a few
        // unlinks; one on this very thread has already returned).
        while REMOVERS.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        // SAFETY: `raw` came from CString::into_raw in `register`, left the registry with the
        // swap above, and no remover can still hold it.
        drop(unsafe { CString::from_raw(raw) });
    }
}

/// Unlinks every registered path. Async-signal-safe: atomics and unlink(2) only.
fn unlink_all() {
    REMOVERS.fetch_add(1, Ordering::SeqCst);
    for cell in &PENDING {
        let p = cell.load(Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: a non-null slot holds a NUL-terminated path that is not freed while
            // REMOVERS is non-zero; unlink is async-signal-safe.
            unsafe { libc::unlink(p) };
        }
    }
    REMOVERS.fetch_sub(1, Ordering::SeqCst);
}

/// Removes every named temporary output file not yet published, from a signal handler (for
/// instance SIGBUS or a second SIGINT, just before `_exit`). Uses only atomics and unlink(2),
/// which are async-signal-safe; allocates nothing and takes no lock.
///
/// The files' owners still hold their registrations: a later publish of a removed file fails
/// with an I/O error.
pub fn remove_temp_files_from_signal_handler() {
    unlink_all();
}

/// Removes every named temporary output file not yet published (normal context, e.g. a thread
/// that handles a cancellation before exiting). An unnamed `O_TMPFILE` output needs no
/// cleanup: it disappears with the process.
pub fn remove_pending_temp_files() {
    unlink_all();
}

/// The paths registered now (tests).
#[cfg(test)]
pub(super) fn registered() -> Vec<PathBuf> {
    REMOVERS.fetch_add(1, Ordering::SeqCst);
    let v = PENDING
        .iter()
        .filter_map(|cell| {
            let p = cell.load(Ordering::SeqCst);
            (!p.is_null()).then(|| {
                // SAFETY: as in `unlink_all`: a registered path is not freed while REMOVERS is
                // non-zero.
                let bytes = unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes();
                PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
            })
        })
        .collect();
    REMOVERS.fetch_sub(1, Ordering::SeqCst);
    v
}
