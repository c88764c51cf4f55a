//! SIGINT/SIGTERM: set a flag the writers poll between chunks, so they stop, the temporary
//! output is removed, and pvdump exits with 130. A second signal exits at once after
//! removing pending temporary files.

use std::sync::atomic::{AtomicBool, Ordering};

pub static CANCEL: AtomicBool = AtomicBool::new(false);

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
