//! Replays every saved fuzz input (`fuzz/regressions/<target>/*`) through the same harness the
//! cargo-fuzz targets run (`fuzz/src/common.rs`), so a fixed crash stays fixed under plain
//! `cargo test`, and checks that the harness still reaches the end of its path: every seed
//! decrypts completely and every cut of a seed is refused. A harness that silently returned
//! early would make the fuzzer blind; these assertions catch that.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/src/common.rs"]
mod common;

/// The saved inputs of a target (`.keep` and notes excluded).
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_none_or(|n| n != ".keep"))
        .filter(|p| p.extension().is_none_or(|x| x != "md"))
        .collect();
    v.sort();
    v
}

#[test]
fn saved_inputs_replay_without_panicking() {
    let mut replayed = 0;
    for target in ["parse", "decrypt"] {
        for f in inputs(target) {
            let data = std::fs::read(&f).unwrap();
            // What a finding did is known from its name: `*.opens` must open (parse) or
            // decrypt, anything else must be refused cleanly.
            let should_open = f.extension().is_some_and(|x| x == "opens");
            let opened = match target {
                "parse" => common::parse(&data),
                _ => common::decrypt(&data).is_some(),
            };
            assert_eq!(opened, should_open, "{}", f.display());
            replayed += 1;
        }
    }
    assert!(replayed >= 4, "only {replayed} saved inputs in fuzz/regressions");
}

#[test]
fn every_seed_decrypts_completely_and_every_cut_is_refused() {
    for (name, spec) in common::seed_specs() {
        let bytes = spec.dump_bytes();
        let memory: u64 = spec.blocks.iter().map(|b| b.size).sum();
        assert!(common::parse(&bytes), "{name}: parse target cannot open its seed");
        assert_eq!(common::decrypt(&bytes), Some(memory), "{name}: decrypt target");
        for cut in [0, 63, 64, 500, bytes.len() / 2, bytes.len() - 1] {
            assert!(!common::parse(&bytes[..cut]), "{name}: cut at {cut} opened");
            assert_eq!(common::decrypt(&bytes[..cut]), None, "{name}: cut at {cut} decrypted");
        }
    }
}
