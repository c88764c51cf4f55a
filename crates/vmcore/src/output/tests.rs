//! The output module on real files in scratch directories.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::*;

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

#[test]
fn private_from_creation_to_publication_under_any_umask() {
    let _g = serial();
    let s = Scratch::new("umask");
    // 0277 masks the owner's bits too: only the fchmod makes that file 0600.
    for mask in [0o022, 0o000, 0o077, 0o277] {
        let _u = Umask::set(mask);
        for allow in BOTH {
            for force in [false, true] {
                let path = s.path(&format!("out-{mask:03o}-{allow}-{force}"));
                if force {
                    // An existing world-readable file is replaced by a private one.
                    fs::write(&path, b"old").unwrap();
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
                }
                let f = open_file(&path, policy(force, allow));
                assert_unnamed(&f, allow);
                assert_eq!(f.file().metadata().unwrap().mode() & 0o7777, 0o600, "umask {mask:03o}");
                if let Some(t) = f.temp_path() {
                    assert_eq!(mode_of(t), 0o600, "{}", t.display());
                }
                f.file().write_all_at(b"plaintext", 0).unwrap();
                f.commit().unwrap();
                assert_eq!(mode_of(&path), 0o600, "{} under umask {mask:03o}", path.display());
                assert_eq!(fs::read(&path).unwrap(), b"plaintext");
            }
        }
    }
    assert_eq!(s.names().len(), 16, "{:?}", s.names());
}

#[cfg(target_os = "linux")]
#[test]
fn an_o_tmpfile_output_has_no_name_until_commit() {
    let _g = serial();
    let s = Scratch::new("unnamed");
    let path = s.path("vmcore");
    let f = open_file(&path, Policy::default());
    assert!(f.is_unnamed());
    let data: Vec<u8> = (0..1 << 20).map(|i| (i * 7) as u8).collect();
    f.file().write_all_at(&data, 0).unwrap();
    assert!(s.names().is_empty(), "{:?}", s.names());
    f.commit().unwrap();
    assert_eq!(s.names(), ["vmcore"]);
    assert_eq!(fs::read(&path).unwrap(), data);
}

#[test]
fn the_fallback_temp_is_private_registered_and_removed_on_request() {
    let _g = serial();
    let s = Scratch::new("fallback");
    let path = s.path("vmcore");
    let f = open_file(&path, policy(false, false));
    assert_unnamed(&f, false);
    let temp = f.temp_path().unwrap().to_path_buf();
    assert!(temp.is_absolute(), "{}", temp.display());
    let name = temp.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!(".vmcore.pvdump-{}-", std::process::id())) && name.ends_with(".tmp"),
        "{name}"
    );
    assert_eq!(s.names(), std::slice::from_ref(&name));
    assert_eq!(mode_of(&temp), 0o600);
    assert!(registry::registered().contains(&temp));

    remove_pending_temp_files();
    assert!(s.names().is_empty(), "{:?}", s.names());
    // Publishing what was removed fails, and leaves nothing.
    let e = f.commit().unwrap_err();
    assert_eq!(e.kind(), OutputErrorKind::Io, "{e}");
    assert!(s.names().is_empty());
    assert!(!registry::registered().contains(&temp));
}

extern "C" fn remove_on_sigusr1(_: libc::c_int) {
    remove_temp_files_from_signal_handler();
}

#[test]
fn a_signal_handler_removes_the_fallback_temp() {
    let _g = serial();
    let s = Scratch::new("signal");
    let f = open_file(&s.path("vmcore"), policy(false, false));
    f.file().write_all_at(b"plaintext", 0).unwrap();
    assert_eq!(s.names().len(), 1);
    let handler = remove_on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only calls the async-signal-safe remover; raise delivers the signal
    // to this thread before returning; the default disposition is restored afterwards.
    unsafe {
        let old = libc::signal(libc::SIGUSR1, handler);
        assert_eq!(libc::raise(libc::SIGUSR1), 0);
        libc::signal(libc::SIGUSR1, old);
    }
    assert!(s.names().is_empty(), "{:?}", s.names());
    drop(f);
    assert!(s.names().is_empty());
}

