//! Sealing a real plain dump: the simulated Ultravisor applied to memory and registers that
//! come from elsewhere (a plain s390x ELF vmcore of a real Linux guest, as QEMU's
//! `dump-guest-memory` writes it for a normal guest), so pvdump's decryption can be checked
//! against real kernels with real readers (drgn, crash, libkdumpfile).
//!
//! The output is what QEMU and the Ultravisor would have written had the same guest run in
//! Secure Execution: the QEMU PV layout ([`crate::pvelf`]) with the plain dump's memory
//! blocks as PT_LOADs, per CPU QEMU's hypervisor-view notes (decoy values, the plain dump's
//! pr_pid) and an NT_S390_PV_CPU_DATA note sealing the CPU's registers from the plain dump's
//! notes, `pv_mem_meta` with one tweak component per page, `pv_compl` wrapping the XTS key.
//! Page states: an all-zero page is marked zero (its file bytes are zeros), a seeded share
//! of the other pages is left shared (plaintext), every other page is encrypted with
//! AES-XTS under its guest address as tweak component, as the Ultravisor does.
//!
//! Memory is streamed: one chunk of pages is held at a time, plus the tweak table (16 bytes
//! per page), whatever the dump size.

use std::io::{self, Write};

use pvdump_crypto::{DumpKey, PageCipher, seal_completion, seal_cpu};
use pvdump_format::consts::{CPU_DUMP_MAX_SIZE, CPU_DUMP_V1_SIZE, PAGE_SIZE};
use pvdump_format::{FormatError, MemoryBlock, PageSource, PageState, PlainElf, cpus_from_notes};

use crate::pvelf::{PV_SHSTRTAB, PvElfLayout, qemu_cpu_notes};
use crate::spec::{Rng, cck_for, mix, secrets_for};

/// Pages read from the plain dump at a time.
const CHUNK_PAGES: u64 = 256;

/// How to seal a plain dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealOptions {
    /// Seed of the key material, the GCM IVs and the choice of shared pages.
    pub seed: u64,
    /// Mark all-zero pages as zero pages (else they are encrypted like any other).
    pub zero_pages: bool,
    /// Share of the non-zero pages left shared (plaintext), per mille.
    pub shared_permille: u32,
    /// n_descsz of each NT_S390_PV_CPU_DATA note (1568..=4096).
    pub cpu_note_len: usize,
    /// ELF e_ehsize (QEMU writes 8).
    pub ehsize: u16,
}

impl Default for SealOptions {
    /// Seed 0x5ea1, zero pages marked, 1 % of the pages shared, 1568-byte CPU notes,
    /// e_ehsize 8.
    fn default() -> Self {
        SealOptions {
            seed: 0x5ea1,
            zero_pages: true,
            shared_permille: 10,
            cpu_note_len: CPU_DUMP_V1_SIZE,
            ehsize: 8,
        }
    }
}

impl SealOptions {
    /// The customer communication key the dump is sealed with.
    pub fn cck(&self) -> [u8; 32] {
        cck_for(self.seed)
    }
}

/// What a seal wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sealed {
    /// Bytes written.
    pub file_len: u64,
    /// CPUs sealed.
    pub cpus: usize,
    /// Pages encrypted.
    pub encrypted: u64,
    /// Pages marked zero.
    pub zero: u64,
    /// Pages left shared.
    pub shared: u64,
}

