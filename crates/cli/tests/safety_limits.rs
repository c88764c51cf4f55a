//! Output safety of the binary (issue 9), end to end, at the limits: a full file system,
//! a file size limit, absurd thread counts, a closed output pipe.

mod common;
mod safety_common;
use common::{listing, scratch, skip};
use safety_common::{BIN, decrypt, expect_code, format_args, pvdump, small, text};

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
