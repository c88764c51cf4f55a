//! The hostile-input corpus end to end: key files and paths that only the binary handles,
//! and a sample of the damaged dumps of `crates/core/tests/mutants` (every structure they
//! cover is checked at library level by `crates/core/tests/corpus.rs`). Each run checks the
//! exit code, that the message names the problem, that nothing panicked, that no output or
//! temporary file is left behind, that no run hangs and that a child's memory stays bounded.

mod common;
use common::{listing, scratch};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../core/tests/mutants/mod.rs"]
mod mutants;

const BIN: &str = env!("CARGO_BIN_EXE_pvdump");

type KeyFn = Box<dyn Fn(&Path, &[u8; 32])>;
/// Builds the argument list (and the output path that must not appear) from (dir, dump, key).
type ArgsFn = Box<dyn Fn(&Path, &Path, &Path) -> (Vec<String>, Option<PathBuf>)>;

/// How the case is fed to pvdump.
enum Input {
    /// A damaged dump (a mutant), the right key.
    Dump(usize),
    /// The valid dump, a bad key file (written by the closure into the given path).
    Key(KeyFn),
    /// Anything else: the closure builds the full argument list.
    Args(ArgsFn),
}

struct Case {
    name: String,
    input: Input,
    code: i32,
    /// Substrings the error message must contain.
    expect: Vec<String>,
}

fn key_case(name: &str, code: i32, expect: &[&str], f: impl Fn(&Path, &[u8; 32]) + 'static) -> Case {
    Case {
        name: name.into(),
        input: Input::Key(Box::new(f)),
        code,
        expect: expect.iter().map(|s| s.to_string()).collect(),
    }
}

fn args_case(
    name: &str,
    code: i32,
    expect: &[&str],
    f: impl Fn(&Path, &Path, &Path) -> (Vec<String>, Option<PathBuf>) + 'static,
) -> Case {
    Case {
        name: name.into(),
        input: Input::Args(Box::new(f)),
        code,
        expect: expect.iter().map(|s| s.to_string()).collect(),
    }
}

/// Every fourth mutant and every wrong-key mutant through the binary, then the key and
/// path cases.
fn cases(all: &[mutants::Mutant]) -> Vec<Case> {
    let mut v: Vec<Case> = all
        .iter()
        .enumerate()
        .filter(|(i, m)| i % 4 == 0 || m.code == 3)
        .map(|(i, m)| Case {
            name: m.name.clone(),
            input: Input::Dump(i),
            code: m.code,
            expect: m.expect.clone(),
        })
        .collect();
    // --- Key files.
    v.push(key_case("key: empty file", 2, &["key file", "empty"], |p, _| {
        std::fs::write(p, b"").unwrap()
    }));
    v.push(key_case("key: 16 bytes", 2, &["key file", "16 bytes"], |p, k| {
        std::fs::write(p, &k[..16]).unwrap()
    }));
    v.push(key_case(
        "key: 63 hex digits",
        2,
        &["key file", "63 hex digits"],
        |p, k| std::fs::write(p, &hex_key(k)[..63]).unwrap(),
    ));
    v.push(key_case("key: a directory", 2, &["key file", "directory"], |p, _| {
        std::fs::create_dir(p).unwrap()
    }));
    v.push(key_case("key: missing", 2, &["key file", "No such file"], |_, _| {}));
    v.push(key_case(
        "key: unreadable (path through a file)",
        2,
        &["key file", "Not a directory"],
        |_, _| {},
    ));
    v.push(key_case(
        "key: a FIFO holding 16 bytes",
        2,
        &["key file", "holds 16 bytes"],
        |p, k| {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            // The writer blocks until pvdump opens the FIFO (FIFOs are read, once).
            let (p, k) = (p.to_path_buf(), *k);
            std::thread::spawn(move || std::fs::write(p, &k[..16]));
        },
    ));
    v.push(key_case(
        "key: /dev/zero",
        2,
        &["key file", "more than 4096 bytes"],
        |_, _| {},
    ));
    v.push(key_case("key: 1 MiB", 2, &["key file", "1048576 bytes"], |p, _| {
        std::fs::write(p, vec![0u8; 1 << 20]).unwrap()
    }));
    v.push(key_case(
        "key: wrong key (raw)",
        3,
        &["does not match", "all 2 CPU notes"],
        |p, k| {
            let mut w = *k;
            w[0] ^= 1;
            std::fs::write(p, w).unwrap()
        },
    ));
    v.push(key_case(
        "key: wrong key (hex)",
        3,
        &["does not match", "CCK"],
        |p, k| {
            let mut w = *k;
            w[31] ^= 0x80;
            std::fs::write(p, hex_key(&w) + "\n").unwrap()
        },
    ));

    // --- Paths and output.
    v.push(args_case(
        "dump: missing",
        5,
        &["cannot open dump", "No such file"],
        |dir, _, key| {
            (
                decrypt_args(key, &dir.join("nope.elf"), &dir.join("out.elf")),
                Some(dir.join("out.elf")),
            )
        },
    ));
    v.push(args_case("dump: a directory", 5, &["is a directory"], |dir, _, key| {
        (decrypt_args(key, dir, &dir.join("out.elf")), Some(dir.join("out.elf")))
    }));
    v.push(args_case("dump: a FIFO", 5, &["not a regular file"], |dir, _, key| {
        let fifo = dir.join("fifo.elf");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        (
            decrypt_args(key, &fifo, &dir.join("out.elf")),
            Some(dir.join("out.elf")),
        )
    }));
    v.push(args_case(
        "output: directory missing",
        5,
        &["cannot open the output's directory", "No such file"],
        |dir, dump, key| {
            let out = dir.join("no/such/dir/out.elf");
            (decrypt_args(key, dump, &out), Some(out))
        },
    ));
    v.push(args_case(
        "output: is the input",
        2,
        &["is the input dump", "refusing to write the output over an input"],
        |_, dump, key| (decrypt_args(key, dump, dump), None),
    ));
    v.push(args_case(
        "output: exists without --force",
        2,
        &["already exists", "--force"],
        |dir, dump, key| {
            let out = dir.join("existing.elf");
            std::fs::write(&out, b"keep me").unwrap();
            (decrypt_args(key, dump, &out), None)
        },
    ));
    v.push(args_case("usage: --threads 0", 2, &["--threads"], |dir, dump, key| {
        let mut a = decrypt_args(key, dump, &dir.join("out.elf"));
        a.extend(["--threads".into(), "0".into()]);
        (a, Some(dir.join("out.elf")))
    }));
    v
}

