//! The checks against the original plain dump: memory, registers, VMCOREINFO and utsname
//! of the PV dump and of both outputs.

use std::process::Command;

use anyhow::{Context, ensure};
use pvdump_core::{Cck, CpuRegisters, Dump, Utsname, VmcoreinfoSource};
use sha2::{Digest, Sha256};

use super::{Case, Env, output, vmcoreinfo_value};

/// What the original dump says: the reference for every comparison.
pub(super) struct Facts {
    pub(super) sha256: String,
    pub(super) pages: u64,
    /// All-zero pages of memory (in blocks; the gaps between blocks are not counted).
    pub(super) zero_pages: u64,
    pub(super) cpus: Vec<(Option<u32>, CpuRegisters)>,
}

impl Facts {
    pub(super) fn of_plain(case: &Case) -> anyhow::Result<(Facts, String)> {
        let dump = Dump::open(&case.plain, None)?;
        let (sha256, pages, zero_pages) = memory_sha(&dump)?;
        let cpus = registers(&dump)?;
        ensure!(!cpus.is_empty(), "the original dump has no CPU notes");
        let note = format!(
            "{pages} pages ({zero_pages} zero), {} CPUs, memory {}",
            cpus.len(),
            &sha256[..16]
        );
        Ok((
            Facts {
                sha256,
                pages,
                zero_pages,
                cpus,
            },
            note,
        ))
    }
}

/// SHA-256 of guest memory from address 0 to the end of the highest block, holes as zeros,
/// the number of pages hashed and how many of the pages in blocks are all zero.
fn memory_sha(dump: &Dump) -> anyhow::Result<(String, u64, u64)> {
    const CHUNK: u64 = 256 * 4096;
    let src = dump.source()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK as usize];
    let mut zero = vec![false; 256];
    let mut at = 0u64;
    let zeros = vec![0u8; CHUNK as usize];
    let mut zero_pages = 0;
    for b in src.blocks() {
        while at < b.paddr {
            let n = (b.paddr - at).min(CHUNK);
            h.update(&zeros[..n as usize]);
            at += n;
        }
        while at < b.end() {
            let n = (b.end() - at).min(CHUNK);
            let pages = (n / 4096) as usize;
            src.read_pages(at, &mut buf[..n as usize], &mut zero[..pages])?;
            h.update(&buf[..n as usize]);
            zero_pages += buf[..n as usize]
                .chunks_exact(4096)
                .filter(|p| pvdump_vmcore::is_zero(p))
                .count() as u64;
            at += n;
        }
    }
    Ok((hex::encode(h.finalize()), at / 4096, zero_pages))
}

fn registers(dump: &Dump) -> anyhow::Result<Vec<(Option<u32>, CpuRegisters)>> {
    Ok(dump.cpus()?.into_iter().map(|c| (c.pid, c.regs)).collect())
}

fn key(case: &Case) -> anyhow::Result<Cck> {
    Ok(Cck::from_key_file(&std::fs::read(case.work("key.bin"))?)?)
}

fn outputs(case: &Case) -> anyhow::Result<[(&'static str, Dump); 3]> {
    Ok([
        ("PV", Dump::open(&case.work("pv.elf"), Some(&key(case)?))?),
        ("ELF", Dump::open(&case.work("out.elf"), None)?),
        ("kdump", Dump::open(&case.work("out.kdump"), None)?),
    ])
}

pub(super) fn check_memory(case: &Case, original: &Facts) -> anyhow::Result<((), String)> {
    check_memory_of(&outputs(case)?, original)?;
    Ok((
        (),
        format!("{} pages, SHA-256 {}", original.pages, &original.sha256[..16]),
    ))
}

pub(super) fn check_memory_of(dumps: &[(&str, Dump)], original: &Facts) -> anyhow::Result<()> {
    for (name, d) in dumps {
        let (sha, pages, _) = memory_sha(d)?;
        ensure!(
            sha == original.sha256 && pages == original.pages,
            "{name}: memory {sha} ({pages} pages), original {} ({} pages)",
            original.sha256,
            original.pages
        );
    }
    Ok(())
}

/// The ELF output on disk leaves most zero pages out: free memory is zero in long runs, and
/// every run of 16 or more zero pages is a hole (docs/decisions/holes.md).
pub(super) fn check_holes(case: &Case, original: &Facts) -> anyhow::Result<((), String)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(case.work("out.elf"))?;
    let holes = meta.len().saturating_sub(meta.blocks() * 512);
    let zero = original.zero_pages * 4096;
    ensure!(
        holes * 10 >= zero * 9,
        "out.elf: {holes} bytes of holes for {zero} bytes of zero pages (less than 90%)"
    );
    Ok((
        (),
        format!(
            "{:.1} of {:.1} MiB of zero pages are holes ({:.1}%)",
            holes as f64 / 1048576.0,
            zero as f64 / 1048576.0,
            100.0 * holes as f64 / zero.max(1) as f64
        ),
    ))
}

pub(super) fn check_registers(case: &Case, original: &Facts) -> anyhow::Result<((), String)> {
    check_registers_of(&outputs(case)?, original)?;
    let psws: Vec<String> = original.cpus.iter().map(|(_, r)| format!("{:#x}", r.psw[1])).collect();
    Ok((
        (),
        format!("{} CPUs, PSW addresses {}", original.cpus.len(), psws.join(" ")),
    ))
}

