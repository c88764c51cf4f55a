//! AES-256-XTS page kernels on x86_64 `core::arch` intrinsics, picked at run time:
//!
//! - [`Width::Ymm`]: VAES + VPCLMULQDQ + AVX2, two blocks per 256-bit register;
//! - [`Width::Xmm`]: AES-NI + PCLMULQDQ, one block per 128-bit register.
//!
//! Both run one fused loop per page: `N` registers of blocks in flight (enough independent
//! AES instructions to cover their latency), the tweak XOR folded into the first and last
//! round keys, and the tweaks of the next group computed in SIMD registers from those of
//! this one (one byte shift and one carry-less multiply per register), so no tweak array is
//! written to memory and the page is read and written exactly once.
//!
//! This module holds all of the crate's `unsafe` code: unaligned loads and stores through
//! pointers, and calls into `#[target_feature]` functions, which are only reachable through
//! an [`Engine`], and an `Engine` only exists when [`Engine::new`] saw the features on this
//! CPU.

use core::arch::x86_64::*;

use zeroize::Zeroize;

use super::PAGE;

/// Register width of a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Width {
    /// AES-NI, 128-bit registers.
    Xmm,
    /// VAES with AVX2, 256-bit registers.
    Ymm,
}

impl Width {
    /// Whether this CPU has every feature the kernel of this width uses.
    pub(super) fn available(self) -> bool {
        let aesni = is_x86_feature_detected!("aes") && is_x86_feature_detected!("pclmulqdq");
        match self {
            Width::Xmm => aesni,
            Width::Ymm => {
                aesni
                    && is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("vaes")
                    && is_x86_feature_detected!("vpclmulqdq")
            }
        }
    }
}

/// Registers of blocks in flight per step (8 blocks at 128 bits, 16 at 256 bits): with AES
/// instructions of latency 4 issuing 2 per cycle (Zen 3, Ice Lake and later), 8 independent
/// ones keep both units busy.
const N: usize = 8;

/// One AES round with `$key` over the `N` = 8 registers of `$x`, as one `asm!` statement:
/// `$op` is `aesdec` or `aesenc`; `xmm_reg` gives the 128-bit legacy-SSE form (runs on every
/// AES-NI CPU), `ymm_reg` the 256-bit VEX form of VAES.
///
/// Why asm and not the intrinsics: with 8 blocks, 8 tweaks and 15 round keys live, LLVM's
/// pre-RA scheduler regroups intrinsic rounds into chains of 2-5 blocks to lower register
/// pressure, which leaves the AES units idle behind the latency of each chain (measured: 5.8
/// vs 8.0 GB/s for the 256-bit kernel, 3.2 vs 4.3 GB/s for the 128-bit one). One statement
/// per round keeps all 8 in flight; everything else stays intrinsics.
macro_rules! round {
    ($x:ident, $key:expr, xmm_reg, $op:literal) => {
        round!(@emit $x, $key, xmm_reg,
            concat!($op, " {0}, {k}"), concat!($op, " {1}, {k}"), concat!($op, " {2}, {k}"),
            concat!($op, " {3}, {k}"), concat!($op, " {4}, {k}"), concat!($op, " {5}, {k}"),
            concat!($op, " {6}, {k}"), concat!($op, " {7}, {k}"))
    };
    ($x:ident, $key:expr, ymm_reg, $op:literal) => {
        round!(@emit $x, $key, ymm_reg,
            concat!("v", $op, " {0}, {0}, {k}"), concat!("v", $op, " {1}, {1}, {k}"),
            concat!("v", $op, " {2}, {2}, {k}"), concat!("v", $op, " {3}, {3}, {k}"),
            concat!("v", $op, " {4}, {4}, {k}"), concat!("v", $op, " {5}, {5}, {k}"),
            concat!("v", $op, " {6}, {6}, {k}"), concat!("v", $op, " {7}, {7}, {k}"))
    };
    (@emit $x:ident, $key:expr, $reg:ident, $($line:expr),+) => {{
        let [x0, x1, x2, x3, x4, x5, x6, x7] = &mut $x;
        // SAFETY: the instructions read and write only the listed registers (no memory, no
        // stack, no flags), and the enclosing kernel enables their features (AES-NI; VAES and
        // AVX for the 256-bit form).
        unsafe {
            core::arch::asm!(
                $($line),+,
                inout($reg) *x0, inout($reg) *x1, inout($reg) *x2, inout($reg) *x3,
                inout($reg) *x4, inout($reg) *x5, inout($reg) *x6, inout($reg) *x7,
                k = in($reg) $key,
                options(pure, nomem, nostack, preserves_flags),
            )
        }
    }};
}

