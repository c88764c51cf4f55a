//! The output module on real files in scratch directories.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::*;

mod nodes;
mod publish;
mod temp;

/// The tests share process-wide state: the umask, and the temp-file registry that
/// `remove_pending_temp_files` empties for everyone. One at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pvdump-output-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory's entries, sorted.
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Undo a read-only test's chmod so the tree can be removed.
        if let Ok(entries) = fs::read_dir(&self.0) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o755));
                }
            }
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Both ways of creating the private file: O_TMPFILE (on Linux) and the named fallback.
const BOTH: [bool; 2] = [true, false];

fn policy(force: bool, allow_tmpfile: bool) -> Policy {
    Policy { force, allow_tmpfile }
}

fn open_file(path: &Path, policy: Policy) -> PrivateFile {
    match Destination::open(path, policy, &[]) {
        Ok(Destination::File(f)) => f,
        Ok(Destination::Stream(_)) => panic!("{}: opened as a stream", path.display()),
        Err(e) => panic!("{e}"),
    }
}

fn open_err(path: &Path, policy: Policy, protect: &[ProtectedInput]) -> OutputError {
    match Destination::open(path, policy, protect) {
        Ok(d) => panic!("{}: opened as {d:?}", path.display()),
        Err(e) => e,
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn kind_of(path: &Path) -> NodeKind {
    NodeKind::from(fs::symlink_metadata(path).unwrap().file_type())
}

/// The private file is unnamed exactly when O_TMPFILE was asked for (the scratch directories
/// live on file systems that have it: ext4, tmpfs, xfs, btrfs, overlayfs since Linux 6.6).
fn assert_unnamed(f: &PrivateFile, allow_tmpfile: bool) {
    let want = cfg!(target_os = "linux") && allow_tmpfile;
    assert_eq!(
        f.is_unnamed(),
        want,
        "{}: O_TMPFILE {}expected",
        f.path().display(),
        if want { "" } else { "not " }
    );
    assert_eq!(f.temp_path().is_some(), !want);
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        path.display()
    );
}

/// Restores the umask it replaced when dropped.
struct Umask(libc::mode_t);

impl Umask {
    fn set(mask: libc::mode_t) -> Umask {
        // SAFETY: umask cannot fail; the tests that depend on it hold SERIAL.
        Umask(unsafe { libc::umask(mask) })
    }
}

impl Drop for Umask {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::umask(self.0) };
    }
}

/// Set in a child run of this test binary as `nobody` (see [`rerun_as_nobody`]).
const CHILD_ENV: &str = "PVDUMP_OUTPUT_TEST_UNPRIVILEGED";

fn euid() -> libc::uid_t {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Runs the tests matching `filter` again in a child process as uid/gid 65534 (root may do
/// what the tests must see refused, and unprivileged linkat is what users get). Returns the
/// child's output, after checking that it succeeded.
fn rerun_as_nobody(filter: &str, exact: bool) -> String {
    use std::os::unix::process::CommandExt;
    assert!(std::env::var_os(CHILD_ENV).is_none(), "the child still runs as root");
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.arg(filter);
    if exact {
        cmd.arg("--exact");
    }
    let out = cmd
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn the_whole_module_works_unprivileged() {
    if euid() != 0 {
        println!("running as uid {}: every test here already runs unprivileged", euid());
        return;
    }
    let _g = serial();
    let text = rerun_as_nobody("output::tests::", false);
    let passed = text
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse::<u32>().ok());
    assert!(passed.is_some_and(|n| n >= 18), "{text}");
}

#[test]
fn a_read_only_directory_is_an_io_error_naming_the_path() {
    let euid = euid();
    if euid == 0 {
        // Root writes into a mode-0555 directory anyway: check it as nobody.
        let _g = serial();
        let text = rerun_as_nobody(
            "output::tests::a_read_only_directory_is_an_io_error_naming_the_path",
            true,
        );
        assert!(text.contains("read-only directory checked as uid 65534"), "{text}");
        return;
    }
    let _g = serial();
    let s = Scratch::new("readonly");
    let ro = s.path("ro");
    fs::create_dir(&ro).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    let out = ro.join("vmcore");
    for allow in BOTH {
        let e = open_err(&out, policy(false, allow), &[]);
        let OutputError::Io { path, source, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(path, &out);
        assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied, "{source}");
        assert_eq!(e.kind(), OutputErrorKind::Io);
        assert!(e.to_string().starts_with(&format!("{}: ", out.display())), "{e}");
    }
    // A missing directory too.
    let e = open_err(&s.path("missing/vmcore"), Policy::default(), &[]);
    assert!(
        matches!(&e, OutputError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{e:?}"
    );
    println!("read-only directory checked as uid {euid}");
}
