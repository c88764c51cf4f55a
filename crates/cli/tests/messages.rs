//! One message style: every error is `pvdump: error: ...` and every warning
//! `pvdump: warning: ...` on stderr, whoever produces it (clap, the key reader, the
//! format parser, the crypto layer, the file system), with the documented exit code.

mod common;

use std::process::Output;

use common::{TempDir, run, stderr};
use pvdump_synth::SynthSpec;

/// Asserts the exit code and that stderr is one error message in the house style: its
/// first line starts with `pvdump: error: ` followed by `needle` somewhere, and no line
/// carries another tool's prefix.
fn assert_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(
        o.stdout.is_empty(),
        "stdout on error: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(err.starts_with("pvdump: error: "), "unprefixed error: {err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert_no_foreign_prefix(&err);
    assert_eq!(err.matches("pvdump: error: ").count(), 1, "one error: {err}");
}

fn assert_no_foreign_prefix(err: &str) {
    for line in err.lines() {
        for foreign in ["error:", "Error:", "warning:", "Warning:", "thread '", "note:"] {
            assert!(
                !line.starts_with(foreign),
                "line with a foreign prefix: {line:?} in {err:?}"
            );
        }
        if line.starts_with("pvdump:") {
            assert!(
                line.starts_with("pvdump: error: ")
                    || line.starts_with("pvdump: warning: ")
                    || line.starts_with("pvdump: wrote "),
                "{line:?}"
            );
        }
    }
}

struct Files {
    tmp: TempDir,
    key: std::path::PathBuf,
    dump: std::path::PathBuf,
}

fn files(tag: &str) -> Files {
    let spec = SynthSpec::simple(0x3e55_0000 + tag.len() as u64, 1, 2);
    let tmp = TempDir::new(&format!("msg-{tag}"));
    let key = tmp.path("cck.bin");
    std::fs::write(&key, spec.cck()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let dump = tmp.path("dump.elf");
    std::fs::write(&dump, spec.dump_bytes()).unwrap();
    Files { tmp, key, dump }
}

#[test]
fn usage_errors_from_clap() {
    for (args, needle) in [
        (&["decrypt", "--bogus"][..], "unexpected argument '--bogus'"),
        (&["frobnicate"][..], "unrecognized subcommand 'frobnicate'"),
        (&["info"][..], "<DUMP>"),
        (&["decrypt", "-f", "tar", "x"][..], "invalid value 'tar'"),
        (&["completions", "tcsh"][..], "invalid value 'tcsh'"),
        (&[][..], "no command given"),
    ] {
        let args: Vec<&dyn AsRef<std::ffi::OsStr>> = args.iter().map(|a| a as _).collect();
        let o = run(&args);
        assert_error(&o, 2, needle);
    }
}

#[test]
fn usage_error_from_pvdump() {
    let f = files("usage");
    let out = f.tmp.path("out.elf");
    std::fs::write(&out, b"x").unwrap();
    let o = run(&[&"decrypt", &"-q", &"--key", &f.key, &f.dump, &"-o", &out]);
    assert_error(&o, 2, "already exists; pass --force");
}

#[test]
fn bad_dump() {
    let f = files("bad");
    std::fs::write(&f.dump, vec![0x42u8; 8192]).unwrap();
    let o = run(&[&"info", &f.dump]);
    assert_error(&o, 4, &f.dump.display().to_string());
    let o = run(&[&"decrypt", &"--key", &f.key, &f.dump, &"-o", &f.tmp.path("out.elf")]);
    assert_error(&o, 4, &f.dump.display().to_string());
    let o = run(&[&"convert", &f.dump, &"-o", &f.tmp.path("out.kdump")]);
    assert_error(&o, 4, &f.dump.display().to_string());
}

#[test]
fn wrong_key() {
    let f = files("wrongkey");
    std::fs::write(&f.key, [7u8; 32]).unwrap();
    for args in [vec!["info", "--key"], vec!["decrypt", "-q", "-o", "-", "--key"]] {
        let mut a: Vec<&dyn AsRef<std::ffi::OsStr>> = args.iter().map(|a| a as _).collect();
        a.push(&f.key);
        a.push(&f.dump);
        let o = run(&a);
        assert_error(&o, 3, "the key does not match this dump");
    }
}

#[test]
fn io_errors() {
    let f = files("io");
    let missing = f.tmp.path("no-such-dump.elf");
    let o = run(&[&"info", &missing]);
    assert_error(&o, 5, "no-such-dump.elf");
    let o = run(&[&"convert", &missing, &"-o", &f.tmp.path("out")]);
    assert_error(&o, 5, "no-such-dump.elf");
    // An output folder that does not exist.
    let out = f.tmp.path("no-such-dir/vmcore");
    let o = run(&[&"decrypt", &"-q", &"--key", &f.key, &f.dump, &"-o", &out]);
    assert_error(&o, 5, "no-such-dir");
}

#[test]
fn warnings() {
    let f = files("warn");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let o = run(&[&"info", &"--key", &f.key, &f.dump]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.starts_with("pvdump: warning: key file "), "{err:?}");
    assert!(err.contains("mode 644"), "{err:?}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert_no_foreign_prefix(&err);
}

#[test]
fn quiet_with_a_private_key_prints_nothing() {
    let f = files("quiet");
    let out = f.tmp.path("out.elf");
    let o = run(&[&"decrypt", &"-q", &"--key", &f.key, &f.dump, &"-o", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    assert!(o.stdout.is_empty());
    let o = run(&[&"convert", &"-q", &out, &"-o", &f.tmp.path("out.kdump")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

/// A shape QEMU never writes but zgetdump decrypts (here: a PT_LOAD whose p_filesz is not
/// whole pages) is decrypted with exit 0 and one warning naming the dump, the program
/// header and its file offset, even with -q.
#[test]
fn irregular_dumps_decrypt_with_a_warning() {
    let f = files("irregular");
    let mut bytes = std::fs::read(&f.dump).unwrap();
    let core = pvdump_format::ElfCore::parse(&bytes).unwrap();
    let load = core.loads()[0];
    let at = load.phdr_offset as usize;
    bytes[at + 32..at + 40].copy_from_slice(&(load.filesz - 100).to_be_bytes());
    std::fs::write(&f.dump, &bytes).unwrap();
    let out = f.tmp.path("vmcore");
    let o = run(&[&"decrypt", &"-q", &"--key", &f.key, &f.dump, &"-o", &out]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_no_foreign_prefix(&err);
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [format!(
            "pvdump: warning: {}: program header {} (PT_LOAD) at file offset {:#x}: p_paddr 0x0 or p_filesz {:#x} is not a multiple of the 4 KiB page size; its pages were decrypted whole from the segment's start, as zgetdump does, and the rest of its first and last page frame reads as zero",
            f.dump.display(),
            load.phdr_index,
            load.phdr_offset,
            load.filesz - 100
        )]
    );
    assert!(out.exists());
}
