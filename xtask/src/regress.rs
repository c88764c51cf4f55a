//! Decrypt every fixture and reference dump through the library (the same path as the CLI),
//! verify memory (SHA-256) and registers, and print a table.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use pvdump_core::{Cck, Dump, Format, Output, WriteOptions};
use pvdump_format::{ElfCore, cpus_from_notes};
use pvdump_vmcore::{Destination, Policy};
use sha2::{Digest, Sha256};

fn dirs(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.join("pvdump.elf").is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

struct Row {
    name: String,
    pages: u64,
    cpus: usize,
    result: String,
    mbps: f64,
}

fn check(dir: &Path, out_dir: &Path) -> anyhow::Result<Row> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json"))?)?;
    let cck = Cck::from_key_file(&std::fs::read(dir.join("cck.bin"))?)?;
    let dump = Dump::open(&dir.join("pvdump.elf"), Some(&cck))?;
    let out_path = out_dir.join(format!("{name}.vmcore"));
    let _ = std::fs::remove_file(&out_path);
    let t = Instant::now();
    let Destination::File(out) = Destination::open(&out_path, Policy::new(true), &[])? else {
        bail!("{}: not a regular file", out_path.display());
    };
    let stats = dump.write(Format::Elf, &mut Output::File(out.file()), &WriteOptions::default())?;
    out.commit()?;
    let secs = t.elapsed().as_secs_f64();

    let bytes = std::fs::read(&out_path)?;
    std::fs::remove_file(&out_path)?;
    let core = ElfCore::parse(&bytes)?;
    let mut h = Sha256::new();
    let mut at = 0u64;
    for l in core.loads() {
        while at < l.paddr {
            h.update([0u8; 4096]);
            at += 4096;
        }
        h.update(&bytes[l.file_offset as usize..(l.file_offset + l.filesz) as usize]);
        at = l.end();
    }
    let got = hex::encode(h.finalize());
    let want = manifest["memory"]["sha256"]
        .as_str()
        .context("manifest has no memory.sha256")?;
    if got != want {
        bail!("memory SHA-256 {got} != expected {want}");
    }
    let expected: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("expected_cpus.json"))?)?;
    let cpus = cpus_from_notes(core.notes())?;
    let exp = expected["cpus"].as_array().context("expected_cpus.json has no cpus")?;
    if cpus.len() != exp.len() {
        bail!("{} CPUs in the output, {} expected", cpus.len(), exp.len());
    }
    for (i, (c, e)) in cpus.iter().zip(exp).enumerate() {
        let pswa = u64::from_str_radix(e["psw"][1].as_str().unwrap_or("").trim_start_matches("0x"), 16)?;
        let r15 = u64::from_str_radix(e["gprs"][15].as_str().unwrap_or("").trim_start_matches("0x"), 16)?;
        if c.regs.psw[1] != pswa || c.regs.gprs[15] != r15 {
            bail!("CPU {i}: PSW address or r15 differs from expected_cpus.json");
        }
    }
    Ok(Row {
        name,
        pages: stats.memory / 4096,
        cpus: cpus.len(),
        result: "ok".into(),
        mbps: stats.memory as f64 / secs / 1e6,
    })
}

pub fn run(ws: &Path) -> anyhow::Result<()> {
    let out_dir = std::env::temp_dir();
    let mut all = dirs(&ws.join("fixtures"));
    let reference = ws.join("../shared/fixtures/reference");
    let refs = dirs(&reference);
    if refs.is_empty() {
        eprintln!(
            "!!! reference fixtures not found at {} — only the project fixtures are checked",
            reference.display()
        );
    }
    all.extend(refs);
    println!(
        "{:<28} {:>8} {:>5}  {:<8} {:>9}",
        "dump", "pages", "CPUs", "result", "MB/s"
    );
    let mut failed = 0;
    for dir in &all {
        match check(dir, &out_dir) {
            Ok(r) => println!(
                "{:<28} {:>8} {:>5}  {:<8} {:>9.0}",
                r.name, r.pages, r.cpus, r.result, r.mbps
            ),
            Err(e) => {
                failed += 1;
                println!(
                    "{:<28} {:>8} {:>5}  FAILED: {e:#}",
                    dir.file_name().unwrap_or_default().to_string_lossy(),
                    "-",
                    "-"
                );
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} dumps failed", all.len());
    }
    println!("{} dumps decrypted and verified", all.len());
    Ok(())
}
