//! Helpers shared by the error_offsets_* tests: big-endian field pokes, a located
//! synthetic PV dump, and the check of one error's offset, structure and problem.
//!
//! Each test file uses a part of this module.
#![allow(dead_code)]

use pvdump_format::{ElfCore, FormatError, PvDump, Structure};
use pvdump_synth::SynthSpec;

pub fn put16(d: &mut [u8], at: u64, v: u16) {
    d[at as usize..at as usize + 2].copy_from_slice(&v.to_be_bytes());
}
pub fn put32(d: &mut [u8], at: u64, v: u32) {
    d[at as usize..at as usize + 4].copy_from_slice(&v.to_be_bytes());
}
pub fn put64(d: &mut [u8], at: u64, v: u64) {
    d[at as usize..at as usize + 8].copy_from_slice(&v.to_be_bytes());
}
pub fn get64(d: &[u8], at: u64) -> u64 {
    u64::from_be_bytes(d[at as usize..at as usize + 8].try_into().unwrap())
}

/// Where things are in a valid synthetic PV dump.
#[derive(Debug, Clone)]
pub struct Pv {
    pub bytes: Vec<u8>,
    pub phoff: u64,
    pub shoff: u64,
    /// Program header of the PT_NOTE, and its data.
    pub note_phdr: u64,
    pub note_off: u64,
    pub note_size: u64,
    /// Program header of the (first) PT_LOAD, and its data.
    pub load_phdr: u64,
    pub load_off: u64,
    /// Section headers and data.
    pub meta_hdr: u64,
    pub meta_off: u64,
    pub compl_hdr: u64,
    pub compl_off: u64,
    pub strtab_hdr: u64,
    pub strtab_off: u64,
    /// Note headers in order: (offset, name, type, descriptor offset).
    pub notes: Vec<(u64, Vec<u8>, u32, u64)>,
}

impl Pv {
    pub fn new(spec: &SynthSpec) -> Pv {
        let bytes = spec.dump_bytes();
        let core = ElfCore::parse(&bytes).unwrap();
        let phoff = core.header().e_phoff;
        let shoff = core.header().e_shoff;
        let sec = |n: &str| core.section(n).unwrap().clone();
        let (meta, compl) = (sec("pv_mem_meta"), sec("pv_compl"));
        let notes = core
            .notes()
            .map(|n| {
                let n = n.unwrap();
                (n.offset, n.name.to_vec(), n.n_type, n.desc_offset)
            })
            .collect();
        let seg = core.note_segments()[0];
        let load = core.loads()[0];
        Pv {
            phoff,
            shoff,
            note_phdr: phoff + u64::from(seg.phdr_index) * 56,
            note_off: seg.file_offset,
            note_size: seg.size,
            load_phdr: load.phdr_offset,
            load_off: load.file_offset,
            meta_hdr: meta.header_offset,
            meta_off: meta.file_offset,
            compl_hdr: compl.header_offset,
            compl_off: compl.file_offset,
            strtab_hdr: shoff + 3 * 64,
            strtab_off: get64(&bytes, shoff + 3 * 64 + 24),
            notes,
            bytes,
        }
    }

    pub fn simple() -> Pv {
        Pv::new(&SynthSpec::simple(11, 1, 2))
    }

    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The first note of this type.
    pub fn note(&self, n_type: u32) -> (u64, u64) {
        self.notes.iter().find(|n| n.2 == n_type).map(|n| (n.0, n.3)).unwrap()
    }
}

/// Parses a damaged PV dump the way `pvdump decrypt` does before it needs the key: the
/// structure, then the completion data, every CPU note and every page state.
pub fn pv_error(bytes: &[u8]) -> FormatError {
    let pv = match PvDump::parse(bytes) {
        Ok(pv) => pv,
        Err(e) => return e,
    };
    if let Err(e) = pv.completion() {
        return e;
    }
    for c in pv.cpus() {
        if let Err(e) = c.dump_v1() {
            return e;
        }
    }
    match pv.page_counts() {
        Err(e) => e,
        Ok(_) => panic!("the damaged dump parsed"),
    }
}

/// Checks one error: its offset, its structure and its problem (by variant name).
#[track_caller]
pub fn expect(e: &FormatError, offset: Option<u64>, structure: Option<&Structure>, problem: &str) {
    assert_eq!(e.offset(), offset, "offset of {e}");
    if let Some(s) = structure {
        assert_eq!(e.structure(), Some(s), "structure of {e}");
    }
    let name = match e {
        FormatError::Invalid { problem, .. } => format!("{problem:?}"),
        other => format!("{other:?}"),
    };
    assert!(name.starts_with(problem), "{e}: expected {problem}, got {name}");
    // The message names the offset too.
    if let Some(o) = offset
        && o != 0
    {
        assert!(e.to_string().contains(&format!("{o:#x}")), "{e}");
    }
}
