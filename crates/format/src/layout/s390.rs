//! The s390x core notes: what the kernel's /proc/vmcore, zgetdump and pvdump write for each
//! CPU, and what crash, gdb and drgn read (formats.md D.2-D.3).
//!
//! [`push_cpu_notes`] writes the ten notes of one CPU and [`apply_register_note`] (with
//! `crate::cpus_from_notes`) reads them back,
//! both from the same structure definitions.

use crate::consts::*;
use crate::cpu::CpuRegisters;
use crate::layout::elf::push_note;

crate::layout! {
    /// `struct elf_prstatus` for s390x (NT_PRSTATUS, 336 bytes): the pid, PSW, general and
    /// access registers. Signal and timing fields stay zero.
    pub struct PrStatus(336) {
        /// pr_pid: pvdump writes CPU number + 1, as the kernel and zgetdump do.
        pub pr_pid: u32 = 32,
        /// PSW mask and address (start of `pr_reg`).
        pub psw: [u64; 2] = 112,
        /// General registers r0-r15.
        pub gprs: [u64; 16] = 128,
        /// Access registers a0-a15.
        pub acrs: [u32; 16] = 256,
    }
}

crate::layout! {
    /// `struct elf_prpsinfo` (NT_PRPSINFO, 136 bytes).
    pub struct PrPsInfo(136) {
        /// pr_state.
        pub pr_state: u8 = 0,
        /// pr_sname: 'R' (running).
        pub pr_sname: u8 = 1,
        /// pr_fname: "vmlinux".
        pub pr_fname: [u8; 16] = 40,
    }
}

crate::layout! {
    /// `s390_fp_regs` (NT_FPREGSET, 136 bytes): the floating-point control register and
    /// f0-f15 (the leftmost halves of v0-v15).
    pub struct FpRegSet(136) {
        /// Floating-point control register.
        pub fpc: u32 = 0,
        /// f0-f15.
        pub fprs: [u64; 16] = 8,
    }
}

crate::layout! {
    /// NT_S390_TIMER: the CPU timer.
    pub struct Timer(8) {
        /// CPU timer.
        pub timer: u64 = 0,
    }
}

crate::layout! {
    /// NT_S390_TODCMP: the clock comparator.
    pub struct TodCmp(8) {
        /// Clock comparator.
        pub todcmp: u64 = 0,
    }
}

crate::layout! {
    /// NT_S390_TODPREG: the TOD programmable register.
    pub struct TodPreg(4) {
        /// TOD programmable register.
        pub todpreg: u32 = 0,
    }
}

crate::layout! {
    /// NT_S390_CTRS: control registers c0-c15.
    pub struct Ctrs(128) {
        /// c0-c15.
        pub ctrs: [u64; 16] = 0,
    }
}

crate::layout! {
    /// NT_S390_PREFIX: the prefix register.
    pub struct Prefix(4) {
        /// Prefix register.
        pub prefix: u32 = 0,
    }
}

crate::layout! {
    /// NT_S390_VXRS_LOW: the rightmost halves of v0-v15.
    pub struct VxrsLow(128) {
        /// Right halves of v0-v15.
        pub vxrs_low: [u64; 16] = 0,
    }
}

crate::layout! {
    /// NT_S390_VXRS_HIGH: v16-v31.
    pub struct VxrsHigh(256) {
        /// v16-v31, 16 bytes each.
        pub vxrs_high: [[u8; 16]; 16] = 0,
    }
}

crate::layout! {
    /// NT_S390_GS_CB: the guarded-storage control block.
    pub struct GsCb(32) {
        /// {reserved, gsd, gssm, gs_epl_a}.
        pub gs_cb: [u64; 4] = 0,
    }
}

/// Note types of one CPU, in the order pvdump (like the kernel and zgetdump) writes them.
pub const CPU_NOTE_TYPES: [u32; 10] = [
    NT_PRSTATUS,
    NT_FPREGSET,
    NT_S390_TIMER,
    NT_S390_TODCMP,
    NT_S390_TODPREG,
    NT_S390_CTRS,
    NT_S390_PREFIX,
    NT_S390_VXRS_LOW,
    NT_S390_VXRS_HIGH,
    NT_S390_GS_CB,
];

/// Bytes of notes per CPU: ten 20-byte header+name pairs plus the descriptors (1240).
pub const NOTE_BYTES_PER_CPU: usize = 10 * 20
    + PrStatus::SIZE
    + FpRegSet::SIZE
    + Timer::SIZE
    + TodCmp::SIZE
    + TodPreg::SIZE
    + Ctrs::SIZE
    + Prefix::SIZE
    + VxrsLow::SIZE
    + VxrsHigh::SIZE
    + GsCb::SIZE;