#[test]
fn dropped_without_commit_leaves_nothing() {
    let _g = serial();
    let s = Scratch::new("drop");
    for allow in BOTH {
        for force in [false, true] {
            let path = s.path("vmcore");
            if force {
                fs::write(&path, b"old").unwrap();
            }
            let f = open_file(&path, policy(force, allow));
            f.file().write_all_at(&[0xa5; 65536], 0).unwrap();
            let temp = f.temp_path().map(Path::to_path_buf);
            drop(f);
            if force {
                assert_eq!(fs::read(&path).unwrap(), b"old");
                fs::remove_file(&path).unwrap();
            }
            assert!(s.names().is_empty(), "{:?}", s.names());
            if let Some(t) = temp {
                assert!(!registry::registered().contains(&t));
            }
        }
    }
}

#[test]
fn an_existing_file_is_refused_without_force_and_left_alone() {
    let _g = serial();
    let s = Scratch::new("exists");
    let path = s.path("vmcore");
    fs::write(&path, b"original").unwrap();
    for allow in BOTH {
        let e = open_err(&path, policy(false, allow), &[]);
        assert!(matches!(&e, OutputError::Exists { path: p } if *p == path), "{e:?}");
        assert_eq!(e.kind(), OutputErrorKind::Exists);
        assert_eq!(
            e.to_string(),
            format!("{}: already exists; pass --force to replace it", path.display())
        );
    }
    assert_eq!(fs::read(&path).unwrap(), b"original");
    assert_eq!(s.names(), ["vmcore"]);
}

#[test]
fn what_appears_at_the_path_before_commit_is_not_replaced_without_force() {
    let _g = serial();
    let s = Scratch::new("race");
    let path = s.path("vmcore");
    for allow in BOTH {
        let f = open_file(&path, policy(false, allow));
        f.file().write_all_at(b"plaintext", 0).unwrap();
        fs::write(&path, b"original").unwrap();
        let e = f.commit().unwrap_err();
        assert!(matches!(e, OutputError::Exists { .. }), "{e:?}");
        assert_eq!(fs::read(&path).unwrap(), b"original");
        assert_eq!(s.names(), ["vmcore"]);
        fs::remove_file(&path).unwrap();

        // A dangling symbolic link is not followed.
        let f = open_file(&path, policy(false, allow));
        std::os::unix::fs::symlink("elsewhere", &path).unwrap();
        let e = f.commit().unwrap_err();
        assert!(matches!(e, OutputError::Exists { .. }), "{e:?}");
        assert_eq!(kind_of(&path), NodeKind::Symlink);
        assert_eq!(s.names(), ["vmcore"]);
        fs::remove_file(&path).unwrap();
    }
}

#[test]
fn racing_writers_one_wins_the_other_is_told() {
    let _g = serial();
    let s = Scratch::new("writers");
    let path = s.path("vmcore");
    for (a, b) in [(true, true), (false, false), (true, false)] {
        let first = open_file(&path, policy(false, a));
        let second = open_file(&path, policy(false, b));
        first.file().write_all_at(b"first", 0).unwrap();
        second.file().write_all_at(b"second", 0).unwrap();
        first.commit().unwrap();
        let e = second.commit().unwrap_err();
        assert!(matches!(e, OutputError::Exists { .. }), "{e:?}");
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(s.names(), ["vmcore"]);
        fs::remove_file(&path).unwrap();
    }
}

#[test]
fn force_replaces_a_regular_file_atomically() {
    let _g = serial();
    let s = Scratch::new("force");
    let path = s.path("vmcore");
    let other = s.path("old-link");
    for allow in BOTH {
        fs::write(&path, b"old contents").unwrap();
        fs::hard_link(&path, &other).unwrap();
        let old_ino = fs::metadata(&path).unwrap().ino();
        let f = open_file(&path, policy(true, allow));
        f.file().write_all_at(b"new", 0).unwrap();
        // Untouched until commit.
        assert_eq!(fs::read(&path).unwrap(), b"old contents");
        f.commit().unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_ne!(meta.ino(), old_ino, "replaced, not rewritten");
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"new");
        // The old inode is intact (rename, not truncate).
        assert_eq!(fs::read(&other).unwrap(), b"old contents");
        assert_eq!(s.names(), ["old-link", "vmcore"]);
        fs::remove_file(&other).unwrap();
        fs::remove_file(&path).unwrap();
    }
}

