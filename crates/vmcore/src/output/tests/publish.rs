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
