//! `pvdump mount` end to end, its lifecycle: refusals before mounting (wrong key 3, corrupted
//! dump 4), the key from standard input, every way to unmount, a busy unmount, a truncated
//! dump (SIGBUS), and what --help teaches. (Reading is in mount_read.rs.)
//!
//! Needs root and /dev/fuse (`.ci/run` provides both): elsewhere the tests are skipped
//! loudly, and under CI=true they fail. Every mount is lazily unmounted in teardown.
#![cfg(target_os = "linux")]

mod common;
mod mount_common;
use common::*;
use mount_common::*;

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};

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
