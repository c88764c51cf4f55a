//! Publishing onto a path: refusing what exists without --force, races, and replacing.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};

use super::*;

#[test]
fn an_existing_file_is_refused_without_force_and_left_alone() {
    let _g = serial();
    let s = Scratch::new("exists");
    let path = s.path("vmcore");
    fs::write(&path, b"original").unwrap();
    for allow in BOTH {
        let e = open_err(&path, policy(false, allow), &[]);
        assert!(matches!(&e, OutputError::Exists { path: p } if *p == path), "{e:?}");
        assert_eq!(e.kind(), OutputErrorKind::Exists);
        assert_eq!(
            e.to_string(),
            format!("{}: already exists; pass --force to replace it", path.display())
        );
    }
    assert_eq!(fs::read(&path).unwrap(), b"original");
    assert_eq!(s.names(), ["vmcore"]);
}

#[test]
fn what_appears_at_the_path_before_commit_is_not_replaced_without_force() {
    let _g = serial();
    let s = Scratch::new("race");
    let path = s.path("vmcore");
    for allow in BOTH {
        let f = open_file(&path, policy(false, allow));
        f.file().write_all_at(b"plaintext", 0).unwrap();
        fs::write(&path, b"original").unwrap();
        let e = f.commit().unwrap_err();
        assert!(matches!(e, OutputError::Exists { .. }), "{e:?}");
        assert_eq!(fs::read(&path).unwrap(), b"original");
        assert_eq!(s.names(), ["vmcore"]);
        fs::remove_file(&path).unwrap();

        // A dangling symbolic link is not followed.
        let f = open_file(&path, policy(false, allow));
        std::os::unix::fs::symlink("elsewhere", &path).unwrap();
        let e = f.commit().unwrap_err();
        assert!(matches!(e, OutputError::Exists { .. }), "{e:?}");
        assert_eq!(kind_of(&path), NodeKind::Symlink);
        assert_eq!(s.names(), ["vmcore"]);
        fs::remove_file(&path).unwrap();
    }
}

#[test]
fn racing_writers_one_wins_the_other_is_told() {
    let _g = serial();
    let s = Scratch::new("writers");
    let path = s.path("vmcore");
    for (a, b) in [(true, true), (false, false), (true, false)] {
        let first = open_file(&path, policy(false, a));
        let second = open_file(&path, policy(false, b));
        first.file().write_all_at(b"first", 0).unwrap();
        second.file().write_all_at(b"second", 0).unwrap();
        first.commit().unwrap();
        let e = second.commit().unwrap_err();
        assert!(matches!(e, OutputError::Exists { .. }), "{e:?}");
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(s.names(), ["vmcore"]);
        fs::remove_file(&path).unwrap();
    }
}

#[test]
fn force_replaces_a_regular_file_atomically() {
    let _g = serial();
    let s = Scratch::new("force");
    let path = s.path("vmcore");
    let other = s.path("old-link");
    for allow in BOTH {
        fs::write(&path, b"old contents").unwrap();
        fs::hard_link(&path, &other).unwrap();
        let old_ino = fs::metadata(&path).unwrap().ino();
        let f = open_file(&path, policy(true, allow));
        f.file().write_all_at(b"new", 0).unwrap();
        // Untouched until commit.
        assert_eq!(fs::read(&path).unwrap(), b"old contents");
        f.commit().unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_ne!(meta.ino(), old_ino, "replaced, not rewritten");
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"new");
        // The old inode is intact (rename, not truncate).
        assert_eq!(fs::read(&other).unwrap(), b"old contents");
        assert_eq!(s.names(), ["old-link", "vmcore"]);
        fs::remove_file(&other).unwrap();
        fs::remove_file(&path).unwrap();
    }
}

#[test]
fn force_leaves_alone_a_fifo_directory_or_link_that_appeared_before_commit() {
    let _g = serial();
    let s = Scratch::new("changed");
    let path = s.path("vmcore");
    for allow in BOTH {
        for existed in [false, true] {
            for now in [NodeKind::Fifo, NodeKind::Directory, NodeKind::Symlink] {
                if existed {
                    fs::write(&path, b"old").unwrap();
                }
                let f = open_file(&path, policy(true, allow));
                f.file().write_all_at(b"plaintext", 0).unwrap();
                if existed {
                    fs::remove_file(&path).unwrap();
                }
                match now {
                    NodeKind::Fifo => mkfifo(&path),
                    NodeKind::Directory => fs::create_dir(&path).unwrap(),
                    _ => std::os::unix::fs::symlink("elsewhere", &path).unwrap(),
                }
                let e = f.commit().unwrap_err();
                assert!(
                    matches!(&e, OutputError::Changed { path: p, now: n } if *p == path && *n == now),
                    "{e:?}"
                );
                assert_eq!(e.kind(), OutputErrorKind::Refused);
                assert!(e.to_string().contains("was left alone"), "{e}");
                assert_eq!(kind_of(&path), now);
                assert_eq!(s.names(), ["vmcore"], "{allow} {existed} {now}");
                if now == NodeKind::Directory {
                    fs::remove_dir(&path).unwrap();
                } else {
                    fs::remove_file(&path).unwrap();
                }
            }
        }
    }
}

/// How many of the pages of `path` are in the page cache (`mincore` on a fresh map).
#[cfg(target_os = "linux")]
fn resident_pages(path: &Path) -> usize {
    use std::os::fd::AsRawFd;
    let file = fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len() as usize;
    let pages = len.div_ceil(4096);
    // SAFETY: a shared read-only map of an open file of `len` bytes, unmapped below; mincore
    // writes one byte per page into `vec`, which has that many.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(map, libc::MAP_FAILED);
        let mut vec = vec![0u8; pages];
        assert_eq!(libc::mincore(map, len, vec.as_mut_ptr()), 0);
        libc::munmap(map, len);
        vec.iter().filter(|&&b| b & 1 == 1).count()
    }
}

/// `--force`: the file to be replaced keeps its bytes but not its page cache (on a file
/// system that has one to drop), so the new file can reuse that memory.
#[cfg(target_os = "linux")]
#[test]
fn force_drops_the_old_files_cache_and_keeps_its_bytes() {
    let _g = serial();
    let s = Scratch::new("drop-cache");
    let path = s.path("old.elf");
    let bytes: Vec<u8> = (0..64 * 4096u32).map(|i| (i * 7 + i / 4096) as u8).collect();
    fs::write(&path, &bytes).unwrap();
    // Written back, so the pages are clean; then read, so they are cached.
    fs::File::open(&path).unwrap().sync_all().unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(resident_pages(&path), 64);
    let in_memory = sys::in_memory(&fs::File::open(&path).unwrap());
    let f = open_file(&path, policy(true, true));
    // tmpfs keeps files only in its cache: the advice changes nothing there.
    assert_eq!(resident_pages(&path), if in_memory { 64 } else { 0 });
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "the old file is untouched until commit"
    );
    drop(f);
    assert_eq!(fs::read(&path).unwrap(), bytes);

    // What is not a regular file is left alone: a FIFO is opened without waiting for a
    // writer, a symbolic link is not followed.
    use std::os::fd::AsFd;
    let dir = sys::open_dir(&s.0).unwrap();
    let fifo = s.path("fifo");
    mkfifo(&fifo);
    assert!(!sys::drop_cache_at(dir.as_fd(), c"fifo").unwrap());
    std::os::unix::fs::symlink(&path, s.path("link")).unwrap();
    let e = sys::drop_cache_at(dir.as_fd(), c"link").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
}
