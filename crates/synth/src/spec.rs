//! The simulated Ultravisor: builds complete, deterministic encrypted PV dumps laid out as
//! QEMU writes them, with known plaintext. Fixtures, property tests, fuzz seeds and
//! benchmarks all come from here.
//!
//! Every page's kind and plaintext is a pure function of (seed, page frame), so a 4 GiB dump
//! can be generated and later verified without holding it in memory.

use std::io::{self, Write};

use pvdump_crypto::{Cck, CompletionSecrets, DumpKey, PageCipher, XtsKey, seal_completion, seal_cpu};
use pvdump_format::consts::PAGE_SIZE;
use pvdump_format::vmcoreinfo::{LC_OS_INFO, LC_VMCORE_INFO, OS_INFO_MAGIC, cksm};
use pvdump_format::{CpuRegisters, MemoryBlock, PageState};

use pvdump_format::layout::elf::push_note;

use crate::pvelf::{PV_SHSTRTAB, PvElfLayout, qemu_cpu_notes};

/// SplitMix64: small, fast, deterministic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
    /// N random bytes.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
    /// Uniform in [0, 1000).
    pub fn permille(&mut self) -> u32 {
        (self.next_u64() % 1000) as u32
    }
}

/// The customer key a dump made from `seed` is sealed with.
pub(crate) fn cck_for(seed: u64) -> [u8; 32] {
    Rng::new(mix(seed, 1)).bytes()
}

/// The Ultravisor's secrets for `seed`: the customer key, the HKDF seed, the completion
/// data's GCM IV, and the XTS key and tweak nonce it wraps.
pub(crate) fn secrets_for(seed: u64) -> (Cck, [u8; 64], [u8; 12], CompletionSecrets) {
    let mut r = Rng::new(mix(seed, 3));
    let hkdf_seed: [u8; 64] = r.bytes();
    let iv: [u8; 12] = r.bytes();
    let nonce: [u8; 16] = r.bytes();
    let xts = XtsKey::from_bytes(r.bytes());
    (
        Cck::from_bytes(cck_for(seed)),
        hkdf_seed,
        iv,
        CompletionSecrets { nonce, xts_key: xts },
    )
}

pub(crate) fn mix(a: u64, b: u64) -> u64 {
    Rng::new(a ^ b.wrapping_mul(0xd6e8_feb8_6659_fd93)).next_u64()
}

/// How tweak components of encrypted pages are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TweakStyle {
    /// Component = guest address (big-endian u64 in bytes 8..16), as the UV does.
    Address,
    /// Random 16 bytes (bytes 0..4 never all 0xff).
    Random,
}

/// What plaintext pages look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Incompressible random bytes.
    Random,
    /// Kernel-like memory: text, small integers and runs, compresses 3-5x.
    Compressible,
}

/// Where to place VMCOREINFO in guest memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmcoreinfoPlacement {
    /// `os_info` at a page pointed to by 0xE18; text in the page after it.
    OsInfo,
    /// An ELF note pointed to by the u64 at 0xE0C.
    LowcoreNote,
}

/// Everything that defines a synthetic dump.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// Seed of every random choice.
    pub seed: u64,
    /// Memory blocks (one PT_LOAD each).
    pub blocks: Vec<MemoryBlock>,
    /// Number of CPUs.
    pub cpus: usize,
    /// Share of zero pages, per mille.
    pub zero_permille: u32,
    /// Share of shared (plaintext) pages, per mille.
    pub shared_permille: u32,
    /// Share of zero/shared pages that also carry the mapped flag.
    pub mapped_permille: u32,
    /// How tweak components are chosen.
    pub tweak_style: TweakStyle,
    /// Zero pages hold garbage bytes in the file (the UV says they are zero anyway).
    pub zero_fill_garbage: bool,
    /// CPUs whose state carries the has_osii flag.
    pub osii_cpus: Vec<usize>,
    /// VMCOREINFO text and where to place it.
    pub vmcoreinfo: Option<(VmcoreinfoPlacement, String)>,
    /// What plaintext pages look like.
    pub content: Content,
    /// n_descsz of each NT_S390_PV_CPU_DATA note (≥ 1568).
    pub cpu_note_len: usize,
    /// ELF e_ehsize (QEMU writes 8).
    pub ehsize: u16,
}

impl SynthSpec {
    /// A one-block dump of `mib` MiB with typical page-state shares.
    pub fn simple(seed: u64, mib: u64, cpus: usize) -> Self {
        SynthSpec {
            seed,
            blocks: vec![MemoryBlock {
                paddr: 0,
                size: mib << 20,
            }],
            cpus,
            zero_permille: 200,
            shared_permille: 50,
            mapped_permille: 0,
            tweak_style: TweakStyle::Address,
            zero_fill_garbage: false,
            osii_cpus: Vec::new(),
            vmcoreinfo: None,
            content: Content::Random,
            cpu_note_len: 1568,
            ehsize: 8,
        }
    }

