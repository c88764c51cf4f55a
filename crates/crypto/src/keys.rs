//! Secret key types. Each zeroizes its bytes when dropped and never prints them.

use hkdf::Hkdf;
use pvdump_format::consts::DUMP_KEY_INFO;
use sha2::Sha512;
use zeroize::{Zeroize, ZeroizeOnDrop};

macro_rules! secret {
    ($(#[$m:meta])* $name:ident, $len:expr) => {
        $(#[$m])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw key bytes. The caller should zeroize its own copy.
            pub fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The key bytes. Keep the borrow short; never log them.
            pub fn expose(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "(<{} secret bytes>)"), $len)
            }
        }
    };
}

secret!(
    /// The customer communication key: 32 bytes chosen by the guest owner at image build time.
    Cck, 32
);
secret!(
    /// The AES-256-GCM key derived from the CCK and the dump's seed.
    DumpKey, 32
);
secret!(
    /// The 64-byte AES-256-XTS key from the completion data (data key ‖ tweak key).
    XtsKey, 64
);

impl DumpKey {
    /// HKDF-SHA512(IKM = CCK, salt = seed, info = "IBM Z Ultravisor Dump", L = 32).
    pub fn derive(cck: &Cck, seed: &[u8; 64]) -> DumpKey {
        let hk = Hkdf::<Sha512>::new(Some(seed), cck.expose());
        let mut okm = [0u8; 32];
        // 32 bytes is far below HKDF-SHA512's 255 * 64 limit.
        let _ = hk.expand(DUMP_KEY_INFO, &mut okm);
        let key = DumpKey(okm);
        okm.zeroize();
        key
    }
}

/// Why a key file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("the key file is empty; expected 32 raw bytes or 64 hex digits")]
    /// The file is empty.
    Empty,
    #[error(
        "the key file holds {0} bytes; expected 32 raw bytes (the file given to genprotimg/pvimg --cck) or 64 hex digits"
    )]
    /// Neither 32 raw bytes nor hex: the length.
    WrongSize(usize),
    #[error("the key file looks like hex but has {digits} hex digits; expected 64")]
    /// Hex digits, but not 64 of them.
    WrongHexLength {
        /// Number of hex digits.
        digits: usize,
    },
}

impl Cck {
    /// Parses a key file: 32 raw bytes, or 64 hex digits with an optional trailing newline
    /// (`\n` or `\r\n`).
    pub fn from_key_file(contents: &[u8]) -> Result<Cck, KeyFileError> {
        if contents.is_empty() {
            return Err(KeyFileError::Empty);
        }
        if let Ok(raw) = <[u8; 32]>::try_from(contents) {
            return Ok(Cck(raw));
        }
        let trimmed = contents
            .strip_suffix(b"\n")
            .map(|s| s.strip_suffix(b"\r").unwrap_or(s))
            .unwrap_or(contents);
        if !trimmed.is_empty() && trimmed.iter().all(u8::is_ascii_hexdigit) {
            if trimmed.len() != 64 {
                return Err(KeyFileError::WrongHexLength { digits: trimmed.len() });
            }
            let mut key = [0u8; 32];
            for (i, pair) in trimmed.chunks_exact(2).enumerate() {
                key[i] = (hex_val(pair[0]) << 4) | hex_val(pair[1]);
            }
            let cck = Cck(key);
            key.zeroize();
            return Ok(cck);
        }
        Err(KeyFileError::WrongSize(contents.len()))
    }
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_bytes() {
        let k = Cck::from_bytes([0xab; 32]);
        let s = format!("{k:?}");
        assert_eq!(s, "Cck(<32 secret bytes>)");
        assert!(!s.to_lowercase().contains("ab,") && !s.contains("171"));
    }

    #[test]
    fn key_file_forms() {
        let raw = [7u8; 32];
        assert_eq!(Cck::from_key_file(&raw).unwrap().expose(), &raw);
        let hex = "07".repeat(32);
        assert_eq!(Cck::from_key_file(hex.as_bytes()).unwrap().expose(), &raw);
        assert_eq!(
            Cck::from_key_file(format!("{hex}\n").as_bytes()).unwrap().expose(),
            &raw
        );
        assert_eq!(
            Cck::from_key_file(format!("{hex}\r\n").as_bytes()).unwrap().expose(),
            &raw
        );
        assert_eq!(Cck::from_key_file(b"").err(), Some(KeyFileError::Empty));
        assert_eq!(Cck::from_key_file(&[1u8; 16]).err(), Some(KeyFileError::WrongSize(16)));
        assert_eq!(
            Cck::from_key_file("ab".repeat(15).as_bytes()).err(),
            Some(KeyFileError::WrongHexLength { digits: 30 })
        );
        assert_eq!(Cck::from_key_file(&[1u8; 33]).err(), Some(KeyFileError::WrongSize(33)));
    }

    /// Runs the real `Drop` of a key in place and inspects the bytes it leaves behind.
    fn bytes_after_drop<T, const N: usize>(key: T) -> [u8; N] {
        assert_eq!(std::mem::size_of::<T>(), N);
        let mut slot = std::mem::MaybeUninit::new(key);
        // SAFETY: `slot` holds an initialised T that is dropped exactly once here; afterwards
        // its storage is only read as plain bytes (every bit pattern is a valid u8).
        unsafe {
            std::ptr::drop_in_place(slot.as_mut_ptr());
            std::ptr::read(slot.as_ptr().cast::<[u8; N]>())
        }
    }

    #[test]
    fn drop_zeroizes_every_secret() {
        assert_eq!(bytes_after_drop::<_, 32>(Cck::from_bytes([0x5a; 32])), [0u8; 32]);
        assert_eq!(bytes_after_drop::<_, 64>(XtsKey::from_bytes([0xa5; 64])), [0u8; 64]);
        let dk = DumpKey::derive(&Cck::from_bytes([1; 32]), &[2; 64]);
        assert_ne!(dk.expose(), &[0u8; 32]);
        assert_eq!(bytes_after_drop::<_, 32>(dk), [0u8; 32]);
    }
}
