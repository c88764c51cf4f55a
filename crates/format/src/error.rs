//! Typed parse errors. Every variant says what is wrong and where (file offset, page frame,
//! CPU number), so the CLI can print it without adding guesses.

use crate::page::InvalidPageState;

/// Result alias for this crate.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;

/// Everything that can be wrong with a dump file's structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The file is shorter than an ELF header.
    #[error("file is {len} bytes long, too short for an ELF header (64 bytes)")]
    TooShort { len: u64 },
    /// No ELF magic at offset 0.
    #[error("not an ELF file: bytes 0..4 are {found:02x?}, expected 7f 45 4c 46 (\"\\x7fELF\")")]
    NotElf { found: [u8; 4] },
    /// A valid ELF, but not an s390x big-endian 64-bit core file.
    #[error("ELF header at offset {offset:#x}: {field} is {found}, expected {expected}")]
    WrongElfKind {
        field: &'static str,
        offset: u64,
        found: String,
        expected: &'static str,
    },
    /// A structure (header, table, note, segment, section) reaches past the end of the file.
    #[error(
        "{what} at file offset {offset:#x} with size {size:#x} reaches past the end of the file ({file_len:#x} bytes); the dump is truncated or the header lies"
    )]
    OutOfBounds {
        what: String,
        offset: u64,
        size: u64,
        file_len: u64,
    },
    /// A value inside a structure is impossible or unsupported.
    #[error("{what} at file offset {offset:#x}: {problem}")]
    Invalid { what: String, offset: u64, problem: String },
    /// The ELF has no `pv_compl` section, so it is no encrypted PV dump.
    #[error(
        "not an encrypted Protected Virtualization dump: the ELF has no `pv_compl` section. \
         Either this is a plain (non-PV) core file, or dumping was not allowed for the guest \
         (the SE image needs --enable-dump) and QEMU wrote ciphertext without the key material; \
         such memory cannot be decrypted"
    )]
    NotPvDump,
    /// An encrypted PV dump was given where plain memory is needed.
    #[error(
        "this is an encrypted Protected Virtualization dump (it has a `pv_compl` section): \
         its memory is ciphertext and cannot be converted as it is; \
         use `pvdump decrypt --key CCK` (which also takes --format kdump)"
    )]
    EncryptedInput,
    /// A tweak component in `pv_mem_meta` describes an impossible page state.
    #[error(
        "invalid page state for page frame {pfn:#x} (guest address {gaddr:#x}): tweak component at file offset {offset:#x} is {component}: {reason}{more}",
        component = hex16(component),
        more = if *others > 0 { format!(" ({others} more invalid page states follow)") } else { String::new() }
    )]
    InvalidPageState {
        pfn: u64,
        gaddr: u64,
        offset: u64,
        component: [u8; 16],
        reason: InvalidPageState,
        others: u64,
    },
}

fn hex16(b: &[u8; 16]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl FormatError {
    /// A read of guest memory outside every PT_LOAD (a caller bug or a lying header).
    pub fn invalid_read(paddr: u64) -> Self {
        FormatError::invalid(
            "guest memory",
            0,
            format!("guest address {paddr:#x} is not inside any PT_LOAD"),
        )
    }

    pub fn invalid(what: impl Into<String>, offset: u64, problem: impl Into<String>) -> Self {
        FormatError::Invalid {
            what: what.into(),
            offset,
            problem: problem.into(),
        }
    }
}
