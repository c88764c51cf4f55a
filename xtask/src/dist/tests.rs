use super::*;

fn ws() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn targets_mirror_the_cross_config() {
    let cfg = std::fs::read_to_string(ws().join(".cargo/cross.toml")).unwrap();
    for t in TARGETS.iter().filter(|t| t.triple != HOST) {
        if t.runner.is_empty() {
            continue;
        }
        let section = cfg
            .split(&format!("[target.{}]", t.triple))
            .nth(1)
            .unwrap_or_else(|| panic!("no [target.{}] in cross.toml", t.triple));
        let section = section.split("\n[").next().unwrap();
        let runner: Vec<String> = t.runner.iter().map(|w| format!("\"{w}\"")).collect();
        assert!(
            section.contains(&runner.join(", ")),
            "{}: runner {:?} not in cross.toml",
            t.triple,
            t.runner
        );
        assert!(
            section.contains(&format!("PVDUMP_TEST_RUNNER={}", t.runner.join(" "))),
            "{}: the tests' runner differs",
            t.triple
        );
        let gcc = t.tools.iter().find(|(tool, _)| tool.ends_with("-gcc")).unwrap().0;
        assert!(section.contains(&format!("linker = \"{gcc}\"")), "{}: linker", t.triple);
    }
}

#[test]
fn every_release_target_is_checked_and_arm64_is_among_them() {
    let release: Vec<&str> = TARGETS.iter().filter(|t| t.release).map(|t| t.triple).collect();
    assert_eq!(
        release,
        [
            HOST,
            "x86_64-unknown-linux-musl",
            "aarch64-unknown-linux-gnu",
            "aarch64-unknown-linux-musl"
        ]
    );
    assert!(
        TARGETS
            .iter()
            .filter(|t| t.triple.contains("musl"))
            .all(|t| t.statically_linked)
    );
    assert!(target("riscv64gc-unknown-linux-gnu").is_err());
}

#[test]
fn this_test_binary_is_dynamically_linked_against_glibc() {
    let me = std::fs::read("/proc/self/exe").unwrap();
    let l = linkage(&me).unwrap();
    assert_eq!(l.machine, EM_X86_64);
    assert!(
        l.interpreter.as_deref().is_some_and(|i| i.contains("ld-linux")),
        "{l:?}"
    );
    assert!(l.needed.iter().any(|n| n.starts_with("libc.so")), "{l:?}");
}

