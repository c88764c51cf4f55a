//! Output safety of the binary (issue 9), end to end: who can read the output, what it may
//! replace, inputs and devices as OUT, racing writers, signals, a full file system, keys from
//! pipes and never echoed, bounded thread counts, a closed output pipe.

mod common;
use common::{listing, scratch, skip, tmpfile_supported, wait_until_writing};

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pvdump_synth::SynthSpec;

const BIN: &str = env!("CARGO_BIN_EXE_pvdump");

fn pvdump() -> Command {
    let mut c = Command::new(BIN);
    c.stdin(Stdio::null());
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts the exit code and that nothing panicked; returns stderr.
fn expect_code(o: &Output, code: i32, what: &str) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{what}: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{what}: {err}"
    );
    err
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        path.display()
    );
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A synthetic dump and its key (mode 0600) in `dir`.
fn fixture(dir: &Path, seed: u64, mib: u64, cpus: usize) -> (PathBuf, PathBuf, SynthSpec) {
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
struct Small {
    dump: PathBuf,
    key: PathBuf,
    elf: Vec<u8>,
    cck: [u8; 32],
}

fn small() -> &'static Small {
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
fn big() -> &'static (PathBuf, PathBuf) {
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
fn decrypt(key: &Path, dump: &Path, out: &Path, extra: &[&str]) -> Command {
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
fn format_args(format: &str) -> &'static [&'static str] {
    if format == "elf" {
        &["--format", "elf"]
    } else {
        &["--format", "kdump", "-c", "none"]
    }
}

/// Runs `cmd` with the given umask.
fn with_umask(cmd: &mut Command, mask: libc::mode_t) -> &mut Command {
    // SAFETY: umask(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask);
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------
// Who can read the output.

#[test]
fn outputs_are_0600_under_umask_022_and_000() {
    let s = small();
    let dir = scratch("safety-modes");
    for mask in [0o022, 0o000] {
        for format in ["elf", "kdump"] {
            let out = dir.join(format!("new-{mask:03o}.{format}"));
            let o = with_umask(&mut decrypt(&s.key, &s.dump, &out, &["--format", format]), mask)
                .output()
                .unwrap();
            expect_code(&o, 0, "decrypt");
            assert_eq!(mode_of(&out), 0o600, "umask {mask:03o}, {format}");
            // --force over a world-readable file: the new file is private too.
            fs::set_permissions(&out, fs::Permissions::from_mode(0o644)).unwrap();
            let o = with_umask(
                &mut decrypt(&s.key, &s.dump, &out, &["--format", format, "--force"]),
                mask,
            )
            .output()
            .unwrap();
            expect_code(&o, 0, "decrypt --force");
            assert_eq!(mode_of(&out), 0o600, "umask {mask:03o}, {format}, --force");
        }
        // convert creates its output the same way.
        let conv = dir.join(format!("converted-{mask:03o}.kdump"));
        let elf = dir.join(format!("plain-{mask:03o}.elf"));
        fs::write(&elf, &s.elf).unwrap();
        let o = with_umask(pvdump().args(["convert", "-q"]).arg(&elf).arg("-o").arg(&conv), mask)
            .output()
            .unwrap();
        expect_code(&o, 0, "convert");
        assert_eq!(mode_of(&conv), 0o600, "convert, umask {mask:03o}");
    }
}

// ---------------------------------------------------------------------------------------
// Devices, FIFOs and other nodes as OUT.

#[test]
fn dev_null_is_written_as_a_stream_and_stays_the_device() {
    let s = small();
    let before = fs::symlink_metadata("/dev/null").unwrap();
    assert!(before.file_type().is_char_device());
    for extra in [&[][..], &["--force"][..], &["--force", "--format", "kdump"][..]] {
        let o = decrypt(&s.key, &s.dump, Path::new("/dev/null"), extra)
            .output()
            .unwrap();
        expect_code(&o, 0, &format!("-o /dev/null {extra:?}"));
        let after = fs::symlink_metadata("/dev/null").unwrap();
        assert!(after.file_type().is_char_device(), "{extra:?}");
        assert_eq!(
            (after.ino(), after.rdev(), after.mode()),
            (before.ino(), before.rdev(), before.mode()),
            "/dev/null was replaced ({extra:?})"
        );
    }
}

/// Reads everything from `fifo` in a thread.
fn drain(fifo: &Path) -> std::thread::JoinHandle<Vec<u8>> {
    let fifo = fifo.to_path_buf();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        fs::File::open(&fifo).unwrap().read_to_end(&mut v).unwrap();
        v
    })
}

