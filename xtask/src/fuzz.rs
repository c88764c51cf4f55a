//! `cargo xtask fuzz --seconds N`: writes the seed corpora and runs every cargo-fuzz target
//! for N seconds, one after the other, on one core.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

#[path = "../../fuzz/src/common.rs"]
mod common;

/// The cargo-fuzz targets, in the order they run.
pub const TARGETS: &[&str] = &["parse", "decrypt", "lzo"];
/// Largest input libFuzzer builds (the seeds are shorter; longer reference dumps are cut).
const MAX_LEN: usize = 1 << 20;
/// Largest input of the `lzo` target: pages and blocks up to 128 KiB reach every path of the
/// compressor (inputs over 64 KiB use its 32-bit table).
const LZO_MAX_LEN: usize = 1 << 17;

/// Seeds of the `lzo` target (plaintext, and our LZO1X stream of each): pages of a
/// synthetic dump (ELF headers and notes, encrypted memory), zeros with a few words, text,
/// a repeating pattern longer than 64 KiB.
fn lzo_seeds(dump: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut plain: Vec<(String, Vec<u8>)> = vec![
        ("dump-head".into(), dump[..dump.len().min(4096)].to_vec()),
        (
            "dump-mid".into(),
            dump[dump.len() / 2..(dump.len() / 2 + 4096).min(dump.len())].to_vec(),
        ),
        ("dump-20k".into(), dump[..dump.len().min(20 << 10)].to_vec()),
    ];
    let mut sparse = vec![0u8; 4096];
    for (i, w) in [0x0000_0000_0123_4000u64, 0x3ff_8000_1000, 7, 0xffff_ffff]
        .iter()
        .enumerate()
    {
        sparse[i * 520..i * 520 + 8].copy_from_slice(&w.to_be_bytes());
    }
    plain.push(("sparse".into(), sparse));
    let text: Vec<u8> = b"Linux version 6.1.0-50-s390x (debian-kernel@lists.debian.org)\n"
        .iter()
        .copied()
        .cycle()
        .take(4096)
        .collect();
    plain.push(("text".into(), text));
    plain.push((
        "pattern-70k".into(),
        (0..70_000u32).map(|i| (i % 251) as u8 ^ (i / 4096) as u8).collect(),
    ));
    let mut c = pvdump_lzo::Compressor::new();
    let mut seeds = Vec::new();
    for (name, data) in plain {
        let mut z = vec![0u8; pvdump_lzo::worst_case_len(data.len())];
        if let Ok(n) = c.compress(&data, &mut z) {
            seeds.push((format!("lzo-{name}.lzo"), z[..n].to_vec()));
        }
        seeds.push((format!("lzo-{name}"), data));
    }
    seeds
}

/// Parses `[--seconds N]` (default 60).
pub fn parse_seconds(args: &[String]) -> anyhow::Result<u64> {
    match args {
        [] => Ok(60),
        [flag, n] if flag == "--seconds" => n.parse().with_context(|| format!("--seconds {n}: not a number")),
        _ => bail!("usage: cargo xtask fuzz [--seconds N]"),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Writes the seed inputs of `target` into `fuzz/corpus/<target>` (not committed).
pub fn write_seeds(target: &str) -> anyhow::Result<PathBuf> {
    let dir = root().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let specs = common::seed_specs();
    if target == "lzo" {
        // Bytes to compress and streams to decompress, cut from the first seed dump.
        let dump = specs.first().map(|(_, spec)| spec.dump_bytes()).unwrap_or_default();
        for (name, data) in lzo_seeds(&dump) {
            std::fs::write(dir.join(&name), data).with_context(|| format!("writing seed {name}"))?;
        }
    } else {
        for (name, spec) in specs {
            std::fs::write(dir.join(name), spec.dump_bytes()).with_context(|| format!("writing seed {name}"))?;
        }
    }
    // The reference dumps (other keys) seed the parser; they stay outside the repository.
    let reference = root().join("../shared/fixtures/reference");
    let reference = std::env::var_os("PVDUMP_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or(reference);
    if target == "parse"
        && let Ok(rd) = std::fs::read_dir(&reference)
    {
        for e in rd.flatten() {
            let src = e.path().join("pvdump.elf");
            if src.is_file() {
                let name = format!("reference-{}", e.file_name().to_string_lossy());
                std::fs::copy(&src, dir.join(name)).with_context(|| format!("copying {}", src.display()))?;
            }
        }
    }
    // Every saved regression input is a seed too.
    if let Ok(rd) = std::fs::read_dir(root().join("fuzz/regressions").join(target)) {
        for e in rd.flatten() {
            let _ = std::fs::copy(e.path(), dir.join(e.file_name()));
        }
    }
    Ok(dir)
}

/// Runs every target (or those named, comma-separated, in `$PVDUMP_FUZZ_TARGETS`) for
/// `seconds` seconds.
pub fn run(seconds: u64) -> anyhow::Result<()> {
    let only = std::env::var("PVDUMP_FUZZ_TARGETS").ok();
    let chosen: Vec<&str> = match &only {
        Some(list) => list.split(',').map(str::trim).filter(|t| !t.is_empty()).collect(),
        None => TARGETS.to_vec(),
    };
    if let Some(bad) = chosen.iter().find(|t| !TARGETS.contains(t)) {
        bail!(
            "PVDUMP_FUZZ_TARGETS: unknown target `{bad}` (targets: {})",
            TARGETS.join(", ")
        );
    }
    for target in TARGETS.iter().filter(|t| chosen.contains(t)) {
        let corpus = write_seeds(target)?;
        println!(
            "xtask fuzz: running `{target}` for {seconds} s, corpus {}",
            corpus.display()
        );
        let status = Command::new("cargo")
            .current_dir(root().join("fuzz"))
            // The fuzz crate is its own workspace with its own target dir (fuzz/target):
            // sanitizer builds must not mix with the main build's artifacts.
            .env_remove("CARGO_TARGET_DIR")
            .args(["+nightly", "fuzz", "run", target])
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!(
                "-max_len={}",
                if *target == "lzo" { LZO_MAX_LEN } else { MAX_LEN }
            ))
            .arg("-rss_limit_mb=2048")
            .arg("-timeout=10")
            .arg("-print_final_stats=1")
            .status()
            .context("running `cargo +nightly fuzz` (install it with `cargo install cargo-fuzz`)")?;
        if !status.success() {
            bail!("fuzz target `{target}` found a problem ({status}); see fuzz/artifacts/{target}/");
        }
    }
    Ok(())
}
