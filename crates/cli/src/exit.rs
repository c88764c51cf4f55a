//! Exit codes and the mapping from library errors to them.

use std::fmt;

use pvdump_crypto::{KeyFileError, OpenError};
use pvdump_format::FormatError;
use pvdump_vmcore::WriteError;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// Usage error or unusable key file.
    Usage = 2,
    /// The key does not match this dump.
    WrongKey = 3,
    /// The dump is invalid, corrupted or not a PV dump.
    BadDump = 4,
    /// I/O error: unreadable input, unwritable or full output.
    Io = 5,
    /// Interrupted by SIGINT/SIGTERM (128 + SIGINT).
    Interrupted = 130,
}

/// An error with the exit code it deserves.
pub struct Failure {
    pub code: Code,
    pub error: anyhow::Error,
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:#}", self.code, self.error)
    }
}

impl Failure {
    pub fn new(code: Code, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code,
            error: error.into(),
        }
    }

    pub fn usage(msg: impl fmt::Display) -> Self {
        Failure::new(Code::Usage, anyhow::anyhow!("{msg}"))
    }

    pub fn io(context: impl fmt::Display, e: std::io::Error) -> Self {
        Failure::new(Code::Io, anyhow::Error::new(e).context(context.to_string()))
    }

    /// Adds context in front of the message, keeping the code.
    pub fn context(self, ctx: impl fmt::Display + Send + Sync + 'static) -> Self {
        Failure {
            code: self.code,
            error: self.error.context(ctx),
        }
    }
}

impl From<FormatError> for Failure {
    fn from(e: FormatError) -> Self {
        Failure::new(Code::BadDump, e)
    }
}

impl From<KeyFileError> for Failure {
    fn from(e: KeyFileError) -> Self {
        Failure::new(Code::Usage, e)
    }
}

impl From<OpenError> for Failure {
    fn from(e: OpenError) -> Self {
        let code = if e.is_key_mismatch() {
            Code::WrongKey
        } else {
            Code::BadDump
        };
        Failure::new(code, e)
    }
}

impl From<WriteError> for Failure {
    fn from(e: WriteError) -> Self {
        let code = match &e {
            WriteError::Io { .. } => Code::Io,
            WriteError::OutputExists { .. } => Code::Usage,
            WriteError::Source(_) => Code::BadDump,
            WriteError::Cancelled => Code::Interrupted,
            _ => Code::Io,
        };
        Failure::new(code, e)
    }
}
