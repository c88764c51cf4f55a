//! `pvdump mount` end to end, reading: every bundled and reference dump served byte for byte
//! as `decrypt` writes it, random access, privacy (owner-only, read-only, modes), bounded
//! memory on a large dump, gdb on the mounted file. (The lifecycle is in mount_lifecycle.rs.)
//!
//! Needs root and /dev/fuse (`.ci/run` provides both): elsewhere the tests are skipped
//! loudly, and under CI=true they fail. Every mount is lazily unmounted in teardown.
#![cfg(target_os = "linux")]

mod common;
mod mount_common;
use common::*;
use mount_common::*;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pvdump_format::ElfCore;
use sha2::{Digest, Sha256};

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