/// The PRPSINFO note pvdump writes first: state 'R', fname "vmlinux".
pub fn prpsinfo() -> PrPsInfo {
    let mut pr_fname = [0u8; 16];
    pr_fname[..7].copy_from_slice(b"vmlinux");
    PrPsInfo {
        pr_state: 0,
        pr_sname: b'R',
        pr_fname,
    }
}

/// The PRSTATUS of a CPU.
pub fn prstatus(pid: u32, r: &CpuRegisters) -> PrStatus {
    PrStatus {
        pr_pid: pid,
        psw: r.psw,
        gprs: r.gprs,
        acrs: r.acrs,
    }
}

/// Appends the ten register notes of one CPU (PRSTATUS first, with `pid`).
pub fn push_cpu_notes(buf: &mut Vec<u8>, pid: u32, r: &CpuRegisters) {
    push_note(buf, "CORE", NT_PRSTATUS, &prstatus(pid, r).to_bytes());
    let fp = FpRegSet {
        fpc: r.fpc,
        fprs: r.fprs,
    };
    push_note(buf, "CORE", NT_FPREGSET, &fp.to_bytes());
    push_note(buf, "LINUX", NT_S390_TIMER, &Timer { timer: r.timer }.to_bytes());
    push_note(buf, "LINUX", NT_S390_TODCMP, &TodCmp { todcmp: r.todcmp }.to_bytes());
    push_note(
        buf,
        "LINUX",
        NT_S390_TODPREG,
        &TodPreg { todpreg: r.todpreg }.to_bytes(),
    );
    push_note(buf, "LINUX", NT_S390_CTRS, &Ctrs { ctrs: r.ctrs }.to_bytes());
    push_note(buf, "LINUX", NT_S390_PREFIX, &Prefix { prefix: r.prefix }.to_bytes());
    push_note(
        buf,
        "LINUX",
        NT_S390_VXRS_LOW,
        &VxrsLow { vxrs_low: r.vxrs_low }.to_bytes(),
    );
    push_note(
        buf,
        "LINUX",
        NT_S390_VXRS_HIGH,
        &VxrsHigh { vxrs_high: r.vxrs_high }.to_bytes(),
    );
    push_note(buf, "LINUX", NT_S390_GS_CB, &GsCb { gs_cb: r.gs_cb }.to_bytes());
}

/// The descriptor size a register note of this type needs, or `None` for note types that
/// carry no register state.
pub fn register_note_size(n_type: u32) -> Option<usize> {
    Some(match n_type {
        NT_PRSTATUS => PrStatus::SIZE,
        NT_FPREGSET => FpRegSet::SIZE,
        NT_S390_TIMER => Timer::SIZE,
        NT_S390_TODCMP => TodCmp::SIZE,
        NT_S390_TODPREG => TodPreg::SIZE,
        NT_S390_CTRS => Ctrs::SIZE,
        NT_S390_PREFIX => Prefix::SIZE,
        NT_S390_VXRS_LOW => VxrsLow::SIZE,
        NT_S390_VXRS_HIGH => VxrsHigh::SIZE,
        NT_S390_GS_CB => GsCb::SIZE,
        _ => return None,
    })
}