/// The 15 round keys of one AES-256 key schedule; zeroized on drop.
#[derive(Clone)]
struct RoundKeys([__m128i; 15]);

impl Drop for RoundKeys {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The expanded keys of one XTS key pair, for one kernel width.
#[derive(Clone)]
pub(super) struct Engine {
    width: Width,
    /// Data key, encryption schedule.
    enc: RoundKeys,
    /// Data key, decryption schedule (equivalent inverse cipher: `aesimc` of the middle keys).
    dec: RoundKeys,
    /// Tweak key, encryption schedule.
    tweak: RoundKeys,
}

impl Engine {
    /// Expands `k1` (data) and `k2` (tweak) for `width`; `None` when this CPU lacks a feature
    /// that width needs.
    pub(super) fn new(k1: &[u8; 32], k2: &[u8; 32], width: Width) -> Option<Engine> {
        if !width.available() {
            return None;
        }
        // SAFETY: both widths need "aes", which `available` has just confirmed on this CPU.
        let (enc, tweak) = unsafe { (expand_key(k1), expand_key(k2)) };
        // SAFETY: as above.
        let dec = unsafe { decryption_keys(&enc) };
        Some(Engine { width, enc, dec, tweak })
    }

    /// The kernel width this engine runs.
    pub(super) fn width(&self) -> Width {
        self.width
    }

    /// Decrypts one page in place.
    pub(super) fn decrypt(&self, tweak: [u8; 16], page: &mut [u8; PAGE]) {
        let p = page.as_mut_ptr();
        // SAFETY: `p` is valid for PAGE bytes of reads and writes (a unique borrow of the
        // page); the kernel allows `src == dst`.
        unsafe { self.run::<true>(&self.dec, tweak, p, p) }
    }

    /// Decrypts `src` into `dst`.
    pub(super) fn decrypt_from(&self, tweak: [u8; 16], src: &[u8; PAGE], dst: &mut [u8; PAGE]) {
        // SAFETY: `src` is valid for PAGE bytes of reads, `dst` for PAGE bytes of writes, and
        // a shared and a unique borrow never overlap.
        unsafe { self.run::<true>(&self.dec, tweak, src.as_ptr(), dst.as_mut_ptr()) }
    }

    /// Encrypts one page in place.
    pub(super) fn encrypt(&self, tweak: [u8; 16], page: &mut [u8; PAGE]) {
        let p = page.as_mut_ptr();
        // SAFETY: as in `decrypt`.
        unsafe { self.run::<false>(&self.enc, tweak, p, p) }
    }

