//! The Python readers: libkdumpfile (Debian's python3-libkdumpfile) and drgn (from PyPI,
//! pinned by hash) on the outputs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::ensure;

use super::checks::{Facts, guest_uts, uts_from_json};
use super::{Case, Env, output};

/// drgn from PyPI, pinned: version and the SHA-256 of its CPython 3.11/3.12/3.13 x86_64 wheels.
const DRGN_REQUIREMENT: &str = "drgn==0.3.0 \
    --hash=sha256:69c8b8ce9d1b714f1bcd871101b88f41694d0bc1746485b18d4f1238c72a884d \
    --hash=sha256:1f1792f1bd9740fe2263fe99df316215b4b5df80b90a33857c27bfa756d480c0 \
    --hash=sha256:a2a29ca8fdb9cc58d7d771b8b3eb1b83c1e8fa3ee836d6bcc979eed2cfcb93a6\n";
/// Where drgn is installed under the cache root.
const DRGN_DIR: &str = "py-drgn-0.3.0";

pub(super) fn install_drgn(env: &Env) -> anyhow::Result<(PathBuf, String)> {
    let dir = env.cache.join(DRGN_DIR);
    if dir.join("drgn/__init__.py").is_file() {
        return Ok((dir, "cached".into()));
    }
    let tmp = env.cache.join(format!("{DRGN_DIR}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    let req = env.cache.join("drgn-requirements.txt");
    std::fs::write(&req, DRGN_REQUIREMENT)?;
    output(
        Command::new(&env.python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"])
            .args(["--only-binary", ":all:", "--require-hashes", "--target"])
            .arg(&tmp)
            .arg("-r")
            .arg(&req),
    )?;
    std::fs::rename(&tmp, &dir)?;
    Ok((dir, "installed".into()))
}

pub(super) fn check_libkdumpfile(env: &Env, case: &Case, original: &Facts) -> anyhow::Result<((), String)> {
    let out = output(
        Command::new(&env.python)
            .arg(env.scripts.join("check_kdumpfile.py"))
            .arg(case.work("out.kdump")),
    )?;
    let j: serde_json::Value = serde_json::from_str(out.trim())?;
    ensure!(j["arch"] == "s390x", "libkdumpfile arch {}", j["arch"]);
    ensure!(
        j["pages"] == original.pages && j["present"] == original.pages,
        "libkdumpfile: {} pages, {} present; the original has {}",
        j["pages"],
        j["present"],
        original.pages
    );
    ensure!(
        j["sha256"] == original.sha256.as_str(),
        "libkdumpfile memory {} != original {}",
        j["sha256"],
        original.sha256
    );
    let uts = uts_from_json(&j["uts"])?;
    let guest = guest_uts(env, case)?;
    ensure!(uts == guest, "libkdumpfile utsname {uts:?} != guest {guest:?}");
    Ok((
        (),
        format!("{} pages present, arch s390x, utsname = guest's", j["present"]),
    ))
}

pub(super) fn drgn_json(
    env: &Env,
    py: &Path,
    vmlinux: &Path,
    dump: &Path,
    vmcoreinfo: Option<&Path>,
    marker: &str,
) -> anyhow::Result<String> {
    let mut c = Command::new(&env.python);
    c.env("PYTHONPATH", py).env("DRGN_PREFER_PGTABLE_READER", "1");
    c.arg(env.scripts.join("check_drgn.py"));
    if let Some(v) = vmcoreinfo {
        c.arg("--vmcoreinfo").arg(v);
    }
    c.arg(vmlinux).arg(dump).arg(marker);
    Ok(output(&mut c)?.trim().to_owned())
}

pub(super) fn check_drgn(env: &Env, case: &Case, py: &Path, vmlinux: &Path) -> anyhow::Result<(String, String)> {
    let original = drgn_json(env, py, vmlinux, &case.plain, Some(&case.vmcoreinfo_file), &case.marker)?;
    let elf = drgn_json(env, py, vmlinux, &case.work("out.elf"), None, &case.marker)?;
    let kdump = drgn_json(env, py, vmlinux, &case.work("out.kdump"), None, &case.marker)?;
    let j: serde_json::Value = serde_json::from_str(&original)?;
    ensure!(
        j["dmesg_has_marker"] == true,
        "drgn: the marker is not in the original's dmesg"
    );
    let tasks = j["tasks"].as_array().map_or(0, Vec::len);
    let burners = j["tasks"]
        .as_array()
        .map_or(0, |t| t.iter().filter(|t| t[1] == "pvdump-burner").count());
    ensure!(
        burners == 2,
        "drgn: {burners} pvdump-burner tasks in the original, expected 2"
    );
    ensure!(
        elf == original,
        "drgn: the ELF output differs from the original:\n{elf}\n{original}"
    );
    ensure!(
        kdump == original,
        "drgn: the kdump output differs from the original:\n{kdump}\n{original}"
    );
    Ok((
        original,
        format!("marker found, {tasks} tasks, every stack identical on all three"),
    ))
}
