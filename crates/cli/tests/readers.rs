//! Real readers on pvdump's output: binutils `readelf -n` and `gdb-multiarch` (installed by
//! .ci/run). Skipped loudly where they are missing; a failure under CI=true.

mod common;
use common::*;

use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Decrypts the reference dump `mixed-4m-2cpu` (made outside the project) when it is
/// there, else the bundled fixture `mixed-2m-3cpu`; returns the fixture folder and output.
fn decrypt_a_fixture(tmp: &TempDir) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = reference_dirs()
        .into_iter()
        .find(|d| d.ends_with("mixed-4m-2cpu"))
        .unwrap_or_else(|| workspace().join("fixtures/mixed-2m-3cpu"));
    let (out, _) = decrypt_quietly(&dir, tmp);
    (dir, out)
}

#[test]
fn readelf_parses_every_note_without_warnings() {
    if !have("readelf") {
        return skip("readelf (binutils-multiarch) is not installed");
    }
    let tmp = TempDir::new("readelf");
    let (dir, out) = decrypt_a_fixture(&tmp);
    let n = expected_cpus(&dir).len();
    let o = Command::new("readelf")
        .args(["-W", "-h", "-l", "-n"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && err.is_empty(), "readelf complained: {err}");
    assert!(text.contains("Machine:                           IBM S/390"), "{text}");
    assert!(text.contains("CORE (Core file)"));
    for (what, n) in [
        ("NT_PRPSINFO", 1),
        ("NT_PRSTATUS", n),
        ("NT_FPREGSET", n),
        ("NT_S390_TIMER", n),
        ("NT_S390_TODCMP", n),
        ("NT_S390_TODPREG", n),
        ("NT_S390_CTRS", n),
        ("NT_S390_PREFIX", n),
        ("NT_S390_VXRS_LOW", n),
        ("NT_S390_VXRS_HIGH", n),
        ("NT_S390_GS_CB", n),
    ] {
        assert_eq!(text.matches(&format!("{what} ")).count(), n, "{what} in\n{text}");
    }
    assert!(!text.contains("NT_S390_PV_CPU_DATA") && !text.contains("0x0000030e"));
}

#[test]
fn gdb_shows_one_thread_per_cpu_and_cpu0_registers() {
    if !have("gdb-multiarch") {
        return skip("gdb-multiarch is not installed");
    }
    let tmp = TempDir::new("gdb");
    let (dir, out) = decrypt_a_fixture(&tmp);
    let o = Command::new("gdb-multiarch")
        .args(["-nx", "-batch", "-ex", "set architecture s390:64-bit", "-ex"])
        .arg(format!("core-file {}", out.display()))
        .args(["-ex", "info registers", "-ex", "info threads"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let cpus = expected_cpus(&dir);
    let r = &cpus[0].regs;
    let reg = |name: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("gdb printed no {name}:\n{text}"));
        let v = line.split_whitespace().nth(1).unwrap();
        u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
    };
    assert_eq!(reg("pswa"), r.psw[1], "{text}");
    assert_eq!(reg("pswm"), r.psw[0]);
    for i in 0..16 {
        assert_eq!(reg(&format!("r{i}")), r.gprs[i], "r{i}");
        assert_eq!(reg(&format!("acr{i}")), u64::from(r.acrs[i]), "acr{i}");
    }
    assert_eq!(reg("fpc"), u64::from(r.fpc));
    let threads = text.lines().filter(|l| l.contains("LWP ")).count();
    assert!(threads >= cpus.len(), "one thread per CPU expected:\n{text}");
    for i in 1..=cpus.len() {
        assert!(text.contains(&format!("LWP {i}")), "thread for CPU {}:\n{text}", i - 1);
    }
}
