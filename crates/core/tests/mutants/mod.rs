//! The damaged-dump table shared by the library corpus (`crates/core/tests/corpus.rs`) and
//! the binary's end-to-end corpus (`crates/cli/tests/corpus.rs`): from one valid synthetic
//! dump, every structure truncated, every header field lied about, every sealed byte flipped,
//! every invalid page state. Each mutant names the exit code the binary must give and the
//! substrings its message must contain (structure and file offset).

#![allow(dead_code)]

use pvdump_format::{ElfCore, PvDump};
use pvdump_synth::SynthSpec;

mod cases;
pub use cases::mutants;

/// Offsets of every structure of the base dump, read back with the parser.
#[derive(Debug, Clone)]
pub struct Layout {
    pub len: usize,
    pub phoff: usize,
    pub note_off: usize,
    pub mem_off: usize,
    pub mem_meta_off: usize,
    pub compl_off: usize,
    pub strtab_off: usize,
    /// Per CPU: (note header offset, descriptor offset).
    pub cpu_notes: Vec<(usize, usize)>,
}

impl Layout {
    pub fn of(dump: &[u8]) -> Layout {
        let core = ElfCore::parse(dump).expect("base dump parses");
        let pv = PvDump::from_core(core.clone()).expect("base dump is PV");
        let note_seg = core.note_segments()[0];
        let strtab = core.section(".shstrtab").expect("strtab");
        Layout {
            len: dump.len(),
            phoff: core.header().e_phoff as usize,
            note_off: note_seg.file_offset as usize,
            mem_off: core.loads()[0].file_offset as usize,
            mem_meta_off: pv.mem_meta_section().file_offset as usize,
            compl_off: pv.completion_section().file_offset as usize,
            strtab_off: strtab.file_offset as usize,
            cpu_notes: pv
                .cpus()
                .iter()
                .map(|c| (c.note_offset as usize, c.desc_offset as usize))
                .collect(),
        }
    }

    pub fn shdr(&self, i: usize) -> usize {
        64 + 64 * i
    }

    pub fn phdr(&self, i: usize) -> usize {
        self.phoff + 56 * i
    }

    pub fn component(&self, pfn: usize) -> usize {
        self.mem_meta_off + 16 * pfn
    }
}

pub fn put16(d: &mut [u8], off: usize, v: u16) {
    d[off..off + 2].copy_from_slice(&v.to_be_bytes());
}
pub fn put32(d: &mut [u8], off: usize, v: u32) {
    d[off..off + 4].copy_from_slice(&v.to_be_bytes());
}
pub fn put64(d: &mut [u8], off: usize, v: u64) {
    d[off..off + 8].copy_from_slice(&v.to_be_bytes());
}
pub fn flip(d: &mut [u8], off: usize) {
    d[off] ^= 0x10;
}

/// Mutates the base dump.
pub type MutateFn = Box<dyn Fn(&Layout, &mut Vec<u8>)>;

/// One damaged dump.
pub struct Mutant {
    /// What was damaged.
    pub name: String,
    /// The exit code of `pvdump decrypt` (3 wrong key, 4 damaged dump).
    pub code: i32,
    /// Substrings the error message must contain.
    pub expect: Vec<String>,
    /// The damage.
    pub mutate: MutateFn,
}

impl Mutant {
    /// The base dump with this damage.
    pub fn apply(&self, l: &Layout, base: &[u8]) -> Vec<u8> {
        let mut d = base.to_vec();
        (self.mutate)(l, &mut d);
        d
    }
}

/// A mutant.
pub fn dump_case(
    name: impl Into<String>,
    code: i32,
    expect: &[&str],
    f: impl Fn(&Layout, &mut Vec<u8>) + 'static,
) -> Mutant {
    Mutant {
        name: name.into(),
        code,
        expect: expect.iter().map(|s| s.to_string()).collect(),
        mutate: Box::new(f),
    }
}

/// `{v:#x}`.
pub fn hex(v: usize) -> String {
    format!("{v:#x}")
}

/// The valid base dump (1 MiB, 2 CPUs) and its key.
pub fn base() -> (Vec<u8>, [u8; 32]) {
    let spec = SynthSpec::simple(0x0c0_4405, 1, 2);
    (spec.dump_bytes(), spec.cck())
}
