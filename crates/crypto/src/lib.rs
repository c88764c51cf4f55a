//! The cryptography of IBM Z Secure Execution dumps.
//!
//! - [`Cck`], [`DumpKey`], [`XtsKey`]: secrets that zeroize on drop and never print.
//! - [`DumpKey::derive`]: HKDF-SHA512 from the customer communication key and the dump seed.
//! - [`open_completion`], [`open_cpu`]: AES-256-GCM opening of `pv_compl` and CPU notes.
//! - [`PageCipher`]: AES-256-XTS per 4 KiB page, on the fastest [`Backend`] this CPU has
//!   (VAES or AES-NI intrinsics on x86_64, the `aes` crate elsewhere).
//! - [`OpenedDump`]: all of the above applied to a parsed dump; it is a
//!   [`pvdump_format::PageSource`] of plaintext memory that many threads can read at once.
//! - The encrypt direction ([`seal_completion`], [`seal_cpu`], [`PageCipher::encrypt_page`])
//!   is what a simulated Ultravisor needs to build test dumps.

#![warn(missing_docs)]

mod gcm;
mod keys;
mod open;
mod xts;

pub use gcm::{CompletionSecrets, TagMismatch, open_completion, open_cpu, seal_completion, seal_cpu};
pub use keys::{Cck, DumpKey, KeyFileError, XtsKey};
pub use open::{Cpu, OpenError, OpenedDump, check_key};
pub use xts::{Backend, BackendUnavailable, PAGE, PageCipher};
