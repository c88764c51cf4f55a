//! Output safety of the binary (issue 9), end to end: keys from pipes, FIFOs, sockets and
//! terminals, and key material never echoed.

mod common;
mod safety_common;
use common::{listing, scratch, skip};
use safety_common::{BIN, decrypt, expect_code, fixture, key_writer, mkfifo, pty, pvdump, small, text};

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

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
