//! `pvdump mount` end to end: every bundled and reference dump served byte for byte as
//! `decrypt` writes it, random access, privacy (owner-only, read-only, modes), refusals
//! before mounting (wrong key 3, corrupted dump 4), every way to unmount, a busy unmount,
//! a truncated dump (SIGBUS), bounded memory on a large dump, gdb on the mounted file.
//!
//! Needs root and /dev/fuse (`.ci/run` provides both): elsewhere the tests are skipped
//! loudly, and under CI=true they fail. Every mount is lazily unmounted in teardown.
#![cfg(target_os = "linux")]

mod common;
use common::*;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pvdump_format::ElfCore;
use sha2::{Digest, Sha256};

/// Whether FUSE mounts can be tested here; skips loudly (fails under CI=true) if not.
fn fuse_ready() -> bool {
    // SAFETY: trivial getter.
    if unsafe { libc::geteuid() } != 0 {
        skip("the pvdump mount tests need root (they mount FUSE filesystems)");
        return false;
    }
    if !Path::new("/dev/fuse").exists() {
        skip("/dev/fuse is missing: load the fuse module (modprobe fuse)");
        return false;
    }
    true
}

/// A mount point, unmounted (lazily) and its server stopped when dropped.
struct Mnt {
    dir: PathBuf,
    server: Option<Child>,
}

impl Mnt {
    fn new(tmp: &TempDir) -> Mnt {
        let dir = tmp.path("mnt");
        std::fs::create_dir(&dir).unwrap();
        Mnt { dir, server: None }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("vmcore.elf")
    }

