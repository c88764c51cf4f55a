//! `pvdump mount`: serve the decrypted dump as MOUNTPOINT/vmcore.elf through FUSE
//! (crates/mount), with the key, the checks and the exit codes of `decrypt`.
//!
//! Background mode re-executes this binary (`/proc/self/exe`) with `--foreground
//! --ready-fd N` in a new session: the child reads the key, checks the dump, mounts, reads
//! the file back through the mount, detaches its standard streams and writes `ready` to the
//! pipe; the parent then exits 0. If the child fails first, its message has already gone
//! to the shared stderr and the parent exits with the child's code (3 wrong key, 4 bad
//! dump, ...). Re-exec rather than fork: checking the dump may start threads, and a forked
//! copy of a multi-threaded process keeps none of them. With `--key -` the child inherits
//! standard input to read the key from; it lets go of it when it detaches.
//!
//! Signals: SIGINT, SIGTERM and SIGHUP get a handler that writes the signal number to a
//! pipe (async-signal-safe, whichever thread takes it); a dedicated thread reads the pipe
//! and unmounts, lazily when a reader holds the file. A second signal while detached ends
//! the server at once. SIGINT and SIGHUP stay ignored when they were (`nohup`). SIGBUS (the mapped dump was truncated under us) detaches the mount,
//! prints a message and exits 5, so no dead mount is left behind.

use crate::args::MountArgs;
use crate::exit::Failure;

#[cfg(not(target_os = "linux"))]
pub fn run(_args: &MountArgs) -> Result<(), Failure> {
    Err(Failure::new(
        crate::exit::Code::Io,
        anyhow::anyhow!("pvdump mount needs Linux (FUSE); use `pvdump decrypt` here"),
    ))
}

#[cfg(target_os = "linux")]
pub fn run(args: &MountArgs) -> Result<(), Failure> {
    if args.threads == Some(0) {
        return Err(Failure::usage("--threads must be at least 1"));
    }
    if args.foreground || args.ready_fd.is_some() {
        linux::serve(args)
    } else {
        linux::spawn_background(args)
    }
}

