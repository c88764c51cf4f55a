//! The façade's error: every way opening, reading or writing a dump can fail, each variant
//! a different situation for the user (see [`Error::kind`]).

use std::path::PathBuf;

use pvdump_crypto::OpenError;
use pvdump_format::FormatError;
use pvdump_vmcore::WriteError;

use crate::key::KeyError;

/// What the caller should tell the user, in broad strokes (the CLI maps these to exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The key file cannot be used, or an operation needs a key that was not given, or the
    /// output already exists: the user must change the command.
    Usage,
    /// The key does not match the dump.
    WrongKey,
    /// The dump is invalid, corrupted, or not the kind of dump the operation needs.
    BadDump,
    /// Reading the input or writing the output failed.
    Io,
    /// The caller cancelled the operation.
    Cancelled,
}

/// Why an operation on a dump failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The dump file cannot be opened, read or mapped.
    #[error("{context} {}", path.display())]
    Input {
        /// The dump file.
        path: PathBuf,
        /// What was being done.
        context: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The dump path is not a regular file.
    #[error("dump {}: is {kind}, not a regular file; pvdump maps the dump and needs a regular file", path.display())]
    NotARegularFile {
        /// The dump file.
        path: PathBuf,
        /// "a FIFO", "a directory", ...
        kind: &'static str,
    },
    /// The key file cannot be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The dump's structure is invalid.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The key does not open the dump, or the dump's sealed parts are corrupted.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The operation needs the plaintext of an encrypted dump, but no key was given.
    #[error(
        "this is an encrypted Protected Virtualization dump: {what} needs the customer communication key (--key CCK)"
    )]
    KeyRequired {
        /// What needed it.
        what: &'static str,
    },
    /// Writing the output failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl Error {
    /// The broad class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Input { .. } | Error::NotARegularFile { .. } => ErrorKind::Io,
            Error::Key(_) | Error::KeyRequired { .. } => ErrorKind::Usage,
            Error::Format(FormatError::EncryptedInput) => ErrorKind::Usage,
            Error::Format(_) => ErrorKind::BadDump,
            Error::Open(e) if e.is_key_mismatch() => ErrorKind::WrongKey,
            Error::Open(OpenError::Format(_)) | Error::Open(_) => ErrorKind::BadDump,
            Error::Write(e) => match e {
                WriteError::Io { .. } => ErrorKind::Io,
                WriteError::OutputExists { .. } => ErrorKind::Usage,
                WriteError::Source(_) => ErrorKind::BadDump,
                WriteError::Cancelled => ErrorKind::Cancelled,
                _ => ErrorKind::Io,
            },
        }
    }
}