#[test]
fn a_fifo_out_gets_the_stream_and_stays_a_fifo() {
    let s = small();
    let dir = scratch("safety-fifo");
    let fifo = dir.join("out.fifo");
    mkfifo(&fifo);
    // ELF: the same bytes as the file (whose zero pages are holes).
    for extra in [&[][..], &["--force"][..]] {
        let reader = drain(&fifo);
        let o = decrypt(&s.key, &s.dump, &fifo, extra).output().unwrap();
        expect_code(&o, 0, "decrypt to a FIFO");
        assert!(
            reader.join().unwrap() == s.elf,
            "FIFO bytes differ from the file ({extra:?})"
        );
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    }
    // kdump: the flattened stream, as for -o -.
    let reader = drain(&fifo);
    let o = decrypt(&s.key, &s.dump, &fifo, &["--format", "kdump"])
        .output()
        .unwrap();
    expect_code(&o, 0, "kdump to a FIFO");
    let from_fifo = reader.join().unwrap();
    let o = decrypt(&s.key, &s.dump, Path::new("-"), &["--format", "kdump"])
        .output()
        .unwrap();
    expect_code(&o, 0, "kdump to stdout");
    assert!(from_fifo.starts_with(b"makedumpfile\0"), "not the flattened format");
    assert!(from_fifo == o.stdout, "FIFO and standard output streams differ");
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(listing(&dir), ["out.fifo"]);
}

