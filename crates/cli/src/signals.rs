//! SIGINT/SIGTERM: set a flag the writers poll between chunks, so they stop, the temporary
//! output is removed, and pvdump exits with 130. A second signal exits at once after
//! removing pending temporary files.
//!
//! SIGBUS: the dump is memory-mapped. If another process truncates it while pvdump reads
//! it, touching a page past the new end raises SIGBUS. The handler removes the temporary
//! output (its path is kept as a C string for exactly this), prints a fixed message and
//! exits with 5, using only async-signal-safe calls (unlink, write, _exit).

use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

pub static CANCEL: AtomicBool = AtomicBool::new(false);

/// The temporary output file, as a NUL-terminated path, or null.
static TEMP_PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

/// Remembers the temporary output so the SIGBUS handler can remove it.
pub fn set_temp_path(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    let old = TEMP_PATH.swap(c.into_raw(), Ordering::SeqCst);
    if !old.is_null() {
        // SAFETY: `old` came from CString::into_raw above and is no longer reachable.
        drop(unsafe { CString::from_raw(old) });
    }
}

/// Forgets the temporary output (it was renamed or removed).
pub fn clear_temp_path() {
    let old = TEMP_PATH.swap(std::ptr::null_mut(), Ordering::SeqCst);
    if !old.is_null() {
        // SAFETY: as in `set_temp_path`. A SIGBUS handler running at this very moment may
        // still read it; the window is a few instructions after the output is complete.
        drop(unsafe { CString::from_raw(old) });
    }
}

extern "C" fn on_sigbus(_sig: libc::c_int) {
    const MSG: &[u8] = b"pvdump: error: the dump file changed while it was being read (it was truncated or its storage failed: SIGBUS); no output was written\n";
    let p = TEMP_PATH.load(Ordering::SeqCst);
    // SAFETY: unlink, write and _exit are async-signal-safe; `p` is null or a valid C string.
    unsafe {
        if !p.is_null() {
            libc::unlink(p);
        }
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::_exit(5);
    }
}

extern "C" fn on_signal(_sig: libc::c_int) {
    if CANCEL.swap(true, Ordering::SeqCst) {
        // Second signal: the user insists. Only async-signal-safe calls are allowed here,
        // so the temporary files are left to the cleanup thread started in `install`.
        unsafe { libc::_exit(130) };
    }
}

/// Installs the handlers and a watcher thread that removes temporary files once the
/// writers have had a moment to stop on their own.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
        libc::signal(
            libc::SIGBUS,
            on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    std::thread::spawn(|| {
        while !CANCEL.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Give the writers two seconds to notice and clean up themselves (a blocked write
        // to a stuck pipe may never return).
        std::thread::sleep(std::time::Duration::from_secs(2));
        pvdump_vmcore::remove_pending_temp_files();
        eprintln!("pvdump: interrupted");
        std::process::exit(130);
    });
}
