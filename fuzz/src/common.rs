//! The fuzz harnesses, shared by the cargo-fuzz targets and the regression test
//! (`crates/cli/tests/fuzz_regressions.rs`), so a saved crash input replays exactly.

#![allow(dead_code)]

use pvdump_core::{Cck, Dump, Format, MemoryBlock, Output, WriteOptions};
use pvdump_synth::SynthSpec;

/// Seed of the fixture whose key the `decrypt` target uses.
pub const FUZZ_SEED: u64 = 0x5eed_f022;
/// Inputs larger than this are ignored by `decrypt` (the seeds are ~80-300 KiB).
pub const MAX_DECRYPT_INPUT: usize = 1 << 20;
/// Guest memory written to the sink at most (the parser already bounds it by the size of
/// `pv_mem_meta`; this keeps each execution fast).
pub const MAX_DECRYPT_MEMORY: u64 = 64 << 20;

/// The seed fixtures: small dumps that all share the key of `FUZZ_SEED`.
pub fn seed_specs() -> Vec<(&'static str, SynthSpec)> {
    let small = |kib: u64, cpus: usize| {
        let mut s = SynthSpec::simple(FUZZ_SEED, 1, cpus);
        s.blocks = vec![MemoryBlock {
            paddr: 0,
            size: kib << 10,
        }];
        s
    };
    let mut mixed = small(64, 2);
    mixed.zero_permille = 300;
    mixed.shared_permille = 300;
    mixed.mapped_permille = 500;
    let mut one = small(16, 1);
    one.osii_cpus = vec![0];
    one.zero_fill_garbage = true;
    let mut long_note = small(32, 1);
    long_note.cpu_note_len = 2048;
    vec![
        ("synth-64k-2cpu", small(64, 2)),
        ("synth-64k-mixed", mixed),
        ("synth-16k-1cpu-osii", one),
        ("synth-32k-longnote", long_note),
        ("synth-128k-3cpu", small(128, 3)),
    ]
}

/// The key of the seed fixtures.
pub fn fuzz_key() -> Cck {
    Cck::from_bytes(SynthSpec::simple(FUZZ_SEED, 1, 1).cck())
}

/// Target `parse`: every structural check on arbitrary bytes, for every kind of dump
/// (encrypted PV without its key, plain ELF, kdump and flattened kdump). Returns whether
/// the bytes opened as a dump.
pub fn parse(data: &[u8]) -> bool {
    let Ok(dump) = Dump::from_bytes(data.to_vec(), None) else {
        return false;
    };
    if let Some(core) = dump.elf() {
        for note in core.notes() {
            if note.is_err() {
                break;
            }
        }
        for s in core.sections() {
            let _ = core.section_data(s);
        }
    }
    if let Some(pv) = dump.pv() {
        let _ = pv.page_counts();
        let _ = pv.completion();
        for cpu in pv.cpus() {
            let _ = cpu.dump_v1();
        }
        if let Some(l) = pv.loads().first() {
            let pfn = l.paddr / 4096;
            let _ = pv.page_state(pfn);
            if l.filesz > 0 {
                let _ = pv.page_bytes(l, pfn);
            }
        }
    }
    if let Some(k) = dump.kdump() {
        let _ = k.page_counts();
        let _ = k.cpus();
    }
    let _ = dump.cpus();
    let _ = dump.notes();
    if let Some(b) = dump.memory().first() {
        let mut page = [0u8; 4096];
        let _ = dump.read_phys(b.paddr, &mut page);
    }
    true
}

/// Target `decrypt`: the whole decrypt path with the fixed key, output to a sink. Returns
/// the bytes of guest memory written when the dump decrypted.
pub fn decrypt(data: &[u8]) -> Option<u64> {
    if data.len() > MAX_DECRYPT_INPUT {
        return None;
    }
    let key = fuzz_key();
    let dump = Dump::encrypted_from_bytes(data.to_vec(), &key).ok()?;
    if dump.memory().iter().map(|b| b.size).sum::<u64>() > MAX_DECRYPT_MEMORY {
        return None;
    }
    let mut sink = std::io::sink();
    let opts = WriteOptions {
        window: 2,
        ..WriteOptions::default()
    };
    dump.write(Format::Elf, &mut Output::Stream(&mut sink), &opts)
        .ok()
        .map(|w| w.memory)
}