#[test]
fn force_leaves_alone_a_fifo_directory_or_link_that_appeared_before_commit() {
    let _g = serial();
    let s = Scratch::new("changed");
    let path = s.path("vmcore");
    for allow in BOTH {
        for existed in [false, true] {
            for now in [NodeKind::Fifo, NodeKind::Directory, NodeKind::Symlink] {
                if existed {
                    fs::write(&path, b"old").unwrap();
                }
                let f = open_file(&path, policy(true, allow));
                f.file().write_all_at(b"plaintext", 0).unwrap();
                if existed {
                    fs::remove_file(&path).unwrap();
                }
                match now {
                    NodeKind::Fifo => mkfifo(&path),
                    NodeKind::Directory => fs::create_dir(&path).unwrap(),
                    _ => std::os::unix::fs::symlink("elsewhere", &path).unwrap(),
                }
                let e = f.commit().unwrap_err();
                assert!(
                    matches!(&e, OutputError::Changed { path: p, now: n } if *p == path && *n == now),
                    "{e:?}"
                );
                assert_eq!(e.kind(), OutputErrorKind::Refused);
                assert!(e.to_string().contains("was left alone"), "{e}");
                assert_eq!(kind_of(&path), now);
                assert_eq!(s.names(), ["vmcore"], "{allow} {existed} {now}");
                if now == NodeKind::Directory {
                    fs::remove_dir(&path).unwrap();
                } else {
                    fs::remove_file(&path).unwrap();
                }
            }
        }
    }
}

#[test]
fn a_character_device_is_a_stream_and_stays_a_device() {
    let _g = serial();
    let null = Path::new("/dev/null");
    for force in [false, true] {
        let mut d = Destination::open(null, policy(force, true), &[]).unwrap();
        assert!(matches!(d, Destination::Stream(_)), "{d:?}");
        assert!(!d.output().is_sparse());
        match &mut d.output() {
            Output::Stream(w) => w.write_all(&[0x55; 8192]).unwrap(),
            Output::File(_) => panic!("not a stream"),
        }
        d.finish().unwrap();
        assert!(fs::symlink_metadata(null).unwrap().file_type().is_char_device());
    }
}

#[test]
fn a_fifo_is_a_stream_and_stays_a_fifo() {
    let _g = serial();
    let s = Scratch::new("fifo");
    let fifo = s.path("pipe");
    mkfifo(&fifo);
    for force in [false, true] {
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut v = Vec::new();
                fs::File::open(&fifo).unwrap().read_to_end(&mut v).unwrap();
                v
            })
        };
        let d = match Destination::open(&fifo, policy(force, true), &[]) {
            Ok(d) => d,
            Err(e) => {
                // Let the reader's open return before failing.
                let _ = fs::OpenOptions::new().write(true).open(&fifo);
                panic!("{e}");
            }
        };
        let Destination::Stream(mut w) = d else { panic!("{d:?}") };
        w.write_all(b"stream bytes").unwrap();
        drop(w);
        assert_eq!(reader.join().unwrap(), b"stream bytes");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    }
    assert_eq!(s.names(), ["pipe"]);
}

/// A block device node: one from /dev, or one made here (as root).
fn block_device(s: &Scratch) -> PathBuf {
    if let Ok(entries) = fs::read_dir("/dev") {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_block_device()) {
                return e.path();
            }
        }
    }
    use std::os::unix::ffi::OsStrExt;
    let path = s.path("blockdev");
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path; the node is only inspected, never opened.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(7, 0)) };
    assert_eq!(
        r,
        0,
        "no block device in /dev, and mknod failed: {}",
        std::io::Error::last_os_error()
    );
    path
}

