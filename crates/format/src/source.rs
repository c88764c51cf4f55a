//! Plaintext guest memory as the writers consume it.

use crate::consts::PAGE_SIZE;
use crate::error::Result;

/// A run of guest physical memory, page aligned, as it will appear in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBlock {
    /// Guest physical address (page aligned).
    pub paddr: u64,
    /// Length in bytes (a multiple of the page size).
    pub size: u64,
}

impl MemoryBlock {
    /// One past the last address.
    pub fn end(&self) -> u64 {
        self.paddr + self.size
    }
    /// Number of 4 KiB pages.
    pub fn pages(&self) -> u64 {
        self.size / PAGE_SIZE
    }
    /// Whether `paddr` lies inside the block.
    pub fn contains(&self, paddr: u64) -> bool {
        paddr >= self.paddr && paddr < self.end()
    }
}

/// A source of plaintext guest pages that many threads may read at once.
pub trait PageSource: Sync {
    /// The memory blocks, sorted by address and non-overlapping.
    fn blocks(&self) -> &[MemoryBlock];

    /// Fills `out` with the plaintext of the pages starting at `paddr`. `paddr` is page
    /// aligned, `out.len()` is a multiple of the page size, and the range lies inside one
    /// block. `zero` receives one flag per page that is known to be all zeros without
    /// looking (the page is still written with zeros), so writers can skip scanning it.
    fn read_pages(&self, paddr: u64, out: &mut [u8], zero: &mut [bool]) -> Result<()>;

    /// A hint from a writer that it has read the pages `[paddr, paddr + len)` and will not
    /// read them again: a source backed by a memory map may drop the map's page tables for
    /// the bytes behind them, so that the teardown happens on the worker threads instead of
    /// all at once when the map is closed. The pages stay readable. The default does
    /// nothing.
    fn release(&self, _paddr: u64, _len: u64) {}

    /// Total bytes of memory.
    fn total_bytes(&self) -> u64 {
        self.blocks().iter().map(|b| b.size).sum()
    }
}

/// Reads `buf.len()` bytes at guest physical `addr` from `src`, crossing pages as needed.
/// Returns `Ok(false)` when any byte of the range is outside the memory blocks.
pub fn read_phys<S: PageSource + ?Sized>(src: &S, addr: u64, buf: &mut [u8]) -> Result<bool> {
    let Some(end) = addr.checked_add(buf.len() as u64) else {
        return Ok(false);
    };
    let mut page = vec![0u8; PAGE_SIZE as usize];
    let mut zero = [false];
    let mut pos = addr;
    while pos < end {
        let page_addr = pos & !(PAGE_SIZE - 1);
        if !src.blocks().iter().any(|b| b.contains(page_addr)) {
            return Ok(false);
        }
        src.read_pages(page_addr, &mut page, &mut zero)?;
        let in_page = (pos - page_addr) as usize;
        let n = ((end - pos) as usize).min(PAGE_SIZE as usize - in_page);
        let dst = (pos - addr) as usize;
        buf[dst..dst + n].copy_from_slice(&page[in_page..in_page + n]);
        pos += n as u64;
    }
    Ok(true)
}
