//! The ELF note blob of a plain s390x vmcore: PRPSINFO, then per CPU the ten register notes
//! the kernel and zgetdump write, then VMCOREINFO. The same blob goes into the ELF PT_NOTE
//! and into the kdump sub-header.

use pvdump_format::CpuRegisters;
use pvdump_format::consts::*;

/// The note bytes and where the VMCOREINFO text sits inside them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NoteBlob {
    pub bytes: Vec<u8>,
    /// (offset inside `bytes`, length) of the VMCOREINFO descriptor.
    pub vmcoreinfo: Option<(usize, usize)>,
    /// Number of CPUs (PRSTATUS notes).
    pub cpus: usize,
}

/// Descriptor sizes.
pub const PRSTATUS_SIZE: usize = 336;
pub const PRPSINFO_SIZE: usize = 136;
pub const FPREGSET_SIZE: usize = 136;
/// Bytes of notes per CPU: 20-byte header+name for each of ten notes plus the descriptors.
pub const NOTE_BYTES_PER_CPU: usize = 10 * 20 + 336 + 136 + 8 + 8 + 4 + 128 + 4 + 128 + 256 + 32;

/// Appends one note with 4-byte padding of name and descriptor.
pub fn push_note(buf: &mut Vec<u8>, name: &str, n_type: u32, desc: &[u8]) -> usize {
    let namesz = name.len() + 1;
    buf.extend_from_slice(&(namesz as u32).to_be_bytes());
    buf.extend_from_slice(&(desc.len() as u32).to_be_bytes());
    buf.extend_from_slice(&n_type.to_be_bytes());
    buf.extend_from_slice(name.as_bytes());
    buf.resize(buf.len() + (pad4(namesz) - name.len()), 0);
    let desc_at = buf.len();
    buf.extend_from_slice(desc);
    buf.resize(buf.len() + (pad4(desc.len()) - desc.len()), 0);
    desc_at
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn be_u64s(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// NT_PRSTATUS for s390x (336 bytes): pr_pid, PSW, GPRs and access registers.
pub fn prstatus(pid: u32, r: &CpuRegisters) -> [u8; PRSTATUS_SIZE] {
    let mut d = [0u8; PRSTATUS_SIZE];
    d[32..36].copy_from_slice(&pid.to_be_bytes());
    d[112..120].copy_from_slice(&r.psw[0].to_be_bytes());
    d[120..128].copy_from_slice(&r.psw[1].to_be_bytes());
    for i in 0..16 {
        d[128 + 8 * i..136 + 8 * i].copy_from_slice(&r.gprs[i].to_be_bytes());
        d[256 + 4 * i..260 + 4 * i].copy_from_slice(&r.acrs[i].to_be_bytes());
    }
    d
}

/// NT_PRPSINFO (136 bytes): state 'R', fname "vmlinux".
pub fn prpsinfo() -> [u8; PRPSINFO_SIZE] {
    let mut d = [0u8; PRPSINFO_SIZE];
    d[1] = b'R';
    d[40..47].copy_from_slice(b"vmlinux");
    d
}

/// Builds the note blob for these CPUs (pr_pid = position + 1) and optional VMCOREINFO text.
pub fn build_notes(cpus: &[CpuRegisters], vmcoreinfo: Option<&[u8]>) -> NoteBlob {
    let mut b = Vec::with_capacity(156 + cpus.len() * NOTE_BYTES_PER_CPU + vmcoreinfo.map_or(0, |v| v.len() + 28));
    push_note(&mut b, "CORE", NT_PRPSINFO, &prpsinfo());
    for (i, r) in cpus.iter().enumerate() {
        push_note(&mut b, "CORE", NT_PRSTATUS, &prstatus(i as u32 + 1, r));
        let mut fp = [0u8; FPREGSET_SIZE];
        fp[0..4].copy_from_slice(&r.fpc.to_be_bytes());
        fp[8..].copy_from_slice(&be_u64s(&r.fprs));
        push_note(&mut b, "CORE", NT_FPREGSET, &fp);
        push_note(&mut b, "LINUX", NT_S390_TIMER, &r.timer.to_be_bytes());
        push_note(&mut b, "LINUX", NT_S390_TODCMP, &r.todcmp.to_be_bytes());
        push_note(&mut b, "LINUX", NT_S390_TODPREG, &r.todpreg.to_be_bytes());
        push_note(&mut b, "LINUX", NT_S390_CTRS, &be_u64s(&r.ctrs));
        push_note(&mut b, "LINUX", NT_S390_PREFIX, &r.prefix.to_be_bytes());
        push_note(&mut b, "LINUX", NT_S390_VXRS_LOW, &be_u64s(&r.vxrs_low));
        push_note(&mut b, "LINUX", NT_S390_VXRS_HIGH, r.vxrs_high.as_flattened());
        push_note(&mut b, "LINUX", NT_S390_GS_CB, &be_u64s(&r.gs_cb));
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
    fn per_cpu_size_matches_zgetdump() {
        // formats.md D.3: 1240 bytes of notes per CPU.
        assert_eq!(NOTE_BYTES_PER_CPU, 1240);
        let blob = build_notes(
            &[CpuRegisters::default(), CpuRegisters::default()],
            Some(b"OSRELEASE=6.1\n"),
        );
        assert_eq!(blob.bytes.len(), 156 + 2 * 1240 + 12 + 12 + 16);
        let (off, len) = blob.vmcoreinfo.unwrap();
        assert_eq!(&blob.bytes[off..off + len], b"OSRELEASE=6.1\n");
    }

    #[test]
    fn prstatus_layout() {
        let mut r = CpuRegisters {
            psw: [0x0705_0000_8000_0000, 0x1234],
            ..CpuRegisters::default()
        };
        r.gprs[15] = 0xdead_beef;
        r.acrs[1] = 7;
        let d = prstatus(3, &r);
        assert_eq!(&d[32..36], &3u32.to_be_bytes());
        assert_eq!(&d[112..120], &0x0705_0000_8000_0000u64.to_be_bytes());
        assert_eq!(&d[120..128], &0x1234u64.to_be_bytes());
        assert_eq!(&d[248..256], &0xdead_beefu64.to_be_bytes());
        assert_eq!(&d[260..264], &7u32.to_be_bytes());
    }
}
