//! AES-256-XTS over 4 KiB pages, with the kernel picked at run time.
//!
//! [`PageCipher`] is the safe API; the work happens in one of the [`Backend`]s:
//!
//! - [`Backend::Vaes`] (x86_64 with VAES, VPCLMULQDQ and AVX2; AVX-512 is not needed) and
//!   [`Backend::AesNi`] (x86_64 with AES-NI and PCLMULQDQ): fused tweak + AES + XOR loops on
//!   `core::arch` intrinsics, in `x86.rs`, the crate's only `unsafe` code.
//! - [`Backend::Portable`]: the `aes` crate's batch API (`portable.rs`), which itself uses
//!   AES-NI on x86_64 and the ARMv8 Cryptography Extensions on aarch64 when the CPU has them
//!   (detected at run time by `aes`), and a constant-time software AES otherwise.
//!
//! Why not `xts-mode`: it runs the block cipher one block per call (about 1 GB/s). See
//! docs/decisions/xts.md and docs/decisions/xts-intrinsics.md. `xts-mode` stays as an
//! independent cross-check in the tests, for every backend.

mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

use zeroize::Zeroize;

use crate::keys::XtsKey;

/// Bytes per XTS data unit (one guest page).
pub const PAGE: usize = 4096;

/// An implementation of the page kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// The `aes` crate's batch API (hardware AES where `aes` detects it, including ARMv8
    /// Cryptography Extensions on aarch64); available everywhere.
    Portable,
    /// x86_64 AES-NI + PCLMULQDQ intrinsics, 8 blocks in flight in 128-bit registers.
    AesNi,
    /// x86_64 VAES + VPCLMULQDQ + AVX2 intrinsics, 16 blocks in flight in 256-bit registers.
    Vaes,
}

impl Backend {
    /// Every backend, slowest first.
    pub const ALL: [Backend; 3] = [Backend::Portable, Backend::AesNi, Backend::Vaes];

    /// Whether this CPU can run the backend.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Backend::AesNi => x86::Width::Xmm.available(),
            #[cfg(target_arch = "x86_64")]
            Backend::Vaes => x86::Width::Ymm.available(),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::AesNi | Backend::Vaes => false,
        }
    }

    /// The fastest backend this CPU can run (what [`PageCipher::new`] uses).
    pub fn best() -> Backend {
        Backend::ALL
            .into_iter()
            .rev()
            .find(|b| b.is_available())
            .unwrap_or(Backend::Portable)
    }

    /// A short stable name: `portable`, `aes-ni` or `vaes`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            Backend::AesNi => "aes-ni",
            Backend::Vaes => "vaes",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Portable => "portable (aes crate)",
            Backend::AesNi => "aes-ni (x86_64 AES-NI + PCLMULQDQ, 128-bit)",
            Backend::Vaes => "vaes (x86_64 VAES + VPCLMULQDQ + AVX2, 256-bit)",
        })
    }
}

/// A backend was requested that this CPU (or target) cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {0} XTS backend is not available on this CPU")]
pub struct BackendUnavailable(pub Backend);

/// The key schedules of the backend in use. One per dump, built once and never moved in a
/// loop, so the size difference between the variants does not matter.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum Engine {
    Portable(portable::Portable),
    #[cfg(target_arch = "x86_64")]
    X86(x86::Engine),
}

/// The page cipher of one dump: XTS key pair plus the tweak nonce.
#[derive(Clone)]
pub struct PageCipher {
    engine: Engine,
    nonce: [u8; 16],
}

impl std::fmt::Debug for PageCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PageCipher({}, <secret>)", self.backend().name())
    }
}

impl Drop for PageCipher {
    fn drop(&mut self) {
        // The key schedules zeroize themselves: the `aes` crate's through its "zeroize"
        // feature, the intrinsics backends' in `x86::RoundKeys::drop`.
        self.nonce.zeroize();
    }
}

