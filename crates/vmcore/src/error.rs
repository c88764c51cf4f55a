//! Writer errors.

use std::path::PathBuf;

use pvdump_format::FormatError;

/// Why writing an output failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// An I/O error on the output (or a pipe closed, or a disk full). The cause is the
    /// error's source, not part of its Display, so a chain printer (`{:#}` in anyhow) shows
    /// it once.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        #[source]
        /// The cause.
        source: std::io::Error,
    },
    /// The destination exists and `force` was not given.
    #[error("{} already exists; pass --force to replace it", path.display())]
    OutputExists {
        /// The destination.
        path: PathBuf,
    },
    /// The input went bad while it was being read.
    #[error(transparent)]
    Source(#[from] FormatError),
    /// Stopped by the caller (e.g. Ctrl-C).
    #[error("interrupted")]
    Cancelled,
}

impl WriteError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        WriteError::Io {
            context: context.into(),
            source,
        }
    }
}
