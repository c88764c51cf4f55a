//! CPU state: the encrypted NT_S390_PV_CPU_DATA note (v1) and the plain register set.

use crate::consts::{CPU_DUMP_MAX_SIZE, CPU_DUMP_V1_SIZE};
use crate::error::{FormatError, Problem, Result, Structure};
use crate::layout::pv::{CPU_DUMP_AAD, CPU_DUMP_CIPHERTEXT, CpuDumpV1, CpuStateV1, DUMP_FLAG_HAS_OSII};

/// A validated CPU dump v1 (the first 1568 bytes of an NT_S390_PV_CPU_DATA descriptor).
#[derive(Debug, Clone, Copy)]
pub struct CpuDump<'a> {
    bytes: &'a [u8; CPU_DUMP_V1_SIZE],
    /// The decoded structure.
    pub fields: CpuDumpV1,
    /// File offset of the note descriptor.
    pub offset: u64,
}

impl<'a> CpuDump<'a> {
    /// Checks size and version of a note descriptor at file offset `offset`, for CPU `cpu`.
    pub fn parse(desc: &'a [u8], offset: u64, cpu: usize) -> Result<Self> {
        let bad = |problem| FormatError::invalid(Structure::CpuNote { cpu }, offset, problem);
        let size = desc.len() as u64;
        let all_zero = || desc.iter().all(|&b| b == 0);
        let bytes = match desc.get(..CPU_DUMP_V1_SIZE) {
            Some(b) if size <= CPU_DUMP_MAX_SIZE => <&[u8; CPU_DUMP_V1_SIZE]>::try_from(b).ok(),
            _ => None,
        };
        let Some(bytes) = bytes else {
            return Err(bad(Problem::CpuNoteSize {
                size,
                min: CPU_DUMP_V1_SIZE as u64,
                max: CPU_DUMP_MAX_SIZE,
                all_zero: all_zero(),
            }));
        };
        let fields = CpuDumpV1::read(bytes);
        if fields.version != 1 {
            return Err(bad(Problem::UnknownVersion {
                found: fields.version,
                hint: if all_zero() {
                    " (the note is all zeros: QEMU could not get this CPU's state from the Ultravisor)"
                } else {
                    "; only version 1 is known"
                },
            }));
        }
        Ok(CpuDump { bytes, fields, offset })
    }

    /// The raw 1568 bytes.
    pub fn bytes(&self) -> &'a [u8; CPU_DUMP_V1_SIZE] {
        self.bytes
    }

    /// The authenticated, unencrypted part (GCM additional data).
    pub fn aad(&self) -> &'a [u8] {
        &self.bytes[CPU_DUMP_AAD]
    }

    /// The encrypted CPU state.
    pub fn ciphertext(&self) -> &'a [u8] {
        &self.bytes[CPU_DUMP_CIPHERTEXT]
    }
}

/// The architected register set of one s390x CPU, as the guest had it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuRegisters {
    /// General registers r0-r15.
    pub gprs: [u64; 16],
    /// PSW mask and address.
    pub psw: [u64; 2],
    /// Prefix register.
    pub prefix: u32,
    /// Floating-point control register.
    pub fpc: u32,
    /// TOD programmable register.
    pub todpreg: u32,
    /// CPU timer.
    pub timer: u64,
    /// Clock comparator.
    pub todcmp: u64,
    /// Access registers a0-a15.
    pub acrs: [u32; 16],
    /// Control registers c0-c15.
    pub ctrs: [u64; 16],
    /// Floating-point registers = the first (leftmost) 8 bytes of V0..V15.
    pub fprs: [u64; 16],
    /// The second 8 bytes of V0..V15.
    pub vxrs_low: [u64; 16],
    /// V16..V31, 16 bytes each.
    pub vxrs_high: [[u8; 16]; 16],
    /// Guarded-storage control block {reserved, gsd, gssm, gs_epl_a}.
    pub gs_cb: [u64; 4],
    /// The Ultravisor flagged partial instruction results (dump_flags 0x8000).
    pub has_osii: bool,
}

