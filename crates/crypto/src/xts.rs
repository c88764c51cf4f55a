//! AES-256-XTS over 4 KiB pages, written on the `aes` crate's batch API.
//!
//! Why not `xts-mode`: it runs the block cipher one block per call, which stops the AES
//! backend from pipelining (about 1 GB/s); here the 256 tweaks of a page are computed first,
//! then a single `decrypt_blocks` call processes the whole page, which lets `aes` use
//! AES-NI/VAES on many blocks at once (4-5 GB/s per core). See docs/decisions/xts.md.
//! `xts-mode` stays as an independent cross-check in the tests.

use aes::Aes256;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

use crate::keys::XtsKey;

/// Bytes per XTS data unit (one guest page).
pub const PAGE: usize = 4096;

type Block = Array<u8, aes::cipher::consts::U16>;

/// The page cipher of one dump: XTS key pair plus the tweak nonce.
#[derive(Clone)]
pub struct PageCipher {
    data: Aes256,
    tweak: Aes256,
    nonce: [u8; 16],
}

impl std::fmt::Debug for PageCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageCipher(<secret>)")
    }
}

impl Drop for PageCipher {
    fn drop(&mut self) {
        // The AES key schedules zeroize themselves (aes "zeroize" feature).
        self.nonce.zeroize();
    }
}

/// Multiplies the XTS tweak by α in GF(2^128) (IEEE 1619 little-endian convention).
#[inline(always)]
fn mul_alpha(t: u128) -> u128 {
    // Broadcast the top bit (arithmetic shift) instead of multiplying: no 128-bit multiply,
    // no branch, constant time.
    let reduce = ((t as i128) >> 127) as u128 & 0x87;
    (t << 1) ^ reduce
}

impl PageCipher {
    /// Key bytes 0..32 encrypt data, 32..64 encrypt the tweak.
    pub fn new(key: &XtsKey, nonce: [u8; 16]) -> Self {
        let k = key.expose();
        let mut k1 = [0u8; 32];
        let mut k2 = [0u8; 32];
        k1.copy_from_slice(&k[..32]);
        k2.copy_from_slice(&k[32..]);
        let c = PageCipher {
            data: Aes256::new(&k1.into()),
            tweak: Aes256::new(&k2.into()),
            nonce,
        };
        k1.zeroize();
        k2.zeroize();
        c
    }

    /// The XTS tweak of a page: component OR nonce, bytewise.
    pub fn tweak_for(&self, component: &[u8; 16]) -> [u8; 16] {
        std::array::from_fn(|i| component[i] | self.nonce[i])
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

    /// Decrypts one page in place with the tweak derived from its component.
    pub fn decrypt_page(&self, component: &[u8; 16], page: &mut [u8; PAGE]) {
        self.decrypt_page_with_tweak(self.tweak_for(component), page);
    }

    /// Decrypts one page in place with an explicit 16-byte XTS tweak.
    pub fn decrypt_page_with_tweak(&self, tweak: [u8; 16], page: &mut [u8; PAGE]) {
        let mut tweaks = [0u8; PAGE];
        self.tweaks(tweak, &mut tweaks);
        Self::xor_tweaks(page, &tweaks);
        self.data.decrypt_blocks(Self::blocks(page));
        Self::xor_tweaks(page, &tweaks);
    }

    /// Decrypts `src` into `dst`: the copy out of the (mapped) input is fused with the first
    /// tweak XOR, so each page is read once.
    pub fn decrypt_page_from(&self, component: &[u8; 16], src: &[u8; PAGE], dst: &mut [u8; PAGE]) {
        let mut tweaks = [0u8; PAGE];
        self.tweaks(self.tweak_for(component), &mut tweaks);
        for ((d, s), t) in dst.iter_mut().zip(src).zip(&tweaks) {
            *d = *s ^ *t;
        }
        self.data.decrypt_blocks(Self::blocks(dst));
        Self::xor_tweaks(dst, &tweaks);
    }

    /// Encrypts one page in place (the simulated Ultravisor's direction).
    pub fn encrypt_page(&self, component: &[u8; 16], page: &mut [u8; PAGE]) {
        let mut tweaks = [0u8; PAGE];
        self.tweaks(self.tweak_for(component), &mut tweaks);
        Self::xor_tweaks(page, &tweaks);
        self.data.encrypt_blocks(Self::blocks(page));
        Self::xor_tweaks(page, &tweaks);
    }
}