/// A minimal static aarch64 executable: ELF header and one PT_LOAD.
fn tiny_static_elf() -> Vec<u8> {
    let mut b = vec![0u8; 64 + 56];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // 64-bit
    b[5] = 1; // little-endian
    b[6] = 1;
    b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    b[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[24..32].copy_from_slice(&0x400078u64.to_le_bytes()); // entry
    b[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
    b[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
    b[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
    b[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
    let ph = &mut b[64..];
    ph[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    ph[4..8].copy_from_slice(&5u32.to_le_bytes()); // R+X
    ph[16..24].copy_from_slice(&0x400000u64.to_le_bytes());
    ph[24..32].copy_from_slice(&0x400000u64.to_le_bytes());
    ph[32..40].copy_from_slice(&120u64.to_le_bytes());
    ph[40..48].copy_from_slice(&120u64.to_le_bytes());
    ph[48..56].copy_from_slice(&0x1000u64.to_le_bytes());
    b
}

#[test]
fn a_static_executable_has_no_interpreter_and_no_libraries() {
    let l = linkage(&tiny_static_elf()).unwrap();
    assert_eq!(
        l,
        Linkage {
            machine: EM_AARCH64,
            interpreter: None,
            needed: Vec::new()
        }
    );
    let t = target("aarch64-unknown-linux-musl").unwrap();
    let dir = std::env::temp_dir().join(format!("xtask-dist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("static");
    std::fs::write(&f, tiny_static_elf()).unwrap();
    check_linkage(t, &f).unwrap();
    // The same file is the wrong architecture for x86_64, and a dynamic binary is refused
    // for a static target.
    assert!(check_linkage(target("x86_64-unknown-linux-musl").unwrap(), &f).is_err());
    let me = std::fs::read("/proc/self/exe").unwrap();
    std::fs::write(&f, me).unwrap();
    let err = check_linkage(target("x86_64-unknown-linux-musl").unwrap(), &f).unwrap_err();
    assert!(err.to_string().contains("not statically linked"), "{err}");
    check_linkage(target(HOST).unwrap(), &f).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn sample_entries() -> Vec<Entry> {
    vec![
        Entry {
            path: "pvdump-0.1.0-x/".into(),
            mode: 0o755,
            data: Vec::new(),
        },
        Entry {
            path: "pvdump-0.1.0-x/pvdump".into(),
            mode: 0o755,
            data: b"#!/bin/sh\necho hi\n".to_vec(),
        },
        Entry {
            path: "pvdump-0.1.0-x/README.md".into(),
            mode: 0o644,
            data: vec![b'r'; 1000],
        },
    ]
}

#[test]
fn archives_are_byte_identical_and_tar_reads_them() {
    let a = gzip(&ustar(&sample_entries(), 1_700_000_000).unwrap()).unwrap();
    let b = gzip(&ustar(&sample_entries(), 1_700_000_000).unwrap()).unwrap();
    assert_eq!(a, b);
    let c = gzip(&ustar(&sample_entries(), 1_700_000_001).unwrap()).unwrap();
    assert_ne!(a, c, "the mtime is in the archive");
    let raw = ustar(&sample_entries(), 1_700_000_000).unwrap();
    assert_eq!(raw.len() % 512, 0);
    // 3 headers, 1 + 2 data blocks, 2 end blocks.
    assert_eq!(raw.len(), 512 * (3 + 3 + 2));

    if !on_path("tar") {
        panic!("tar is not installed");
    }
    let dir = std::env::temp_dir().join(format!("xtask-tar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("a.tar.gz");
    std::fs::write(&f, &a).unwrap();
    let listing = capture(
        Command::new("tar")
            .args(["--numeric-owner", "--full-time", "--utc", "-tvzf"])
            .arg(&f),
    )
    .unwrap();
    let lines: Vec<Vec<&str>> = listing.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 3, "{listing}");
    assert_eq!(lines[0][0], "drwxr-xr-x");
    assert_eq!(lines[1][0], "-rwxr-xr-x");
    assert_eq!(lines[2][0], "-rw-r--r--");
    for l in &lines {
        assert_eq!(l[1], "0/0", "{listing}");
        assert_eq!(l[3], "2023-11-14", "{listing}");
        assert_eq!(l[4], "22:13:20", "{listing}");
    }
    assert_eq!(lines[1][2], "18");
    assert_eq!(lines[2][5], "pvdump-0.1.0-x/README.md");
    run_status(Command::new("tar").arg("-xzf").arg(&f).arg("-C").arg(&dir)).unwrap();
    assert_eq!(
        std::fs::read(dir.join("pvdump-0.1.0-x/pvdump")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tar_refuses_what_it_cannot_represent() {
    let long = Entry {
        path: "x".repeat(101),
        mode: 0o644,
        data: Vec::new(),
    };
    assert!(ustar(&[long], 0).is_err());
    let mut field = [0u8; 8];
    assert!(octal(&mut field, 0o7777777).is_ok());
    assert!(octal(&mut field, 0o10000000).is_err());
}

#[test]
fn parse_puts_the_host_first_and_defaults_to_the_release_targets() {
    let o = parse(&[]).unwrap();
    let t: Vec<&str> = o.targets.iter().map(|t| t.triple).collect();
    assert_eq!(t[0], HOST);
    assert_eq!(t.len(), 4);
    let o = parse(&[
        "--target".into(),
        "s390x-unknown-linux-gnu".into(),
        "--no-verify".into(),
    ])
    .unwrap();
    let t: Vec<&str> = o.targets.iter().map(|t| t.triple).collect();
    assert_eq!(t, [HOST, "s390x-unknown-linux-gnu"]);
    assert!(!o.verify);
    assert!(parse(&["--target".into()]).is_err());
    assert!(parse(&["--bogus".into()]).is_err());
}
