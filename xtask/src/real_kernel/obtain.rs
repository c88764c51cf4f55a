//! The files under test: the real guest dump (booted once, then cached), sealed by the
//! simulated Ultravisor and decrypted by the release pvdump.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use pvdump_synth::SealOptions;

use super::{Case, Env, output};

/// The dump the tool writes (256 MiB, 2 CPUs: its defaults).
const DUMP_NAME: &str = "real-256m-2cpu";

pub(super) fn obtain_dump(env: &Env, suite: &str) -> anyhow::Result<(Case, String)> {
    let dir = env.cache.join(suite);
    let dump_dir = dir.join("dump");
    let plain = dump_dir.join(format!("{DUMP_NAME}.elf"));
    let vmcoreinfo_file = dump_dir.join(format!("{DUMP_NAME}.vmcoreinfo"));
    let suite_file = dump_dir.join("kernel/.suite");
    let have = |p: &Path| p.is_file() && std::fs::metadata(p).is_ok_and(|m| m.len() > 0);
    let cached = [&plain, &vmcoreinfo_file, &dump_dir.join("marker.txt"), &suite_file]
        .iter()
        .all(|p| have(p))
        && std::fs::read_to_string(&suite_file).is_ok_and(|s| s.lines().next() == Some(suite));
    if !cached {
        std::fs::create_dir_all(&dump_dir)?;
        // The tool's "already there" test looks only at the dumps: make it boot again.
        let _ = std::fs::remove_file(&plain);
        let log = std::fs::File::create(dir.join("real_s390x_dump.log"))?;
        let status = Command::new(env.ws.join("../shared/tools/real_s390x_dump.sh"))
            .arg(&dump_dir)
            .env("KSUITE", suite)
            .env("FORMATS", "elf")
            .env("MEM", "256")
            .env("SMP", "2")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()?;
        ensure!(
            status.success(),
            "real_s390x_dump.sh failed ({status}); see {}",
            dir.join("real_s390x_dump.log").display()
        );
        ensure!(
            have(&plain) && have(&vmcoreinfo_file),
            "real_s390x_dump.sh left no dump"
        );
    }
    let marker = std::fs::read_to_string(dump_dir.join("marker.txt"))?.trim().to_owned();
    let from = std::fs::read_to_string(dump_dir.join("kernel/.from")).context("kernel/.from of the tool")?;
    // linux-image-6.12.107+deb13-s390x_6.12.107-1_s390x.deb
    let mut parts = from.trim().trim_end_matches(".deb").split('_');
    let (Some(pkg), Some(version)) = (parts.next(), parts.next()) else {
        bail!("unexpected kernel/.from {from:?}");
    };
    let kver = pkg
        .strip_prefix("linux-image-")
        .context("kernel package name")?
        .to_owned();
    let kdeb_version = version.replace("%3a", ":");
    let note = format!("{kver} ({kdeb_version}), {}", if cached { "cached" } else { "booted" });
    Ok((
        Case {
            suite: suite.to_owned(),
            dir,
            dump_dir,
            plain,
            vmcoreinfo_file,
            marker,
            kver,
            kdeb_version,
        },
        note,
    ))
}

pub(super) fn seal(case: &Case) -> anyhow::Result<((), String)> {
    std::fs::create_dir_all(case.dir.join("work"))?;
    let s = crate::synth::seal_file(
        &case.plain,
        &case.work("pv.elf"),
        &case.work("key.bin"),
        &SealOptions::default(),
    )?;
    Ok((
        (),
        format!(
            "{} CPUs; {} encrypted, {} zero, {} shared pages",
            s.cpus, s.encrypted, s.zero, s.shared
        ),
    ))
}

pub(super) fn decrypt(env: &Env, case: &Case) -> anyhow::Result<((), String)> {
    let mut notes = String::new();
    for (out, format) in [("out.elf", "elf"), ("out.kdump", "kdump")] {
        let t = Instant::now();
        let _ = std::fs::remove_file(case.work(out));
        output(
            Command::new(&env.pvdump)
                .args(["decrypt", "--quiet", "--key"])
                .arg(case.work("key.bin"))
                .arg(case.work("pv.elf"))
                .args(["--format", format, "-o"])
                .arg(case.work(out)),
        )?;
        write!(notes, "{format} {:.1} s; ", t.elapsed().as_secs_f64())?;
    }
    Ok(((), notes.trim_end_matches("; ").to_owned()))
}