/// A pseudo-terminal: (master descriptor, slave path).
fn pty() -> (libc::c_int, PathBuf) {
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

#[test]
fn directories_sockets_links_block_devices_and_terminals_are_refused() {
    let s = small();
    let dir = scratch("safety-refused");
    let sub = dir.join("sub");
    fs::create_dir(&sub).unwrap();
    let sock = dir.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let regular = dir.join("regular");
    fs::write(&regular, b"keep").unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&regular, &link).unwrap();
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("nothing"), &dangling).unwrap();
    let mut cases: Vec<(PathBuf, &str)> = vec![
        (sub.clone(), "is a directory"),
        (dir.join("sub/"), "is a directory"),
        (sock.clone(), "is a socket"),
        (link.clone(), "is a symbolic link"),
        (dangling.clone(), "is a symbolic link"),
    ];
    let blk = dir.join("blk");
    let c = CString::new(blk.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; a block device node for loop0 (never opened here).
    if unsafe { libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(7, 0)) } == 0 {
        cases.push((blk.clone(), "is a block device"));
    } else if let Some(dev) = fs::read_dir("/dev").ok().and_then(|rd| {
        rd.filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_block_device()))
    }) {
        cases.push((dev, "is a block device"));
    } else {
        skip("no block device to try (mknod needs CAP_MKNOD, /dev has none): block device as OUT untested");
    }
    let (master, tty) = pty();
    cases.push((tty.clone(), "is a terminal"));
    let before = listing(&dir);
    for (out, needle) in &cases {
        for extra in [&[][..], &["--force"][..]] {
            let o = decrypt(&s.key, &s.dump, out, extra).output().unwrap();
            let err = expect_code(&o, 2, &format!("{} {extra:?}", out.display()));
            assert!(err.contains(needle), "{}: {err}", out.display());
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
    assert_eq!(listing(&dir), before);
    assert_eq!(fs::read(&regular).unwrap(), b"keep");
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(fs::symlink_metadata(&sock).unwrap().file_type().is_socket());
    // -o - with standard output on a terminal.
    let slave = fs::OpenOptions::new().read(true).write(true).open(&tty).unwrap();
    let o = decrypt(&s.key, &s.dump, Path::new("-"), &[])
        .stdout(slave)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = expect_code(&o, 2, "-o - on a terminal");
    assert!(err.contains("terminal"), "{err}");
    // SAFETY: closing the master opened by pty().
    unsafe { libc::close(master) };
}

// ---------------------------------------------------------------------------------------
// The inputs.

#[test]
fn the_key_and_the_dump_are_refused_as_out_through_any_link() {
    let dir = scratch("safety-inputs");
    let (dump, key, _) = fixture(&dir, 0x5afe_0011, 1, 1);
    let key_bytes = fs::read(&key).unwrap();
    let dump_bytes = fs::read(&dump).unwrap();
    std::os::unix::fs::symlink(&key, dir.join("key-symlink")).unwrap();
    std::os::unix::fs::symlink(&dump, dir.join("dump-symlink")).unwrap();
    fs::hard_link(&key, dir.join("key-hardlink")).unwrap();
    fs::hard_link(&dump, dir.join("dump-hardlink")).unwrap();
    let before = listing(&dir);
    for (out, role) in [
        (key.clone(), "the key file"),
        (dir.join("key-symlink"), "the key file"),
        (dir.join("key-hardlink"), "the key file"),
        (dump.clone(), "the input dump"),
        (dir.join("dump-symlink"), "the input dump"),
        (dir.join("dump-hardlink"), "the input dump"),
    ] {
        for extra in [&[][..], &["--force"][..], &["--force", "--format", "kdump"][..]] {
            let o = decrypt(&key, &dump, &out, extra).output().unwrap();
            let err = expect_code(&o, 2, &format!("{} {extra:?}", out.display()));
            assert!(
                err.contains(&format!("is {role}; refusing to write the output over an input")),
                "{}: {err}",
                out.display()
            );
        }
    }
    // convert protects its input the same way.
    let o = pvdump()
        .args(["convert", "--force"])
        .arg(&dump)
        .arg("-o")
        .arg(dir.join("dump-hardlink"))
        .output()
        .unwrap();
    expect_code(&o, 2, "convert over its input");
    // Appending standard output to the dump is refused too.
    let append = fs::OpenOptions::new().append(true).open(&dump).unwrap();
    let o = decrypt(&key, &dump, Path::new("-"), &[])
        .stdout(append)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = expect_code(&o, 2, "-o - >> dump");
    assert!(err.contains("standard output is the input dump"), "{err}");
    assert_eq!(fs::read(&key).unwrap(), key_bytes);
    assert_eq!(fs::read(&dump).unwrap(), dump_bytes);
    assert_eq!(listing(&dir), before);
}

// ---------------------------------------------------------------------------------------
// Races: the name is claimed only at the end, atomically.

/// Opens `fifo` for writing once pvdump has opened it to read the key (by then it has checked
/// and opened its output), and returns the handle. Panics after 30 s without a reader.
fn key_writer(fifo: &Path) -> fs::File {
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

#[test]
fn racing_writers_exactly_one_wins_and_its_file_is_intact() {
    let s = small();
    let dir = scratch("safety-race");
    let out = dir.join("out.elf");
    // Deterministic: both runs are held at their key (a FIFO each) after their output check,
    // then let go together.
    let fifos = [dir.join("k1.fifo"), dir.join("k2.fifo")];
    let children: Vec<Child> = fifos
        .iter()
        .map(|f| {
            mkfifo(f);
            decrypt(f, &s.dump, &out, &[]).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    let mut writers: Vec<fs::File> = fifos.iter().map(|f| key_writer(f)).collect();
    assert!(!out.exists());
    for w in &mut writers {
        w.write_all(&s.cck).unwrap();
    }
    drop(writers);
    let results: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let codes: Vec<Option<i32>> = results.iter().map(|o| o.status.code()).collect();
    assert_eq!(
        codes.iter().filter(|&&c| c == Some(0)).count(),
        1,
        "{codes:?}: {}",
        results.iter().map(|o| text(&o.stderr)).collect::<String>()
    );
    let loser = results.iter().find(|o| o.status.code() != Some(0)).unwrap();
    let err = expect_code(loser, 2, "the loser");
    assert!(err.contains("already exists"), "{err}");
    assert!(fs::read(&out).unwrap() == s.elf, "the winner's file is not intact");
    assert_eq!(listing(&dir), ["k1.fifo", "k2.fifo", "out.elf"]);

    // Undirected: four at once.
    fs::remove_file(&out).unwrap();
    let children: Vec<Child> = (0..4)
        .map(|_| {
            decrypt(&s.key, &s.dump, &out, &[])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let mut codes: Vec<Option<i32>> = results.iter().map(|o| o.status.code()).collect();
    codes.sort();
    assert_eq!(codes, [Some(0), Some(2), Some(2), Some(2)]);
    assert!(fs::read(&out).unwrap() == s.elf, "the winner's file is not intact");
    assert_eq!(listing(&dir), ["k1.fifo", "k2.fifo", "out.elf"]);
}

#[test]
fn a_file_created_at_out_during_the_run_is_left_alone() {
    let s = small();
    let dir = scratch("safety-midrun");
    // Deterministic: the run waits at its key (a FIFO) after checking that OUT is free.
    let out = dir.join("out.elf");
    let fifo = dir.join("key.fifo");
    mkfifo(&fifo);
    let child = decrypt(&fifo, &s.dump, &out, &[])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = key_writer(&fifo);
    fs::write(&out, b"created meanwhile").unwrap();
    w.write_all(&s.cck).unwrap();
    drop(w);
    let o = child.wait_with_output().unwrap();
    let err = expect_code(&o, 2, "file created during the run");
    assert!(err.contains("out.elf: already exists; pass --force"), "{err}");
    assert_eq!(fs::read(&out).unwrap(), b"created meanwhile");
    assert_eq!(listing(&dir), ["key.fifo", "out.elf"]);

    // While it writes a 256 MiB dump with one thread.
    let (dump, key) = big();
    let out = dir.join("big.elf");
    let mut child = decrypt(key, dump, &out, &["--threads", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_writing(&mut child, || {});
    let created = fs::OpenOptions::new().write(true).create_new(true).open(&out);
    let mut f = created.expect("the run finished before the file could be created: make the dump larger");
    f.write_all(b"appeared mid-run").unwrap();
    drop(f);
    let o = child.wait_with_output().unwrap();
    let err = expect_code(&o, 2, "file created while writing");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(fs::read(&out).unwrap(), b"appeared mid-run");
    assert_eq!(listing(&dir), ["big.elf", "key.fifo", "out.elf"]);
}

// ---------------------------------------------------------------------------------------
// Signals.

/// Starts a 256 MiB decrypt into an empty folder, waits until it writes (checking all along
/// that nothing named appears there), sends `signals` (`gap` apart), and checks that the
/// folder is still empty afterwards. Returns the exit status and stderr.
fn interrupt(tag: &str, signals: &[libc::c_int], gap: Duration) -> (std::process::ExitStatus, String) {
    let (dump, key) = big();
    let dir = scratch(&format!("safety-signal-{tag}"));
    let out = dir.join("out.elf");
    let unnamed = tmpfile_supported(&dir);
    if !unnamed {
        eprintln!(
            "\n!!!!!!!! O_TMPFILE is not supported in {}: the output is a named 0600 temporary file while written !!!!!!!!\n",
            dir.display()
        );
    }
    let mut child = decrypt(key, dump, &out, &["--threads", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_writing(&mut child, || {
        if unnamed {
            assert_eq!(listing(&dir), Vec::<String>::new(), "a name appeared while writing");
        }
    });
    for (i, &sig) in signals.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(gap);
        }
        // SAFETY: kill(2) on our own child, which has not been waited for.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
    }
    let start = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?} to stop",
        start.elapsed()
    );
    let err = text(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let left = listing(&dir);
    if unnamed || signals != [libc::SIGKILL] {
        assert_eq!(left, Vec::<String>::new(), "{tag}: left behind");
    } else {
        // Without O_TMPFILE only SIGKILL can leave the (private) temporary file.
        for name in &left {
            assert!(name.starts_with(".out.elf.pvdump-") && name.ends_with(".tmp"), "{name}");
            assert_eq!(mode_of(&dir.join(name)), 0o600);
        }
    }
    assert!(!out.exists());
    (o.status, err)
}

#[test]
fn sigint_leaves_nothing_and_exits_130() {
    let (status, err) = interrupt("int", &[libc::SIGINT], Duration::ZERO);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
}

#[test]
fn sigterm_leaves_nothing_and_exits_130() {
    let (status, err) = interrupt("term", &[libc::SIGTERM], Duration::ZERO);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
}

#[test]
fn sighup_leaves_nothing_and_exits_130() {
    let (status, err) = interrupt("hup", &[libc::SIGHUP], Duration::ZERO);
    assert_eq!(status.code(), Some(130), "{err}");
}

#[test]
fn a_second_sigint_leaves_nothing_and_exits_130() {
    let (status, err) = interrupt("int2", &[libc::SIGINT, libc::SIGINT], Duration::from_millis(1));
    assert_eq!(status.code(), Some(130), "{err}");
}

#[test]
fn sigkill_leaves_nothing() {
    let (status, _) = interrupt("kill", &[libc::SIGKILL], Duration::ZERO);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

// ---------------------------------------------------------------------------------------
// A full file system.

/// A 1 MiB tmpfs mounted for a test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Option<Tmpfs> {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "pvdump-test"])
            .arg(dir)
            .stderr(Stdio::piped())
            .output();
        match st {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            Ok(o) => {
                skip(&format!(
                    "cannot mount a tmpfs (needs root): {}",
                    text(&o.stderr).trim()
                ));
                None
            }
            Err(e) => {
                skip(&format!("cannot run mount: {e}"));
                None
            }
        }
    }

    fn free_blocks(&self) -> u64 {
        let c = CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and a zeroed statvfs to fill.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            assert_eq!(libc::statvfs(c.as_ptr(), &mut st), 0);
            st.f_bfree as u64
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_file_system_fails_with_5_and_leaves_nothing() {
    let s = small();
    let dir = scratch("safety-tmpfs");
    let Some(fs_) = Tmpfs::mount(&dir) else {
        return;
    };
    let free = fs_.free_blocks();
    for format in ["elf", "kdump"] {
        // The 2 MiB dump's output does not fit in 1 MiB (kdump: its random pages do not
        // compress).
        let out = dir.join(format!("out.{format}"));
        let o = decrypt(&s.key, &s.dump, &out, format_args(format)).output().unwrap();
        let err = expect_code(&o, 5, format);
        assert!(err.contains("No space left on device"), "{format}: {err}");
        assert_eq!(err.matches("No space left on device").count(), 1, "{err}");
        assert_eq!(listing(&dir), Vec::<String>::new(), "{format}: left behind");
        assert_eq!(fs_.free_blocks(), free, "{format}: space not given back");
    }
}

#[test]
fn a_file_size_limit_fails_with_5_and_leaves_nothing() {
    let s = small();
    let dir = scratch("safety-fsize");
    for format in ["elf", "kdump"] {
        let out = dir.join(format!("out.{format}"));
        let mut cmd = decrypt(&s.key, &s.dump, &out, format_args(format));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit {
                    rlim_cur: 256 << 10,
                    rlim_max: 256 << 10,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let o = cmd.output().unwrap();
        let err = expect_code(&o, 5, format);
        assert!(err.contains("File too large"), "{format}: {err}");
        assert_eq!(listing(&dir), Vec::<String>::new(), "{format}: left behind");
    }
}

// ---------------------------------------------------------------------------------------
// Keys: from pipes, never echoed.

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every way key material could show: the raw bytes, and every run of 8 hex digits of it in
/// either case.
struct Secret {
    raw: Vec<Vec<u8>>,
    hex_runs: Vec<String>,
}

impl Secret {
    fn new() -> Secret {
        Secret {
            raw: Vec::new(),
            hex_runs: Vec::new(),
        }
    }

    fn add_raw(&mut self, b: &[u8]) {
        self.raw.push(b.to_vec());
        self.add_hex(&hex(b));
    }

    fn add_hex(&mut self, h: &str) {
        for w in h.as_bytes().windows(8) {
            let w = std::str::from_utf8(w).unwrap();
            self.hex_runs.push(w.to_lowercase());
            self.hex_runs.push(w.to_uppercase());
        }
    }

    fn assert_absent(&self, out: &[u8], what: &str) {
        let s = text(out);
        for r in &self.raw {
            assert!(
                !out.windows(r.len()).any(|w| w == &r[..]),
                "{what}: raw key bytes in {s:?}"
            );
        }
        for h in &self.hex_runs {
            assert!(!s.contains(h.as_str()), "{what}: key digits {h} in {s}");
        }
    }
}

/// How the key reaches pvdump.
#[derive(Debug, Clone, Copy)]
enum Via {
    File,
    Stdin,
    Fifo,
}

/// Runs `pvdump ARGS --key <key bytes via `via`> DUMP` and returns its output.
fn run_with_key(dir: &Path, args: &[&str], key: &[u8], via: Via, dump: &Path) -> Output {
    let mut cmd = pvdump();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    match via {
        Via::File => {
            let p = dir.join("given.key");
            fs::write(&p, key).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
            cmd.arg("--key").arg(&p).arg(dump).output().unwrap()
        }
        Via::Stdin => {
            let mut child = cmd
                .arg("--key")
                .arg("-")
                .arg(dump)
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(key);
            drop(stdin);
            child.wait_with_output().unwrap()
        }
        Via::Fifo => {
            let p = dir.join("given.fifo");
            let _ = fs::remove_file(&p);
            mkfifo(&p);
            let child = cmd.arg("--key").arg(&p).arg(dump).spawn().unwrap();
            let mut w = key_writer(&p);
            let _ = w.write_all(key);
            drop(w);
            child.wait_with_output().unwrap()
        }
    }
}

#[test]
fn malformed_and_wrong_keys_are_never_echoed() {
    let dir = scratch("safety-secrets");
    // Key material without long runs of repeated digits, unlike the synthetic default.
    let (dump, _key, spec) = fixture(&dir, 0x5afe_5ec7, 1, 2);
    let right = spec.cck();
    let mut wrong = right;
    for (i, b) in wrong.iter_mut().enumerate() {
        *b ^= 0x5a ^ (i as u8).wrapping_mul(29);
    }
    let h = hex(&right);
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("31 bytes", right[..31].to_vec(), 2),
        ("33 bytes", [&right[..], &right[..1]].concat(), 2),
        ("63 hex digits", h.as_bytes()[..63].to_vec(), 2),
        ("64 hex digits + garbage", format!("{h}garbage\n").into_bytes(), 2),
        ("a wrong key", wrong.to_vec(), 3),
    ];
    let mut secret = Secret::new();
    secret.add_raw(&right);
    secret.add_raw(&wrong);
    secret.add_raw(&right[..31]);
    secret.add_hex(&h);
    let out = dir.join("never.elf");
    for (name, key, code) in &cases {
        for via in [Via::File, Via::Stdin, Via::Fifo] {
            for args in [
                vec!["decrypt", "-o", out.to_str().unwrap()],
                vec!["info"],
                vec!["info", "--json"],
            ] {
                let what = format!("{name} via {via:?}: pvdump {args:?}");
                let o = run_with_key(&dir, &args, key, via, &dump);
                let err = expect_code(&o, *code, &what);
                assert!(err.starts_with("pvdump: error: "), "{what}: {err}");
                secret.assert_absent(&o.stdout, &what);
                secret.assert_absent(&o.stderr, &what);
                assert!(!out.exists(), "{what}");
            }
        }
    }
}

#[test]
fn keys_from_standard_input_a_fifo_and_a_pipe() {
    let s = small();
    let dir = scratch("safety-keypipes");
    let out = dir.join("out.elf");
    let check = |o: &Output, what: &str| {
        let err = expect_code(o, 0, what);
        assert!(!err.contains("warning"), "{what}: {err}");
        assert!(fs::read(&out).unwrap() == s.elf, "{what}: wrong output");
        fs::remove_file(&out).unwrap();
    };
    // --key - (hex with a newline, as `gpg -d` might print it).
    let mut child = pvdump()
        .args(["decrypt", "--key", "-"])
        .arg(&s.dump)
        .arg("-o")
        .arg(&out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all((hex(&s.cck) + "\n").as_bytes())
        .unwrap();
    check(&child.wait_with_output().unwrap(), "--key -");
    // --key - on a socket (inetd, socket activation).
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.write_all(&s.cck).unwrap();
    ours.shutdown(std::net::Shutdown::Write).unwrap();
    let o = pvdump()
        .args(["decrypt", "--key", "-"])
        .arg(&s.dump)
        .arg("-o")
        .arg(&out)
        .stdin(std::os::fd::OwnedFd::from(theirs))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    check(&o, "--key - on a socket");
    // A FIFO open to everyone: no mode warning (it applies to regular files).
    let fifo = dir.join("cck.fifo");
    mkfifo(&fifo);
    fs::set_permissions(&fifo, fs::Permissions::from_mode(0o666)).unwrap();
    let child = pvdump()
        .args(["decrypt", "--key"])
        .arg(&fifo)
        .arg(&s.dump)
        .arg("-o")
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    key_writer(&fifo).write_all(&s.cck).unwrap();
    check(&child.wait_with_output().unwrap(), "FIFO key");
    // /dev/fd/3, a pipe, as bash's process substitution passes it.
    let (reader, mut writer) = std::io::pipe().unwrap();
    writer.write_all(&s.cck).unwrap();
    drop(writer);
    let fd = reader.as_raw_fd();
    let mut cmd = pvdump();
    cmd.args(["decrypt", "--key", "/dev/fd/3"])
        .arg(&s.dump)
        .arg("-o")
        .arg(&out)
        .stderr(Stdio::piped());
    // SAFETY: dup2 and fcntl are async-signal-safe; fd 3 is inherited without close-on-exec
    // (dup2 onto itself would keep the flag, hence fcntl when the pipe is fd 3 already).
    unsafe {
        cmd.pre_exec(move || {
            let r = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    check(&cmd.output().unwrap(), "/dev/fd/3");
    drop(reader);
    // The real thing, where bash is installed.
    if Path::new("/bin/bash").exists() {
        let o = Command::new("/bin/bash")
            .arg("-c")
            .arg("exec \"$0\" decrypt --key <(cat \"$1\") \"$2\" -o \"$3\"")
            .arg(BIN)
            .arg(&s.key)
            .arg(&s.dump)
            .arg(&out)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        check(&o, "--key <(cat KEY)");
    } else {
        skip("no /bin/bash: process substitution untested");
    }
    // Endless or interactive sources are bounded or refused, and nothing is written.
    let o = decrypt(Path::new("/dev/zero"), &s.dump, &out, &[]).output().unwrap();
    let err = expect_code(&o, 2, "/dev/zero");
    assert!(err.contains("more than 4096 bytes"), "{err}");
    let (master, tty) = pty();
    let o = decrypt(&tty, &s.dump, &out, &[]).output().unwrap();
    let err = expect_code(&o, 2, "a terminal as key");
    assert!(err.contains("is a terminal"), "{err}");
    let slave = fs::File::open(&tty).unwrap();
    let o = pvdump()
        .args(["decrypt", "--key", "-"])
        .arg(&s.dump)
        .arg("-o")
        .arg(&out)
        .stdin(slave)
        .output()
        .unwrap();
    let err = expect_code(&o, 2, "--key - on a terminal");
    assert!(err.contains("key on standard input: is a terminal"), "{err}");
    // SAFETY: closing the master opened by pty().
    unsafe { libc::close(master) };
    assert_eq!(listing(&dir), ["cck.fifo"]);
}

// ---------------------------------------------------------------------------------------
// Thread counts.

#[test]
fn absurd_thread_counts_are_usage_errors_and_1024_works() {
    let s = small();
    let dir = scratch("safety-threads");
    let out = dir.join("out.elf");
    for n in ["0", "1025", "-1", "abc", "100000", "18446744073709551617", ""] {
        let start = Instant::now();
        let o = decrypt(&s.key, &s.dump, &out, &["--threads", n]).output().unwrap();
        let err = expect_code(&o, 2, &format!("--threads {n:?}"));
        assert!(
            err.starts_with("pvdump: error: ") && err.contains("--threads <N>"),
            "--threads {n:?}: {err}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!out.exists());
    }
    let o = decrypt(&s.key, &s.dump, &out, &["--threads", "1025"]).output().unwrap();
    assert!(
        text(&o.stderr).contains("1025 is not in 1..=1024"),
        "{}",
        text(&o.stderr)
    );
    for extra in [&["--threads", "1024"][..], &["-j", "1024", "--format", "kdump"][..]] {
        let _ = fs::remove_file(&out);
        let o = decrypt(&s.key, &s.dump, &out, extra).output().unwrap();
        expect_code(&o, 0, &format!("{extra:?}"));
    }
    let o = decrypt(&s.key, &s.dump, Path::new("-"), &["--threads", "1024"])
        .output()
        .unwrap();
    expect_code(&o, 0, "--threads 1024 -o -");
    assert!(o.stdout == s.elf);
}

// ---------------------------------------------------------------------------------------
// A closed output pipe.

#[test]
fn a_closed_pipe_ends_quietly_with_141() {
    let s = small();
    // The reader takes one byte and goes away while pvdump still writes (2 MiB > the pipe).
    for format in ["elf", "kdump"] {
        let mut child = decrypt(&s.key, &s.dump, Path::new("-"), format_args(format))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut one = [0u8; 1];
        stdout.read_exact(&mut one).unwrap();
        drop(stdout);
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(141), "{format}: {}", text(&o.stderr));
        assert_eq!(text(&o.stderr), "", "{format}: not quiet");
    }
    // The pipe is closed before anything is written: decrypt, info and info --json.
    for args in [
        vec!["decrypt", "-o", "-", "--key"],
        vec!["info", "--key"],
        vec!["info", "--json", "--key"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = pvdump()
            .args(&args)
            .arg(&s.key)
            .arg(&s.dump)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(141), "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stderr), "", "{args:?}: not quiet");
    }
    // As a shell runs it.
    if Path::new("/bin/bash").exists() {
        for cmd in [
            "set -o pipefail; \"$0\" decrypt -q --key \"$1\" \"$2\" -o - | head -c 1 >/dev/null",
            "set -o pipefail; \"$0\" info --json --key \"$1\" \"$2\" | (exec 0<&-; true)",
        ] {
            let o = Command::new("/bin/bash")
                .arg("-c")
                .arg(cmd)
                .arg(BIN)
                .arg(&s.key)
                .arg(&s.dump)
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            let err = text(&o.stderr);
            assert!(!err.contains("panicked") && !err.contains("pvdump"), "{cmd}: {err}");
            assert!(matches!(o.status.code(), Some(0 | 141)), "{cmd}: {:?} {err}", o.status);
        }
    } else {
        skip("no /bin/bash: shell pipelines untested");
    }
}
