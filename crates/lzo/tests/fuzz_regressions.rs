//! Replays every saved finding of the `lzo` fuzz target (`fuzz/regressions/lzo/*`) through
//! the same harness (`fuzz/src/lzo.rs`), plus a few inputs that reach every branch of it.

mod common;

use std::path::Path;

#[path = "../../../fuzz/src/lzo.rs"]
mod harness;

#[test]
fn lzo_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/lzo");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
        .collect();
    files.sort();
    for f in &files {
        harness::lzo(&std::fs::read(f).unwrap());
    }
    eprintln!("replayed {} lzo regressions", files.len());
}

#[test]
fn harness_accepts_streams_and_plaintext() {
    // Valid streams (decode branch), pages (round trip), garbage.
    let mut c = pvdump_lzo::Compressor::new();
    for page in common::synthetic_pages(16, 3) {
        let mut z = vec![0u8; pvdump_lzo::worst_case_len(page.len())];
        let n = c.compress(&page, &mut z).unwrap();
        harness::lzo(&z[..n]);
        harness::lzo(&page);
    }
    harness::lzo(&[]);
    harness::lzo(&[0x11, 0, 0]);
    harness::lzo(&[0xff; 300]);
}