    /// The customer key of this dump.
    pub fn cck(&self) -> [u8; 32] {
        cck_for(self.seed)
    }

    /// The CPUs' registers.
    pub fn cpu_registers(&self) -> Vec<CpuRegisters> {
        let mut r = Rng::new(mix(self.seed, 2));
        (0..self.cpus)
            .map(|i| {
                // Field order = draw order: keep it stable, fixtures depend on it.
                CpuRegisters {
                    gprs: std::array::from_fn(|_| r.next_u64()),
                    psw: [r.next_u64(), r.next_u64()],
                    prefix: (r.next_u64() as u32) & 0x7fff_e000,
                    fpc: r.next_u64() as u32,
                    todpreg: r.next_u64() as u32 & 0xffff,
                    timer: r.next_u64(),
                    todcmp: r.next_u64(),
                    acrs: std::array::from_fn(|_| r.next_u64() as u32),
                    ctrs: std::array::from_fn(|_| r.next_u64()),
                    fprs: std::array::from_fn(|_| r.next_u64()),
                    vxrs_low: std::array::from_fn(|_| r.next_u64()),
                    vxrs_high: std::array::from_fn(|_| r.bytes()),
                    gs_cb: [0, r.next_u64(), r.next_u64(), r.next_u64()],
                    has_osii: self.osii_cpus.contains(&i),
                }
            })
            .collect()
    }

    fn secrets(&self) -> (Cck, [u8; 64], [u8; 12], CompletionSecrets) {
        secrets_for(self.seed)
    }

    /// Pages that hold the VMCOREINFO structures and must be encrypted.
    fn overlays(&self) -> Vec<(u64, Vec<u8>)> {
        let mut v = Vec::new();
        let Some((placement, text)) = &self.vmcoreinfo else {
            return v;
        };
        let base = 0x10000u64;
        match placement {
            VmcoreinfoPlacement::OsInfo => {
                let text_addr = base + PAGE_SIZE;
                let mut os = vec![0u8; 4096];
                os[0..8].copy_from_slice(&OS_INFO_MAGIC.to_be_bytes());
                os[12..14].copy_from_slice(&1u16.to_be_bytes());
                os[32..40].copy_from_slice(&text_addr.to_be_bytes());
                os[40..48].copy_from_slice(&(text.len() as u64).to_be_bytes());
                os[48..52].copy_from_slice(&cksm(text.as_bytes()).to_be_bytes());
                let c = cksm(&os[12..]);
                os[8..12].copy_from_slice(&c.to_be_bytes());
                v.push((LC_OS_INFO, base.to_be_bytes().to_vec()));
                v.push((base, os));
                v.push((text_addr, text.as_bytes().to_vec()));
            }
            VmcoreinfoPlacement::LowcoreNote => {
                let mut note = Vec::new();
                push_note(&mut note, "VMCOREINFO", 0, text.as_bytes());
                v.push((LC_VMCORE_INFO, base.to_be_bytes().to_vec()));
                v.push((base, note));
            }
        }
        v
    }

    fn overlay_pages(&self) -> Vec<u64> {
        let mut p: Vec<u64> = self
            .overlays()
            .iter()
            .flat_map(|(a, b)| (a / PAGE_SIZE)..=((a + b.len() as u64 - 1) / PAGE_SIZE))
            .collect();
        p.sort();
        p.dedup();
        p
    }

    /// The page state the simulated UV records for page frame `pfn`.
    pub fn page_state(&self, pfn: u64, overlay_pages: &[u64]) -> PageState {
        let mut r = Rng::new(mix(self.seed ^ 0x5eed, pfn));
        let roll = r.permille();
        let mapped = r.permille() < self.mapped_permille;
        let forced = pfn == 0 || overlay_pages.binary_search(&pfn).is_ok();
        if !forced && roll < self.zero_permille {
            return PageState::Zero { mapped };
        }
        if !forced && roll < self.zero_permille + self.shared_permille {
            return PageState::Shared { mapped };
        }
        let component = match self.tweak_style {
            TweakStyle::Address => {
                let mut c = [0u8; 16];
                c[8..].copy_from_slice(&(pfn * PAGE_SIZE).to_be_bytes());
                c
            }
            TweakStyle::Random => {
                let mut c: [u8; 16] = r.bytes();
                if c[..4] == [0xff; 4] {
                    c[0] = 0;
                }
                c
            }
        };
        PageState::Encrypted { component }
    }

