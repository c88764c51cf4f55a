//! The project's task runner: `cargo xtask <task>`.
//!
//! - `fixtures`: regenerate fixtures/ deterministically from seeds (simulated Ultravisor).
//! - `regress`: decrypt every dump in fixtures/ and ../shared/fixtures/reference/, verify
//!   memory and registers, and print a table with throughput.
//! - `fuzz`: run every cargo-fuzz target for N seconds (docs/fuzzing.md).
//! - `bench`: pvdump against `cp`, openssl, pigz, zstd and lzop end to end, with memory and
//!   CPU use and the issue-12 targets (docs/performance.md).
//! - `real-kernel`: real s390x Linux guests (Debian 6.1 and 6.12) sealed, decrypted and read
//!   back with drgn and libkdumpfile (issue 11; xtask/src/real_kernel/).
//! - `dist`: release archives for every target, checked and reproducible (docs/release.md);
//!   `cross-test`: the tests of a foreign target under qemu user-mode emulation.

mod bench;
mod bench_refs;
mod dist;
mod fixtures;
mod fuzz;
mod real_kernel;
mod regress;
mod synth;

use std::path::PathBuf;

fn workspace() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    p.canonicalize().unwrap_or(p)
}

const USAGE: &str = "usage: cargo xtask <fixtures|regress|bench|fuzz|synth|real-kernel|dist|cross-test>
  fixtures   regenerate fixtures/ from seeds (deterministic)
  regress    decrypt every fixture and reference dump, verify, print MB/s
  bench      [--size MIB] [--runs N] [--out DIR]... [--rss-sizes 1024,4096] [--real PLAIN.elf | --no-real] [--no-doc]
             pvdump vs cp, openssl speed, pigz, zstd, lzop on synthetic and real kernel
             memory; the issue-12 targets; writes docs/performance.md (--help for more)
  fuzz       [--seconds N]: run each fuzz target for N seconds (needs cargo-fuzz, nightly)
  synth      OUT.elf KEY.bin MIB [random|compressible] [ZERO_PERMILLE]: one synthetic dump
             --content-from PLAIN.elf OUT.elf KEY.bin: seal a real plain dump's memory and registers
  real-kernel [--suite bookworm|trixie|all]... [--crash] [--zgetdump] [--cache DIR] [--keep]
             real Debian s390x kernels (6.1, 6.12): boot, dump, seal, decrypt, check with
             drgn and libkdumpfile (crash and zgetdump under qemu-user with --crash,
             --zgetdump: slow, not in CI)
  dist       [--target TRIPLE]... [--out DIR] [--no-verify]: release archives + SHA256SUMS in
             target/dist for every release target, checked (docs/release.md)
  cross-test TRIPLE [--libs-only]: build the tests for TRIPLE and run them under qemu-user";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fixtures") => fixtures::run(&workspace().join("fixtures")),
        Some("regress") => regress::run(&workspace()),
        Some("fuzz") => fuzz::run(fuzz::parse_seconds(&args[1..])?),
        Some("synth") => synth::run(&args[1..]),
        Some("dist") => dist::dist(&workspace(), &args[1..]),
        Some("cross-test") => dist::cross_test(&workspace(), &args[1..]),
        Some("bench") => bench::run(&workspace(), &bench::parse(&args[1..])?),
        Some("real-kernel") => real_kernel::run(&workspace(), &real_kernel::parse(&args[1..])?),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}
