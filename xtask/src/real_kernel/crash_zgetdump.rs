//! crash and zgetdump (the reference decryptor), s390x binaries run under qemu-user.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, anyhow, ensure};
use sha2::{Digest, Sha256};

use super::checks::guest_uts;
use super::{Case, Env, output};

/// crash 8.0.6 for s390x (trixie's; its runtime libraries from forky, the only set this
/// mirror serves completely) under qemu-user: `log`, `ps`, `bt -a`, `sys` on the ELF and the
/// kdump output must print the same (minus the DUMPFILE line), with the guest's marker in
/// the log, both burner tasks in ps and every backtrace resolved.
pub(super) fn check_crash(env: &Env, case: &Case, vmlinux: &Path) -> anyhow::Result<((), String)> {
    let (root, prefix) = s390x_sysroot(env, "crash-sysroot", "crash/trixie")?;
    let (qemu, qargs) = prefix.split_first().context("empty qemu-user prefix")?;
    let cmds = case.work("crash.cmds");
    std::fs::write(&cmds, "log\nps\nbt -a\nsys\nquit\n")?;
    let crash_bin = root.join("sysroot/usr/bin/crash");
    let run = |dump: PathBuf| {
        let mut c = Command::new(qemu);
        c.args(qargs)
            .arg(&crash_bin)
            .arg("-s")
            .arg(vmlinux)
            .arg(&dump)
            .arg("-i")
            .arg(&cmds);
        output(&mut c)
    };
    let (elf, kdump) = std::thread::scope(|s| {
        let a = s.spawn(|| run(case.work("out.elf")));
        let b = s.spawn(|| run(case.work("out.kdump")));
        (a.join(), b.join())
    });
    let elf = elf.map_err(|_| anyhow!("crash thread panicked"))??;
    let kdump = kdump.map_err(|_| anyhow!("crash thread panicked"))??;
    let strip = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.trim_start().starts_with("DUMPFILE:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    std::fs::write(case.work("crash-elf.txt"), &elf)?;
    std::fs::write(case.work("crash-kdump.txt"), &kdump)?;
    ensure!(
        elf.contains(&case.marker),
        "crash log of the ELF output lacks the marker"
    );
    ensure!(
        elf.matches("pvdump-burner").count() >= 2,
        "crash ps of the ELF output lacks the burner tasks"
    );
    for bad in [
        "invalid kernel virtual address",
        "cannot be determined",
        "not found in PID hash",
    ] {
        ensure!(!elf.contains(bad), "crash on the ELF output: {bad}");
    }
    ensure!(
        strip(&elf) == strip(&kdump),
        "crash prints differently for the ELF and the kdump output (see {})",
        case.work("crash-*.txt").display()
    );
    Ok(((), format!("{} lines, identical on ELF and kdump", elf.lines().count())))
}

/// s390-tools 2.35 for s390x (trixie's, runtime libraries from forky) under qemu-user:
/// `zgetdump -k` must decrypt the sealed dump to the notes and memory of pvdump's ELF output,
/// and `zgetdump -i` must show the guest's utsname for the PV dump, the ELF and the kdump
/// output (the node name and version pvdump's library reports too).
pub(super) fn check_zgetdump(env: &Env, case: &Case) -> anyhow::Result<((), String)> {
    let (root, prefix) = s390x_sysroot(env, "s390-tools-sysroot", "s390-tools/trixie")?;
    let (qemu, qargs) = prefix.split_first().context("empty qemu-user prefix")?;
    let zgetdump = || {
        let mut c = Command::new(qemu);
        c.args(qargs).arg(root.join("sysroot/usr/sbin/zgetdump"));
        c
    };
    let guest = guest_uts(env, case)?;
    let (key, pv, elf, kdump) = (
        case.work("key.bin"),
        case.work("pv.elf"),
        case.work("out.elf"),
        case.work("out.kdump"),
    );
    for (name, dump) in [("PV", &pv), ("ELF", &elf), ("kdump", &kdump)] {
        let mut c = zgetdump();
        c.arg("-i");
        if name == "PV" {
            c.arg("-k").arg(&key);
        }
        // zgetdump prints its report on stderr.
        let out = c.arg(dump).stdin(Stdio::null()).output()?;
        ensure!(
            out.status.success(),
            "zgetdump -i of the {name} dump failed ({})",
            out.status
        );
        let info = String::from_utf8_lossy(&out.stderr).into_owned();
        for (label, want) in [
            ("UTS node name", &guest.nodename),
            ("UTS kernel release", &guest.release),
            ("UTS kernel version", &guest.version),
        ] {
            let got = info
                .lines()
                .find_map(|l| l.trim().strip_prefix(label))
                .map(|v| v.trim_start_matches('.').trim_start_matches(':').trim())
                .with_context(|| format!("zgetdump -i of the {name} dump shows no {label}:\n{info}"))?;
            ensure!(
                got == want,
                "zgetdump -i of the {name} dump: {label} {got:?}, guest {want:?}"
            );
        }
    }
    let zout = case.work("zgetdump.elf");
    let t = Instant::now();
    let status = zgetdump()
        .arg("-k")
        .arg(&key)
        .arg(&pv)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&zout)?)
        .stderr(Stdio::null())
        .status()?;
    ensure!(status.success(), "zgetdump -k failed ({status})");
    let secs = t.elapsed().as_secs_f64();
    let (a, b) = (elf_notes_and_memory(&zout)?, elf_notes_and_memory(&elf)?);
    ensure!(a.0 == b.0, "zgetdump's notes differ from pvdump's");
    ensure!(a.1 == b.1, "zgetdump's memory {} differs from pvdump's {}", a.1, b.1);
    std::fs::remove_file(&zout)?;
    Ok((
        (),
        format!("-i shows the guest's utsname (PV, ELF, kdump); -k ({secs:.0} s): notes and memory = pvdump's"),
    ))
}

