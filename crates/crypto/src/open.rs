//! Opening a PV dump with the customer key: derive the dump key, unwrap the XTS key, decrypt
//! the CPU states, and serve plaintext pages to the writers (in parallel, from the mmap).

use pvdump_format::consts::PAGE_SIZE;
use pvdump_format::{
    CpuRegisters, FormatError, LoadSegment, MemoryBlock, PageCounts, PageSource, PageState, PvDump, Vmcoreinfo,
    file_pages, find_vmcoreinfo, frames_of,
};

use crate::gcm::{open_completion, open_cpu};
use crate::keys::{Cck, DumpKey};
use crate::xts::PageCipher;

/// Why a dump could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The dump's structure is invalid.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Neither the completion data nor any CPU note opens with the key.
    #[error(
        "the key does not match this dump: the completion data (section `pv_compl` at file offset {offset:#x}) fails authentication with the key derived from it{cpus}. \
         Check that the key file is this guest's customer communication key (CCK); less likely, the dump's key seed (file offset {seed_offset:#x}) is damaged",
        cpus = if *cpus_tried > 0 { format!(", and so do all {cpus_tried} CPU notes") } else { String::new() },
        seed_offset = offset + 16
    )]
    KeyMismatch {
        /// File offset of the completion data.
        offset: u64,
        /// CPU notes also tried (and failed) with the derived key.
        cpus_tried: usize,
    },
    /// The key is right (CPU notes open), but the completion data is damaged.
    #[error(
        "the completion data (section `pv_compl` at file offset {offset:#x}) is corrupted: it fails authentication, although the key is right (CPU {cpu}'s note opens with the same derived key). The page key cannot be recovered from this dump"
    )]
    CompletionCorrupted {
        /// File offset of the completion data.
        offset: u64,
        /// A CPU whose note opens with the same key.
        cpu: usize,
    },
    /// The key is right, but one CPU note is damaged.
    #[error(
        "the encrypted state of CPU {cpu} (NT_S390_PV_CPU_DATA note, descriptor at file offset {offset:#x}) is corrupted: it fails authentication although the key is right (the completion data opens)"
    )]
    CpuNoteCorrupted {
        /// CPU number (note order).
        cpu: usize,
        /// File offset of the note descriptor.
        offset: u64,
    },
}

impl OpenError {
    /// True for "wrong key" (as opposed to a damaged dump).
    pub fn is_key_mismatch(&self) -> bool {
        matches!(self, OpenError::KeyMismatch { .. })
    }
}

/// One decrypted CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpu {
    /// Note-order index (0-based).
    pub index: usize,
    /// QEMU's pid from the PRSTATUS in the same group.
    pub qemu_pid: Option<u32>,
    /// The decrypted registers.
    pub regs: CpuRegisters,
}

/// A dump whose keys are unwrapped: a [`PageSource`] of plaintext memory.
pub struct OpenedDump<'a> {
    dump: PvDump<'a>,
    cipher: PageCipher,
    cpus: Vec<Cpu>,
    counts: PageCounts,
    blocks: Vec<MemoryBlock>,
}

impl std::fmt::Debug for OpenedDump<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedDump")
            .field("cpus", &self.cpus.len())
            .field("counts", &self.counts)
            .field("blocks", &self.blocks)
            .finish_non_exhaustive()
    }
}

/// Verifies the key without decrypting anything else: `Ok` when the completion data opens.
pub fn check_key(dump: &PvDump<'_>, cck: &Cck) -> Result<(), OpenError> {
    let compl = dump.completion()?;
    let key = DumpKey::derive(cck, &compl.fields.seed);
    open_completion(&key, &compl)
        .map(drop)
        .map_err(|_| diagnose(dump, &key, compl.offset))
}

/// Decides between "wrong key" and "damaged completion data" by trying the CPU notes.
fn diagnose(dump: &PvDump<'_>, key: &DumpKey, offset: u64) -> OpenError {
    let mut tried = 0;
    for note in dump.cpus() {
        let Ok(v1) = note.dump_v1() else { continue };
        tried += 1;
        if open_cpu(key, &v1).is_ok() {
            return OpenError::CompletionCorrupted {
                offset,
                cpu: note.index,
            };
        }
    }
    OpenError::KeyMismatch {
        offset,
        cpus_tried: tried,
    }
}

impl<'a> OpenedDump<'a> {
    /// Unwraps the keys, decrypts every CPU note and checks every page state.
    pub fn open(dump: PvDump<'a>, cck: &Cck) -> Result<Self, OpenError> {
        let compl = dump.completion()?;
        let key = DumpKey::derive(cck, &compl.fields.seed);
        let secrets = open_completion(&key, &compl).map_err(|_| diagnose(&dump, &key, compl.offset))?;
        let mut cpus = Vec::with_capacity(dump.cpus().len());
        for note in dump.cpus() {
            let v1 = note.dump_v1()?;
            let regs = open_cpu(&key, &v1).map_err(|_| OpenError::CpuNoteCorrupted {
                cpu: note.index,
                offset: note.desc_offset,
            })?;
            cpus.push(Cpu {
                index: note.index,
                qemu_pid: note.qemu_pid,
                regs,
            });
        }
        let counts = dump.page_counts()?;
        let blocks = dump
            .loads()
            .iter()
            .map(|l| {
                // Whole page frames: a zero tail may end inside a page, and a segment QEMU
                // would not write may start inside one; both are rounded out (PvDump checked
                // that this neither overflows nor makes two segments share a frame).
                let (first, end) = frames_of(l);
                MemoryBlock {
                    paddr: first * PAGE_SIZE,
                    size: (end - first) * PAGE_SIZE,
                }
            })
            .collect();
        Ok(OpenedDump {
            dump,
            cipher: PageCipher::new(&secrets.xts_key, secrets.nonce),
            cpus,
            counts,
            blocks,
        })
    }

