//! Streams (character devices, FIFOs), refused node kinds, and outputs that are inputs.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::*;

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