pub(super) fn check_registers_of(dumps: &[(&str, Dump)], original: &Facts) -> anyhow::Result<()> {
    for (name, d) in dumps {
        let got = registers(d)?;
        ensure!(
            got.len() == original.cpus.len(),
            "{name}: {} CPUs, original {}",
            got.len(),
            original.cpus.len()
        );
        for (i, (g, o)) in got.iter().zip(&original.cpus).enumerate() {
            ensure!(g.0 == o.0, "{name}: CPU {i} has pid {:?}, original {:?}", g.0, o.0);
            ensure!(
                g.1 == o.1,
                "{name}: CPU {i} registers differ from the original's:\n{:?}\n{:?}",
                g.1,
                o.1
            );
        }
    }
    Ok(())
}

pub(super) fn check_vmcoreinfo(case: &Case) -> anyhow::Result<((), String)> {
    let want = std::fs::read(&case.vmcoreinfo_file)?;
    let plain = Dump::open(&case.plain, None)?;
    let v = plain
        .vmcoreinfo()
        .context("the original dump: no VMCOREINFO in guest memory")?;
    ensure!(
        matches!(v.source, VmcoreinfoSource::LowcoreNote { .. }),
        "the original dump: VMCOREINFO found through {:?}, expected lowcore 0xE0C",
        v.source
    );
    ensure!(
        v.text == want,
        "the original dump: VMCOREINFO in guest memory differs from the tool's copy"
    );
    check_vmcoreinfo_of(&outputs(case)?, &want)?;
    Ok((
        (),
        format!(
            "{} bytes, OSRELEASE {}",
            want.len(),
            vmcoreinfo_value(case, "OSRELEASE")?
        ),
    ))
}

pub(super) fn check_vmcoreinfo_of(dumps: &[(&str, Dump)], want: &[u8]) -> anyhow::Result<()> {
    for (name, d) in dumps {
        let v = d.vmcoreinfo().with_context(|| format!("{name}: no VMCOREINFO"))?;
        ensure!(v.text == want, "{name}: VMCOREINFO text differs from the guest's");
        match (*name, d.kdump()) {
            ("PV", _) => {}
            (_, Some(k)) => {
                // offset_vmcoreinfo/size_vmcoreinfo, and the note in the note blob.
                let text = k.vmcoreinfo()?.context("kdump: offset_vmcoreinfo is 0")?;
                ensure!(*text == *want, "kdump: the text at offset_vmcoreinfo differs");
                let notes = d.notes()?;
                let (off, len) = notes.vmcoreinfo.context("kdump: no VMCOREINFO note in the note blob")?;
                ensure!(notes.bytes[off..off + len] == *want, "kdump: VMCOREINFO note differs");
            }
            _ => ensure!(
                matches!(v.source, VmcoreinfoSource::ElfNote { .. }),
                "{name}: no VMCOREINFO note (VMCOREINFO only in guest memory, {:?})",
                v.source
            ),
        }
    }
    Ok(())
}

/// What the guest's `uname -a` says, from guest_uts.py (an independent reader of the
/// plain dump: VMCOREINFO, the kernel's __pa rule, cross-checked by a CR13 page-table walk).
pub(super) fn guest_uts(env: &Env, case: &Case) -> anyhow::Result<Utsname> {
    let out = output(
        Command::new(&env.python)
            .arg(env.scripts.join("guest_uts.py"))
            .arg(&case.plain),
    )?;
    let j: serde_json::Value = serde_json::from_str(out.trim())?;
    ensure!(
        j["pa"] == j["pa_by_cr13"],
        "guest_uts.py: the __pa rule ({}) and the CR13 walk ({}) disagree",
        j["pa"],
        j["pa_by_cr13"]
    );
    uts_from_json(&j["uts"])
}

pub(super) fn uts_from_json(j: &serde_json::Value) -> anyhow::Result<Utsname> {
    let f = |k: &str| {
        j[k].as_str()
            .map(str::to_owned)
            .with_context(|| format!("utsname JSON has no {k}: {j}"))
    };
    Ok(Utsname {
        sysname: f("sysname")?,
        nodename: f("nodename")?,
        release: f("release")?,
        version: f("version")?,
        machine: f("machine")?,
        domainname: f("domainname")?,
    })
}

pub(super) fn check_utsname(env: &Env, case: &Case) -> anyhow::Result<((), String)> {
    let guest = guest_uts(env, case)?;
    // The real values: what Debian's kernel of this dump reports in a guest without a
    // host name (the tool's initramfs sets none).
    let release = vmcoreinfo_value(case, "OSRELEASE")?;
    ensure!(guest.sysname == "Linux" && guest.machine == "s390x", "guest: {guest:?}");
    ensure!(
        guest.release == release,
        "guest release {} != OSRELEASE {release}",
        guest.release
    );
    ensure!(
        guest.nodename == "(none)" && guest.domainname == "(none)",
        "guest: {guest:?}"
    );
    let version = format!("#1 SMP Debian {} (", case.kdeb_version);
    ensure!(
        guest.version.starts_with(&version),
        "guest version {:?} does not start with {version:?}",
        guest.version
    );
    let plain = Dump::open(&case.plain, None)?;
    ensure!(
        plain.utsname().as_ref() == Some(&guest),
        "Dump::utsname of the original: {:?}",
        plain.utsname()
    );
    for (name, d) in outputs(case)? {
        ensure!(
            d.utsname().as_ref() == Some(&guest),
            "{name}: Dump::utsname {:?}",
            d.utsname()
        );
        if let Some(k) = d.kdump() {
            ensure!(
                k.utsname() == guest,
                "kdump header utsname {:?} != guest {guest:?}",
                k.utsname()
            );
        }
    }
    Ok(((), format!("{} {} {}", guest.nodename, guest.release, guest.version)))
}