    /// The decrypted CPUs, in note order.
    pub fn cpus(&self) -> &[Cpu] {
        &self.cpus
    }

    /// Page-state counts (all states were validated by `open`).
    pub fn page_counts(&self) -> PageCounts {
        self.counts
    }

    /// The parsed dump.
    pub fn dump(&self) -> &PvDump<'a> {
        &self.dump
    }

    /// VMCOREINFO from the decrypted memory, if the kernel left one.
    pub fn vmcoreinfo(&self) -> Result<Option<Vmcoreinfo>, FormatError> {
        find_vmcoreinfo(self)
    }

    /// The page cipher (for benchmarks and cross-checks).
    pub fn cipher(&self) -> &PageCipher {
        &self.cipher
    }
}

impl PageSource for OpenedDump<'_> {
    fn blocks(&self) -> &[MemoryBlock] {
        &self.blocks
    }

    fn read_pages(&self, paddr: u64, out: &mut [u8], zero: &mut [bool]) -> Result<(), FormatError> {
        let idx = self.blocks.partition_point(|b| b.end() <= paddr);
        let (load, block) = self
            .dump
            .loads()
            .get(idx)
            .zip(self.blocks.get(idx))
            .filter(|(_, b)| b.paddr <= paddr)
            .ok_or_else(|| FormatError::outside_memory(paddr))?;
        let (pages, _) = out.as_chunks_mut::<{ PAGE_SIZE as usize }>();
        for (i, (page, z)) in pages.iter_mut().zip(zero.iter_mut()).enumerate() {
            let addr = paddr + i as u64 * PAGE_SIZE;
            if addr >= block.end() {
                return Err(FormatError::outside_memory(addr));
            }
            // Where the frame starts in the segment's file pages (negative: before p_paddr).
            let start = i128::from(addr) - i128::from(load.paddr);
            if start >= 0 && (start as u64).is_multiple_of(PAGE_SIZE) && (start as u64 + PAGE_SIZE) <= load.filesz {
                // The frame is one whole file page (every page of a segment QEMU writes).
                *z = self.file_page(load, start as u64 / PAGE_SIZE, page)?;
            } else {
                *z = self.partial_frame(load, start, page)?;
            }
        }
        Ok(())
    }
}

impl OpenedDump<'_> {
    /// Decrypts file page `k` of `load` (counted from the segment's start) into `page`;
    /// returns whether the page is a zero page by its state.
    fn file_page(&self, load: &LoadSegment, k: u64, page: &mut [u8; PAGE_SIZE as usize]) -> Result<bool, FormatError> {
        let pfn = load.paddr / PAGE_SIZE + k;
        match self.dump.page_state(pfn)? {
            PageState::Zero { .. } => {
                page.fill(0);
                Ok(true)
            }
            PageState::Shared { .. } => {
                page.copy_from_slice(self.dump.page_bytes(load, pfn)?);
                Ok(false)
            }
            PageState::Encrypted { component } => {
                let src: &[u8; PAGE_SIZE as usize] = self
                    .dump
                    .page_bytes(load, pfn)?
                    .try_into()
                    .map_err(|_| FormatError::outside_memory(pfn * PAGE_SIZE))?;
                self.cipher.decrypt_page_from(&component, src, page);
                Ok(false)
            }
        }
    }

    /// A page frame that is not one whole file page: the frame holding p_paddr of a segment
    /// that starts inside a page, the one holding its last file byte when p_filesz is not
    /// whole pages, or one of the zero tail. File pages are decrypted whole, as zgetdump
    /// decrypts them, and only the bytes within p_filesz are kept; everything else is zero.
    /// `start` is the frame's offset from p_paddr. Returns whether the frame is all zero.
    fn partial_frame(
        &self,
        load: &LoadSegment,
        start: i128,
        frame: &mut [u8; PAGE_SIZE as usize],
    ) -> Result<bool, FormatError> {
        const P: i128 = PAGE_SIZE as i128;
        frame.fill(0);
        // Plaintext of a whole file page, of which only part is kept: wiped when dropped.
        let mut file_page = zeroize::Zeroizing::new([0u8; PAGE_SIZE as usize]);
        let end = start + P;
        let first_k = start.div_euclid(P).max(0);
        let last_k = (end - 1).div_euclid(P).min(i128::from(file_pages(load)) - 1);
        for k in first_k..=last_k {
            let page_start = k * P;
            // The bytes of file page k that lie in this frame and within p_filesz.
            let lo = page_start.max(start);
            let hi = (page_start + P).min(end).min(i128::from(load.filesz));
            if lo >= hi {
                continue;
            }
            self.file_page(load, k as u64, &mut file_page)?;
            let (src, dst) = ((lo - page_start) as usize, (lo - start) as usize);
            let n = (hi - lo) as usize;
            frame[dst..dst + n].copy_from_slice(&file_page[src..src + n]);
        }
        Ok(frame.iter().all(|&b| b == 0))
    }
}
