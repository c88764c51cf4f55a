//! Helpers shared by the mount_* tests (`pvdump mount` end to end): whether FUSE can be
//! tested here, a mount point that cleans up after itself, and server processes.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TempDir, pvdump, skip, stderr, workspace};

/// Whether FUSE mounts can be tested here; skips loudly (fails under CI=true) if not.
pub fn fuse_ready() -> bool {
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
pub struct Mnt {
    pub dir: PathBuf,
    pub server: Option<Child>,
}

impl Mnt {
    pub fn new(tmp: &TempDir) -> Mnt {
        let dir = tmp.path("mnt");
        std::fs::create_dir(&dir).unwrap();
        Mnt { dir, server: None }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join("vmcore.elf")
    }

    /// This mount's line in /proc/self/mountinfo.
    pub fn mountinfo(&self) -> Option<String> {
        let dir = self.dir.to_str().unwrap().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(dir.as_str()))
            .map(str::to_owned)
    }

    pub fn is_mounted(&self) -> bool {
        self.mountinfo().is_some()
    }

    /// Waits (up to 20 s) until nothing is mounted here.
    pub fn wait_unmounted(&self) {
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
    pub fn mount(&self, dir: &Path, extra: &[&str]) -> Output {
        self.mount_dump(&dir.join("cck.bin"), &dir.join("pvdump.elf"), extra)
    }

    pub fn mount_dump(&self, key: &Path, dump: &Path, extra: &[&str]) -> Output {
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
    pub fn serve(&mut self, key: &Path, dump: &Path, extra: &[&str]) -> u32 {
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
    pub fn wait_server(&mut self) -> (Option<i32>, String) {
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

    pub fn stderr(&mut self) -> String {
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

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: signalling a process this test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

/// Waits (up to 20 s) until process `pid` has exited (gone, or a zombie nobody reaps).
pub fn wait_gone(pid: u32) {
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
pub fn server_pid(o: &Output) -> u32 {
    let e = stderr(o);
    let at = e.find("(pid ").unwrap_or_else(|| panic!("no pid in: {e}")) + 5;
    e[at..].split(')').next().unwrap().parse().unwrap()
}

/// What `pvdump decrypt -o -` writes for a fixture folder.
pub fn decrypted(dir: &Path) -> Vec<u8> {
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

pub fn uid() -> u32 {
    // SAFETY: trivial getter.
    unsafe { libc::geteuid() }
}

pub fn fixture(name: &str) -> PathBuf {
    workspace().join("fixtures").join(name)
}