    /// The plaintext of page frame `pfn` (before encryption).
    pub fn plaintext_page(&self, pfn: u64, state: &PageState, overlays: &[(u64, Vec<u8>)], page: &mut [u8; 4096]) {
        if matches!(state, PageState::Zero { .. }) {
            page.fill(0);
            return;
        }
        let mut r = Rng::new(mix(self.seed ^ 0xc0de, pfn));
        match self.content {
            Content::Random => r.fill(page),
            Content::Compressible => {
                const WORDS: [&[u8]; 8] = [
                    b"task_struct ",
                    b"\0\0\0\0\0\0\0\0",
                    b"kmalloc-64 ",
                    b"\xff\xff\xff\xff",
                    b"swapper/0 ",
                    b"\0\0\0\0\0\0\0\x01",
                    b"ext4_inode ",
                    b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                ];
                let mut pos = 0;
                while pos < page.len() {
                    let v = r.next_u64();
                    let w: &[u8] = if v.is_multiple_of(5) {
                        &v.to_be_bytes()[..4]
                    } else {
                        WORDS[(v >> 8) as usize % WORDS.len()]
                    };
                    let n = w.len().min(page.len() - pos);
                    page[pos..pos + n].copy_from_slice(&w[..n]);
                    pos += n;
                }
            }
        }
        let start = pfn * PAGE_SIZE;
        for (addr, bytes) in overlays {
            let end = addr + bytes.len() as u64;
            if *addr < start + PAGE_SIZE && end > start {
                let from = (*addr).max(start);
                let to = end.min(start + PAGE_SIZE);
                page[(from - start) as usize..(to - start) as usize]
                    .copy_from_slice(&bytes[(from - addr) as usize..(to - addr) as usize]);
            }
        }
    }

    /// Calls `f(pfn, plaintext)` for every page of every block, in address order.
    pub fn for_each_plain_page(&self, mut f: impl FnMut(u64, &[u8; 4096])) {
        let overlays = self.overlays();
        let op = self.overlay_pages();
        let mut page = [0u8; 4096];
        for b in &self.blocks {
            for pfn in b.paddr / PAGE_SIZE..b.end() / PAGE_SIZE {
                let st = self.page_state(pfn, &op);
                self.plaintext_page(pfn, &st, &overlays, &mut page);
                f(pfn, &page);
            }
        }
    }

    /// Writes the encrypted dump. Memory is produced page by page: nothing in proportion to
    /// the dump size is held except the tweak table (16 bytes per page).
    pub fn write_dump<W: Write>(&self, w: &mut W) -> io::Result<u64> {
        let (cck, seed, iv, secrets) = self.secrets();
        let key = DumpKey::derive(&cck, &seed);
        let regs = self.cpu_registers();
        let mut notes = Vec::new();
        let mut r = Rng::new(mix(self.seed, 4));
        for (i, c) in regs.iter().enumerate() {
            let desc = seal_cpu(&key, r.bytes(), c, self.cpu_note_len);
            qemu_cpu_notes(&mut notes, i as u32 + 1, &desc);
        }
        let compl = seal_completion(&key, &seed, iv, &secrets);
        let max_pfn = self.blocks.iter().map(|b| b.end() / PAGE_SIZE).max().unwrap_or(0);
        let layout = PvElfLayout::new(&self.blocks, notes.len() as u64, max_pfn * 16, compl.len() as u64);
        w.write_all(&layout.header_bytes(&notes, self.ehsize))?;
        let cipher = PageCipher::new(&secrets.xts_key, secrets.nonce);
        let overlays = self.overlays();
        let op = self.overlay_pages();
        let mut meta = vec![0u8; (max_pfn * 16) as usize];
        let mut page = [0u8; 4096];
        for b in &self.blocks {
            for pfn in b.paddr / PAGE_SIZE..b.end() / PAGE_SIZE {
                let st = self.page_state(pfn, &op);
                self.plaintext_page(pfn, &st, &overlays, &mut page);
                match st {
                    PageState::Encrypted { component } => cipher.encrypt_page(&component, &mut page),
                    PageState::Zero { .. } if self.zero_fill_garbage => {
                        Rng::new(mix(self.seed ^ 0x6a6, pfn)).fill(&mut page)
                    }
                    _ => {}
                }
                meta[(pfn * 16) as usize..(pfn * 16 + 16) as usize].copy_from_slice(&st.to_component());
                w.write_all(&page)?;
            }
        }
        w.write_all(&meta)?;
        w.write_all(&compl)?;
        w.write_all(PV_SHSTRTAB)?;
        Ok(layout.file_len)
    }

    /// Convenience: the whole dump in memory (small dumps only).
    pub fn dump_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_dump(&mut v).expect("writing to a Vec cannot fail");
        v
    }

    /// Convenience: the whole plaintext, indexed from guest address 0 (holes are zero).
    pub fn expected_memory(&self) -> Vec<u8> {
        let end = self.blocks.iter().map(|b| b.end()).max().unwrap_or(0);
        let mut v = vec![0u8; end as usize];
        self.for_each_plain_page(|pfn, p| {
            let a = (pfn * PAGE_SIZE) as usize;
            v[a..a + 4096].copy_from_slice(p);
        });
        v
    }
}