/// The PT_NOTE bytes and the SHA-256 of the memory (PT_LOADs in order, zero tails included)
/// of an ELF vmcore.
fn elf_notes_and_memory(path: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    let input = pvdump_core::Input::map(path)?;
    let core = pvdump_format::ElfCore::parse(input.bytes())?;
    let data = input.bytes();
    let mut notes = Vec::new();
    for seg in core.note_segments() {
        let at = seg.file_offset as usize;
        notes.extend_from_slice(data.get(at..at + seg.size as usize).context("notes")?);
    }
    let mut h = Sha256::new();
    let zeros = [0u8; 4096];
    for l in core.loads() {
        let at = l.file_offset as usize;
        h.update(data.get(at..at + l.filesz as usize).context("memory")?);
        let mut tail = l.memsz - l.filesz;
        while tail > 0 {
            let n = tail.min(4096);
            h.update(&zeros[..n as usize]);
            tail -= n;
        }
    }
    Ok((notes, hex::encode(h.finalize())))
}

/// Unpacks `package` (trixie's, with forky's C library: the only set this mirror serves
/// completely) into the private sysroot `env.cache/dir_name` with
/// `../shared/tools/s390x_sysroot.sh` (cached by the tool) and returns the sysroot and the
/// qemu-user command prefix the tool prints last.
fn s390x_sysroot(env: &Env, dir_name: &str, package: &str) -> anyhow::Result<(std::path::PathBuf, Vec<String>)> {
    let root = env.cache.join(dir_name);
    let printed = output(
        Command::new(env.ws.join("../shared/tools/s390x_sysroot.sh"))
            .env("S390X_SUITES", "trixie forky")
            .env("S390X_SECURITY", "")
            .arg(&root)
            .args([package, "libc6/forky"]),
    )?;
    let prefix = printed
        .lines()
        .last()
        .context("s390x_sysroot.sh printed no prefix")?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Ok((root, prefix))
}
