//! [`Dump`]: one owned handle over any dump pvdump reads.

use std::path::Path;

use pvdump_crypto::{Cck, OpenedDump};
use pvdump_format::consts::{NT_PRSTATUS, NT_VMCOREINFO, SECTION_PV_COMPL, SECTION_PV_MEM_META};
use pvdump_format::layout::elf::push_note;
use pvdump_format::{
    CpuRegisters, ElfCore, FormatError, KdumpFile, MemoryBlock, PageCounts, PageSource, PlainElf, PvDump, Utsname,
    Vmcoreinfo, VmcoreinfoSource, find_vmcoreinfo, guest_utsname, read_phys,
};
use pvdump_vmcore::kdump::{VERSION_PLACEHOLDER, placeholder_utsname};
use pvdump_vmcore::{
    ElfImage, KdumpInfo, KdumpStats, NoteBlob, Output, WriteOptions, build_notes, write_elf, write_kdump,
};

use crate::error::Error;
use crate::input::Input;

pub use pvdump_format::Compression;

/// What kind of file a dump is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpKind {
    /// An encrypted QEMU Protected Virtualization dump (an ELF core with `pv_compl`).
    EncryptedPv,
    /// A plain s390x ELF vmcore (pvdump's ELF output, a QEMU dump of a normal guest,
    /// /proc/vmcore).
    PlainElf,
    /// A kdump-compressed file.
    Kdump,
    /// A flattened kdump stream ("makedumpfile -F").
    FlattenedKdump,
}

impl DumpKind {
    /// A short description for messages and `info`.
    pub fn describe(self) -> &'static str {
        match self {
            DumpKind::EncryptedPv => "encrypted Protected Virtualization dump",
            DumpKind::PlainElf => "plain s390x ELF vmcore",
            DumpKind::Kdump => "kdump-compressed",
            DumpKind::FlattenedKdump => "kdump-compressed, flattened (makedumpfile -F)",
        }
    }
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A plain s390x ELF vmcore.
    Elf,
    /// kdump-compressed with this page compression (flattened on a stream).
    Kdump(Compression),
}

/// One CPU of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpu {
    /// Position in note order (0-based).
    pub index: usize,
    /// The pid the dump's notes give it (QEMU's CPU id + 1, or the PRSTATUS pr_pid).
    pub pid: Option<u32>,
    /// Its registers.
    pub regs: CpuRegisters,
}

/// What a write produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Length of the output (of the rebuilt file for a flattened stream).
    pub bytes: u64,
    /// Bytes of guest memory.
    pub memory: u64,
    /// Page statistics of a kdump output.
    pub kdump: Option<KdumpStats>,
}

/// The page source of an opened PV dump during [`Dump::write`]: once the writer has read a
/// run of pages, the page tables of the input map behind them are dropped
/// ([`Input::release`]), on the worker thread that read them.
struct Releasing<'a> {
    inner: &'a (dyn PageSource + 'a),
    input: &'a Input,
    loads: &'a [pvdump_format::LoadSegment],
}

impl PageSource for Releasing<'_> {
    fn blocks(&self) -> &[MemoryBlock] {
        self.inner.blocks()
    }

    fn read_pages(&self, paddr: u64, out: &mut [u8], zero: &mut [bool]) -> Result<(), FormatError> {
        self.inner.read_pages(paddr, out, zero)
    }

    fn release(&self, paddr: u64, len: u64) {
        let end = paddr.saturating_add(len);
        for l in self.loads {
            let (a, b) = (paddr.max(l.paddr), end.min(l.paddr.saturating_add(l.filesz)));
            if a < b {
                self.input.release(l.file_offset.saturating_add(a - l.paddr), b - a);
            }
        }
    }
}

