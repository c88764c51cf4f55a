//! The project's task runner: `cargo xtask <task>`.
//!
//! - `fixtures`: regenerate fixtures/ deterministically from seeds (simulated Ultravisor).
//! - `regress`: decrypt every dump in fixtures/ and ../shared/fixtures/reference/, verify
//!   memory and registers, and print a table with throughput.

mod fixtures;
mod regress;

use std::path::PathBuf;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

const USAGE: &str = "usage: cargo xtask <fixtures|regress>
  fixtures   regenerate fixtures/ from seeds (deterministic)
  regress    decrypt every fixture and reference dump, verify, print MB/s";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fixtures") => fixtures::run(&workspace().join("fixtures")),
        Some("regress") => regress::run(&workspace()),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}