/// Why a plain dump cannot be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The plain dump's structure, notes or memory cannot be read.
    #[error("plain dump: {0}")]
    Format(#[from] FormatError),
    /// Its notes hold no NT_PRSTATUS, so there are no registers to seal.
    #[error("plain dump: its notes hold no NT_PRSTATUS (\"CORE\"), so there are no CPU registers to seal")]
    NoCpus,
    /// Its memory does not start on a page or is empty.
    #[error("plain dump: it holds no memory")]
    NoMemory,
    /// A CPU note length outside what the Ultravisor reports.
    #[error("CPU note length {0} is outside {CPU_DUMP_V1_SIZE}..={CPU_DUMP_MAX_SIZE}")]
    CpuNoteLen(usize),
    /// Writing the output failed.
    #[error("writing the sealed dump: {0}")]
    Io(#[from] io::Error),
}

/// Seals the memory and CPU registers of `plain` into an encrypted QEMU PV dump written to
/// `w` (see the module documentation), keyed by [`SealOptions::cck`].
pub fn seal_plain<W: Write>(plain: &PlainElf<'_>, opts: &SealOptions, w: &mut W) -> Result<Sealed, SealError> {
    if !(CPU_DUMP_V1_SIZE..=CPU_DUMP_MAX_SIZE as usize).contains(&opts.cpu_note_len) {
        return Err(SealError::CpuNoteLen(opts.cpu_note_len));
    }
    let cpus = cpus_from_notes(plain.core().notes())?;
    if cpus.is_empty() {
        return Err(SealError::NoCpus);
    }
    let blocks: Vec<MemoryBlock> = plain.blocks().to_vec();
    let max_pfn = blocks.iter().map(|b| b.end() / PAGE_SIZE).max().unwrap_or(0);
    if max_pfn == 0 {
        return Err(SealError::NoMemory);
    }

    let (cck, hkdf_seed, iv, secrets) = secrets_for(opts.seed);
    let key = DumpKey::derive(&cck, &hkdf_seed);
    let mut notes = Vec::new();
    let mut ivs = Rng::new(mix(opts.seed, 4));
    for c in &cpus {
        let desc = seal_cpu(&key, ivs.bytes(), &c.regs, opts.cpu_note_len);
        qemu_cpu_notes(&mut notes, c.pid, &desc);
    }
    let compl = seal_completion(&key, &hkdf_seed, iv, &secrets);
    let layout = PvElfLayout::new(&blocks, notes.len() as u64, max_pfn * 16, compl.len() as u64);
    w.write_all(&layout.header_bytes(&notes, opts.ehsize))?;

    let cipher = PageCipher::new(&secrets.xts_key, secrets.nonce);
    let mut meta = vec![0u8; (max_pfn * 16) as usize];
    let mut chunk = vec![0u8; (CHUNK_PAGES * PAGE_SIZE) as usize];
    let mut zero_flags = vec![false; CHUNK_PAGES as usize];
    let mut sealed = Sealed {
        file_len: layout.file_len,
        cpus: cpus.len(),
        ..Sealed::default()
    };
    for b in &blocks {
        let mut addr = b.paddr;
        while addr < b.end() {
            let pages = ((b.end() - addr) / PAGE_SIZE).min(CHUNK_PAGES) as usize;
            let buf = &mut chunk[..pages * PAGE_SIZE as usize];
            plain.read_pages(addr, buf, &mut zero_flags[..pages])?;
            let (page_arrays, _) = buf.as_chunks_mut::<{ PAGE_SIZE as usize }>();
            for (i, page) in page_arrays.iter_mut().enumerate() {
                let pfn = addr / PAGE_SIZE + i as u64;
                let state = page_state(opts, pfn, zero_flags[i] || page.iter().all(|&x| x == 0));
                match state {
                    PageState::Encrypted { component } => {
                        cipher.encrypt_page(&component, page);
                        sealed.encrypted += 1;
                    }
                    PageState::Zero { .. } => sealed.zero += 1,
                    PageState::Shared { .. } => sealed.shared += 1,
                }
                meta[(pfn * 16) as usize..(pfn * 16 + 16) as usize].copy_from_slice(&state.to_component());
            }
            w.write_all(buf)?;
            addr += pages as u64 * PAGE_SIZE;
        }
    }
    w.write_all(&meta)?;
    w.write_all(&compl)?;
    w.write_all(PV_SHSTRTAB)?;
    Ok(sealed)
}

/// The state the simulated Ultravisor gives page frame `pfn`.
fn page_state(opts: &SealOptions, pfn: u64, zero: bool) -> PageState {
    if zero && opts.zero_pages {
        return PageState::Zero { mapped: false };
    }
    // The lowcore stays encrypted, like the memory of any secure guest.
    if pfn != 0 && Rng::new(mix(opts.seed ^ 0x5a4e, pfn)).permille() < opts.shared_permille {
        return PageState::Shared { mapped: true };
    }
    let mut component = [0u8; 16];
    component[8..].copy_from_slice(&(pfn * PAGE_SIZE).to_be_bytes());
    PageState::Encrypted { component }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvdump_format::consts::{NT_PRPSINFO, NT_VMCOREINFO, PT_LOAD, PT_NOTE};
    use pvdump_format::layout::elf::{
        ProgramHeader, file_header_bytes, program_header_bytes, push_note, s390x_core_header,
    };
    use pvdump_format::layout::s390::push_cpu_notes;
    use pvdump_format::vmcoreinfo::LC_VMCORE_INFO;
    use pvdump_format::{CpuRegisters, PvDump};

    fn regs(seed: u64) -> CpuRegisters {
        let mut r = Rng::new(seed);
        CpuRegisters {
            gprs: std::array::from_fn(|_| r.next_u64()),
            psw: [0x0704_0000_8000_0000, r.next_u64()],
            prefix: (seed as u32 + 1) << 13,
            fpc: 7,
            todpreg: 0x1234,
            timer: r.next_u64(),
            todcmp: r.next_u64(),
            acrs: std::array::from_fn(|i| i as u32),
            ctrs: std::array::from_fn(|_| r.next_u64()),
            fprs: std::array::from_fn(|_| r.next_u64()),
            vxrs_low: std::array::from_fn(|_| r.next_u64()),
            vxrs_high: std::array::from_fn(|_| r.bytes()),
            gs_cb: [0, 1, 2, 3],
            has_osii: false,
        }
    }

    /// A plain ELF like QEMU's for a normal guest: PT_NOTE with two CPUs, one PT_LOAD of
    /// `pages` pages at 0 with zero pages, text, and a VMCOREINFO note pointed to by 0xE0C.
    fn plain_elf(pages: u64) -> (Vec<u8>, Vec<u8>, Vec<(u32, CpuRegisters)>) {
        let cpus = vec![(1, regs(1)), (2, regs(2))];
        let mut notes = Vec::new();
        push_note(&mut notes, "CORE", NT_PRPSINFO, &[0; 136]);
        for (pid, r) in &cpus {
            push_cpu_notes(&mut notes, *pid, r);
        }
        let mut mem = vec![0u8; (pages * PAGE_SIZE) as usize];
        let mut rng = Rng::new(99);
        for pfn in 0..pages {
            if pfn % 3 == 1 {
                continue; // a zero page
            }
            let p = &mut mem[(pfn * PAGE_SIZE) as usize..((pfn + 1) * PAGE_SIZE) as usize];
            rng.fill(&mut p[..1024]);
        }
        let mut vmci = Vec::new();
        push_note(
            &mut vmci,
            "VMCOREINFO",
            NT_VMCOREINFO,
            b"OSRELEASE=6.1.0-test\nPAGESIZE=4096\n",
        );
        mem[0x5000..0x5000 + vmci.len()].copy_from_slice(&vmci);
        mem[LC_VMCORE_INFO as usize..LC_VMCORE_INFO as usize + 8].copy_from_slice(&0x5000u64.to_be_bytes());

        let mut h = s390x_core_header();
        h.e_phoff = 64;
        h.e_phnum = 2;
        let note_off = 64 + 2 * 56;
        let mem_off = (note_off + notes.len() as u64).next_multiple_of(PAGE_SIZE);
        let mut f = file_header_bytes(&h).to_vec();
        let ph = |p_type, off, size| ProgramHeader {
            p_type,
            p_offset: off,
            p_filesz: size,
            p_memsz: size,
            ..ProgramHeader::default()
        };
        f.extend_from_slice(&program_header_bytes(&ph(PT_NOTE, note_off, notes.len() as u64)));
        f.extend_from_slice(&program_header_bytes(&ph(PT_LOAD, mem_off, pages * PAGE_SIZE)));
        f.extend_from_slice(&notes);
        f.resize(mem_off as usize, 0);
        f.extend_from_slice(&mem);
        (f, mem, cpus)
    }

    #[test]
    fn seals_what_pvdump_decrypts_exactly() {
        let (elf, mem, cpus) = plain_elf(40);
        let plain = PlainElf::parse(&elf).unwrap();
        let opts = SealOptions {
            shared_permille: 200,
            ..SealOptions::default()
        };
        let mut out = Vec::new();
        let sealed = seal_plain(&plain, &opts, &mut out).unwrap();
        assert_eq!(sealed.file_len, out.len() as u64);
        assert_eq!(sealed.cpus, 2);
        assert_eq!(sealed.zero, 13, "every all-zero page is marked zero");
        assert!(sealed.shared > 0 && sealed.encrypted > sealed.shared, "{sealed:?}");
        assert_eq!(sealed.zero + sealed.shared + sealed.encrypted, 40);

        // The ciphertext differs from the plaintext wherever a page is encrypted.
        let pv = PvDump::parse(&out).unwrap();
        let load = pv.loads()[0];
        assert_ne!(pv.page_bytes(&load, 0).unwrap(), &mem[..4096]);

        let cck = pvdump_crypto::Cck::from_bytes(opts.cck());
        let dump = pvdump_core::Dump::from_bytes(out, Some(&cck)).unwrap();
        assert_eq!(dump.kind(), pvdump_core::DumpKind::EncryptedPv);
        let mut got = vec![0u8; mem.len()];
        dump.read_phys(0, &mut got).unwrap();
        assert!(got == mem, "memory differs");
        let got_cpus: Vec<(Option<u32>, CpuRegisters)> =
            dump.cpus().unwrap().into_iter().map(|c| (c.pid, c.regs)).collect();
        let want: Vec<(Option<u32>, CpuRegisters)> = cpus.into_iter().map(|(p, r)| (Some(p), r)).collect();
        assert_eq!(got_cpus, want);
        let v = dump.vmcoreinfo().unwrap();
        assert_eq!(v.osrelease(), Some("6.1.0-test"));
        assert_eq!(v.source, pvdump_format::VmcoreinfoSource::LowcoreNote { note: 0x5000 });
    }

    #[test]
    fn refuses_a_dump_without_registers_or_with_a_bad_note_length() {
        let (elf, ..) = plain_elf(8);
        let plain = PlainElf::parse(&elf).unwrap();
        let bad = SealOptions {
            cpu_note_len: 100,
            ..SealOptions::default()
        };
        assert!(matches!(
            seal_plain(&plain, &bad, &mut Vec::new()),
            Err(SealError::CpuNoteLen(100))
        ));
        // Without notes: no CPUs.
        let mut no_notes = elf.clone();
        no_notes[64..68].copy_from_slice(&0u32.to_be_bytes()); // PT_NOTE -> PT_NULL
        let plain = PlainElf::parse(&no_notes).unwrap();
        assert!(matches!(
            seal_plain(&plain, &SealOptions::default(), &mut Vec::new()),
            Err(SealError::NoCpus)
        ));
    }
}