#[cfg(target_os = "linux")]
mod linux {
    /// A line on stderr; a closed stderr is not an error worth dying for.
    macro_rules! say {
        ($($t:tt)*) => {{
            let _ = writeln!(std::io::stderr(), $($t)*);
        }};
    }
    use std::ffi::CString;
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering};
    use std::sync::{Arc, OnceLock};

    use pvdump_core::Dump;
    use pvdump_mount::{DumpFs, FILE_NAME, MountError, Unmounted, Unmounter, mount};

    use crate::args::MountArgs;
    use crate::exit::{Code, Failure};
    use crate::input::{named, read_key};
    use crate::signals;

    const READY: &[u8] = b"ready\n";

    fn failure(e: MountError) -> Failure {
        match e {
            MountError::Dump(e) => Failure::from(e),
            e => Failure::new(Code::Io, e),
        }
    }

    fn os_error(what: &str) -> Failure {
        Failure::io(what, std::io::Error::last_os_error())
    }

    fn pipe() -> Result<(OwnedFd, OwnedFd), Failure> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two new descriptors into `fds`.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(os_error("creating a pipe"));
        }
        // SAFETY: both descriptors are new and owned by nobody else.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    // ---------------------------------------------------------------- signals

    /// Write end of the signal pipe, or -1.
    static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);
    /// The mount point as a C string for the SIGBUS handler, or null.
    static MOUNTED_AT: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

    extern "C" fn on_terminate(sig: libc::c_int) {
        let fd = SIGNAL_PIPE.load(Ordering::SeqCst);
        if fd >= 0 {
            let byte = sig as u8;
            // SAFETY: write and errno access are async-signal-safe; errno is restored so the
            // interrupted code sees its own.
            unsafe {
                let errno = *libc::__errno_location();
                libc::write(fd, (&byte as *const u8).cast(), 1);
                *libc::__errno_location() = errno;
            }
        }
    }

    extern "C" fn on_sigbus(_sig: libc::c_int) {
        const MSG: &[u8] = b"pvdump: error: the dump file changed while it was being served (it was truncated or its storage failed: SIGBUS); the mount was detached\n";
        let p = MOUNTED_AT.load(Ordering::SeqCst);
        // SAFETY: umount2, write and _exit are async-signal-safe; `p` is null or a C string
        // that is never freed.
        unsafe {
            if !p.is_null() {
                libc::umount2(p, libc::MNT_DETACH);
            }
            libc::write(2, MSG.as_ptr().cast(), MSG.len());
            libc::_exit(Code::Io as i32);
        }
    }

    /// Installs `handler` for `sig` (SA_RESTART); with `keep_ignored`, a signal that is
    /// ignored (as `nohup` or a script's background job leave SIGHUP and SIGINT) stays so.
    fn set_handler(sig: libc::c_int, handler: extern "C" fn(libc::c_int), keep_ignored: bool) -> Result<(), Failure> {
        // SAFETY: sigaction with zeroed structures (a valid empty mask), querying first; the
        // handlers only make async-signal-safe calls.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if keep_ignored
                && libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
            {
                return Ok(());
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(os_error("installing a signal handler"));
            }
        }
        Ok(())
    }

    /// Routes SIGINT, SIGTERM and SIGHUP into a pipe (replacing the handlers `decrypt`
    /// uses) and returns its read end.
    fn catch_terminate_signals() -> Result<File, Failure> {
        let (r, w) = pipe()?;
        // The write end lives as long as the process: the handler may run at any time.
        SIGNAL_PIPE.store(std::os::fd::IntoRawFd::into_raw_fd(w), Ordering::SeqCst);
        set_handler(libc::SIGINT, on_terminate, true)?;
        set_handler(libc::SIGHUP, on_terminate, true)?;
        set_handler(libc::SIGTERM, on_terminate, false)?;
        Ok(File::from(r))
    }

    /// What the signal thread and the main thread share.
    #[derive(Default)]
    struct Stop {
        /// A signal arrived (before the mount existed, the main thread acts on it).
        requested: AtomicBool,
        unmounter: OnceLock<Unmounter>,
        quiet: bool,
    }

    impl Stop {
        /// Unmounts; a busy mount is detached and keeps serving its open file.
        fn unmount(&self) -> Unmounted {
            let Some(u) = self.unmounter.get() else {
                return Unmounted::Clean;
            };
            match u.unmount() {
                Ok(Unmounted::Detached) => {
                    if !self.quiet {
                        say!(
                            "pvdump: {} is in use: detached; serving the open file until it is closed (signal again to stop now)",
                            u.mountpoint().display()
                        );
                    }
                    Unmounted::Detached
                }
                Ok(Unmounted::Clean) => Unmounted::Clean,
                Err(e) => {
                    say!("pvdump: error: {e}");
                    Unmounted::Clean
                }
            }
        }
    }

    /// Reads signal numbers from the pipe: the first unmounts, a second one after a lazy
    /// detach ends the process (readers of the detached file then get errors).
    fn signal_thread(mut pipe: File, stop: Arc<Stop>) -> Result<(), Failure> {
        std::thread::Builder::new()
            .name("pvdump-signals".into())
            .spawn(move || {
                let mut detached = false;
                let mut byte = [0u8; 1];
                while pipe.read_exact(&mut byte).is_ok() {
                    if detached {
                        std::process::exit(Code::Success as i32);
                    }
                    stop.requested.store(true, Ordering::SeqCst);
                    detached = stop.unmount() == Unmounted::Detached;
                }
            })
            .map(drop)
            .map_err(|e| Failure::io("starting the signal thread", e))
    }

    // ---------------------------------------------------------------- the server

    /// The ready pipe handed down by the background parent (validated: it must be a pipe).
    fn ready_pipe(fd: RawFd) -> Result<File, Failure> {
        // SAFETY: fstat on an arbitrary number only reads into `st`.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if fd < 3 || unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFIFO {
            return Err(Failure::usage(format!("--ready-fd {fd} is not an inherited pipe")));
        }
        // SAFETY: the descriptor is open, a pipe, and ours alone (the parent closed its
        // copy of the write end); close-on-exec keeps it out of fusermount3.
        let pipe = unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            File::from_raw_fd(fd)
        };
        // Started as /proc/self/exe, the process would be named "exe" (pgrep, top).
        // SAFETY: PR_SET_NAME copies a NUL-terminated name of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"pvdump".as_ptr()) };
        Ok(pipe)
    }

    /// Standard streams to /dev/null and the working directory to `/`, so the background
    /// server holds neither the caller's terminal or pipes nor a directory.
    fn detach_stdio() -> Result<(), Failure> {
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| Failure::io("opening /dev/null", e))?;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors.
            if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
                return Err(os_error("redirecting the standard streams"));
            }
        }
        std::env::set_current_dir("/").map_err(|e| Failure::io("changing to /", e))
    }

    pub fn serve(args: &MountArgs) -> Result<(), Failure> {
        let ready = args.ready_fd.map(ready_pipe).transpose()?;
        let quiet = args.quiet || ready.is_some();
        let cck = read_key(&args.key, args.quiet)?;
        signals::check()?;
        let dump = Dump::open_encrypted(&args.dump, &cck).map_err(|e| named(e, &args.dump))?;
        drop(cck);
        signals::check()?;
        crate::input::warn_irregularities(&dump, &args.dump);
        if !args.quiet {
            for cpu in dump.cpus()?.iter().filter(|c| c.regs.has_osii) {
                say!(
                    "pvdump: warning: CPU {} was dumped in the middle of an instruction (has_osii): its registers may contain partial instruction results",
                    cpu.index
                );
            }
        }
        let fs = DumpFs::new(dump, args.threads).map_err(failure)?;
        let len = fs.len();

        let stop = Arc::new(Stop {
            quiet,
            ..Stop::default()
        });
        signal_thread(catch_terminate_signals()?, stop.clone())?;
        set_handler(libc::SIGBUS, on_sigbus, false)?;
        let server = mount(fs, &args.mountpoint).map_err(failure)?;
        if let Ok(c) = CString::new(server.mountpoint().as_os_str().as_bytes()) {
            MOUNTED_AT.store(c.into_raw(), Ordering::SeqCst);
        }
        let _ = stop.unmounter.set(server.unmounter());
        if stop.requested.load(Ordering::SeqCst) {
            // A signal arrived while mounting: the signal thread found nothing to unmount.
            stop.unmount();
        } else if let Err(e) = server.check_readable()
            && !stop.requested.load(Ordering::SeqCst)
        {
            // (Unless a signal unmounted it meanwhile.) Dropping the server unmounts it.
            drop(server);
            return Err(failure(e));
        }
        let mnt = server.mountpoint().display().to_string();
        match ready {
            Some(mut pipe) => {
                detach_stdio()?;
                // The parent exits as soon as it reads this.
                let _ = pipe.write_all(READY);
            }
            None if !quiet => {
                say!("pvdump: serving {mnt}/{FILE_NAME} ({len} bytes) until unmounted: Ctrl-C, or umount {mnt}")
            }
            None => {}
        }
        server.wait().map_err(failure)?;
        if !quiet {
            say!("pvdump: unmounted {mnt}");
        }
        Ok(())
    }

    // ---------------------------------------------------------------- background

    /// Starts the server in the background and returns once its file is readable; exits
    /// with the server's own code when it fails before that (it printed the reason).
    pub fn spawn_background(args: &MountArgs) -> Result<(), Failure> {
        let (ready_r, ready_w) = pipe()?;
        let wfd = ready_w.as_raw_fd();
        let mut cmd = Command::new("/proc/self/exe");
        if let Some(arg0) = std::env::args_os().next() {
            // `ps` shows pvdump, not /proc/self/exe.
            cmd.arg0(arg0);
        }
        cmd.args(std::env::args_os().skip(1))
            .arg("--foreground")
            .arg("--ready-fd")
            .arg(wfd.to_string())
            // `--key -`: the server reads the key from our standard input (and lets go of it
            // when it detaches); otherwise it never needs it.
            .stdin(if args.key.as_os_str() == "-" {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: only async-signal-safe calls (setsid, fcntl) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Its own session: the terminal's Ctrl-C and hangup no longer reach it.
                libc::setsid();
                let flags = libc::fcntl(wfd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(wfd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // Interrupting the parent while the server starts stops the server too.
        let signals = catch_terminate_signals()?;
        let mut child = cmd
            .spawn()
            .map_err(|e| Failure::io("starting the background server (/proc/self/exe)", e))?;
        drop(ready_w);
        let mut ready = File::from(ready_r);
        let (got_ready, interrupted) = wait_ready(&mut ready, &signals, child.id());
        if got_ready && !interrupted {
            if !args.quiet {
                let mnt = std::fs::canonicalize(&args.mountpoint).unwrap_or_else(|_| args.mountpoint.clone());
                say!(
                    "pvdump: serving {} in the background (pid {}); unmount with: umount {}",
                    mnt.join(FILE_NAME).display(),
                    child.id(),
                    mnt.display()
                );
            }
            return Ok(());
        }
        let status = child
            .wait()
            .map_err(|e| Failure::io("waiting for the background server", e))?;
        if interrupted {
            std::process::exit(Code::Interrupted as i32);
        }
        match (status.code(), status.signal()) {
            // The server printed its error on our shared stderr; pass its code on.
            (Some(code), _) if code != 0 => std::process::exit(code),
            (_, Some(sig)) => Err(Failure::new(
                Code::Io,
                anyhow::anyhow!("the background server was killed by signal {sig} before the mount was ready"),
            )),
            _ => Err(Failure::new(
                Code::Io,
                anyhow::anyhow!("the background server ended before the mount was ready"),
            )),
        }
    }

    /// Waits for `ready` on the pipe (or its end); a signal meanwhile is passed on to the
    /// server as SIGTERM. Returns (ready seen, interrupted).
    fn wait_ready(ready: &mut File, signals: &File, child: u32) -> (bool, bool) {
        let mut got = Vec::new();
        let mut interrupted = false;
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: ready.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: signals.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll on two valid descriptors.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            if fds[1].revents != 0 {
                let mut b = [0u8; 16];
                let _ = (&*signals).read(&mut b);
                if !interrupted {
                    interrupted = true;
                    // SAFETY: signalling our own child, which has not been waited for.
                    unsafe { libc::kill(child as libc::pid_t, libc::SIGTERM) };
                }
            }
            if fds[0].revents != 0 {
                let mut buf = [0u8; 64];
                match ready.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
                if got.starts_with(READY) {
                    return (true, interrupted);
                }
            }
        }
        (got.starts_with(READY), interrupted)
    }
}
