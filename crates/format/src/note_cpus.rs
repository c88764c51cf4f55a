//! Reading CPU registers back from the notes of a plain s390x vmcore (pvdump's own output, a
//! kernel /proc/vmcore, zgetdump's output, a kdump file's note area): the inverse of
//! [`crate::layout::s390::push_cpu_notes`], from the same structure definitions.

use crate::consts::NT_PRSTATUS;
use crate::cpu::CpuRegisters;
use crate::elf::Note;
use crate::error::{FormatError, Problem, Result, Structure};
use crate::layout::s390::{PrStatus, apply_register_note, register_note_size};

/// One CPU found in the notes: a PRSTATUS and the notes after it up to the next PRSTATUS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteCpu {
    /// pr_pid of the PRSTATUS.
    pub pid: u32,
    /// The registers the notes carry (fields without a note stay zero).
    pub regs: CpuRegisters,
    /// Note types seen for this CPU, in order.
    pub note_types: Vec<u32>,
}

/// Groups notes into CPUs the way crash does (a new CPU at every NT_PRSTATUS named "CORE")
/// and decodes the s390x register notes. Notes before the first PRSTATUS, and notes of other
/// types, are skipped.
pub fn cpus_from_notes<'a>(notes: impl IntoIterator<Item = Result<Note<'a>>>) -> Result<Vec<NoteCpu>> {
    let mut cpus: Vec<NoteCpu> = Vec::new();
    for note in notes {
        let note = note?;
        let Some(need) = register_note_size(note.n_type) else {
            continue;
        };
        let is_prstatus = note.n_type == NT_PRSTATUS && note.name == b"CORE";
        if !is_prstatus && cpus.is_empty() {
            continue;
        }
        if note.desc.len() < need {
            return Err(FormatError::invalid(
                Structure::Note { n_type: note.n_type },
                note.offset,
                Problem::DescriptorTooShort {
                    found: note.desc.len(),
                    need,
                },
            ));
        }
        if is_prstatus {
            let Some(p) = PrStatus::read_from(note.desc) else {
                continue;
            };
            cpus.push(NoteCpu {
                pid: p.pr_pid,
                regs: CpuRegisters {
                    psw: p.psw,
                    gprs: p.gprs,
                    acrs: p.acrs,
                    ..CpuRegisters::default()
                },
                note_types: vec![NT_PRSTATUS],
            });
        } else if let Some(cpu) = cpus.last_mut()
            && apply_register_note(&mut cpu.regs, note.n_type, note.desc)
        {
            cpu.note_types.push(note.n_type);
        }
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::*;
    use crate::elf::NoteIter;
    use crate::layout::elf::push_note;
    use crate::layout::s390::{CPU_NOTE_TYPES, push_cpu_notes};

    fn regs(seed: u64) -> CpuRegisters {
        CpuRegisters {
            gprs: std::array::from_fn(|i| seed + i as u64),
            psw: [seed << 8, seed << 16],
            prefix: seed as u32 * 0x1000,
            fpc: 1,
            todpreg: 2,
            timer: 3,
            todcmp: 4,
            acrs: std::array::from_fn(|i| i as u32),
            ctrs: std::array::from_fn(|i| seed * 100 + i as u64),
            fprs: [5; 16],
            vxrs_low: [6; 16],
            vxrs_high: [[7; 16]; 16],
            gs_cb: [0, 8, 9, 10],
            has_osii: false,
        }
    }

    #[test]
    fn reads_back_what_push_cpu_notes_writes() {
        let mut blob = Vec::new();
        push_note(&mut blob, "CORE", NT_PRPSINFO, &[0; 136]);
        push_cpu_notes(&mut blob, 1, &regs(1));
        push_cpu_notes(&mut blob, 2, &regs(2));
        push_note(&mut blob, "VMCOREINFO", NT_VMCOREINFO, b"OSRELEASE=6.1\n");
        let cpus = cpus_from_notes(NoteIter::new(&blob, 0, blob.len() as u64, 0)).unwrap();
        assert_eq!(cpus.len(), 2);
        for (i, c) in cpus.iter().enumerate() {
            assert_eq!(c.pid, i as u32 + 1);
            assert_eq!(c.regs, regs(i as u64 + 1));
            assert_eq!(c.note_types, CPU_NOTE_TYPES);
        }
    }

    #[test]
    fn short_descriptor_names_the_note_and_offset() {
        let mut blob = Vec::new();
        push_cpu_notes(&mut blob, 1, &regs(1));
        let at = blob.len() as u64;
        push_note(&mut blob, "LINUX", NT_S390_CTRS, &[0; 64]);
        let e = cpus_from_notes(NoteIter::new(&blob, 0, blob.len() as u64, 0)).unwrap_err();
        assert_eq!(
            e,
            FormatError::invalid(
                Structure::Note { n_type: NT_S390_CTRS },
                at,
                Problem::DescriptorTooShort { found: 64, need: 128 }
            )
        );
        assert!(e.to_string().contains("n_descsz 64 is smaller than the 128 bytes"));
    }

    #[test]
    fn notes_before_the_first_prstatus_are_ignored() {
        let mut blob = Vec::new();
        push_note(&mut blob, "LINUX", NT_S390_PREFIX, &[0, 0, 0x10, 0]);
        let cpus = cpus_from_notes(NoteIter::new(&blob, 0, blob.len() as u64, 0)).unwrap();
        assert!(cpus.is_empty());
    }
}