#[test]
fn sockets_block_devices_directories_and_links_are_refused() {
    let _g = serial();
    let s = Scratch::new("refused");
    let socket = s.path("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let dir = s.path("dir");
    fs::create_dir(&dir).unwrap();
    let target = s.path("target");
    fs::write(&target, b"target").unwrap();
    let link = s.path("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let dangling = s.path("dangling");
    std::os::unix::fs::symlink("nowhere", &dangling).unwrap();
    let block = block_device(&s);
    let before = s.names();

    let show = |p: &Path| p.display().to_string();
    let with_slash = PathBuf::from(format!("{}/", show(&dir)));
    let with_dot = dir.join(".");
    let cases: Vec<(&Path, String)> = vec![
        (
            &socket,
            format!(
                "{}: is a socket; pvdump writes regular files, character devices and FIFOs, never sockets",
                show(&socket)
            ),
        ),
        (
            &block,
            format!(
                "{}: is a block device; pvdump writes regular files and streams, never block devices",
                show(&block)
            ),
        ),
        (
            &dir,
            format!("{}: is a directory; give the output a file name", show(&dir)),
        ),
        (
            &with_slash,
            format!("{}: is a directory; give the output a file name", show(&with_slash)),
        ),
        (
            &with_dot,
            format!("{}: is a directory; give the output a file name", show(&with_dot)),
        ),
        (
            &link,
            format!(
                "{}: is a symbolic link; pvdump does not write through or replace links, give the path it points to",
                show(&link)
            ),
        ),
        (
            &dangling,
            format!(
                "{}: is a symbolic link; pvdump does not write through or replace links, give the path it points to",
                show(&dangling)
            ),
        ),
    ];
    for (path, message) in &cases {
        for force in [false, true] {
            for allow in BOTH {
                let e = open_err(path, policy(force, allow), &[]);
                assert_eq!(e.to_string(), *message);
                assert_eq!(e.kind(), OutputErrorKind::Refused, "{e}");
            }
        }
    }
    let e = open_err(&s.path("absent/"), Policy::default(), &[]);
    assert!(matches!(e, OutputError::InvalidName { .. }), "{e:?}");
    let e = open_err(Path::new(""), Policy::default(), &[]);
    assert!(matches!(e, OutputError::InvalidName { .. }), "{e:?}");
    assert_eq!(s.names(), before);
    assert_eq!(fs::read(&target).unwrap(), b"target");
}

#[test]
fn the_inputs_are_refused_through_symbolic_and_hard_links() {
    let _g = serial();
    let s = Scratch::new("inputs");
    let key = s.path("cck.bin");
    fs::write(&key, [0x11; 32]).unwrap();
    let dump = s.path("dump");
    fs::write(&dump, b"encrypted dump").unwrap();
    let soft = s.path("soft");
    std::os::unix::fs::symlink("dump", &soft).unwrap();
    let hard = s.path("hard");
    fs::hard_link(&dump, &hard).unwrap();
    fs::create_dir(s.path("sub")).unwrap();
    let dotted = s.path("sub/../dump");
    let dump_file = fs::File::open(&dump).unwrap();
    let protect = [
        ProtectedInput::from_path(&key, Role::Key).unwrap(),
        ProtectedInput::from_file(&dump_file, Role::Dump).unwrap(),
    ];
    let before = s.names();
    for (out, role) in [
        (&key, Role::Key),
        (&dump, Role::Dump),
        (&soft, Role::Dump),
        (&hard, Role::Dump),
        (&dotted, Role::Dump),
    ] {
        for force in [false, true] {
            let e = open_err(out, policy(force, true), &protect);
            assert!(
                matches!(&e, OutputError::IsInput { role: r, .. } if *r == role),
                "{e:?}"
            );
            assert_eq!(e.kind(), OutputErrorKind::IsInput);
            let what = if role == Role::Key {
                "the key file"
            } else {
                "the input dump"
            };
            assert_eq!(
                e.to_string(),
                format!(
                    "{}: is {what}; refusing to write the output over an input",
                    out.display()
                )
            );
        }
    }
    assert_eq!(fs::read(&key).unwrap(), [0x11; 32]);
    assert_eq!(fs::read(&dump).unwrap(), b"encrypted dump");
    assert_eq!(s.names(), before);
    // Unrelated paths are fine.
    open_file(&s.path("vmcore"), Policy::default()).commit().unwrap();
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

#[test]
fn long_names_get_short_enough_temporary_names() {
    let _g = serial();
    let s = Scratch::new("long");
    let path = s.path(&"n".repeat(250));
    for allow in BOTH {
        let f = open_file(&path, policy(true, allow));
        if let Some(t) = f.temp_path() {
            assert!(t.file_name().unwrap().len() <= 255);
        }
        f.file().write_all_at(b"x", 0).unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"x");
    }
    assert_eq!(s.names().len(), 1);
}

#[test]
fn the_registry_is_bounded_and_frees_its_slots() {
    let _g = serial();
    let s = Scratch::new("registry");
    let mut held = Vec::new();
    let err = loop {
        match registry::register(&s.path(&format!("t{}", held.len()))) {
            Ok(r) => held.push(r),
            Err(e) => break e,
        }
        assert!(held.len() <= 64, "unbounded");
    };
    assert!(err.to_string().contains("temporary output files pending"), "{err}");
    assert!(!held.is_empty());
    drop(held);
    assert!(registry::registered().is_empty());
    drop(registry::register(&s.path("again")).unwrap());
}