    /// Runs the kernel of this engine's width over one page.
    ///
    /// # Safety
    /// `src` must be valid for PAGE bytes of reads and `dst` for PAGE bytes of writes, and the
    /// two ranges must be identical or disjoint.
    unsafe fn run<const DEC: bool>(&self, keys: &RoundKeys, tweak: [u8; 16], src: *const u8, dst: *mut u8) {
        match self.width {
            // SAFETY: an Engine of this width exists only if `Width::available` saw every
            // feature the kernel enables; the pointer contract is this function's own.
            Width::Xmm => unsafe { page_xmm::<DEC>(keys, &self.tweak, tweak, src, dst) },
            // SAFETY: as above.
            Width::Ymm => unsafe { page_ymm::<DEC>(keys, &self.tweak, tweak, src, dst) },
        }
    }
}

/// The 16 bytes of `b` as a register.
#[inline(always)]
fn load128(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 readable bytes and `loadu` has no alignment requirement; SSE2 is part
    // of the x86_64 baseline.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// `a ^ a<<32 ^ a<<64 ^ a<<96`: the running XOR of the four words of `a`, used by the key
/// expansion (each schedule word is the XOR of the word 8 back and the previous one).
#[target_feature(enable = "sse2")]
#[inline]
fn prefix_xor(a: __m128i) -> __m128i {
    let a = _mm_xor_si128(a, _mm_bslli_si128::<4>(a));
    _mm_xor_si128(a, _mm_bslli_si128::<8>(a))
}

/// The AES-256 encryption key schedule of `key` (FIPS 197 §5.2, with `aeskeygenassist`
/// doing SubWord/RotWord/Rcon).
#[target_feature(enable = "aes")]
fn expand_key(key: &[u8; 32]) -> RoundKeys {
    let (lo, hi) = key.split_at(16);
    let mut rk = RoundKeys([_mm_setzero_si128(); 15]);
    let mut half = [0u8; 16];
    half.copy_from_slice(lo);
    rk.0[0] = load128(&half);
    half.copy_from_slice(hi);
    rk.0[1] = load128(&half);
    half.zeroize();
    // Key 2m from keys 2m-2 and 2m-1 (word 3 of key 2m-1 through SubWord(RotWord(.)) ^ Rcon),
    // key 2m+1 from keys 2m-1 and 2m (word 3 of key 2m through SubWord alone).
    rk.0[2] = even_key::<0x01>(rk.0[0], rk.0[1]);
    rk.0[3] = odd_key(rk.0[1], rk.0[2]);
    rk.0[4] = even_key::<0x02>(rk.0[2], rk.0[3]);
    rk.0[5] = odd_key(rk.0[3], rk.0[4]);
    rk.0[6] = even_key::<0x04>(rk.0[4], rk.0[5]);
    rk.0[7] = odd_key(rk.0[5], rk.0[6]);
    rk.0[8] = even_key::<0x08>(rk.0[6], rk.0[7]);
    rk.0[9] = odd_key(rk.0[7], rk.0[8]);
    rk.0[10] = even_key::<0x10>(rk.0[8], rk.0[9]);
    rk.0[11] = odd_key(rk.0[9], rk.0[10]);
    rk.0[12] = even_key::<0x20>(rk.0[10], rk.0[11]);
    rk.0[13] = odd_key(rk.0[11], rk.0[12]);
    rk.0[14] = even_key::<0x40>(rk.0[12], rk.0[13]);
    rk
}

/// An even-numbered AES-256 round key: the running XOR of the key two back, XORed with
/// SubWord(RotWord(word 3 of the previous key)) ^ Rcon (dword 3 of `aeskeygenassist`).
#[target_feature(enable = "aes")]
#[inline]
fn even_key<const RCON: i32>(two_back: __m128i, prev: __m128i) -> __m128i {
    let t = _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<RCON>(prev));
    _mm_xor_si128(prefix_xor(two_back), t)
}

/// An odd-numbered AES-256 round key: the running XOR of the key two back, XORed with
/// SubWord(word 3 of the previous key) (dword 2 of `aeskeygenassist`).
#[target_feature(enable = "aes")]
#[inline]
fn odd_key(two_back: __m128i, prev: __m128i) -> __m128i {
    let t = _mm_shuffle_epi32::<0xaa>(_mm_aeskeygenassist_si128::<0>(prev));
    _mm_xor_si128(prefix_xor(two_back), t)
}

/// The decryption schedule for `aesdec`: the encryption keys in reverse order, the middle
/// ones through InvMixColumns.
#[target_feature(enable = "aes")]
fn decryption_keys(enc: &RoundKeys) -> RoundKeys {
    let mut dec = RoundKeys([_mm_setzero_si128(); 15]);
    dec.0[0] = enc.0[14];
    for r in 1..14 {
        dec.0[r] = _mm_aesimc_si128(enc.0[14 - r]);
    }
    dec.0[14] = enc.0[0];
    dec
}

/// One AES-256 block encryption (the tweak key on the page tweak).
#[target_feature(enable = "aes")]
#[inline]
fn encrypt_block(k: &RoundKeys, b: __m128i) -> __m128i {
    let mut x = _mm_xor_si128(b, k.0[0]);
    for key in &k.0[1..14] {
        x = _mm_aesenc_si128(x, *key);
    }
    _mm_aesenclast_si128(x, k.0[14])
}

/// GF(2^128) reduction constant of XTS (x^128 = x^7 + x^2 + x + 1), in each 64-bit lane.
const POLY: i64 = 0x87;

/// `x · α^n` for `0 <= n < 64` (n at run time): shift the 128-bit value left by `n` bits and
/// fold the `n` bits shifted out back in as `top ⊗ 0x87` (carry-less; its degree stays
/// below 71, so the product needs no further reduction).
#[target_feature(enable = "pclmulqdq")]
#[inline]
fn mul_alpha_n_xmm(x: __m128i, n: i64) -> __m128i {
    let shifted = _mm_sll_epi64(x, _mm_cvtsi64_si128(n));
    let out = _mm_srl_epi64(x, _mm_cvtsi64_si128(64 - n)); // n = 0: a shift by 64 gives 0
    let carry = _mm_bslli_si128::<8>(out); // low lane's top bits into the high lane
    let top = _mm_bsrli_si128::<8>(out); // high lane's top bits: the overflow
    let reduce = _mm_clmulepi64_si128::<0x00>(top, _mm_cvtsi64_si128(POLY));
    _mm_xor_si128(_mm_xor_si128(shifted, carry), reduce)
}

/// `x · α^8`: a one-byte shift of the 128-bit value plus the reduction of the top byte.
#[target_feature(enable = "pclmulqdq")]
#[inline]
fn mul_alpha8_xmm(x: __m128i) -> __m128i {
    let top = _mm_bsrli_si128::<15>(x);
    let reduce = _mm_clmulepi64_si128::<0x00>(top, _mm_cvtsi64_si128(POLY));
    _mm_xor_si128(_mm_bslli_si128::<1>(x), reduce)
}

/// The XTS kernel at 128-bit width: `N` = 8 blocks per step, block `8s + i` of step `s` in
/// register `i`, whose tweak advances by α^8 per step.
///
/// # Safety
/// `src` must be valid for PAGE bytes of reads and `dst` for PAGE bytes of writes, the two
/// identical or disjoint; the CPU must have AES-NI and PCLMULQDQ.
#[target_feature(enable = "aes,pclmulqdq")]
unsafe fn page_xmm<const DEC: bool>(k: &RoundKeys, tk: &RoundKeys, tweak: [u8; 16], src: *const u8, dst: *mut u8) {
    let t0 = encrypt_block(tk, load128(&tweak));
    let mut t = [_mm_setzero_si128(); N];
    for (i, ti) in t.iter_mut().enumerate() {
        *ti = mul_alpha_n_xmm(t0, i as i64);
    }
    let mut x = [_mm_setzero_si128(); N];
    for step in 0..PAGE / (16 * N) {
        let base = step * 16 * N;
        for (i, (xi, ti)) in x.iter_mut().zip(&t).enumerate() {
            // SAFETY: base + 16 i + 16 <= PAGE, inside `src` (this function's contract).
            let v = unsafe { _mm_loadu_si128(src.add(base + 16 * i).cast()) };
            *xi = _mm_xor_si128(v, _mm_xor_si128(*ti, k.0[0]));
        }
        for key in &k.0[1..14] {
            if DEC {
                round!(x, *key, xmm_reg, "aesdec");
            } else {
                round!(x, *key, xmm_reg, "aesenc");
            }
        }
        for (i, (xi, ti)) in x.iter().zip(&t).enumerate() {
            // The last round ends with the round-key XOR, so XORing the tweak into that key
            // applies the output tweak for free.
            let last = _mm_xor_si128(k.0[14], *ti);
            let y = if DEC {
                _mm_aesdeclast_si128(*xi, last)
            } else {
                _mm_aesenclast_si128(*xi, last)
            };
            // SAFETY: as for the load; every block of the step is loaded before any is
            // stored, so `src == dst` is fine.
            unsafe { _mm_storeu_si128(dst.add(base + 16 * i).cast(), y) };
        }
        for ti in t.iter_mut() {
            *ti = mul_alpha8_xmm(*ti);
        }
    }
}

/// `x · α^n` in each 128-bit lane with per-lane `n` (64-bit counts `n_lo, n_lo, n_hi, n_hi`,
/// each below 64): the 256-bit form of [`mul_alpha_n_xmm`].
#[target_feature(enable = "avx2,vpclmulqdq")]
#[inline]
fn mul_alpha_n_ymm(x: __m256i, n: __m256i) -> __m256i {
    let shifted = _mm256_sllv_epi64(x, n);
    let out = _mm256_srlv_epi64(x, _mm256_sub_epi64(_mm256_set1_epi64x(64), n)); // 64: gives 0
    let carry = _mm256_bslli_epi128::<8>(out);
    let top = _mm256_bsrli_epi128::<8>(out);
    let reduce = _mm256_clmulepi64_epi128::<0x00>(top, _mm256_set1_epi64x(POLY));
    _mm256_xor_si256(_mm256_xor_si256(shifted, carry), reduce)
}

/// `x · α^16` in each 128-bit lane: a two-byte shift plus the reduction of the top 16 bits.
#[target_feature(enable = "avx2,vpclmulqdq")]
#[inline]
fn mul_alpha16_ymm(x: __m256i) -> __m256i {
    let top = _mm256_bsrli_epi128::<14>(x);
    let reduce = _mm256_clmulepi64_epi128::<0x00>(top, _mm256_set1_epi64x(POLY));
    _mm256_xor_si256(_mm256_bslli_epi128::<2>(x), reduce)
}

/// The XTS kernel at 256-bit width: `N` = 8 registers of two blocks per step, blocks
/// `16s + 2i` and `16s + 2i + 1` of step `s` in register `i`, whose tweaks advance by α^16
/// per step.
///
/// # Safety
/// `src` must be valid for PAGE bytes of reads and `dst` for PAGE bytes of writes, the two
/// identical or disjoint; the CPU must have AES-NI, AVX2, VAES and VPCLMULQDQ.
#[target_feature(enable = "aes,avx2,vaes,vpclmulqdq")]
unsafe fn page_ymm<const DEC: bool>(k: &RoundKeys, tk: &RoundKeys, tweak: [u8; 16], src: *const u8, dst: *mut u8) {
    let mut kk = [_mm256_setzero_si256(); 15];
    for (wide, key) in kk.iter_mut().zip(&k.0) {
        *wide = _mm256_broadcastsi128_si256(*key);
    }
    let t0 = _mm256_broadcastsi128_si256(encrypt_block(tk, load128(&tweak)));
    let mut t = [_mm256_setzero_si256(); N];
    for (i, ti) in t.iter_mut().enumerate() {
        let n = 2 * i as i64;
        *ti = mul_alpha_n_ymm(t0, _mm256_set_epi64x(n + 1, n + 1, n, n));
    }
    let mut x = [_mm256_setzero_si256(); N];
    for step in 0..PAGE / (32 * N) {
        let base = step * 32 * N;
        for (i, (xi, ti)) in x.iter_mut().zip(&t).enumerate() {
            // SAFETY: base + 32 i + 32 <= PAGE, inside `src` (this function's contract).
            let v = unsafe { _mm256_loadu_si256(src.add(base + 32 * i).cast()) };
            *xi = _mm256_xor_si256(v, _mm256_xor_si256(*ti, kk[0]));
        }
        for key in &kk[1..14] {
            if DEC {
                round!(x, *key, ymm_reg, "aesdec");
            } else {
                round!(x, *key, ymm_reg, "aesenc");
            }
        }
        for (i, (xi, ti)) in x.iter().zip(&t).enumerate() {
            let last = _mm256_xor_si256(kk[14], *ti);
            let y = if DEC {
                _mm256_aesdeclast_epi128(*xi, last)
            } else {
                _mm256_aesenclast_epi128(*xi, last)
            };
            // SAFETY: as for the load; every block of the step is loaded before any is stored.
            unsafe { _mm256_storeu_si256(dst.add(base + 32 * i).cast(), y) };
        }
        for ti in t.iter_mut() {
            *ti = mul_alpha16_ymm(*ti);
        }
    }
}
