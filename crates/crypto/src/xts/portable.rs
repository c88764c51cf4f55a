//! The portable XTS backend: the `aes` crate's batch API, no `unsafe`.
//!
//! The 256 tweaks of a page are computed first (a `u128` α-doubling chain), XORed in, then
//! one `decrypt_blocks`/`encrypt_blocks` call runs the whole page through `aes`, then the
//! tweaks are XORed again. `aes` 0.9 picks its own hardware backend at run time: AES-NI
//! (8 blocks per step) on x86_64, ARMv8 Cryptography Extensions on aarch64 when the CPU has
//! them (`cpufeatures` "aes" check), and a constant-time bitsliced software AES elsewhere.
//! On x86_64 the intrinsics backends in `x86.rs` are faster; this one stays the reference
//! and the fallback. See docs/decisions/xts.md and docs/decisions/xts-intrinsics.md.

use aes::Aes256;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

use super::PAGE;

type Block = Array<u8, aes::cipher::consts::U16>;

/// Both AES-256 key schedules of an XTS key (they zeroize themselves on drop: `aes` is built
/// with its "zeroize" feature).
#[derive(Clone)]
pub(super) struct Portable {
    data: Aes256,
    tweak: Aes256,
}

/// Multiplies the XTS tweak by α in GF(2^128) (IEEE 1619 little-endian convention).
#[inline(always)]
pub(super) fn mul_alpha(t: u128) -> u128 {
    // Broadcast the top bit (arithmetic shift) instead of multiplying: no 128-bit multiply,
    // no branch, constant time.
    let reduce = ((t as i128) >> 127) as u128 & 0x87;
    (t << 1) ^ reduce
}

impl Portable {
    /// `k1` encrypts data, `k2` encrypts the tweak.
    pub(super) fn new(k1: &[u8; 32], k2: &[u8; 32]) -> Self {
        Portable {
            data: Aes256::new(k1.into()),
            tweak: Aes256::new(k2.into()),
        }
    }

    /// The 256 per-block tweaks of a page, as bytes (T_j = E_k2(tweak) · α^j).
    fn tweaks(&self, tweak: [u8; 16], out: &mut [u8; PAGE]) {
        let mut t = Block::from(tweak);
        self.tweak.encrypt_block(&mut t);
        let mut cur = u128::from_le_bytes(t.into());
        let (slots, _) = out.as_chunks_mut::<16>();
        for slot in slots {
            *slot = cur.to_le_bytes();
            cur = mul_alpha(cur);
        }
    }

    /// `dst ^= tweaks`, a plain byte loop over fixed-size arrays that LLVM vectorises.
    #[inline(always)]
    fn xor_tweaks(dst: &mut [u8; PAGE], tweaks: &[u8; PAGE]) {
        for (d, t) in dst.iter_mut().zip(tweaks) {
            *d ^= *t;
        }
    }

    fn blocks(page: &mut [u8; PAGE]) -> &mut [Block] {
        let (blocks, _) = Block::slice_as_chunks_mut(page);
        blocks
    }

    /// Decrypts one page in place.
    pub(super) fn decrypt(&self, tweak: [u8; 16], page: &mut [u8; PAGE]) {
        let mut tweaks = [0u8; PAGE];
        self.tweaks(tweak, &mut tweaks);
        Self::xor_tweaks(page, &tweaks);
        self.data.decrypt_blocks(Self::blocks(page));
        Self::xor_tweaks(page, &tweaks);
    }

    /// Decrypts `src` into `dst`; the copy is fused with the first tweak XOR.
    pub(super) fn decrypt_from(&self, tweak: [u8; 16], src: &[u8; PAGE], dst: &mut [u8; PAGE]) {
        let mut tweaks = [0u8; PAGE];
        self.tweaks(tweak, &mut tweaks);
        for ((d, s), t) in dst.iter_mut().zip(src).zip(&tweaks) {
            *d = *s ^ *t;
        }
        self.data.decrypt_blocks(Self::blocks(dst));
        Self::xor_tweaks(dst, &tweaks);
    }

    /// Encrypts one page in place.
    pub(super) fn encrypt(&self, tweak: [u8; 16], page: &mut [u8; PAGE]) {
        let mut tweaks = [0u8; PAGE];
        self.tweaks(tweak, &mut tweaks);
        Self::xor_tweaks(page, &tweaks);
        self.data.encrypt_blocks(Self::blocks(page));
        Self::xor_tweaks(page, &tweaks);
    }
}