fn hex_key(k: &[u8; 32]) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

fn decrypt_args(key: &Path, dump: &Path, out: &Path) -> Vec<String> {
    ["decrypt", "--key"]
        .into_iter()
        .map(String::from)
        .chain(
            [key, dump, Path::new("-o"), out]
                .iter()
                .map(|p| p.display().to_string()),
        )
        .collect()
}

fn children_max_rss_kib() -> i64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) }, 0);
    ru.ru_maxrss
}

fn run_with_timeout(args: &[String]) -> (i32, String, Duration) {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = start + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pvdump {args:?} hung for 20 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&out.stderr).into_owned(), start.elapsed())
}

#[test]
fn corruption_corpus() {
    let (dump, cck) = mutants::base();
    let layout = mutants::Layout::of(&dump);
    assert_eq!(layout.cpu_notes.len(), 2);
    let all = mutants::mutants(&layout);
    let cases = cases(&all);
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for (i, case) in cases.iter().enumerate() {
        let dir = scratch(&format!("corpus/{i:03}"));
        let dump_path = dir.join("dump.elf");
        let key_path = dir.join("cck.bin");
        let out = dir.join("out.elf");
        let mut d = dump.clone();
        let mut key_arg = key_path.clone();
        let (args, out_path) = match &case.input {
            Input::Dump(m) => {
                d = all[*m].apply(&layout, &dump);
                std::fs::write(&key_path, cck).unwrap();
                std::fs::write(&dump_path, &d).unwrap();
                (decrypt_args(&key_path, &dump_path, &out), Some(out.clone()))
            }
            Input::Key(f) => {
                std::fs::write(&dump_path, &d).unwrap();
                f(&key_path, &cck);
                if case.name.contains("path through a file") {
                    key_arg = dump_path.join("cck.bin");
                } else if case.name.contains("/dev/zero") {
                    key_arg = PathBuf::from("/dev/zero");
                }
                (decrypt_args(&key_arg, &dump_path, &out), Some(out.clone()))
            }
            Input::Args(f) => {
                std::fs::write(&key_path, cck).unwrap();
                std::fs::write(&dump_path, &d).unwrap();
                f(&dir, &dump_path, &key_path)
            }
        };
        let before = listing(&dir);
        let (code, stderr, took) = run_with_timeout(&args);
        let mut problems = Vec::new();
        if code != case.code {
            problems.push(format!("exit code {code}, expected {}", case.code));
        }
        for e in &case.expect {
            if !stderr.contains(e.as_str()) {
                problems.push(format!("message lacks {e:?}"));
            }
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            problems.push("panicked".into());
        }
        if stderr.lines().count() > 4 {
            problems.push(format!("message has {} lines", stderr.lines().count()));
        }
        if let Some(o) = &out_path
            && o.exists()
        {
            problems.push(format!("output {} left behind", o.display()));
        }
        let after = listing(&dir);
        if after != before {
            problems.push(format!("directory changed: {before:?} -> {after:?}"));
        }
        if took > slowest.0 {
            slowest = (took, case.name.clone());
        }
        // `info` reads the same structures: it must not panic or hang either.
        if matches!(case.input, Input::Dump(_)) {
            let info: Vec<String> = ["info", "--json", "--key"]
                .into_iter()
                .map(String::from)
                .chain([key_path.display().to_string(), dump_path.display().to_string()])
                .collect();
            let (icode, istderr, _) = run_with_timeout(&info);
            if ![0, 3, 4].contains(&icode) || istderr.contains("panicked") {
                problems.push(format!("info: exit {icode}: {}", istderr.trim()));
            }
            if icode != 0 && !istderr.contains("pvdump: error:") {
                problems.push(format!("info: exit {icode} without an error message"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "[{}] {}: {}\n    stderr: {}",
                i,
                case.name,
                problems.join("; "),
                stderr.trim()
            ));
        }
    }
    let rss = children_max_rss_kib();
    eprintln!(
        "corruption corpus: {} cases, slowest {:?} ({}), max child RSS {} KiB",
        cases.len(),
        slowest.0,
        slowest.1,
        rss
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    // A 1 MiB dump must not need more than a few tens of MiB (the map plus the program).
    assert!(rss < 64 * 1024, "a child used {rss} KiB");
}

#[test]
fn valid_base_decrypts() {
    let (dump, cck) = mutants::base();
    let dir = scratch("corpus-valid");
    std::fs::write(dir.join("dump.elf"), &dump).unwrap();
    std::fs::write(dir.join("cck.bin"), cck).unwrap();
    let args = decrypt_args(&dir.join("cck.bin"), &dir.join("dump.elf"), &dir.join("out.elf"));
    let (code, stderr, _) = run_with_timeout(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(std::fs::metadata(dir.join("out.elf")).unwrap().len() > 1 << 20);
    assert_eq!(listing(&dir), ["cck.bin", "dump.elf", "out.elf"]);
}
