//! The Ultravisor's dump structures (formats.md B): completion data v1 in section `pv_compl`,
//! the CPU dump v1 in each `NT_S390_PV_CPU_DATA` note, and the CPU state inside it once
//! decrypted. Both outer structures are AES-256-GCM sealed: the bytes before `ciphertext`
//! are the additional authenticated data.

use std::ops::Range;

crate::layout! {
    /// Completion data version 1 (288 bytes at the start of `pv_compl`).
    pub struct CompletionDataV1(288) {
        /// Format version (1).
        pub version: u32 = 0,
        /// Length of the structure (288).
        pub length: u32 = 4,
        /// HKDF salt for the dump key.
        pub seed: [u8; 64] = 16,
        /// GCM IV.
        pub iv: [u8; 12] = 80,
        /// Encrypted: tweak nonce, XTS key, reserved ([`COMPLETION_NONCE`],
        /// [`COMPLETION_XTS_KEY`] inside the plaintext).
        pub ciphertext: [u8; 176] = 96,
        /// GCM tag.
        pub tag: [u8; 16] = 272,
    }
}

/// Bytes of completion data that are authenticated but not encrypted.
pub const COMPLETION_AAD: Range<usize> = 0..96;
/// Bytes of completion data that are encrypted.
pub const COMPLETION_CIPHERTEXT: Range<usize> = 96..272;
/// The tweak nonce inside the decrypted completion data.
pub const COMPLETION_NONCE: Range<usize> = 0..16;
/// The 64-byte XTS key (data key ‖ tweak key) inside the decrypted completion data.
pub const COMPLETION_XTS_KEY: Range<usize> = 16..80;

crate::layout! {
    /// CPU dump version 1 (the first 1568 bytes of an `NT_S390_PV_CPU_DATA` descriptor).
    pub struct CpuDumpV1(1568) {
        /// Format version (1).
        pub version: u32 = 0,
        /// Length of the structure (1568).
        pub length: u32 = 4,
        /// GCM IV.
        pub iv: [u8; 12] = 8,
        /// Encrypted [`CpuStateV1`].
        pub ciphertext: [u8; 1520] = 32,
        /// GCM tag.
        pub tag: [u8; 16] = 1552,
    }
}

/// Bytes of a CPU dump that are authenticated but not encrypted.
pub const CPU_DUMP_AAD: Range<usize> = 0..32;
/// Bytes of a CPU dump that are encrypted.
pub const CPU_DUMP_CIPHERTEXT: Range<usize> = 32..1552;

crate::layout! {
    /// The decrypted CPU state of a CPU dump v1 (1520 bytes; formats.md B.3).
    pub struct CpuStateV1(1520) {
        /// General registers r0-r15.
        pub gprs: [u64; 16] = 0,
        /// PSW mask and address.
        pub psw: [u64; 2] = 128,
        /// Prefix register.
        pub prefix: u32 = 152,
        /// Floating-point control register.
        pub fpc: u32 = 156,
        /// TOD programmable register.
        pub todpreg: u32 = 164,
        /// CPU timer.
        pub timer: u64 = 168,
        /// Clock comparator.
        pub todcmp: u64 = 176,
        /// Access registers a0-a15.
        pub acrs: [u32; 16] = 192,
        /// Control registers c0-c15.
        pub ctrs: [u64; 16] = 256,
        /// v0-v15 as (left half = f0-f15, right half) pairs.
        pub vxrs_0_15: [[u64; 2]; 16] = 384,
        /// v16-v31.
        pub vxrs_16_31: [[u8; 16]; 16] = 640,
        /// Reserved first word of the guarded-storage block (written as zero in notes).
        pub gs_reserved: u64 = 1408,
        /// Guarded-storage control block {gsd, gssm, gs_epl_a}.
        pub gs_cb: [u64; 3] = 1416,
        /// Dump flags (0x8000: partial instruction results, "has_osii").
        pub dump_flags: u16 = 1504,
    }
}

/// `dump_flags` bit: the CPU state may contain partial instruction results.
pub const DUMP_FLAG_HAS_OSII: u16 = 0x8000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_data_ranges_match_the_fields() {
        let c = CompletionDataV1 {
            version: 1,
            length: 288,
            seed: [0x11; 64],
            iv: [0x22; 12],
            ciphertext: [0x33; 176],
            tag: [0x44; 16],
        };
        let b = c.to_bytes();
        assert_eq!(&b[..8], &[0, 0, 0, 1, 0, 0, 1, 0x20]);
        assert!(b[16..80].iter().all(|&x| x == 0x11));
        assert!(b[80..92].iter().all(|&x| x == 0x22));
        assert!(b[COMPLETION_CIPHERTEXT].iter().all(|&x| x == 0x33));
        assert!(b[272..].iter().all(|&x| x == 0x44));
        assert_eq!(COMPLETION_AAD.end, COMPLETION_CIPHERTEXT.start);
        assert_eq!(COMPLETION_CIPHERTEXT.len(), 176);
    }

    #[test]
    fn cpu_dump_ranges_match_the_fields() {
        assert_eq!(CPU_DUMP_CIPHERTEXT.len(), CpuStateV1::SIZE);
        let d = CpuDumpV1 {
            version: 1,
            length: 1568,
            iv: [7; 12],
            ciphertext: [9; 1520],
            tag: [5; 16],
        }
        .to_bytes();
        assert!(d[CPU_DUMP_CIPHERTEXT].iter().all(|&x| x == 9));
        assert!(d[1552..].iter().all(|&x| x == 5));
        assert_eq!(&d[CPU_DUMP_AAD][8..20], &[7; 12]);
    }

    #[test]
    fn cpu_state_offsets() {
        let s = CpuStateV1 {
            psw: [1, 2],
            prefix: 3,
            vxrs_0_15: std::array::from_fn(|i| [i as u64, 100 + i as u64]),
            gs_cb: [4, 5, 6],
            dump_flags: DUMP_FLAG_HAS_OSII,
            ..CpuStateV1::default()
        };
        let b = s.to_bytes();
        assert_eq!(&b[128..144], &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(&b[152..156], &3u32.to_be_bytes());
        assert_eq!(&b[384 + 16 * 5 + 8..384 + 16 * 6], &105u64.to_be_bytes());
        assert_eq!(&b[1416..1424], &4u64.to_be_bytes());
        assert_eq!(&b[1504..1506], &[0x80, 0]);
        assert_eq!(CpuStateV1::read(&b), s);
    }
}