impl CpuRegisters {
    /// Interprets a decrypted CPU state. The reserved first word of the guarded-storage
    /// block is reported as zero, as zgetdump writes it.
    pub fn from_state(s: &CpuStateV1) -> Self {
        CpuRegisters {
            gprs: s.gprs,
            psw: s.psw,
            prefix: s.prefix,
            fpc: s.fpc,
            todpreg: s.todpreg,
            timer: s.timer,
            todcmp: s.todcmp,
            acrs: s.acrs,
            ctrs: s.ctrs,
            fprs: s.vxrs_0_15.map(|v| v[0]),
            vxrs_low: s.vxrs_0_15.map(|v| v[1]),
            vxrs_high: s.vxrs_16_31,
            gs_cb: [0, s.gs_cb[0], s.gs_cb[1], s.gs_cb[2]],
            has_osii: s.dump_flags & DUMP_FLAG_HAS_OSII != 0,
        }
    }

    /// The CPU state for these registers (reserved fields zero): the inverse of
    /// [`CpuRegisters::from_state`] apart from `gs_cb[0]`.
    pub fn to_state(&self) -> CpuStateV1 {
        CpuStateV1 {
            gprs: self.gprs,
            psw: self.psw,
            prefix: self.prefix,
            fpc: self.fpc,
            todpreg: self.todpreg,
            timer: self.timer,
            todcmp: self.todcmp,
            acrs: self.acrs,
            ctrs: self.ctrs,
            vxrs_0_15: std::array::from_fn(|i| [self.fprs[i], self.vxrs_low[i]]),
            vxrs_16_31: self.vxrs_high,
            gs_reserved: 0,
            gs_cb: [self.gs_cb[1], self.gs_cb[2], self.gs_cb[3]],
            dump_flags: if self.has_osii { DUMP_FLAG_HAS_OSII } else { 0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(version: u32, len: usize) -> Vec<u8> {
        let mut d = CpuDumpV1 {
            version,
            length: 1568,
            ..CpuDumpV1::default()
        }
        .to_bytes()
        .to_vec();
        d.resize(len, 0);
        d
    }

    fn problem(desc: &[u8]) -> Problem {
        match CpuDump::parse(desc, 0x200, 3).unwrap_err() {
            FormatError::Invalid {
                structure: Structure::CpuNote { cpu: 3 },
                offset: 0x200,
                problem,
            } => problem,
            e => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn accepts_v1_of_1568_to_4096_bytes() {
        for len in [1568, 2048, 4096] {
            let d = note(1, len);
            let c = CpuDump::parse(&d, 0x200, 0).unwrap();
            assert_eq!(c.fields.length, 1568);
            assert_eq!(c.aad().len(), 32);
            assert_eq!(c.ciphertext().len(), 1520);
        }
    }

    #[test]
    fn rejects_sizes_and_versions() {
        assert!(matches!(
            problem(&note(1, 1024)),
            Problem::CpuNoteSize {
                size: 1024,
                all_zero: false,
                ..
            }
        ));
        assert!(matches!(
            problem(&vec![0; 4097]),
            Problem::CpuNoteSize {
                size: 4097,
                all_zero: true,
                ..
            }
        ));
        assert!(matches!(
            problem(&note(2, 1568)),
            Problem::UnknownVersion { found: 2, .. }
        ));
        let zero = problem(&vec![0u8; 1568]);
        assert!(zero.to_string().contains("all zeros"), "{zero}");
        assert!(
            problem(&note(1, 1567))
                .to_string()
                .contains("n_descsz is 1567, expected 1568..=4096")
        );
    }

    #[test]
    fn state_round_trip_keeps_every_register() {
        let r = CpuRegisters {
            gprs: std::array::from_fn(|i| i as u64 + 1),
            psw: [7, 8],
            prefix: 0x2000,
            fpc: 9,
            todpreg: 10,
            timer: 11,
            todcmp: 12,
            acrs: std::array::from_fn(|i| i as u32 + 20),
            ctrs: std::array::from_fn(|i| i as u64 + 40),
            fprs: std::array::from_fn(|i| i as u64 + 60),
            vxrs_low: std::array::from_fn(|i| i as u64 + 80),
            vxrs_high: std::array::from_fn(|i| [i as u8 + 100; 16]),
            gs_cb: [0, 1, 2, 3],
            has_osii: true,
        };
        let state = r.to_state();
        assert_eq!(CpuRegisters::from_state(&CpuStateV1::read(&state.to_bytes())), r);
        // The reserved GS word is not carried.
        let mut s = state;
        s.gs_reserved = 0xffff;
        assert_eq!(CpuRegisters::from_state(&s).gs_cb[0], 0);
    }
}