enum Contents<'a> {
    /// An encrypted PV dump without its key: structure only.
    Locked(PvDump<'a>),
    /// An encrypted PV dump opened with its key.
    Opened(Box<OpenedDump<'a>>),
    Plain(PlainElf<'a>),
    Kdump(Box<KdumpFile<'a>>),
}

self_cell::self_cell!(
    struct Cell {
        owner: Input,
        #[covariant]
        dependent: Contents,
    }
);

/// An opened dump: an encrypted PV dump (locked, or unlocked with its key), a plain ELF
/// vmcore or a kdump file. Owns its bytes (usually a memory map); `Send` and `Sync`, so
/// many threads may read memory at once.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pvdump_core::{Dump, Format, Output, WriteOptions, read_key_file};
/// let key = read_key_file("cck.bin".as_ref())?;
/// let dump = Dump::open("guest.elf".as_ref(), Some(&key.cck))?;
/// let mut lowcore = [0u8; 512];
/// dump.read_phys(0, &mut lowcore)?;
/// let file = std::fs::File::create("vmcore")?;
/// dump.write(Format::Elf, &mut Output::File(&file), &WriteOptions::default())?;
/// # Ok(()) }
/// ```
pub struct Dump {
    cell: Cell,
    kind: DumpKind,
    vmcoreinfo: Option<Vmcoreinfo>,
    /// The guest's utsname, looked up on first use.
    utsname: std::sync::OnceLock<Option<Utsname>>,
}

impl std::fmt::Debug for Dump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dump")
            .field("kind", &self.kind)
            .field("len", &self.cell.borrow_owner().bytes().len())
            .finish_non_exhaustive()
    }
}

impl Dump {
    /// Maps `path` and opens it as whatever dump it is. An encrypted PV dump is unlocked
    /// with `key` (checking the completion data, every CPU note and every page state) or,
    /// without a key, opened for inspection only. A key given for another kind of dump is
    /// ignored.
    pub fn open(path: &Path, key: Option<&Cck>) -> Result<Dump, Error> {
        Dump::from_input(Input::map(path)?, key)
    }

    /// Opens bytes held in memory, like [`Dump::open`].
    pub fn from_bytes(bytes: Vec<u8>, key: Option<&Cck>) -> Result<Dump, Error> {
        Dump::from_input(Input::Owned(bytes), key)
    }

    /// Maps `path` and unlocks it as an encrypted PV dump with `key`: what `pvdump decrypt`
    /// does. Any other kind of file is [`FormatError::NotPvDump`].
    pub fn open_encrypted(path: &Path, key: &Cck) -> Result<Dump, Error> {
        Dump::require_encrypted(Dump::open(path, Some(key))?)
    }

    /// [`Dump::open_encrypted`] for bytes held in memory.
    pub fn encrypted_from_bytes(bytes: Vec<u8>, key: &Cck) -> Result<Dump, Error> {
        Dump::require_encrypted(Dump::from_bytes(bytes, Some(key))?)
    }

    fn require_encrypted(dump: Dump) -> Result<Dump, Error> {
        match dump.kind {
            DumpKind::EncryptedPv => Ok(dump),
            _ => Err(FormatError::NotPvDump.into()),
        }
    }

    /// Opens an [`Input`], like [`Dump::open`].
    pub fn from_input(input: Input, key: Option<&Cck>) -> Result<Dump, Error> {
        let mut kind = DumpKind::PlainElf;
        let cell = Cell::try_new(input, |input| -> Result<Contents<'_>, Error> {
            let data = input.bytes();
            if KdumpFile::is_kdump(data) || KdumpFile::is_flattened(data) {
                let k = KdumpFile::parse(data)?;
                kind = if k.is_flat() {
                    DumpKind::FlattenedKdump
                } else {
                    DumpKind::Kdump
                };
                return Ok(Contents::Kdump(Box::new(k)));
            }
            let core = ElfCore::parse(data)?;
            // Either PV section makes it a PV dump: one without `pv_compl` is refused by
            // PvDump with the message that explains what is missing.
            if core.section(SECTION_PV_COMPL).is_none() && core.section(SECTION_PV_MEM_META).is_none() {
                return Ok(Contents::Plain(PlainElf::from_core(core)?));
            }
            kind = DumpKind::EncryptedPv;
            let pv = PvDump::from_core(core)?;
            Ok(match key {
                Some(k) => Contents::Opened(Box::new(OpenedDump::open(pv, k)?)),
                None => Contents::Locked(pv),
            })
        })?;
        let mut dump = Dump {
            cell,
            kind,
            vmcoreinfo: None,
            utsname: std::sync::OnceLock::new(),
        };
        dump.vmcoreinfo = dump.find_vmcoreinfo()?;
        Ok(dump)
    }

    /// What kind of dump this is.
    pub fn kind(&self) -> DumpKind {
        self.kind
    }

    /// Whether this is an encrypted dump opened without its key (no plaintext available).
    pub fn is_locked(&self) -> bool {
        matches!(self.cell.borrow_dependent(), Contents::Locked(_))
    }

    /// The whole input file.
    pub fn bytes(&self) -> &[u8] {
        self.cell.borrow_owner().bytes()
    }

    /// The parsed ELF core (PV dumps and plain ELF vmcores).
    pub fn elf(&self) -> Option<&ElfCore<'_>> {
        match self.cell.borrow_dependent() {
            Contents::Locked(pv) => Some(pv.core()),
            Contents::Opened(o) => Some(o.dump().core()),
            Contents::Plain(p) => Some(p.core()),
            Contents::Kdump(_) => None,
        }
    }

    /// The PV structure (encrypted dumps, locked or not).
    pub fn pv(&self) -> Option<&PvDump<'_>> {
        match self.cell.borrow_dependent() {
            Contents::Locked(pv) => Some(pv),
            Contents::Opened(o) => Some(o.dump()),
            _ => None,
        }
    }

    /// Shapes QEMU never writes that this PV dump has, decrypted the way zgetdump decrypts
    /// them (a CPU or all memory missing, segments not in whole pages). Empty for every other
    /// dump. Front ends show them as warnings: the output lacks what they name.
    pub fn irregularities(&self) -> &[pvdump_format::Irregularity] {
        self.pv().map_or(&[], |pv| pv.irregularities())
    }

    /// The kdump reader (kdump files and flattened streams).
    pub fn kdump(&self) -> Option<&KdumpFile<'_>> {
        match self.cell.borrow_dependent() {
            Contents::Kdump(k) => Some(k),
            _ => None,
        }
    }

    /// Page-state counts of an unlocked PV dump (all states were validated when it was
    /// opened).
    pub fn page_counts(&self) -> Option<PageCounts> {
        match self.cell.borrow_dependent() {
            Contents::Opened(o) => Some(o.page_counts()),
            _ => None,
        }
    }

    /// The plaintext guest memory, or [`Error::KeyRequired`] for a locked dump.
    pub fn source(&self) -> Result<&(dyn PageSource + '_), Error> {
        match self.cell.borrow_dependent() {
            Contents::Locked(_) => Err(Error::KeyRequired {
                what: "reading guest memory",
            }),
            Contents::Opened(o) => Ok(&**o),
            Contents::Plain(p) => Ok(p),
            Contents::Kdump(k) => {
                k.memory_blocks()?;
                Ok(&**k)
            }
        }
    }

    /// Guest memory as runs of page-aligned blocks, sorted by address. For a locked PV
    /// dump, its PT_LOAD segments.
    pub fn memory(&self) -> Vec<MemoryBlock> {
        match self.source() {
            Ok(s) => s.blocks().to_vec(),
            Err(_) => self
                .pv()
                .map(|pv| {
                    pv.loads()
                        .iter()
                        .map(|l| MemoryBlock {
                            paddr: l.paddr,
                            size: l.memsz.next_multiple_of(pvdump_format::consts::PAGE_SIZE),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Reads guest physical memory at `addr`. Bytes outside every memory block are an error.
    pub fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<(), Error> {
        let src = self.source()?;
        if read_phys(src, addr, buf)? {
            Ok(())
        } else {
            Err(FormatError::outside_memory(addr).into())
        }
    }

    /// The CPUs with their registers: decrypted from the PV notes, or read from the notes of
    /// a plain ELF or kdump file. A locked PV dump has none to show.
    pub fn cpus(&self) -> Result<Vec<Cpu>, Error> {
        Ok(match self.cell.borrow_dependent() {
            Contents::Locked(_) => Vec::new(),
            Contents::Opened(o) => o
                .cpus()
                .iter()
                .map(|c| Cpu {
                    index: c.index,
                    pid: c.qemu_pid,
                    regs: c.regs.clone(),
                })
                .collect(),
            Contents::Plain(p) => number(pvdump_format::cpus_from_notes(p.core().notes())?),
            Contents::Kdump(k) => number(k.cpus()?),
        })
    }

    /// The kernel's VMCOREINFO: for plain ELF files the VMCOREINFO note, for kdump files the
    /// text the sub-header points at, otherwise (and as a fallback) found in guest memory
    /// through the s390x lowcore.
    pub fn vmcoreinfo(&self) -> Option<&Vmcoreinfo> {
        self.vmcoreinfo.as_ref()
    }

    fn find_vmcoreinfo(&self) -> Result<Option<Vmcoreinfo>, Error> {
        match self.cell.borrow_dependent() {
            Contents::Locked(_) => Ok(None),
            Contents::Opened(o) => Ok(find_vmcoreinfo(&**o)?),
            Contents::Plain(p) => {
                for n in p.core().notes() {
                    let n = n?;
                    if n.name == b"VMCOREINFO" && n.n_type == NT_VMCOREINFO {
                        return Ok(Some(Vmcoreinfo::from_note(n.desc, n.desc_offset)));
                    }
                }
                Ok(find_vmcoreinfo(p)?)
            }
            Contents::Kdump(k) => match k.vmcoreinfo()? {
                Some(t) => Ok(Some(Vmcoreinfo::from_note(&t, k.sub.offset_vmcoreinfo))),
                None => Ok(find_vmcoreinfo(&**k)?),
            },
        }
    }

    /// The note blob the outputs carry: for a PV dump PRPSINFO, the decrypted register notes
    /// of every CPU and VMCOREINFO; for a plain ELF or kdump file its own notes unchanged,
    /// with a VMCOREINFO note appended when it has none but guest memory does.
    pub fn notes(&self) -> Result<NoteBlob, Error> {
        match self.cell.borrow_dependent() {
            Contents::Locked(_) => Err(Error::KeyRequired {
                what: "writing the CPU notes",
            }),
            Contents::Opened(o) => {
                let regs: Vec<CpuRegisters> = o.cpus().iter().map(|c| c.regs.clone()).collect();
                Ok(build_notes(&regs, self.vmcoreinfo.as_ref().map(|v| v.text.as_slice())))
            }
            Contents::Plain(p) => Ok(self.copied_notes(p.core())?),
            Contents::Kdump(k) => {
                let bytes = k.notes()?.into_owned();
                let mut vmcoreinfo = None;
                let mut cpus = 0;
                for n in pvdump_format::NoteIter::new(&bytes, 0, bytes.len() as u64, 0) {
                    let n = n.map_err(|e| e.rebased(k.sub.offset_note))?;
                    cpus += usize::from(n.name == b"CORE" && n.n_type == NT_PRSTATUS);
                    if n.name == b"VMCOREINFO" && n.n_type == NT_VMCOREINFO && vmcoreinfo.is_none() {
                        vmcoreinfo = Some((n.desc_offset as usize, n.desc.len()));
                    }
                }
                let mut blob = NoteBlob {
                    bytes,
                    vmcoreinfo,
                    cpus,
                };
                self.append_vmcoreinfo(&mut blob);
                Ok(blob)
            }
        }
    }

    /// Appends a VMCOREINFO note when the blob has none but the dump has the text.
    fn append_vmcoreinfo(&self, blob: &mut NoteBlob) {
        if blob.vmcoreinfo.is_none()
            && let Some(v) = &self.vmcoreinfo
        {
            let at = push_note(&mut blob.bytes, "VMCOREINFO", NT_VMCOREINFO, &v.text);
            blob.vmcoreinfo = Some((at, v.text.len()));
        }
    }

    /// The PT_NOTE bytes of a plain ELF, concatenated, with the position of its VMCOREINFO
    /// (a note is appended when the file has none but guest memory does).
    fn copied_notes(&self, core: &ElfCore<'_>) -> Result<NoteBlob, Error> {
        let mut bytes = Vec::new();
        let mut vmcoreinfo = None;
        let mut cpus = 0;
        for seg in core.note_segments() {
            let base = bytes.len() as u64;
            for n in pvdump_format::NoteIter::new(core.data(), seg.file_offset, seg.size, seg.phdr_index) {
                let n = n?;
                if n.name == b"CORE" && n.n_type == NT_PRSTATUS {
                    cpus += 1;
                }
                if n.name == b"VMCOREINFO" && n.n_type == NT_VMCOREINFO && vmcoreinfo.is_none() {
                    vmcoreinfo = Some(((n.desc_offset - seg.file_offset + base) as usize, n.desc.len()));
                }
            }
            let data = pvdump_format::bytes::slice(core.data(), seg.file_offset, seg.size, || {
                pvdump_format::Structure::NoteData {
                    index: u64::from(seg.phdr_index),
                }
            })?;
            bytes.extend_from_slice(data);
        }
        let mut blob = NoteBlob {
            bytes,
            vmcoreinfo,
            cpus,
        };
        self.append_vmcoreinfo(&mut blob);
        Ok(blob)
    }

    /// The dumped kernel's utsname (what `uname -a` printed in the guest):
    ///
    /// - encrypted PV (unlocked) and plain ELF dumps: `init_uts_ns.name` read from guest
    ///   memory, located through VMCOREINFO (`SYMBOL(init_uts_ns)`,
    ///   `OFFSET(uts_namespace.name)`) with the kernel's own virtual-to-physical rule
    ///   ([`pvdump_format::guest_utsname`], docs/kernel-memory.md);
    /// - kdump files: the header's `new_utsname`, unless it is empty (QEMU writes none) or
    ///   the fallback of an older pvdump, then guest memory as above.
    ///
    /// `None` when the dump gives no way to find it (a locked PV dump, no VMCOREINFO, no
    /// such symbol, an address outside the dump, or bytes there that are no utsname).
    pub fn utsname(&self) -> Option<Utsname> {
        self.utsname.get_or_init(|| self.find_utsname()).clone()
    }

    fn find_utsname(&self) -> Option<Utsname> {
        let from_memory = || {
            let info = self.vmcoreinfo.as_ref()?;
            let src = self.source().ok()?;
            guest_utsname(src, info).ok().flatten()
        };
        match self.cell.borrow_dependent() {
            Contents::Locked(_) => None,
            Contents::Kdump(k) => {
                let header = k.utsname();
                let own = !header.sysname.is_empty() && header.version != VERSION_PLACEHOLDER;
                if own {
                    return Some(header);
                }
                from_memory().or_else(|| (!header.sysname.is_empty()).then_some(header))
            }
            Contents::Opened(_) | Contents::Plain(_) => from_memory(),
        }
    }

    /// What the kdump header says besides the layout: the guest's utsname ([`Dump::utsname`];
    /// the marked fallback of [`placeholder_utsname`] only when there is none), the crash
    /// time from VMCOREINFO `CRASHTIME`, the number of CPUs.
    pub fn kdump_info(&self, notes: &NoteBlob) -> KdumpInfo {
        let v = self.vmcoreinfo.as_ref();
        KdumpInfo {
            utsname: self
                .utsname()
                .unwrap_or_else(|| placeholder_utsname(v.and_then(|v| v.osrelease()))),
            crashtime: v.and_then(|v| v.crashtime()),
            nr_cpus: u32::try_from(notes.cpus).unwrap_or(u32::MAX),
        }
    }

    /// Writes the whole dump as `format` to `out`: a file gets parallel positional writes
    /// (zero pages stay holes), a stream gets the bytes in order (a kdump stream in the
    /// flattened format).
    pub fn write(&self, format: Format, out: &mut Output<'_>, opts: &WriteOptions<'_>) -> Result<Written, Error> {
        let inner = self.source()?;
        let releasing = match self.cell.borrow_dependent() {
            Contents::Opened(o) => Some(Releasing {
                inner,
                input: self.cell.borrow_owner(),
                loads: o.dump().loads(),
            }),
            _ => None,
        };
        let src: &(dyn PageSource + '_) = match &releasing {
            Some(r) => r,
            None => inner,
        };
        let notes = self.notes()?;
        Ok(match format {
            Format::Elf => {
                let s = write_elf(src, &notes, out, opts)?;
                Written {
                    bytes: s.bytes,
                    memory: s.memory,
                    kdump: None,
                }
            }
            Format::Kdump(c) => {
                let s = write_kdump(src, &notes, &self.kdump_info(&notes), c, out, opts)?;
                Written {
                    bytes: s.bytes,
                    memory: s.memory,
                    kdump: Some(s),
                }
            }
        })
    }

    /// The ELF vmcore of this dump as a random-access image: the bytes [`Dump::write`] with
    /// [`Format::Elf`] produces, computed on demand.
    pub fn elf_image(&self) -> Result<ElfImage<'_, dyn PageSource + '_>, Error> {
        let src = self.source()?;
        Ok(ElfImage::new(src, &self.notes()?))
    }
}

fn number(cpus: Vec<pvdump_format::NoteCpu>) -> Vec<Cpu> {
    cpus.into_iter()
        .enumerate()
        .map(|(index, c)| Cpu {
            index,
            pid: Some(c.pid),
            regs: c.regs,
        })
        .collect()
}

/// Where VMCOREINFO was found, in words.
pub fn vmcoreinfo_source(v: &Vmcoreinfo) -> &'static str {
    match v.source {
        VmcoreinfoSource::OsInfo { .. } => "os_info (lowcore 0xe18)",
        VmcoreinfoSource::LowcoreNote { .. } => "note pointer (lowcore 0xe0c)",
        VmcoreinfoSource::ElfNote { .. } => "VMCOREINFO note",
    }
}
