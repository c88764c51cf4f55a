//! Reading the customer communication key (CCK) from a file.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use pvdump_crypto::{Cck, KeyFileError};
use zeroize::Zeroizing;

/// Largest key file read (anything bigger is reported by size without reading it).
pub const MAX_KEY_FILE: u64 = 4096;

/// Why a key file cannot be used. No variant ever carries key bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file cannot be opened or read.
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key path is a directory.
    #[error("key file {}: is a directory, not a key file", path.display())]
    Directory {
        /// The key file.
        path: PathBuf,
    },
    /// The key path is something that cannot be read once to its end.
    #[error("key file {}: is not a regular file ({kind}); expected 32 raw bytes or 64 hex digits", path.display())]
    NotARegularFile {
        /// The key file.
        path: PathBuf,
        /// "a FIFO", "a character device", ...
        kind: &'static str,
    },
    /// The key file is far too large to be a key.
    #[error("key file {}: holds {len} bytes; expected 32 raw bytes or 64 hex digits", path.display())]
    TooLarge {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The contents are not a key.
    #[error("key file {}: {source}", path.display())]
    Contents {
        /// The key file.
        path: PathBuf,
        /// What is wrong with the contents (length and form only).
        #[source]
        source: KeyFileError,
    },
}

/// A key read from a file, with what the caller may want to warn about.
#[derive(Debug)]
pub struct KeyFile {
    /// The key.
    pub cck: Cck,
    /// The file's permission bits when group or others may read or write it.
    pub shared_mode: Option<u32>,
}

/// "a FIFO", "a character device", ... for messages about files that are not regular.
pub fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads and parses a key file: 32 raw bytes, or 64 hex digits with an optional newline.
/// Every buffer that held key material is wiped.
pub fn read_key_file(path: &Path) -> Result<KeyFile, KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(KeyError::Directory {
            path: path.to_path_buf(),
        });
    }
    // A FIFO would block the open, a character device (/dev/zero) would never end.
    if !meta.is_file() {
        return Err(KeyError::NotARegularFile {
            path: path.to_path_buf(),
            kind: file_kind(&meta),
        });
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
        });
    }
    let mode = meta.permissions().mode();
    // Read at most one byte more than allowed, in case the file grew since the stat.
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE as usize + 1));
    File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE + 1).read_to_end(&mut bytes))
        .map_err(io)?;
    let cck = Cck::from_key_file(&bytes).map_err(|source| KeyError::Contents {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(KeyFile {
        cck,
        shared_mode: (mode & 0o077 != 0).then_some(mode & 0o777),
    })
}
