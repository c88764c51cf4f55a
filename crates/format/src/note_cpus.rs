//! Reading CPU registers back from the notes of a plain s390x vmcore (pvdump's own output, a
//! kernel /proc/vmcore, zgetdump's output): the inverse of the note writer.

use crate::bytes::{be32, be64, copy_array};
use crate::consts::*;
use crate::cpu::CpuRegisters;
use crate::elf::ElfCore;
use crate::error::{FormatError, Result};

/// One CPU found in the notes: a PRSTATUS and the notes after it up to the next PRSTATUS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteCpu {
    /// pr_pid of the PRSTATUS.
    pub pid: u32,
    pub regs: CpuRegisters,
    /// Note types seen for this CPU, in order.
    pub note_types: Vec<u32>,
}

fn u64s<const N: usize>(d: &[u8]) -> [u64; N] {
    std::array::from_fn(|i| be64(d, 8 * i))
}

/// Groups the notes of a plain vmcore into CPUs the way crash does (a new CPU at every
/// NT_PRSTATUS) and decodes the s390x register notes.
pub fn cpus_from_notes(core: &ElfCore<'_>) -> Result<Vec<NoteCpu>> {
    let mut cpus: Vec<NoteCpu> = Vec::new();
    for note in core.notes() {
        let note = note?;
        let short = |need: usize| {
            FormatError::invalid(
                format!("note type {:#x}", note.n_type),
                note.offset,
                format!(
                    "n_descsz {} is smaller than the {need} bytes this note type needs",
                    note.desc.len()
                ),
            )
        };
        if note.n_type == NT_PRSTATUS && note.name == b"CORE" {
            let d = note.desc;
            if d.len() < 320 {
                return Err(short(320));
            }
            let mut regs = CpuRegisters {
                psw: [be64(d, 112), be64(d, 120)],
                ..CpuRegisters::default()
            };
            for i in 0..16 {
                regs.gprs[i] = be64(d, 128 + 8 * i);
                regs.acrs[i] = be32(d, 256 + 4 * i);
            }
            cpus.push(NoteCpu {
                pid: be32(d, 32),
                regs,
                note_types: vec![NT_PRSTATUS],
            });
            continue;
        }
        let Some(cpu) = cpus.last_mut() else { continue };
        let d = note.desc;
        let r = &mut cpu.regs;
        let need = match note.n_type {
            NT_FPREGSET => 136,
            NT_S390_TIMER | NT_S390_TODCMP => 8,
            NT_S390_TODPREG | NT_S390_PREFIX => 4,
            NT_S390_CTRS | NT_S390_VXRS_LOW => 128,
            NT_S390_VXRS_HIGH => 256,
            NT_S390_GS_CB => 32,
            _ => continue,
        };
        if d.len() < need {
            return Err(short(need));
        }
        match note.n_type {
            NT_FPREGSET => {
                r.fpc = be32(d, 0);
                r.fprs = u64s(&d[8..]);
            }
            NT_S390_TIMER => r.timer = be64(d, 0),
            NT_S390_TODCMP => r.todcmp = be64(d, 0),
            NT_S390_TODPREG => r.todpreg = be32(d, 0),
            NT_S390_CTRS => r.ctrs = u64s(d),
            NT_S390_PREFIX => r.prefix = be32(d, 0),
            NT_S390_VXRS_LOW => r.vxrs_low = u64s(d),
            NT_S390_VXRS_HIGH => r.vxrs_high = std::array::from_fn(|i| copy_array(d, 16 * i)),
            NT_S390_GS_CB => r.gs_cb = u64s(d),
            _ => {}
        }
        cpu.note_types.push(note.n_type);
    }
    Ok(cpus)
}