/// Applies one register note (other than PRSTATUS) to `r`. Returns `false` for note types
/// that carry no register state or descriptors shorter than the structure (the caller
/// checks sizes first with [`register_note_size`]).
pub fn apply_register_note(r: &mut CpuRegisters, n_type: u32, desc: &[u8]) -> bool {
    match n_type {
        NT_FPREGSET => FpRegSet::read_from(desc).map(|f| {
            r.fpc = f.fpc;
            r.fprs = f.fprs;
        }),
        NT_S390_TIMER => Timer::read_from(desc).map(|t| r.timer = t.timer),
        NT_S390_TODCMP => TodCmp::read_from(desc).map(|t| r.todcmp = t.todcmp),
        NT_S390_TODPREG => TodPreg::read_from(desc).map(|t| r.todpreg = t.todpreg),
        NT_S390_CTRS => Ctrs::read_from(desc).map(|c| r.ctrs = c.ctrs),
        NT_S390_PREFIX => Prefix::read_from(desc).map(|p| r.prefix = p.prefix),
        NT_S390_VXRS_LOW => VxrsLow::read_from(desc).map(|v| r.vxrs_low = v.vxrs_low),
        NT_S390_VXRS_HIGH => VxrsHigh::read_from(desc).map(|v| r.vxrs_high = v.vxrs_high),
        NT_S390_GS_CB => GsCb::read_from(desc).map(|g| r.gs_cb = g.gs_cb),
        _ => None,
    }
    .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CpuRegisters {
        CpuRegisters {
            gprs: std::array::from_fn(|i| 0x1000 + i as u64),
            psw: [0x0705_0000_8000_0000, 0x1234],
            prefix: 0x7000,
            fpc: 0x0800_0000,
            todpreg: 0xabcd,
            timer: 11,
            todcmp: 12,
            acrs: std::array::from_fn(|i| i as u32 * 3),
            ctrs: std::array::from_fn(|i| 0xc0 + i as u64),
            fprs: std::array::from_fn(|i| 0xf0 + i as u64),
            vxrs_low: std::array::from_fn(|i| 0x10 + i as u64),
            vxrs_high: std::array::from_fn(|i| [i as u8; 16]),
            gs_cb: [0, 1, 2, 3],
            has_osii: false,
        }
    }

    #[test]
    fn prstatus_offsets_match_the_kernel() {
        let mut r = sample();
        r.gprs[15] = 0xdead_beef;
        r.acrs[1] = 7;
        let d = prstatus(3, &r).to_bytes();
        assert_eq!(&d[32..36], &3u32.to_be_bytes());
        assert_eq!(&d[112..120], &0x0705_0000_8000_0000u64.to_be_bytes());
        assert_eq!(&d[120..128], &0x1234u64.to_be_bytes());
        assert_eq!(&d[248..256], &0xdead_beefu64.to_be_bytes());
        assert_eq!(&d[260..264], &7u32.to_be_bytes());
    }

    #[test]
    fn prpsinfo_says_running_vmlinux() {
        let d = prpsinfo().to_bytes();
        assert_eq!(d[1], b'R');
        assert_eq!(&d[40..48], b"vmlinux\0");
    }

    #[test]
    fn cpu_notes_are_1240_bytes_in_kernel_order() {
        let mut buf = Vec::new();
        push_cpu_notes(&mut buf, 1, &sample());
        assert_eq!(buf.len(), NOTE_BYTES_PER_CPU);
        assert_eq!(NOTE_BYTES_PER_CPU, 1240);
        let mut pos = 0;
        for ty in CPU_NOTE_TYPES {
            let h = crate::layout::elf::NoteHeader::read_from(&buf[pos..]).unwrap();
            assert_eq!(h.n_type, ty);
            assert_eq!(Some(h.n_descsz as usize), register_note_size(ty));
            pos += crate::layout::elf::note_size(if h.n_namesz == 5 { "CORE" } else { "LINUX" }, h.n_descsz as usize);
        }
        assert_eq!(pos, buf.len());
    }

    #[test]
    fn register_notes_round_trip() {
        let want = sample();
        let mut got = CpuRegisters::default();
        let notes: [(u32, Vec<u8>); 9] = [
            (
                NT_FPREGSET,
                FpRegSet {
                    fpc: want.fpc,
                    fprs: want.fprs,
                }
                .to_bytes()
                .to_vec(),
            ),
            (NT_S390_TIMER, Timer { timer: want.timer }.to_bytes().to_vec()),
            (NT_S390_TODCMP, TodCmp { todcmp: want.todcmp }.to_bytes().to_vec()),
            (NT_S390_TODPREG, TodPreg { todpreg: want.todpreg }.to_bytes().to_vec()),
            (NT_S390_CTRS, Ctrs { ctrs: want.ctrs }.to_bytes().to_vec()),
            (NT_S390_PREFIX, Prefix { prefix: want.prefix }.to_bytes().to_vec()),
            (
                NT_S390_VXRS_LOW,
                VxrsLow {
                    vxrs_low: want.vxrs_low,
                }
                .to_bytes()
                .to_vec(),
            ),
            (
                NT_S390_VXRS_HIGH,
                VxrsHigh {
                    vxrs_high: want.vxrs_high,
                }
                .to_bytes()
                .to_vec(),
            ),
            (NT_S390_GS_CB, GsCb { gs_cb: want.gs_cb }.to_bytes().to_vec()),
        ];
        for (ty, d) in &notes {
            assert!(apply_register_note(&mut got, *ty, d));
        }
        let p = PrStatus::read_from(&prstatus(1, &want).to_bytes()).unwrap();
        (got.psw, got.gprs, got.acrs) = (p.psw, p.gprs, p.acrs);
        assert_eq!(got, want);
        assert!(!apply_register_note(&mut got, NT_S390_CTRS, &[0; 127]));
        assert!(!apply_register_note(&mut got, 0x999, &[0; 8]));
    }
}
