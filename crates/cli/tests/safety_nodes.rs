//! Output safety of the binary (issue 9), end to end: who can read the output, and what
//! OUT may be: devices and FIFOs get the stream and stay what they are; directories,
//! sockets, links, block devices, terminals and the inputs themselves are refused.
//! (More in safety_midrun.rs, safety_keys.rs and safety_limits.rs.)

mod common;
mod safety_common;
use common::{listing, scratch, skip};
use safety_common::{decrypt, expect_code, fixture, mkfifo, mode_of, pty, pvdump, small, with_umask};

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

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
