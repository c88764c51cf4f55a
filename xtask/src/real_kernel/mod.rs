//! `cargo xtask real-kernel`: real s390x Linux kernels, sealed, decrypted and read back by
//! the tools a kernel engineer uses (issue 11).
//!
//! Per Debian suite (bookworm: Linux 6.1, identity-mapped kernel image; trixie: Linux 6.12,
//! the image in its own virtual area since 6.10):
//!
//! 1. a plain QEMU dump of a real guest from `../shared/tools/real_s390x_dump.sh` (boots
//!    Debian's kernel under qemu-system-s390x TCG; always with `KSUITE`, so the tool never
//!    changes dpkg's architectures), cached under `CACHE/<suite>/dump/`;
//! 2. the kernel's debug vmlinux (`linux-image-<kver>-dbg`, through the tool's private s390x
//!    apt configuration), its build-id checked against VMCOREINFO `BUILD-ID`, the .deb
//!    deleted after extraction; drgn 0.3.0 from PyPI pinned by hash (`pip --target`);
//! 3. the dump sealed by the simulated Ultravisor (`pvdump_synth::seal_plain`, what `cargo
//!    xtask synth --content-from` does), decrypted by the release `pvdump` to ELF and to
//!    kdump (zlib);
//! 4. checks: memory (SHA-256) and registers exact against the original; the VMCOREINFO note
//!    of the ELF output and `offset_vmcoreinfo` of the kdump output equal the guest's text;
//!    the kdump header's utsname equals the guest's `init_uts_ns` (all six fields, also
//!    read independently by guest_uts.py); libkdumpfile (Debian's python3-libkdumpfile)
//!    reads every page of the kdump output; drgn finds the guest's marker in dmesg, and
//!    lists the same tasks with identical stack traces on the original, the ELF and the kdump
//!    output; a negative self-test (a flipped memory byte, a changed PSW, a dropped VMCOREINFO
//!    note in a copy of the ELF output) must make those checks fail;
//! 5. with `--crash` (too slow for CI: 6-10 minutes on two cores): crash 8.0.6 for s390x under
//!    qemu-user runs `log`, `ps`, `bt -a` on the ELF and the kdump output, which must agree;
//!    with `--zgetdump` (about 3 minutes, most of it building the sysroot once): zgetdump
//!    2.35, the reference decryptor, under qemu-user decrypts the sealed dump to notes and
//!    memory byte-identical to pvdump's ELF output, and `zgetdump -i` shows the guest's
//!    utsname for the PV dump and both outputs.
//!
//! A summary table is printed; any failed check makes the exit status non-zero. The cache
//! root is `--cache DIR`, else `$PVDUMP_REAL_KERNEL_CACHE`, else `target/real-kernel/`.

mod checks;
mod crash_zgetdump;
mod negative;
mod obtain;
mod options;
mod readers;
mod report;
mod vmlinux;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail, ensure};

use checks::{Facts, check_holes, check_memory, check_registers, check_utsname, check_vmcoreinfo};
use crash_zgetdump::{check_crash, check_zgetdump};
use negative::negative_self_test;
use obtain::{decrypt, obtain_dump, seal};
use readers::{check_drgn, check_libkdumpfile, install_drgn};
use report::Report;
use vmlinux::obtain_vmlinux;

pub use options::{Options, parse};

/// The interpreter with Debian's python3-libkdumpfile (and pip).
const DEFAULT_PYTHON: &str = "/usr/bin/python3";

/// Everything one suite's checks need.
struct Case {
    suite: String,
    dir: PathBuf,
    dump_dir: PathBuf,
    plain: PathBuf,
    vmcoreinfo_file: PathBuf,
    marker: String,
    kver: String,
    kdeb_version: String,
}

impl Case {
    fn work(&self, name: &str) -> PathBuf {
        self.dir.join("work").join(name)
    }
}

/// Tools and paths shared by all suites.
struct Env {
    ws: PathBuf,
    cache: PathBuf,
    python: PathBuf,
    pvdump: PathBuf,
    scripts: PathBuf,
}

pub fn run(ws: &Path, o: &Options) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let cache = match (&o.cache, std::env::var_os("PVDUMP_REAL_KERNEL_CACHE")) {
        (Some(c), _) => c.clone(),
        (None, Some(c)) if !c.is_empty() => PathBuf::from(c),
        _ => ws.join("target/real-kernel"),
    };
    std::fs::create_dir_all(&cache).with_context(|| cache.display().to_string())?;
    let cache = cache.canonicalize()?;
    let python = std::env::var_os("PVDUMP_PYTHON").map_or_else(|| PathBuf::from(DEFAULT_PYTHON), PathBuf::from);
    preflight(ws, &python)?;
    eprintln!("[real-kernel] cache {}; building the release pvdump", cache.display());
    let status = Command::new("cargo")
        .args(["build", "--release", "-q", "-p", "pvdump"])
        .current_dir(ws)
        .status()?;
    ensure!(status.success(), "cargo build --release -p pvdump failed");
    let env = Env {
        ws: ws.to_path_buf(),
        cache,
        python,
        pvdump: ws.join("target/release/pvdump"),
        scripts: ws.join("xtask/real-kernel"),
    };
    let mut report = Report::default();
    let drgn = report.check("all", "drgn 0.3.0 (pip, pinned by hash)", || install_drgn(&env));
    for suite in &o.suites {
        run_suite(&env, suite, o, drgn.as_deref(), &mut report);
    }
    report.print();
    let failed = report.failed();
    println!(
        "\n{} checks, {failed} failed, {:.0} s in all (cache {})",
        report.rows.len(),
        t0.elapsed().as_secs_f64(),
        env.cache.display()
    );
    if failed > 0 {
        bail!("{failed} real-kernel checks failed");
    }
    Ok(())
}