/// Calls `f` with the data key (bytes 0..32) and the tweak key (32..64) in stack copies that
/// are zeroized afterwards.
fn with_halves<R>(key: &XtsKey, f: impl FnOnce(&[u8; 32], &[u8; 32]) -> R) -> R {
    let k = key.expose();
    let mut k1 = [0u8; 32];
    let mut k2 = [0u8; 32];
    k1.copy_from_slice(&k[..32]);
    k2.copy_from_slice(&k[32..]);
    let r = f(&k1, &k2);
    k1.zeroize();
    k2.zeroize();
    r
}

impl PageCipher {
    /// Key bytes 0..32 encrypt data, 32..64 encrypt the tweak. Uses [`Backend::best`].
    pub fn new(key: &XtsKey, nonce: [u8; 16]) -> Self {
        Self::with_backend(key, nonce, Backend::best()).unwrap_or_else(|_| {
            let engine = with_halves(key, |k1, k2| Engine::Portable(portable::Portable::new(k1, k2)));
            PageCipher { engine, nonce }
        })
    }

    /// Like [`PageCipher::new`] with a chosen backend (for tests and benchmarks); fails when
    /// this CPU cannot run it.
    pub fn with_backend(key: &XtsKey, nonce: [u8; 16], backend: Backend) -> Result<Self, BackendUnavailable> {
        let engine = with_halves(key, |k1, k2| match backend {
            Backend::Portable => Some(Engine::Portable(portable::Portable::new(k1, k2))),
            #[cfg(target_arch = "x86_64")]
            Backend::AesNi => x86::Engine::new(k1, k2, x86::Width::Xmm).map(Engine::X86),
            #[cfg(target_arch = "x86_64")]
            Backend::Vaes => x86::Engine::new(k1, k2, x86::Width::Ymm).map(Engine::X86),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::AesNi | Backend::Vaes => None,
        });
        match engine {
            Some(engine) => Ok(PageCipher { engine, nonce }),
            None => Err(BackendUnavailable(backend)),
        }
    }

    /// The backend this cipher runs.
    pub fn backend(&self) -> Backend {
        match &self.engine {
            Engine::Portable(_) => Backend::Portable,
            #[cfg(target_arch = "x86_64")]
            Engine::X86(e) => match e.width() {
                x86::Width::Xmm => Backend::AesNi,
                x86::Width::Ymm => Backend::Vaes,
            },
        }
    }

    /// The XTS tweak of a page: component OR nonce, bytewise.
    pub fn tweak_for(&self, component: &[u8; 16]) -> [u8; 16] {
        std::array::from_fn(|i| component[i] | self.nonce[i])
    }

    /// Decrypts one page in place with the tweak derived from its component.
    pub fn decrypt_page(&self, component: &[u8; 16], page: &mut [u8; PAGE]) {
        self.decrypt_page_with_tweak(self.tweak_for(component), page);
    }

    /// Decrypts one page in place with an explicit 16-byte XTS tweak.
    pub fn decrypt_page_with_tweak(&self, tweak: [u8; 16], page: &mut [u8; PAGE]) {
        match &self.engine {
            Engine::Portable(p) => p.decrypt(tweak, page),
            #[cfg(target_arch = "x86_64")]
            Engine::X86(e) => e.decrypt(tweak, page),
        }
    }

    /// Decrypts `src` into `dst` (for example from the mapped input into an output buffer):
    /// each page is read once.
    pub fn decrypt_page_from(&self, component: &[u8; 16], src: &[u8; PAGE], dst: &mut [u8; PAGE]) {
        let tweak = self.tweak_for(component);
        match &self.engine {
            Engine::Portable(p) => p.decrypt_from(tweak, src, dst),
            #[cfg(target_arch = "x86_64")]
            Engine::X86(e) => e.decrypt_from(tweak, src, dst),
        }
    }

    /// Encrypts one page in place (the simulated Ultravisor's direction).
    pub fn encrypt_page(&self, component: &[u8; 16], page: &mut [u8; PAGE]) {
        let tweak = self.tweak_for(component);
        match &self.engine {
            Engine::Portable(p) => p.encrypt(tweak, page),
            #[cfg(target_arch = "x86_64")]
            Engine::X86(e) => e.encrypt(tweak, page),
        }
    }
}
