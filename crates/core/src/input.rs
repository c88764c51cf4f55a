//! The bytes of a dump: a read-only memory map of the file, or bytes the caller owns.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::error::Error;
use crate::key::file_kind;

/// The bytes of an input dump.
#[derive(Debug)]
pub enum Input {
    /// A read-only memory map of a regular file.
    Mapped(Mmap),
    /// Bytes held in memory (tests, fuzzing, small inputs).
    Owned(Vec<u8>),
}

impl Input {
    /// Maps a regular file read-only.
    ///
    /// The map is only as stable as the file: if another process truncates the file while
    /// it is mapped, touching a page past the new end raises SIGBUS. The `pvdump` binary
    /// handles that signal (it removes its temporary output and exits 5); an embedding
    /// program must do the same or hold the file stable.
    pub fn map(path: &Path) -> Result<Input, Error> {
        let err = |context, source| Error::Input {
            path: path.to_path_buf(),
            context,
            source,
        };
        // Stat before opening: opening a FIFO would block until a writer appears.
        if let Ok(meta) = std::fs::metadata(path)
            && !meta.is_file()
        {
            return Err(Error::NotARegularFile {
                path: path.to_path_buf(),
                kind: file_kind(&meta),
            });
        }
        let file = File::open(path).map_err(|e| err("cannot open dump", e))?;
        let meta = file.metadata().map_err(|e| err("cannot stat dump", e))?;
        if !meta.is_file() {
            return Err(Error::NotARegularFile {
                path: path.to_path_buf(),
                kind: file_kind(&meta),
            });
        }
        if meta.len() == 0 {
            return Ok(Input::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only and never handed out mutably. The remaining hazard
        // (another process truncating the file) is documented above.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| err("cannot map dump", e))?;
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Input::Mapped(map))
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Input::Mapped(m) => m,
            Input::Owned(v) => v,
        }
    }
}
