//! The ELF note blob of a plain s390x vmcore: PRPSINFO, then per CPU the ten register notes
//! the kernel and zgetdump write, then VMCOREINFO. The same blob goes into the ELF PT_NOTE
//! and into the kdump sub-header. The note layouts are `pvdump_format::layout::s390`.

use pvdump_format::CpuRegisters;
use pvdump_format::consts::{NT_PRPSINFO, NT_VMCOREINFO};
use pvdump_format::layout::elf::{note_size, push_note};
use pvdump_format::layout::s390::{NOTE_BYTES_PER_CPU, PrPsInfo, prpsinfo, push_cpu_notes};

/// The note bytes and where the VMCOREINFO text sits inside them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NoteBlob {
    /// The notes, back to back.
    pub bytes: Vec<u8>,
    /// (offset inside `bytes`, length) of the VMCOREINFO descriptor.
    pub vmcoreinfo: Option<(usize, usize)>,
    /// Number of CPUs (PRSTATUS notes).
    pub cpus: usize,
}

/// The notes hold the guest's registers (and VMCOREINFO): plaintext of a confidential guest,
/// wiped when the blob is dropped.
impl Drop for NoteBlob {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes);
    }
}

/// Builds the note blob for these CPUs (pr_pid = position + 1) and optional VMCOREINFO text.
pub fn build_notes(cpus: &[CpuRegisters], vmcoreinfo: Option<&[u8]>) -> NoteBlob {
    let mut b = Vec::with_capacity(
        note_size("CORE", PrPsInfo::SIZE)
            + cpus.len() * NOTE_BYTES_PER_CPU
            + vmcoreinfo.map_or(0, |v| note_size("VMCOREINFO", v.len())),
    );
    push_note(&mut b, "CORE", NT_PRPSINFO, &prpsinfo().to_bytes());
    for (i, r) in cpus.iter().enumerate() {
        push_cpu_notes(&mut b, i as u32 + 1, r);
    }
    let vmcoreinfo = vmcoreinfo.map(|text| (push_note(&mut b, "VMCOREINFO", NT_VMCOREINFO, text), text.len()));
    NoteBlob {
        bytes: b,
        vmcoreinfo,
        cpus: cpus.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_size_matches_zgetdump() {
        // formats.md D.3: 156 bytes of PRPSINFO, 1240 bytes of notes per CPU.
        let blob = build_notes(
            &[CpuRegisters::default(), CpuRegisters::default()],
            Some(b"OSRELEASE=6.1\n"),
        );
        assert_eq!(blob.bytes.len(), 156 + 2 * 1240 + 12 + 12 + 16);
        assert_eq!(blob.bytes.capacity(), blob.bytes.len());
        let (off, len) = blob.vmcoreinfo.unwrap();
        assert_eq!(&blob.bytes[off..off + len], b"OSRELEASE=6.1\n");
        assert_eq!(blob.cpus, 2);
        assert_eq!(build_notes(&[], None).bytes.len(), 156);
    }
}
