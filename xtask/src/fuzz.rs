//! `cargo xtask fuzz --seconds N`: writes the seed corpora and runs every cargo-fuzz target
//! for N seconds, one after the other, on one core.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

#[path = "../../fuzz/src/common.rs"]
mod common;

/// The cargo-fuzz targets, in the order they run.
pub const TARGETS: &[&str] = &["parse", "decrypt"];
/// Largest input libFuzzer builds (the seeds are shorter; longer reference dumps are cut).
const MAX_LEN: usize = 1 << 20;

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
    for (name, spec) in common::seed_specs() {
        std::fs::write(dir.join(name), spec.dump_bytes()).with_context(|| format!("writing seed {name}"))?;
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

/// Runs every target for `seconds` seconds.
pub fn run(seconds: u64) -> anyhow::Result<()> {
    for target in TARGETS {
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
            .arg(format!("-max_len={MAX_LEN}"))
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
