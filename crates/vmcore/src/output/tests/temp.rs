//! The private file from creation to publication: its mode, O_TMPFILE or the registered
//! fallback temp, and what is left when it is dropped or a signal arrives.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;

#[test]
fn private_from_creation_to_publication_under_any_umask() {
    let _g = serial();
    let s = Scratch::new("umask");
    // 0277 masks the owner's bits too: only the fchmod makes that file 0600.
    for mask in [0o022, 0o000, 0o077, 0o277] {
        let _u = Umask::set(mask);
        for allow in BOTH {
            for force in [false, true] {
                let path = s.path(&format!("out-{mask:03o}-{allow}-{force}"));
                if force {
                    // An existing world-readable file is replaced by a private one.
                    fs::write(&path, b"old").unwrap();
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
                }
                let f = open_file(&path, policy(force, allow));
                assert_unnamed(&f, allow);
                assert_eq!(f.file().metadata().unwrap().mode() & 0o7777, 0o600, "umask {mask:03o}");
                if let Some(t) = f.temp_path() {
                    assert_eq!(mode_of(t), 0o600, "{}", t.display());
                }
                f.file().write_all_at(b"plaintext", 0).unwrap();
                f.commit().unwrap();
                assert_eq!(mode_of(&path), 0o600, "{} under umask {mask:03o}", path.display());
                assert_eq!(fs::read(&path).unwrap(), b"plaintext");
            }
        }
    }
    assert_eq!(s.names().len(), 16, "{:?}", s.names());
}

#[cfg(target_os = "linux")]
#[test]
fn an_o_tmpfile_output_has_no_name_until_commit() {
    let _g = serial();
    let s = Scratch::new("unnamed");
    let path = s.path("vmcore");
    let f = open_file(&path, Policy::default());
    assert!(f.is_unnamed());
    let data: Vec<u8> = (0..1 << 20).map(|i| (i * 7) as u8).collect();
    f.file().write_all_at(&data, 0).unwrap();
    assert!(s.names().is_empty(), "{:?}", s.names());
    f.commit().unwrap();
    assert_eq!(s.names(), ["vmcore"]);
    assert_eq!(fs::read(&path).unwrap(), data);
}

#[test]
fn the_fallback_temp_is_private_registered_and_removed_on_request() {
    let _g = serial();
    let s = Scratch::new("fallback");
    let path = s.path("vmcore");
    let f = open_file(&path, policy(false, false));
    assert_unnamed(&f, false);
    let temp = f.temp_path().unwrap().to_path_buf();
    assert!(temp.is_absolute(), "{}", temp.display());
    let name = temp.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!(".vmcore.pvdump-{}-", std::process::id())) && name.ends_with(".tmp"),
        "{name}"
    );
    assert_eq!(s.names(), std::slice::from_ref(&name));
    assert_eq!(mode_of(&temp), 0o600);
    assert!(registry::registered().contains(&temp));

    remove_pending_temp_files();
    assert!(s.names().is_empty(), "{:?}", s.names());
    // Publishing what was removed fails, and leaves nothing.
    let e = f.commit().unwrap_err();
    assert_eq!(e.kind(), OutputErrorKind::Io, "{e}");
    assert!(s.names().is_empty());
    assert!(!registry::registered().contains(&temp));
}

extern "C" fn remove_on_sigusr1(_: libc::c_int) {
    remove_temp_files_from_signal_handler();
}

#[test]
fn a_signal_handler_removes_the_fallback_temp() {
    let _g = serial();
    let s = Scratch::new("signal");
    let f = open_file(&s.path("vmcore"), policy(false, false));
    f.file().write_all_at(b"plaintext", 0).unwrap();
    assert_eq!(s.names().len(), 1);
    let handler = remove_on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only calls the async-signal-safe remover; raise delivers the signal
    // to this thread before returning; the default disposition is restored afterwards.
    unsafe {
        let old = libc::signal(libc::SIGUSR1, handler);
        assert_eq!(libc::raise(libc::SIGUSR1), 0);
        libc::signal(libc::SIGUSR1, old);
    }
    assert!(s.names().is_empty(), "{:?}", s.names());
    drop(f);
    assert!(s.names().is_empty());
}

#[test]
fn dropped_without_commit_leaves_nothing() {
    let _g = serial();
    let s = Scratch::new("drop");
    for allow in BOTH {
        for force in [false, true] {
            let path = s.path("vmcore");
            if force {
                fs::write(&path, b"old").unwrap();
            }
            let f = open_file(&path, policy(force, allow));
            f.file().write_all_at(&[0xa5; 65536], 0).unwrap();
            let temp = f.temp_path().map(Path::to_path_buf);
            drop(f);
            if force {
                assert_eq!(fs::read(&path).unwrap(), b"old");
                fs::remove_file(&path).unwrap();
            }
            assert!(s.names().is_empty(), "{:?}", s.names());
            if let Some(t) = temp {
                assert!(!registry::registered().contains(&t));
            }
        }
    }
}

#[test]
fn long_names_get_short_enough_temporary_names() {
    let _g = serial();
    let s = Scratch::new("long");
    let path = s.path(&"n".repeat(250));
    for allow in BOTH {
        let f = open_file(&path, policy(true, allow));
        if let Some(t) = f.temp_path() {
            assert!(t.file_name().unwrap().len() <= 255);
        }
        f.file().write_all_at(b"x", 0).unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"x");
    }
    assert_eq!(s.names().len(), 1);
}

#[test]
fn the_registry_is_bounded_and_frees_its_slots() {
    let _g = serial();
    let s = Scratch::new("registry");
    let mut held = Vec::new();
    let err = loop {
        match registry::register(&s.path(&format!("t{}", held.len()))) {
            Ok(r) => held.push(r),
            Err(e) => break e,
        }
        assert!(held.len() <= 64, "unbounded");
    };
    assert!(err.to_string().contains("temporary output files pending"), "{err}");
    assert!(!held.is_empty());
    drop(held);
    assert!(registry::registered().is_empty());
    drop(registry::register(&s.path("again")).unwrap());
}