    /// This mount's line in /proc/self/mountinfo.
    fn mountinfo(&self) -> Option<String> {
        let dir = self.dir.to_str().unwrap().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(dir.as_str()))
            .map(str::to_owned)
    }

    fn is_mounted(&self) -> bool {
        self.mountinfo().is_some()
    }

    /// Waits (up to 20 s) until nothing is mounted here.
    fn wait_unmounted(&self) {
        let t = Instant::now();
        while self.is_mounted() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{} stays mounted",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `pvdump mount` in the background; returns when the parent has exited.
    fn mount(&self, dir: &Path, extra: &[&str]) -> Output {
        self.mount_dump(&dir.join("cck.bin"), &dir.join("pvdump.elf"), extra)
    }

    fn mount_dump(&self, key: &Path, dump: &Path, extra: &[&str]) -> Output {
        pvdump()
            .args(["mount", "--key"])
            .arg(key)
            .arg(dump)
            .arg(&self.dir)
            .args(extra)
            .output()
            .unwrap()
    }

    /// `pvdump mount --foreground`; returns once the file is readable.
    fn serve(&mut self, key: &Path, dump: &Path, extra: &[&str]) -> u32 {
        let child = pvdump()
            .args(["mount", "--foreground", "--key"])
            .arg(key)
            .arg(dump)
            .arg(&self.dir)
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.server = Some(child);
        let t = Instant::now();
        while !(self.is_mounted() && std::fs::metadata(self.file()).is_ok()) {
            if let Some(status) = self.server.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the server exited with {status} before the mount was ready: {}",
                    self.stderr()
                );
            }
            assert!(t.elapsed() < Duration::from_secs(60), "the mount did not become ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        pid
    }

    /// Waits (up to 20 s) for the foreground server to exit; returns its code and stderr.
    fn wait_server(&mut self) -> (Option<i32>, String) {
        let child = self.server.as_mut().expect("a foreground server");
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "the server does not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = self.stderr();
        self.server = None;
        (status.code(), err)
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(e) = self.server.as_mut().and_then(|c| c.stderr.as_mut()) {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Mnt {
    fn drop(&mut self) {
        if self.is_mounted() {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        if let Some(c) = &mut self.server {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: signalling a process this test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

/// Waits (up to 20 s) until process `pid` has exited (gone, or a zombie nobody reaps).
fn wait_gone(pid: u32) {
    let t = Instant::now();
    loop {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return,
            Ok(s) if s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z')) => return,
            Ok(_) => {}
        }
        assert!(t.elapsed() < Duration::from_secs(20), "server {pid} is still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server pid from the background parent's message "... (pid N) ...".
fn server_pid(o: &Output) -> u32 {
    let e = stderr(o);
    let at = e.find("(pid ").unwrap_or_else(|| panic!("no pid in: {e}")) + 5;
    e[at..].split(')').next().unwrap().parse().unwrap()
}

/// What `pvdump decrypt -o -` writes for a fixture folder.
fn decrypted(dir: &Path) -> Vec<u8> {
    let o = pvdump()
        .args(["decrypt", "-q", "--key"])
        .arg(dir.join("cck.bin"))
        .arg(dir.join("pvdump.elf"))
        .args(["-o", "-"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    o.stdout
}

fn uid() -> u32 {
    // SAFETY: trivial getter.
    unsafe { libc::geteuid() }
}

fn fixture(name: &str) -> PathBuf {
    workspace().join("fixtures").join(name)
}

#[test]
fn every_dump_mounts_with_the_bytes_decrypt_writes() {
    if !fuse_ready() {
        return;
    }
    let mut dirs = project_fixture_dirs();
    dirs.extend(reference_dirs());
    for dir in dirs {
        let tmp = TempDir::new("mount-all");
        let mnt = Mnt::new(&tmp);
        let o = mnt.mount(&dir, &["-q"]);
        assert!(o.status.success(), "{}: {}", dir.display(), stderr(&o));
        assert!(stderr(&o).is_empty(), "-q prints nothing: {}", stderr(&o));
        let want = decrypted(&dir);
        let meta = std::fs::metadata(mnt.file()).unwrap();
        assert_eq!(meta.len(), want.len() as u64, "{}: size", dir.display());
        assert_eq!(meta.mode() & 0o7777, 0o400, "{}: mode", dir.display());
        assert_eq!((meta.uid(), meta.blksize()), (uid(), 1 << 20));
        let got = std::fs::read(mnt.file()).unwrap();
        assert!(
            got == want,
            "{}: vmcore.elf differs from decrypt's output",
            dir.display()
        );
        let u = Command::new("umount").arg(&mnt.dir).status().unwrap();
        assert!(u.success());
        mnt.wait_unmounted();
    }
}

#[test]
fn random_reads_at_page_and_segment_boundaries() {
    if !fuse_ready() {
        return;
    }
    let dir = fixture("gap-2loads-2cpu");
    let want = decrypted(&dir);
    let core = ElfCore::parse(&want).unwrap();
    assert_eq!(core.loads().len(), 2, "the fixture has two PT_LOADs");
    let mem = core.loads()[0].file_offset as usize;
    let seam = core.loads()[1].file_offset as usize;
    let tmp = TempDir::new("mount-random");
    let mnt = Mnt::new(&tmp);
    let o = mnt.mount(&dir, &["-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = File::open(mnt.file()).unwrap();
    let len = want.len();
    let mut cases = vec![
        (0, 64),
        (1, 4095),
        (mem - 1, 2),
        (mem - 100, 4096 + 200),
        (mem, 1 << 20),
        (seam - 3, 6),
        (seam - 4096 - 1, 3 * 4096),
        (len - 1, 1),
        (len - 10, 100),
        (len - 4096, 4096),
        (len - 3 * 4096 - 5, 2 << 20),
    ];
    for page in (0..len).step_by(4096) {
        cases.push((page.saturating_sub(1), 2));
        cases.push((page + 1, 4096));
    }
    let mut buf = vec![0u8; 2 << 20];
    for (off, size) in cases {
        let b = &mut buf[..size];
        let mut n = 0;
        // Direct I/O returns what the server sends: up to 1 MiB per call.
        while n < size {
            let r = f.read_at(&mut b[n..], (off + n) as u64).unwrap();
            if r == 0 {
                break;
            }
            n += r;
        }
        let end = (off + size).min(len);
        assert_eq!(n, end - off, "bytes at {off}+{size}");
        assert!(b[..n] == want[off..end], "content at {off}+{size}");
    }
    assert_eq!(
        f.read_at(&mut buf[..10], len as u64).unwrap(),
        0,
        "nothing past the end"
    );
    assert_eq!(f.read_at(&mut buf[..10], u64::MAX >> 2).unwrap(), 0);
    // Two readers at once get their own bytes.
    std::thread::scope(|s| {
        for t in 0..2usize {
            let (f, want) = (&f, &want);
            s.spawn(move || {
                let mut b = vec![0u8; 300_000];
                for i in 0..40 {
                    let off = (i * 52_361 + t * 777_777) % (len - b.len());
                    f.read_exact_at(&mut b, off as u64).unwrap();
                    assert!(b[..] == want[off..off + b.len()], "reader {t} at {off}");
                }
            });
        }
    });
}

#[test]
fn the_mount_is_private_and_read_only() {
    if !fuse_ready() {
        return;
    }
    let dir = fixture("mixed-2m-3cpu");
    let tmp = TempDir::new("mount-private");
    let mnt = Mnt::new(&tmp);
    let o = mnt.mount(&dir, &["-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = mnt.mountinfo().unwrap();
    let (head, tail) = line.split_once(" - ").unwrap();
    let opts: Vec<&str> = head.split(' ').nth(5).unwrap().split(',').collect();
    for want in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(opts.contains(&want), "mount option {want} missing: {line}");
    }
    let tail: Vec<&str> = tail.split(' ').collect();
    assert_eq!(&tail[..2], ["fuse", "pvdump"], "{line}");
    assert!(tail[2].contains("default_permissions"), "{line}");
    assert!(!tail[2].contains("allow_other"), "{line}");
    assert!(tail[2].contains(&format!("user_id={}", uid())), "{line}");

    let d = std::fs::metadata(&mnt.dir).unwrap();
    assert_eq!((d.mode() & 0o7777, d.uid()), (0o500, uid()));
    let f = std::fs::metadata(mnt.file()).unwrap();
    assert_eq!((f.mode() & 0o7777, f.uid(), f.nlink()), (0o400, uid(), 1));
    let names: Vec<String> = listing(&mnt.dir);
    assert_eq!(names, ["vmcore.elf"]);

    let refused = |r: std::io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert!(
            matches!(
                e.raw_os_error(),
                Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM)
            ),
            "{what}: {e}"
        );
    };
    refused(
        File::options().write(true).open(mnt.file()).map(drop),
        "open for writing",
    );
    refused(
        File::options().read(true).write(true).open(mnt.file()).map(drop),
        "open read-write",
    );
    refused(File::create(mnt.dir.join("new")).map(drop), "create");
    refused(std::fs::remove_file(mnt.file()), "unlink");
    refused(std::fs::create_dir(mnt.dir.join("d")), "mkdir");
    refused(
        std::fs::set_permissions(mnt.file(), std::fs::Permissions::from_mode(0o644)),
        "chmod",
    );
    refused(std::fs::rename(mnt.file(), mnt.dir.join("x")), "rename");
    // Another user cannot read it (no allow_other, mode 0400).
    let other = Command::new("cat")
        .arg(mnt.file())
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!other.status.success(), "another user read the file");
    assert!(stderr(&other).contains("Permission denied"), "{}", stderr(&other));
    // Nothing decrypted is in the page cache: direct I/O.
    let mut first = [0u8; 4];
    File::open(mnt.file()).unwrap().read_exact(&mut first).unwrap();
    assert_eq!(&first, b"\x7fELF");
}

#[test]
fn wrong_key_and_corrupted_dump_are_refused_before_mounting() {
    if !fuse_ready() {
        return;
    }
    let dir = fixture("gap-2loads-2cpu");
    let other_key = fixture("mixed-2m-3cpu").join("cck.bin");
    let tmp = TempDir::new("mount-refused");
    let mnt = Mnt::new(&tmp);
    for extra in [&["-q"][..], &["-q", "--foreground"][..]] {
        let o = mnt.mount_dump(&other_key, &dir.join("pvdump.elf"), extra);
        assert_eq!(o.status.code(), Some(3), "wrong key {extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("the key does not match"), "{}", stderr(&o));
        assert!(!mnt.is_mounted(), "nothing mounted after a wrong key");
    }
    // Damage the completion data near the end of the file: exit 4, nothing mounted.
    let bad = tmp.path("bad.elf");
    let mut bytes = std::fs::read(dir.join("pvdump.elf")).unwrap();
    let n = bytes.len();
    bytes[n - 100..n - 96].copy_from_slice(&[0xff; 4]);
    std::fs::write(&bad, &bytes).unwrap();
    let o = mnt.mount_dump(&dir.join("cck.bin"), &bad, &["-q"]);
    assert_eq!(o.status.code(), Some(4), "corrupted dump: {}", stderr(&o));
    assert!(!mnt.is_mounted());
    // Not a PV dump, a missing mount point, a file as mount point.
    let plain = tmp.path("plain.elf");
    std::fs::write(&plain, decrypted(&dir)).unwrap();
    let o = mnt.mount_dump(&dir.join("cck.bin"), &plain, &["-q"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let o = pvdump()
        .args(["mount", "-q", "--key"])
        .arg(dir.join("cck.bin"))
        .arg(dir.join("pvdump.elf"))
        .arg(tmp.path("missing"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("mount point"), "{}", stderr(&o));
    assert!(!mnt.is_mounted());
}

#[test]
fn the_key_can_come_from_standard_input() {
    if !fuse_ready() {
        return;
    }
    let dir = fixture("vmcoreinfo-osinfo-1m-1cpu");
    let tmp = TempDir::new("mount-stdin");
    let mnt = Mnt::new(&tmp);
    for (key, code) in [(fixture("mixed-2m-3cpu").join("cck.bin"), 3), (dir.join("cck.bin"), 0)] {
        let mut c = pvdump()
            .args(["mount", "-q", "--key", "-"])
            .arg(dir.join("pvdump.elf"))
            .arg(&mnt.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(&std::fs::read(&key).unwrap())
            .unwrap();
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
        assert_eq!(mnt.is_mounted(), code == 0);
    }
    assert!(std::fs::read(mnt.file()).unwrap() == decrypted(&dir));
    assert!(Command::new("umount").arg(&mnt.dir).status().unwrap().success());
    mnt.wait_unmounted();
}

#[test]
fn foreground_unmounts_cleanly_on_sigint_sigterm_and_sighup() {
    if !fuse_ready() {
        return;
    }
    let dir = fixture("vmcoreinfo-note-1m-2cpu");
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let tmp = TempDir::new("mount-fg");
        let mut mnt = Mnt::new(&tmp);
        let pid = mnt.serve(&dir.join("cck.bin"), &dir.join("pvdump.elf"), &[]);
        assert_eq!(std::fs::read(mnt.file()).unwrap(), decrypted(&dir));
        signal(pid, sig);
        let (code, err) = mnt.wait_server();
        assert_eq!(code, Some(0), "signal {sig}: {err}");
        assert!(err.contains("serving") && err.contains("unmounted"), "{err}");
        assert!(!mnt.is_mounted(), "signal {sig} left a mount");
    }
}

#[test]
fn background_server_ends_on_umount_fusermount_and_sigterm() {
    if !fuse_ready() {
        return;
    }
    let have_fusermount = Command::new("fusermount3").arg("-V").output().is_ok();
    if !have_fusermount {
        skip("fusermount3 (package fuse3) is not installed");
    }
    let dir = fixture("quirks-1m-2cpu");
    let ways: &[&str] = if have_fusermount {
        &["umount", "fusermount3", "SIGTERM"]
    } else {
        &["umount", "SIGTERM"]
    };
    for &how in ways {
        let tmp = TempDir::new("mount-bg");
        let mnt = Mnt::new(&tmp);
        let o = mnt.mount(&dir, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("in the background"), "{}", stderr(&o));
        let pid = server_pid(&o);
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim(), "pvdump", "the server is named pvdump, not exe");
        assert_eq!(std::fs::read(mnt.file()).unwrap(), decrypted(&dir));
        match how {
            "umount" => assert!(Command::new("umount").arg(&mnt.dir).status().unwrap().success()),
            "fusermount3" => assert!(
                Command::new("fusermount3")
                    .arg("-u")
                    .arg(&mnt.dir)
                    .status()
                    .unwrap()
                    .success()
            ),
            _ => signal(pid, libc::SIGTERM),
        }
        wait_gone(pid);
        mnt.wait_unmounted();
    }
}

#[test]
fn a_busy_mount_is_detached_and_served_until_closed() {
    if !fuse_ready() {
        return;
    }
    let dir = fixture("mixed-2m-3cpu");
    let want = decrypted(&dir);
    let tmp = TempDir::new("mount-busy");
    let mut mnt = Mnt::new(&tmp);
    let pid = mnt.serve(&dir.join("cck.bin"), &dir.join("pvdump.elf"), &[]);
    let held = File::open(mnt.file()).unwrap();
    signal(pid, libc::SIGTERM);
    mnt.wait_unmounted();
    // Still served through the open file, though gone from the directory tree.
    let mut b = vec![0u8; 100_000];
    held.read_exact_at(&mut b, 5000).unwrap();
    assert!(b[..] == want[5000..105_000]);
    assert!(mnt.server.as_mut().unwrap().try_wait().unwrap().is_none());
    drop(held);
    let (code, err) = mnt.wait_server();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("is in use: detached"), "{err}");
}

#[test]
fn a_truncated_dump_detaches_the_mount_and_exits_5() {
    if !fuse_ready() {
        return;
    }
    let dir = fixture("mixed-2m-3cpu");
    let tmp = TempDir::new("mount-sigbus");
    let copy = tmp.path("dump.elf");
    std::fs::copy(dir.join("pvdump.elf"), &copy).unwrap();
    let mut mnt = Mnt::new(&tmp);
    mnt.serve(&dir.join("cck.bin"), &copy, &["-q"]);
    File::options()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_len(100_000)
        .unwrap();
    let r = std::fs::read(mnt.file());
    assert!(r.is_err(), "reading pages of a truncated dump must fail");
    let (code, err) = mnt.wait_server();
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("SIGBUS") && err.contains("detached"), "{err}");
    assert!(!mnt.is_mounted(), "no dead mount is left behind");
}

/// A large synthetic dump (cached under the target directory).
fn large_dump(mib: u64) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mount-large");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = pvdump_synth::SynthSpec::simple(0x4d4f_554e_5400 + mib, mib, 2);
    let dump = dir.join(format!("pv-{mib}m-{:x}.elf", spec.seed));
    let key = dir.join(format!("pv-{mib}m-{:x}.cck", spec.seed));
    if !dump.exists() || !key.exists() {
        let tmp = dump.with_extension("tmp");
        let mut w = std::io::BufWriter::with_capacity(1 << 22, File::create(&tmp).unwrap());
        spec.write_dump(&mut w).unwrap();
        w.into_inner().unwrap().sync_all().unwrap();
        std::fs::write(&key, spec.cck()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::rename(&tmp, &dump).unwrap();
    }
    (dump, key)
}

fn rss_anon_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("RssAnon:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn memory_stays_bounded_while_a_large_dump_is_read() {
    if !fuse_ready() {
        return;
    }
    let (dump, key) = large_dump(512);
    let tmp = TempDir::new("mount-large");
    let mut mnt = Mnt::new(&tmp);
    let pid = mnt.serve(&key, &dump, &["-q"]);
    let before = rss_anon_kib(pid);
    let file = mnt.file();
    let reader = std::thread::spawn(move || {
        let mut f = File::open(file).unwrap();
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            total += n as u64;
        }
        (total, h.finalize())
    });
    let mut peak = before;
    while !reader.is_finished() {
        peak = peak.max(rss_anon_kib(pid));
        std::thread::sleep(Duration::from_millis(5));
    }
    let (total, got) = reader.join().unwrap();
    eprintln!("server RssAnon: {before} KiB after mounting, peak {peak} KiB while reading {total} bytes");
    // The decrypted file is over 512 MiB; the server holds at most its two 1 MiB reply
    // buffers, plus allocator and thread overhead.
    assert!(total > 512 << 20);
    assert!(peak < 16 * 1024, "server RssAnon peaked at {peak} KiB");
    let mut d = pvdump()
        .args(["decrypt", "-q", "--key"])
        .arg(&key)
        .arg(&dump)
        .args(["-o", "-"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut h = Sha256::new();
    std::io::copy(&mut d.stdout.take().unwrap(), &mut HashWriter(&mut h)).unwrap();
    assert!(d.wait().unwrap().success());
    assert_eq!(got, h.finalize(), "the large dump's bytes differ from decrypt's");
    signal(pid, libc::SIGTERM);
    assert_eq!(mnt.wait_server().0, Some(0));
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn gdb_reads_the_registers_from_the_mounted_file() {
    if !fuse_ready() {
        return;
    }
    if Command::new("gdb-multiarch").arg("--version").output().is_err() {
        return skip("gdb-multiarch is not installed");
    }
    let dir = reference_dirs()
        .into_iter()
        .find(|d| d.ends_with("mixed-4m-2cpu"))
        .unwrap_or_else(|| fixture("mixed-2m-3cpu"));
    let tmp = TempDir::new("mount-gdb");
    let mnt = Mnt::new(&tmp);
    let o = mnt.mount(&dir, &["-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Command::new("gdb-multiarch")
        .args(["-nx", "-batch", "-ex", "set architecture s390:64-bit", "-ex"])
        .arg(format!("core-file {}", mnt.file().display()))
        .args(["-ex", "info registers pswa r15", "-ex", "info threads"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let cpus = expected_cpus(&dir);
    let reg = |name: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("gdb printed no {name}:\n{text}\n{}", stderr(&o)));
        let v = line.split_whitespace().nth(1).unwrap();
        u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
    };
    assert_eq!(reg("pswa"), cpus[0].regs.psw[1], "{text}");
    assert_eq!(reg("r15"), cpus[0].regs.gprs[15], "{text}");
    assert!(text.contains(&format!("LWP {}", cpus.len())), "{text}");
}

#[test]
fn help_teaches_readers_unmounting_and_privacy() {
    let o = pvdump().args(["mount", "--help"]).output().unwrap();
    assert!(o.status.success());
    let h = String::from_utf8_lossy(&o.stdout);
    for want in [
        "crash vmlinux /mnt/guest/vmcore.elf",
        "drgn -c /mnt/guest/vmcore.elf",
        "gdb-multiarch vmlinux /mnt/guest/vmcore.elf",
        "umount /mnt/guest",
        "fusermount3 -u",
        "--foreground",
        "0400",
        "1 MiB",
        "Exit codes:",
    ] {
        assert!(h.contains(want), "mount --help lacks {want:?}:\n{h}");
    }
    assert!(!h.contains("ready-fd"), "the internal option stays hidden");
}
