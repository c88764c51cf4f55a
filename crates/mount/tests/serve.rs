#![cfg(target_os = "linux")]
//! The library in-process: mount a synthetic dump, read it through the kernel, unmount with
//! an [`Unmounter`] (clean and busy), and by dropping the [`Server`]. Needs root and
//! /dev/fuse: skipped loudly elsewhere, a failure under CI=true.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use pvdump_core::{Cck, Dump, Format, Output, WriteOptions};
use pvdump_mount::{DumpFs, FILE_NAME, Unmounted, mount};
use pvdump_synth::SynthSpec;

fn fuse_ready() -> bool {
    // SAFETY: trivial getter.
    let why = if unsafe { libc::geteuid() } != 0 {
        "the mount tests need root"
    } else if !Path::new("/dev/fuse").exists() {
        "/dev/fuse is missing (modprobe fuse)"
    } else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {why}");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {why} !!!!!!!!\n");
    false
}

fn is_mounted(dir: &Path) -> bool {
    let dir = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(dir))
}

/// A fresh mount point that is lazily unmounted and removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p.canonicalize().unwrap())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if is_mounted(&self.0) {
            let _ = pvdump_mount::detach(&self.0);
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fs_and_bytes(seed: u64) -> (DumpFs, Vec<u8>) {
    let spec = SynthSpec::simple(seed, 2, 2);
    let cck = Cck::from_key_file(&spec.cck()).unwrap();
    let dump = Dump::encrypted_from_bytes(spec.dump_bytes(), &cck).unwrap();
    let mut want = Vec::new();
    dump.write(Format::Elf, &mut Output::Stream(&mut want), &WriteOptions::default())
        .unwrap();
    (DumpFs::new(dump, Some(2)).unwrap(), want)
}

#[test]
fn mount_read_and_unmount() {
    if !fuse_ready() {
        return;
    }
    let dir = Dir::new("clean");
    let (fs, want) = fs_and_bytes(1);
    let server = mount(fs, &dir.0).unwrap();
    assert_eq!(server.mountpoint(), dir.0);
    assert_eq!(server.file(), dir.0.join(FILE_NAME));
    server.check_readable().unwrap();
    assert!(is_mounted(&dir.0));
    assert!(std::fs::read(server.file()).unwrap() == want);
    assert_eq!(server.unmounter().unmount().unwrap(), Unmounted::Clean);
    // Twice is harmless.
    assert_eq!(server.unmounter().unmount().unwrap(), Unmounted::Clean);
    server.wait().unwrap();
    assert!(!is_mounted(&dir.0));
}

#[test]
fn a_busy_unmount_detaches_and_the_open_file_keeps_working() {
    if !fuse_ready() {
        return;
    }
    let dir = Dir::new("busy");
    let (fs, want) = fs_and_bytes(2);
    let server = mount(fs, &dir.0).unwrap();
    let held = File::open(server.file()).unwrap();
    assert_eq!(server.unmounter().unmount().unwrap(), Unmounted::Detached);
    assert!(!is_mounted(&dir.0));
    let mut b = vec![0u8; 700_000];
    held.read_exact_at(&mut b, 12_345).unwrap();
    assert!(b[..] == want[12_345..12_345 + b.len()]);
    drop(held);
    server.wait().unwrap();
}

#[test]
fn dropping_the_server_unmounts() {
    if !fuse_ready() {
        return;
    }
    let dir = Dir::new("drop");
    let (fs, _) = fs_and_bytes(3);
    let server = mount(fs, &dir.0).unwrap();
    server.check_readable().unwrap();
    drop(server);
    assert!(!is_mounted(&dir.0));
}

#[test]
fn a_file_is_not_a_mount_point() {
    let dir = Dir::new("notdir");
    let file = dir.0.join("f");
    std::fs::write(&file, b"x").unwrap();
    let (fs, _) = fs_and_bytes(4);
    let e = mount(fs, &file).unwrap_err();
    assert!(matches!(e, pvdump_mount::MountError::NotADirectory { .. }), "{e}");
    let (fs, _) = fs_and_bytes(5);
    let e = mount(fs, &dir.0.join("missing")).unwrap_err();
    assert!(matches!(e, pvdump_mount::MountError::MountPoint { .. }), "{e}");
}
