//! Output safety of the binary (issue 9), end to end, while a run writes: racing writers,
//! a file appearing at OUT, and signals; the name is claimed only at the end, atomically.

mod common;
mod safety_common;
use common::{listing, scratch, tmpfile_supported, wait_until_writing};
use safety_common::{big, decrypt, expect_code, key_writer, mkfifo, mode_of, small, text};

use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Races: the name is claimed only at the end, atomically.

#[test]
fn racing_writers_exactly_one_wins_and_its_file_is_intact() {
    let s = small();
    let dir = scratch("safety-race");
    let out = dir.join("out.elf");
    // Deterministic: both runs are held at their key (a FIFO each) after their output check,
    // then let go together.
    let fifos = [dir.join("k1.fifo"), dir.join("k2.fifo")];
    let children: Vec<Child> = fifos
        .iter()
        .map(|f| {
            mkfifo(f);
            decrypt(f, &s.dump, &out, &[]).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    let mut writers: Vec<fs::File> = fifos.iter().map(|f| key_writer(f)).collect();
    assert!(!out.exists());
    for w in &mut writers {
        w.write_all(&s.cck).unwrap();
    }
    drop(writers);
    let results: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let codes: Vec<Option<i32>> = results.iter().map(|o| o.status.code()).collect();
    assert_eq!(
        codes.iter().filter(|&&c| c == Some(0)).count(),
        1,
        "{codes:?}: {}",
        results.iter().map(|o| text(&o.stderr)).collect::<String>()
    );
    let loser = results.iter().find(|o| o.status.code() != Some(0)).unwrap();
    let err = expect_code(loser, 2, "the loser");
    assert!(err.contains("already exists"), "{err}");
    assert!(fs::read(&out).unwrap() == s.elf, "the winner's file is not intact");
    assert_eq!(listing(&dir), ["k1.fifo", "k2.fifo", "out.elf"]);

    // Undirected: four at once.
    fs::remove_file(&out).unwrap();
    let children: Vec<Child> = (0..4)
        .map(|_| {
            decrypt(&s.key, &s.dump, &out, &[])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let mut codes: Vec<Option<i32>> = results.iter().map(|o| o.status.code()).collect();
    codes.sort();
    assert_eq!(codes, [Some(0), Some(2), Some(2), Some(2)]);
    assert!(fs::read(&out).unwrap() == s.elf, "the winner's file is not intact");
    assert_eq!(listing(&dir), ["k1.fifo", "k2.fifo", "out.elf"]);
}

#[test]
fn a_file_created_at_out_during_the_run_is_left_alone() {
    let s = small();
    let dir = scratch("safety-midrun");
    // Deterministic: the run waits at its key (a FIFO) after checking that OUT is free.
    let out = dir.join("out.elf");
    let fifo = dir.join("key.fifo");
    mkfifo(&fifo);
    let child = decrypt(&fifo, &s.dump, &out, &[])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = key_writer(&fifo);
    fs::write(&out, b"created meanwhile").unwrap();
    w.write_all(&s.cck).unwrap();
    drop(w);
    let o = child.wait_with_output().unwrap();
    let err = expect_code(&o, 2, "file created during the run");
    assert!(err.contains("out.elf: already exists; pass --force"), "{err}");
    assert_eq!(fs::read(&out).unwrap(), b"created meanwhile");
    assert_eq!(listing(&dir), ["key.fifo", "out.elf"]);

    // While it writes a 256 MiB dump with one thread.
    let (dump, key) = big();
    let out = dir.join("big.elf");
    let mut child = decrypt(key, dump, &out, &["--threads", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_writing(&mut child, || {});
    let created = fs::OpenOptions::new().write(true).create_new(true).open(&out);
    let mut f = created.expect("the run finished before the file could be created: make the dump larger");
    f.write_all(b"appeared mid-run").unwrap();
    drop(f);
    let o = child.wait_with_output().unwrap();
    let err = expect_code(&o, 2, "file created while writing");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(fs::read(&out).unwrap(), b"appeared mid-run");
    assert_eq!(listing(&dir), ["big.elf", "key.fifo", "out.elf"]);
}

// ---------------------------------------------------------------------------------------
// Signals.

/// Starts a 256 MiB decrypt into an empty folder, waits until it writes (checking all along
/// that nothing named appears there), sends `signals` (`gap` apart), and checks that the
/// folder is still empty afterwards. Returns the exit status and stderr.
fn interrupt(tag: &str, signals: &[libc::c_int], gap: Duration) -> (std::process::ExitStatus, String) {
    let (dump, key) = big();
    let dir = scratch(&format!("safety-signal-{tag}"));
    let out = dir.join("out.elf");
    let unnamed = tmpfile_supported(&dir);
    if !unnamed {
        eprintln!(
            "\n!!!!!!!! O_TMPFILE is not supported in {}: the output is a named 0600 temporary file while written !!!!!!!!\n",
            dir.display()
        );
    }
    let mut child = decrypt(key, dump, &out, &["--threads", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_writing(&mut child, || {
        if unnamed {
            assert_eq!(listing(&dir), Vec::<String>::new(), "a name appeared while writing");
        }
    });
    for (i, &sig) in signals.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(gap);
        }
        // SAFETY: kill(2) on our own child, which has not been waited for.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
    }
    let start = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?} to stop",
        start.elapsed()
    );
    let err = text(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let left = listing(&dir);
    if unnamed || signals != [libc::SIGKILL] {
        assert_eq!(left, Vec::<String>::new(), "{tag}: left behind");
    } else {
        // Without O_TMPFILE only SIGKILL can leave the (private) temporary file.
        for name in &left {
            assert!(name.starts_with(".out.elf.pvdump-") && name.ends_with(".tmp"), "{name}");
            assert_eq!(mode_of(&dir.join(name)), 0o600);
        }
    }
    assert!(!out.exists());
    (o.status, err)
}

#[test]
fn sigint_leaves_nothing_and_exits_130() {
    let (status, err) = interrupt("int", &[libc::SIGINT], Duration::ZERO);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
}

#[test]
fn sigterm_leaves_nothing_and_exits_130() {
    let (status, err) = interrupt("term", &[libc::SIGTERM], Duration::ZERO);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
}

#[test]
fn sighup_leaves_nothing_and_exits_130() {
    let (status, err) = interrupt("hup", &[libc::SIGHUP], Duration::ZERO);
    assert_eq!(status.code(), Some(130), "{err}");
}

#[test]
fn a_second_sigint_leaves_nothing_and_exits_130() {
    let (status, err) = interrupt("int2", &[libc::SIGINT, libc::SIGINT], Duration::from_millis(1));
    assert_eq!(status.code(), Some(130), "{err}");
}

#[test]
fn sigkill_leaves_nothing() {
    let (status, _) = interrupt("kill", &[libc::SIGKILL], Duration::ZERO);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}
