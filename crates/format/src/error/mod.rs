//! Typed parse errors. Every error says what is wrong ([`Problem`]), in which structure
//! ([`Structure`]) and where (the file offset of that structure or of the field that is wrong,
//! a page frame, a CPU number), so a caller can act on it and the CLI can print it without
//! adding guesses.

use crate::page::InvalidPageState;

/// Result alias for this crate.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;

mod problem;
mod structure;

pub use problem::Problem;
pub use structure::Structure;

/// Everything that can be wrong with a dump file's structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The file is shorter than an ELF header.
    #[error("file is {len} bytes long, too short for an ELF header (64 bytes)")]
    TooShort {
        /// File length.
        len: u64,
    },
    /// No ELF magic at offset 0.
    #[error("not an ELF file: bytes 0..4 are {found:02x?}, expected 7f 45 4c 46 (\"\\x7fELF\")")]
    NotElf {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A valid ELF, but not an s390x big-endian 64-bit core file.
    #[error("ELF header at offset {offset:#x}: {field} is {found}, expected {expected}")]
    WrongElfKind {
        /// Field name.
        field: &'static str,
        /// File offset of the field.
        offset: u64,
        /// Value found.
        found: u64,
        /// Value expected, with its name.
        expected: &'static str,
    },
    /// A structure reaches past the end of the file.
    #[error(
        "{structure} at file offset {offset:#x} with size {size:#x} reaches past the end of the file ({file_len:#x} bytes); the dump is truncated or the header lies"
    )]
    OutOfBounds {
        /// The structure.
        structure: Structure,
        /// Its file offset.
        offset: u64,
        /// Its size.
        size: u64,
        /// The file length.
        file_len: u64,
    },
    /// A value inside a structure is impossible or unsupported.
    #[error("{structure} at file offset {offset:#x}: {problem}")]
    Invalid {
        /// The structure.
        structure: Structure,
        /// File offset of the structure (or of the wrong field).
        offset: u64,
        /// What is wrong.
        problem: Problem,
    },
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
    /// A read of guest memory outside every memory block (a caller bug or a lying header).
    #[error("guest memory: guest address {paddr:#x} is not inside any PT_LOAD")]
    OutsideMemory {
        /// Guest physical address.
        paddr: u64,
    },
    /// A tweak component in `pv_mem_meta` describes an impossible page state.
    #[error(
        "invalid page state for page frame {pfn:#x} (guest address {gaddr:#x}): tweak component at file offset {offset:#x} is {component}: {reason}{more}",
        component = hex16(component),
        more = if *others > 0 { format!(" ({others} more invalid page states follow)") } else { String::new() }
    )]
    InvalidPageState {
        /// Page frame number.
        pfn: u64,
        /// Guest physical address.
        gaddr: u64,
        /// File offset of the tweak component.
        offset: u64,
        /// The component.
        component: [u8; 16],
        /// Why it is invalid.
        reason: InvalidPageState,
        /// How many more invalid components follow.
        others: u64,
    },
}

fn hex16(b: &[u8; 16]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl FormatError {
    /// A read of guest memory outside every PT_LOAD (a caller bug or a lying header).
    pub fn outside_memory(paddr: u64) -> Self {
        FormatError::OutsideMemory { paddr }
    }

    /// An `Invalid` error.
    pub fn invalid(structure: Structure, offset: u64, problem: Problem) -> Self {
        FormatError::Invalid {
            structure,
            offset,
            problem,
        }
    }

    /// The same error about a structure inside a blob that lies at file offset `base`: an
    /// offset counted from the start of the blob (notes read from a kdump header's note
    /// area, say) becomes a file offset.
    pub fn rebased(self, base: u64) -> FormatError {
        match self {
            FormatError::Invalid {
                structure,
                offset,
                problem,
            } => FormatError::Invalid {
                structure,
                offset: offset + base,
                problem,
            },
            e => e,
        }
    }

    /// The file offset this error points at, when it has one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            FormatError::TooShort { .. }
            | FormatError::NotPvDump
            | FormatError::EncryptedInput
            | FormatError::OutsideMemory { .. } => None,
            FormatError::NotElf { .. } => Some(0),
            FormatError::WrongElfKind { offset, .. }
            | FormatError::OutOfBounds { offset, .. }
            | FormatError::Invalid { offset, .. }
            | FormatError::InvalidPageState { offset, .. } => Some(*offset),
        }
    }

    /// The structure this error is about, when it names one.
    pub fn structure(&self) -> Option<&Structure> {
        match self {
            FormatError::OutOfBounds { structure, .. } | FormatError::Invalid { structure, .. } => Some(structure),
            _ => None,
        }
    }
}
