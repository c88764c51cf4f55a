//! Reading the inputs: the key file and the memory-mapped dump.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use memmap2::Mmap;
use pvdump_crypto::Cck;

use crate::exit::{Code, Failure};

/// Largest key file read (anything bigger is reported by size without reading it).
const MAX_KEY_FILE: u64 = 4096;

/// Reads and parses a key file; every problem is exit code 2.
pub fn read_key(path: &Path) -> Result<Cck, Failure> {
    let ctx = || format!("key file {}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| Failure::new(Code::Usage, anyhow::Error::new(e).context(ctx())))?;
    if meta.is_dir() {
        return Err(Failure::usage(format!("{}: is a directory, not a key file", ctx())));
    }
    // A FIFO would block the open, a character device (/dev/zero) would never end.
    if !meta.is_file() {
        return Err(Failure::usage(format!(
            "{}: is not a regular file ({}); expected 32 raw bytes or 64 hex digits",
            ctx(),
            file_kind(&meta)
        )));
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(Failure::usage(format!(
            "{}: holds {} bytes; expected 32 raw bytes or 64 hex digits",
            ctx(),
            meta.len()
        )));
    }
    warn_if_shared(path, &meta);
    // Read at most one byte more than allowed, in case the file grew since the stat.
    let mut bytes = Vec::with_capacity(64);
    let read = File::open(path).and_then(|f| f.take(MAX_KEY_FILE + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        zeroize_vec(&mut bytes);
        return Err(Failure::new(Code::Usage, anyhow::Error::new(e).context(ctx())));
    }
    let r = Cck::from_key_file(&bytes).map_err(|e| Failure::from(e).context(ctx()));
    zeroize_vec(&mut bytes);
    r
}

/// "a FIFO", "a character device", ... for messages about non-regular files.
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

fn zeroize_vec(v: &mut [u8]) {
    for b in v.iter_mut() {
        // Volatile so the compiler cannot drop the wipe of a buffer about to be freed.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}

fn warn_if_shared(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        eprintln!(
            "pvdump: warning: key file {} is readable or writable by group or others (mode {:o}); consider chmod 600",
            path.display(),
            mode & 0o777
        );
    }
}

/// A memory-mapped input file.
pub struct Input {
    map: Option<Mmap>,
}

impl Input {
    pub fn open(path: &Path) -> Result<Input, Failure> {
        // Stat before opening: opening a FIFO would block until a writer appears.
        if let Ok(meta) = std::fs::metadata(path)
            && !meta.is_file()
            && !meta.is_dir()
        {
            return Err(Failure::new(
                Code::Io,
                anyhow::anyhow!(
                    "dump {}: is not a regular file ({}); pvdump maps the dump and needs a regular file",
                    path.display(),
                    file_kind(&meta)
                ),
            ));
        }
        let file = File::open(path).map_err(|e| Failure::io(format!("cannot open dump {}", path.display()), e))?;
        let meta = file
            .metadata()
            .map_err(|e| Failure::io(format!("cannot stat dump {}", path.display()), e))?;
        if meta.is_dir() {
            return Err(Failure::new(
                Code::Io,
                anyhow::anyhow!("dump {}: is a directory", path.display()),
            ));
        }
        if meta.len() == 0 {
            return Ok(Input { map: None });
        }
        // SAFETY: the map is read-only. If another process truncates the file while it is
        // mapped, reads past the new end fault (SIGBUS): the handler in signals.rs removes
        // the temporary output and exits 5 (docs/errors.md).
        let map =
            unsafe { Mmap::map(&file) }.map_err(|e| Failure::io(format!("cannot map dump {}", path.display()), e))?;
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Input { map: Some(map) })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}
