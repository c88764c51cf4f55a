//! CPU state: the encrypted NT_S390_PV_CPU_DATA note (v1) and the plain register set.

use crate::bytes::{be16, be32, be64, copy_array};
use crate::consts::{CPU_CONFIDENTIAL_SIZE, CPU_DUMP_MAX_SIZE, CPU_DUMP_V1_SIZE};
use crate::error::{FormatError, Result};

/// A zero-copy view of one encrypted CPU dump v1 (the first 1568 bytes of the note).
#[derive(Debug, Clone, Copy)]
pub struct CpuDumpV1<'a> {
    bytes: &'a [u8; CPU_DUMP_V1_SIZE],
    /// File offset of the note descriptor.
    pub offset: u64,
}

impl<'a> CpuDumpV1<'a> {
    pub const AAD: std::ops::Range<usize> = 0..32;
    pub const CIPHERTEXT: std::ops::Range<usize> = 32..1552;
    pub const TAG: std::ops::Range<usize> = 1552..1568;

    /// Checks size and version of a note descriptor at file offset `offset`, for CPU `cpu`.
    pub fn parse(desc: &'a [u8], offset: u64, cpu: usize) -> Result<Self> {
        let what = || format!("NT_S390_PV_CPU_DATA note of CPU {cpu}");
        let size = desc.len() as u64;
        if size < CPU_DUMP_V1_SIZE as u64 || size > CPU_DUMP_MAX_SIZE {
            let hint = if desc.iter().all(|&b| b == 0) {
                " and all zero: QEMU could not get the CPU state from the Ultravisor (was dumping allowed?)"
            } else {
                ""
            };
            return Err(FormatError::invalid(
                what(),
                offset,
                format!("n_descsz is {size}, expected {CPU_DUMP_V1_SIZE}..={CPU_DUMP_MAX_SIZE}{hint}"),
            ));
        }
        let version = be32(desc, 0);
        if version != 1 {
            let hint = if desc.iter().all(|&b| b == 0) {
                " (the note is all zeros: QEMU could not get this CPU's state from the Ultravisor)"
            } else {
                "; only version 1 is known"
            };
            return Err(FormatError::invalid(
                what(),
                offset,
                format!("version is {version}{hint}"),
            ));
        }
        let bytes = desc
            .get(..CPU_DUMP_V1_SIZE)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| FormatError::invalid(what(), offset, "too short"))?;
        Ok(CpuDumpV1 { bytes, offset })
    }

    pub fn bytes(&self) -> &'a [u8; CPU_DUMP_V1_SIZE] {
        self.bytes
    }
    pub fn iv(&self) -> [u8; 12] {
        copy_array(self.bytes, 8)
    }
    pub fn aad(&self) -> &'a [u8] {
        &self.bytes[Self::AAD]
    }
    pub fn ciphertext(&self) -> &'a [u8] {
        &self.bytes[Self::CIPHERTEXT]
    }
    pub fn tag(&self) -> [u8; 16] {
        copy_array(self.bytes, Self::TAG.start)
    }
}

/// `dump_flags` bit: the CPU state may contain partial instruction results.
pub const DUMP_FLAG_HAS_OSII: u16 = 0x8000;

/// The architected register set of one s390x CPU, as the guest had it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuRegisters {
    pub gprs: [u64; 16],
    /// PSW mask and address.
    pub psw: [u64; 2],
    pub prefix: u32,
    pub fpc: u32,
    pub todpreg: u32,
    pub timer: u64,
    pub todcmp: u64,
    pub acrs: [u32; 16],
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

// Offsets inside the 1520-byte confidential area (formats.md B.3).
const O_GPRS: usize = 0;
const O_PSW: usize = 128;
const O_PREFIX: usize = 152;
const O_FPC: usize = 156;
const O_TODPREG: usize = 164;
const O_TIMER: usize = 168;
const O_TODCMP: usize = 176;
const O_ACRS: usize = 192;
const O_CTRS: usize = 256;
const O_VX_LOW: usize = 384;
const O_VX_HIGH: usize = 640;
const O_GS: usize = 1408;
const O_FLAGS: usize = 1504;

impl CpuRegisters {
    /// Interprets a decrypted confidential area.
    pub fn from_confidential(area: &[u8; CPU_CONFIDENTIAL_SIZE]) -> Self {
        let mut r = CpuRegisters::default();
        for i in 0..16 {
            r.gprs[i] = be64(area, O_GPRS + 8 * i);
            r.acrs[i] = be32(area, O_ACRS + 4 * i);
            r.ctrs[i] = be64(area, O_CTRS + 8 * i);
            r.fprs[i] = be64(area, O_VX_LOW + 16 * i);
            r.vxrs_low[i] = be64(area, O_VX_LOW + 16 * i + 8);
            r.vxrs_high[i] = copy_array(area, O_VX_HIGH + 16 * i);
        }
        r.psw = [be64(area, O_PSW), be64(area, O_PSW + 8)];
        r.prefix = be32(area, O_PREFIX);
        r.fpc = be32(area, O_FPC);
        r.todpreg = be32(area, O_TODPREG);
        r.timer = be64(area, O_TIMER);
        r.todcmp = be64(area, O_TODCMP);
        // The GS block in the note is {0, gsd, gssm, gs_epl_a}: the 8 bytes at 1408 are zero.
        r.gs_cb = [0, be64(area, O_GS + 8), be64(area, O_GS + 16), be64(area, O_GS + 24)];
        r.has_osii = be16(area, O_FLAGS) & DUMP_FLAG_HAS_OSII != 0;
        r
    }

    /// Builds the confidential area for these registers (reserved fields zero); the
    /// inverse of [`CpuRegisters::from_confidential`] apart from `gs_cb[0]`.
    pub fn to_confidential(&self) -> [u8; CPU_CONFIDENTIAL_SIZE] {
        let mut a = [0u8; CPU_CONFIDENTIAL_SIZE];
        let mut put = |off: usize, b: &[u8]| a[off..off + b.len()].copy_from_slice(b);
        for i in 0..16 {
            put(O_GPRS + 8 * i, &self.gprs[i].to_be_bytes());
            put(O_ACRS + 4 * i, &self.acrs[i].to_be_bytes());
            put(O_CTRS + 8 * i, &self.ctrs[i].to_be_bytes());
            put(O_VX_LOW + 16 * i, &self.fprs[i].to_be_bytes());
            put(O_VX_LOW + 16 * i + 8, &self.vxrs_low[i].to_be_bytes());
            put(O_VX_HIGH + 16 * i, &self.vxrs_high[i]);
        }
        put(O_PSW, &self.psw[0].to_be_bytes());
        put(O_PSW + 8, &self.psw[1].to_be_bytes());
        put(O_PREFIX, &self.prefix.to_be_bytes());
        put(O_FPC, &self.fpc.to_be_bytes());
        put(O_TODPREG, &self.todpreg.to_be_bytes());
        put(O_TIMER, &self.timer.to_be_bytes());
        put(O_TODCMP, &self.todcmp.to_be_bytes());
        for k in 1..4 {
            put(O_GS + 8 * k, &self.gs_cb[k].to_be_bytes());
        }
        if self.has_osii {
            put(O_FLAGS, &DUMP_FLAG_HAS_OSII.to_be_bytes());
        }
        a
    }
}
