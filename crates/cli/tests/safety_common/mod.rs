//! Helpers shared by the safety_* tests (output safety of the binary, issue 9): synthetic
//! dumps and keys, `pvdump decrypt` commands, exit-code checks, FIFOs and terminals.
#![allow(dead_code)]

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pvdump_synth::SynthSpec;

use crate::common::scratch;

pub const BIN: &str = env!("CARGO_BIN_EXE_pvdump");

pub fn pvdump() -> Command {
    let mut c = Command::new(BIN);
    c.stdin(Stdio::null());
    c
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts the exit code and that nothing panicked; returns stderr.
pub fn expect_code(o: &Output, code: i32, what: &str) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{what}: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{what}: {err}"
    );
    err
}

pub fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        path.display()
    );
}

pub fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A synthetic dump and its key (mode 0600) in `dir`.
pub fn fixture(dir: &Path, seed: u64, mib: u64, cpus: usize) -> (PathBuf, PathBuf, SynthSpec) {
    let spec = SynthSpec::simple(seed, mib, cpus);
    let dump = dir.join("dump.elf");
    let key = dir.join("cck.bin");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(&dump).unwrap());
    spec.write_dump(&mut w).unwrap();
    w.flush().unwrap();
    drop(w);
    fs::write(&key, spec.cck()).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    (dump, key, spec)
}

/// A 2 MiB dump and its key, and the ELF and kdump outputs of a plain decrypt, shared by the
/// tests (read only).
pub struct Small {
    pub dump: PathBuf,
    pub key: PathBuf,
    pub elf: Vec<u8>,
    pub cck: [u8; 32],
}

pub fn small() -> &'static Small {
    static SMALL: OnceLock<Small> = OnceLock::new();
    SMALL.get_or_init(|| {
        let dir = scratch("safety-small");
        let (dump, key, spec) = fixture(&dir, 0x5afe_0002, 2, 2);
        let out = dir.join("reference.elf");
        let o = pvdump()
            .args(["decrypt", "-q", "--key"])
            .arg(&key)
            .arg(&dump)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        expect_code(&o, 0, "reference decrypt");
        let elf = fs::read(&out).unwrap();
        fs::remove_file(&out).unwrap();
        Small {
            dump,
            key,
            elf,
            cck: spec.cck(),
        }
    })
}

/// A 256 MiB dump of random pages (no zero or shared pages) and its key, shared by the tests
/// that need a run long enough to act on while it writes (with --threads 1).
pub fn big() -> &'static (PathBuf, PathBuf) {
    static BIG: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BIG.get_or_init(|| {
        let dir = scratch("safety-big");
        let spec = {
            let mut s = SynthSpec::simple(0x5afe_0256, 256, 1);
            s.zero_permille = 0;
            s.shared_permille = 0;
            s
        };
        let dump = dir.join("dump.elf");
        let key = dir.join("cck.bin");
        let mut w = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(&dump).unwrap());
        spec.write_dump(&mut w).unwrap();
        w.flush().unwrap();
        drop(w);
        fs::write(&key, spec.cck()).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        (dump, key)
    })
}

/// `pvdump decrypt -q --key KEY DUMP -o OUT` plus `extra`.
pub fn decrypt(key: &Path, dump: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = pvdump();
    c.args(["decrypt", "-q"])
        .args(extra)
        .arg("--key")
        .arg(key)
        .arg(dump)
        .arg("-o")
        .arg(out);
    c
}

/// `--format FORMAT`, and for kdump no compression (so the output is as large as the memory).
pub fn format_args(format: &str) -> &'static [&'static str] {
    if format == "elf" {
        &["--format", "elf"]
    } else {
        &["--format", "kdump", "-c", "none"]
    }
}

/// Runs `cmd` with the given umask.
pub fn with_umask(cmd: &mut Command, mask: libc::mode_t) -> &mut Command {
    // SAFETY: umask(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask);
            Ok(())
        })
    }
}

/// A pseudo-terminal: (master descriptor, slave path).
pub fn pty() -> (libc::c_int, PathBuf) {
    // SAFETY: plain calls on a descriptor this function owns; ptsname's static buffer is
    // copied at once.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let name = libc::ptsname(master);
        assert!(!name.is_null());
        let path = PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
            std::ffi::CStr::from_ptr(name).to_bytes(),
        ));
        (master, path)
    }
}

/// Opens `fifo` for writing once pvdump has opened it to read the key (by then it has checked
/// and opened its output), and returns the handle. Panics after 30 s without a reader.
pub fn key_writer(fifo: &Path) -> fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    let start = Instant::now();
    loop {
        // Non-blocking: fails with ENXIO while no reader has the FIFO open.
        match fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
        {
            Ok(f) => {
                // SAFETY: fcntl on a descriptor `f` owns; back to blocking writes.
                assert_eq!(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, 0) }, 0);
                return f;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "pvdump never opened {}",
                    fifo.display()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{}: {e}", fifo.display()),
        }
    }
}
