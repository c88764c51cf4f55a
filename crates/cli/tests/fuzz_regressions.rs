//! Replays every saved fuzz finding (`fuzz/regressions/<target>/*`) through the same harness
//! the cargo-fuzz targets run (`fuzz/src/common.rs`), plus the seed dumps and a few cuts of
//! them, so a fixed crash stays fixed under plain `cargo test`.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/src/common.rs"]
mod common;

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
        .collect();
    v.sort();
    v
}

#[test]
fn parse_regressions() {
    let files = inputs("parse");
    for f in &files {
        common::parse(&std::fs::read(f).unwrap());
    }
    eprintln!("replayed {} parse regressions", files.len());
}

#[test]
fn decrypt_regressions() {
    let files = inputs("decrypt");
    for f in &files {
        common::decrypt(&std::fs::read(f).unwrap());
    }
    eprintln!("replayed {} decrypt regressions", files.len());
}

#[test]
fn harness_accepts_its_seeds() {
    use pvdump_crypto::OpenedDump;
    use pvdump_format::PvDump;
    let key = common::fuzz_key();
    for (name, spec) in common::seed_specs() {
        let bytes = spec.dump_bytes();
        // The seeds must reach the end of the decrypt path, or the fuzzer would start blind.
        let dump = PvDump::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        OpenedDump::open(dump.clone(), &key).unwrap_or_else(|e| panic!("{name}: {e}"));
        common::parse(&bytes);
        common::decrypt(&bytes);
        for cut in [0, 63, 64, 500, bytes.len() / 2, bytes.len() - 1] {
            common::parse(&bytes[..cut]);
            common::decrypt(&bytes[..cut]);
        }
    }
}
