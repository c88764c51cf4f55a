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

    /// Drops the page tables of the mapping for the whole pages inside `len` bytes at
    /// `offset` (MADV_DONTNEED): the next read of them faults them in again from the page
    /// cache. Nothing happens for bytes held in memory, or past the end.
    pub fn release(&self, offset: u64, len: u64) {
        const PAGE: u64 = 4096;
        let Input::Mapped(map) = self else {
            return;
        };
        let start = offset.next_multiple_of(PAGE);
        let end = offset.saturating_add(len).min(map.len() as u64) / PAGE * PAGE;
        if end > start {
            // SAFETY: the map is a shared, read-only mapping of a file: MADV_DONTNEED only
            // drops page tables, and the next access maps the same page-cache pages again,
            // so every outstanding `&[u8]` into the map keeps reading the same bytes (the
            // truncation hazard of `Input::map` is unchanged). Never used on `Owned`
            // memory, where it would zero the bytes.
            let _ = unsafe {
                map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start as usize,
                    (end - start) as usize,
                )
            };
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Input::Mapped(m) => m,
            Input::Owned(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_pages_read_the_same_bytes_again() {
        let path = std::env::temp_dir().join(format!("pvdump-input-release-{}", std::process::id()));
        let data: Vec<u8> = (0..5 * 4096 + 100).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let input = Input::map(&path).unwrap();
        assert_eq!(input.bytes(), &data[..]);
        // Whole pages, a range with partial pages at both ends, one past the end.
        input.release(4096, 2 * 4096);
        input.release(100, 3 * 4096);
        input.release(4 * 4096, 1 << 40);
        assert_eq!(input.bytes(), &data[..]);
        // Bytes held in memory are never touched.
        let owned = Input::Owned(data.clone());
        owned.release(0, data.len() as u64);
        assert_eq!(owned.bytes(), &data[..]);
        std::fs::remove_file(&path).unwrap();
    }
}