/// Fails early, naming everything missing, instead of half-way through a suite.
fn preflight(ws: &Path, python: &Path) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    let tool = ws.join("../shared/tools/real_s390x_dump.sh");
    if !tool.is_file() {
        missing.push(format!("{} (the shared tools beside the clone)", tool.display()));
    }
    for t in ["apt-get", "dpkg-deb", "tar", "cargo"] {
        if !on_path(t) {
            missing.push(t.to_owned());
        }
    }
    let probe = |code: &str| {
        Command::new(python)
            .args(["-c", code])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !probe("import kdumpfile") {
        missing.push(format!(
            "{} with kdumpfile (apt-get install python3-libkdumpfile)",
            python.display()
        ));
    }
    if !probe("import pip") {
        missing.push(format!("{} -m pip (apt-get install python3-pip)", python.display()));
    }
    if !missing.is_empty() {
        bail!(
            "cargo xtask real-kernel needs:\n  {}{}",
            missing.join("\n  "),
            if std::env::var("CI").as_deref() == Ok("true") {
                "\n(CI=true: nothing is skipped)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// Runs `cmd`, failing with its output when it fails; returns stdout.
fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        bail!(
            "{cmd:?} failed ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run_suite(env: &Env, suite: &str, o: &Options, drgn: Option<&Path>, report: &mut Report) {
    let Some(case) = report.check(suite, "real guest dump (QEMU TCG)", || obtain_dump(env, suite)) else {
        return;
    };
    let vmlinux = report.check(suite, "debug vmlinux (build-id)", || obtain_vmlinux(&case));
    let sealed = report.check(suite, "seal (simulated Ultravisor)", || seal(&case));
    if sealed.is_none() {
        return;
    }
    let decrypted = report.check(suite, "pvdump decrypt -> ELF, kdump", || decrypt(env, &case));
    if decrypted.is_none() {
        return;
    }
    let original = report.check(suite, "original: memory, registers", || Facts::of_plain(&case));
    let Some(original) = original else { return };
    report.check(suite, "memory exact (PV, ELF, kdump)", || {
        check_memory(&case, &original)
    });
    report.check(suite, "ELF output: zero runs are holes", || {
        check_holes(&case, &original)
    });
    report.check(suite, "registers exact (PV, ELF, kdump)", || {
        check_registers(&case, &original)
    });
    report.check(suite, "VMCOREINFO (ELF note, kdump)", || check_vmcoreinfo(&case));
    report.check(suite, "utsname (kdump header, guest)", || check_utsname(env, &case));
    report.check(suite, "libkdumpfile reads every page", || {
        check_libkdumpfile(env, &case, &original)
    });
    let drgn_json = match (drgn, &vmlinux) {
        (Some(py), Some(vmlinux)) => report.check(suite, "drgn dmesg/tasks/stacks (3 dumps)", || {
            check_drgn(env, &case, py, vmlinux)
        }),
        _ => None,
    };
    let negative = report.check(suite, "negative self-test", || {
        negative_self_test(
            env,
            &case,
            &original,
            drgn.zip(vmlinux.as_deref()),
            drgn_json.as_deref(),
        )
    });
    let mut crash_ok = true;
    if o.crash {
        crash_ok = match &vmlinux {
            Some(v) => report.check(suite, "crash log/ps/bt (qemu-user)", || check_crash(env, &case, v)),
            None => None,
        }
        .is_some();
    }
    if o.zgetdump {
        let ok = report.check(suite, "zgetdump 2.35 -i, -k (qemu-user)", || check_zgetdump(env, &case));
        crash_ok &= ok.is_some();
    }
    let all_ok = report
        .rows
        .iter()
        .filter(|r| r.suite == suite)
        .all(|r| r.result.is_ok());
    if all_ok && crash_ok && negative.is_some() && !o.keep {
        // The sealed and decrypted files are made again on every run; the dump, vmlinux and
        // drgn stay cached.
        let _ = std::fs::remove_dir_all(case.dir.join("work"));
    }
}

/// VMCOREINFO of the original plain dump (the text the tool saved from guest memory).
fn vmcoreinfo_value(case: &Case, key: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(&case.vmcoreinfo_file)?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_owned))
        .with_context(|| format!("VMCOREINFO has no {key}"))
}
