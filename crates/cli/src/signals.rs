//! Signals.
//!
//! SIGINT, SIGTERM, SIGHUP (the terminal or ssh session closed): set [`CANCEL`], which the
//! writers poll between chunks (512 KiB) and the commands check between stages ([`check`]); the
//! unfinished output is discarded (an unnamed `O_TMPFILE` vanishes with its descriptor; the
//! named temporary file of the fallback is removed) and pvdump exits with 130. A watcher
//! thread ends the process two seconds later if the work does not stop by itself (a write
//! blocked on a stuck pipe, a key read waiting on a FIFO). A second signal ends it at once,
//! after removing the registered temporary files from the handler (async-signal-safe). A
//! signal that was ignored when pvdump started (`nohup`, a background job of a script) stays
//! ignored, except SIGTERM.
//!
//! SIGBUS: the dump is memory-mapped. If another process truncates it while pvdump reads it,
//! touching a page past the new end raises SIGBUS. The handler removes the registered
//! temporary files, prints a fixed message and exits with 5.
//!
//! SIGPIPE stays ignored (as the Rust runtime sets it): a closed output pipe is an EPIPE
//! error, turned into the quiet exit status 141 by the callers.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::exit::{Code, Failure};

/// Set by the first SIGINT, SIGTERM or SIGHUP.
pub static CANCEL: AtomicBool = AtomicBool::new(false);

/// Stops a command between stages once a signal came.
pub fn check() -> Result<(), Failure> {
    if CANCEL.load(Ordering::SeqCst) {
        Err(Failure::new(Code::Interrupted, anyhow::anyhow!("interrupted")))
    } else {
        Ok(())
    }
}

extern "C" fn on_sigbus(_sig: libc::c_int) {
    const MSG: &[u8] = b"pvdump: error: the dump file changed while it was being read (it was truncated or its storage failed: SIGBUS); no output was written\n";
    // Only atomics and unlink(2).
    pvdump_vmcore::remove_temp_files_from_signal_handler();
    // SAFETY: write and _exit are async-signal-safe.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::_exit(Code::Io as libc::c_int);
    }
}

extern "C" fn on_cancel(_sig: libc::c_int) {
    if CANCEL.swap(true, Ordering::SeqCst) {
        // A second signal: the user insists. Remove what has a name, then go.
        pvdump_vmcore::remove_temp_files_from_signal_handler();
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(Code::Interrupted as libc::c_int) };
    }
}

/// Installs `handler` for `sig` (with SA_RESTART, so blocking calls resume and the writers
/// see the flag); with `keep_ignored`, leaves a signal alone that was ignored at startup.
fn set(sig: libc::c_int, handler: extern "C" fn(libc::c_int), keep_ignored: bool) {
    // SAFETY: sigaction with zeroed structures (a valid empty mask), querying first; the
    // handlers only touch atomics and call async-signal-safe functions.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if keep_ignored && libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN {
            return;
        }
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Installs the handlers and the watcher thread.
pub fn install() {
    set(libc::SIGINT, on_cancel, true);
    set(libc::SIGHUP, on_cancel, true);
    set(libc::SIGTERM, on_cancel, false);
    set(libc::SIGBUS, on_sigbus, false);
    // Without the watcher (no thread to be had) the writers still stop on the flag.
    let _ = std::thread::Builder::new().name("signal-watcher".into()).spawn(|| {
        while !CANCEL.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Give the writers two seconds to notice and clean up themselves (a blocked write
        // to a stuck pipe may never return).
        std::thread::sleep(std::time::Duration::from_secs(2));
        pvdump_vmcore::remove_pending_temp_files();
        let _ = writeln!(std::io::stderr(), "pvdump: interrupted");
        std::process::exit(Code::Interrupted as i32);
    });
}
