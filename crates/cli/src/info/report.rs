//! What `pvdump info` knows about a dump, as one value: printed as text or serialised as
//! JSON (schema "pvdump-info/1", docs/json.md and docs/info.schema.json). Every fact comes
//! from pvdump-core's [`Dump`]; nothing here reads the file itself.
//!
//! Every top-level field is always present; a part that does not apply to the dump's kind
//! (or needs the key that was not given) is `null`. Addresses and file offsets are
//! hexadecimal strings ("0x..."), sizes and counts are numbers. No field ever holds key
//! material.

use pvdump_core::{Dump, DumpKind, Utsname, Vmcoreinfo, VmcoreinfoSource};
use serde::Serialize;

use super::time;
use crate::exit::Failure;

/// The schema name and major version of the JSON output. Adding fields keeps it; renaming,
/// removing or changing the meaning of one bumps the number.
pub const SCHEMA: &str = "pvdump-info/1";

/// Everything `info` reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// The path as given.
    pub file: String,
    /// Bytes of the file.
    pub file_size: u64,
    /// "encrypted-pv", "plain-elf", "kdump" or "flattened-kdump".
    pub kind: &'static str,
    /// The kind in words.
    pub description: &'static str,
    /// Guest memory.
    pub memory: Memory,
    /// Number of CPUs (for a locked PV dump: of its encrypted CPU notes).
    pub cpu_count: usize,
    /// The CPUs with their PSW and prefix; null for an encrypted dump without its key.
    pub cpus: Option<Vec<CpuInfo>>,
    /// The kernel's VMCOREINFO; null when there is none or it is encrypted.
    pub vmcoreinfo: Option<VmcoreinfoInfo>,
    /// The dumped system's utsname; null when unknown.
    pub utsname: Option<UtsInfo>,
    /// ELF container details (PV dumps and plain ELF vmcores).
    pub elf: Option<ElfInfo>,
    /// Protected Virtualization details (encrypted dumps).
    pub pv: Option<PvInfo>,
    /// kdump details (kdump files and flattened streams).
    pub kdump: Option<KdumpInfo>,
}

/// Guest memory.
#[derive(Debug, Serialize)]
pub struct Memory {
    /// Bytes of guest memory in all blocks.
    pub bytes: u64,
    /// Runs of guest physical memory, sorted by address.
    pub blocks: Vec<Block>,
}

/// One run of guest physical memory.
#[derive(Debug, Serialize)]
pub struct Block {
    /// First guest physical address ("0x...").
    pub start: String,
    /// Bytes.
    pub size: u64,
}

/// One CPU.
#[derive(Debug, Serialize)]
pub struct CpuInfo {
    /// CPU number (position in note order, from 0).
    pub cpu: usize,
    /// The pid its notes give it (QEMU writes CPU id + 1), if any.
    pub pid: Option<u32>,
    /// PSW mask and address, each "0x" and 16 hex digits.
    pub psw: [String; 2],
    /// Prefix register, "0x" and 8 hex digits.
    pub prefix: String,
    /// Dumped in the middle of an instruction (PV dumps only; always false elsewhere).
    pub has_osii: bool,
}

/// The kernel's VMCOREINFO.
#[derive(Debug, Serialize)]
pub struct VmcoreinfoInfo {
    /// "os_info", "lowcore_note", "elf_note" or "kdump_header".
    pub found_in: &'static str,
    /// Where it was found, in words.
    pub location: &'static str,
    /// Guest physical address of the text, when it was read from guest memory.
    pub paddr: Option<String>,
    /// File offset of the text, when it was read from the file's notes or kdump header.
    pub file_offset: Option<String>,
    /// Bytes of text.
    pub size: usize,
    /// `OSRELEASE=`.
    pub osrelease: Option<String>,
    /// `BUILD-ID=` (the build ID of the matching vmlinux).
    pub build_id: Option<String>,
    /// `PAGESIZE=`.
    pub pagesize: Option<u64>,
    /// `CRASHTIME=`, seconds since the epoch (only after a panic).
    pub crashtime: Option<u64>,
    /// CRASHTIME as RFC 3339 UTC.
    pub crashtime_utc: Option<String>,
}

/// The dumped system's utsname.
#[derive(Debug, Serialize)]
pub struct UtsInfo {
    /// "kdump_header" or "guest_memory".
    pub source: &'static str,
    /// sysname ("Linux").
    pub sysname: String,
    /// nodename (host name).
    pub nodename: String,
    /// release (`uname -r`).
    pub release: String,
    /// version (`uname -v`).
    pub version: String,
    /// machine ("s390x").
    pub machine: String,
    /// domainname.
    pub domainname: String,
}

/// ELF container details.
#[derive(Debug, Serialize)]
pub struct ElfInfo {
    /// e_phoff.
    pub e_phoff: u64,
    /// e_shoff.
    pub e_shoff: u64,
    /// Number of program headers.
    pub program_headers: u64,
    /// Number of section headers.
    pub section_headers: u64,
    /// Number of PT_NOTE segments.
    pub note_segments: usize,
    /// The PT_LOAD segments.
    pub loads: Vec<Load>,
}

/// One PT_LOAD segment.
#[derive(Debug, Serialize)]
pub struct Load {
    /// p_paddr ("0x...").
    pub paddr: String,
    /// p_memsz.
    pub memsz: u64,
    /// p_offset ("0x...").
    pub offset: String,
    /// p_filesz.
    pub filesz: u64,
}

/// Protected Virtualization details.
#[derive(Debug, Serialize)]
pub struct PvInfo {
    /// "matches" (verified) or "not_given".
    pub key: &'static str,
    /// Bytes of each sealed CPU note.
    pub cpu_note_sizes: Vec<usize>,
    /// The completion data section.
    pub pv_compl: CompletionInfo,
    /// The memory metadata section.
    pub pv_mem_meta: SectionInfo,
    /// Page states.
    pub pages: PageStates,
}

/// The `pv_compl` section.
#[derive(Debug, Serialize)]
pub struct CompletionInfo {
    /// File offset ("0x...").
    pub offset: String,
    /// Bytes.
    pub size: u64,
    /// Format version.
    pub version: u32,
}

/// A section.
#[derive(Debug, Serialize)]
pub struct SectionInfo {
    /// File offset ("0x...").
    pub offset: String,
    /// Bytes.
    pub size: u64,
}

/// Page states of a PV dump.
#[derive(Debug, Serialize)]
pub struct PageStates {
    /// Encrypted (secure) pages.
    pub encrypted: u64,
    /// Zero pages.
    pub zero: u64,
    /// Shared (plaintext) pages.
    pub shared: u64,
    /// Zero or shared pages that also carry the mapped flag.
    pub mapped_flag: u64,
    /// Pages past p_filesz of a PT_LOAD (read as zero).
    pub unbacked: u64,
}

/// kdump details.
#[derive(Debug, Serialize)]
pub struct KdumpInfo {
    /// A flattened stream ("makedumpfile -F"); `makedumpfile -R` rebuilds the file.
    pub flattened: bool,
    /// Records of a flattened stream.
    pub flattened_records: Option<usize>,
    /// Bytes of the kdump file (of the rebuilt file for a flattened stream).
    pub kdump_size: u64,
    /// disk_dump_header.header_version.
    pub header_version: i32,
    /// Block (page) size.
    pub block_size: i32,
    /// disk_dump_header.status ("0x...").
    pub status: String,
    /// Page compression: "zlib", "lzo", "snappy", "zstd" or "none".
    pub compression: &'static str,
    /// disk_dump_header.nr_cpus.
    pub nr_cpus: i32,
    /// Page frames covered by the bitmaps.
    pub max_mapnr: u64,
    /// Page counts.
    pub pages: KdumpPages,
    /// makedumpfile's dump level (0: nothing excluded).
    pub dump_level: i32,
    /// Header timestamp, seconds since the epoch (0: not recorded).
    pub timestamp: i64,
    /// The timestamp as RFC 3339 UTC (null when 0 or not a date).
    pub timestamp_utc: Option<String>,
    /// Bytes of ELF notes.
    pub notes_size: u64,
}

/// Page counts of a kdump file.
#[derive(Debug, Serialize)]
pub struct KdumpPages {
    /// Pages present in memory (1st bitmap).
    pub present: u64,
    /// Pages stored in the file (2nd bitmap).
    pub dumped: u64,
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn ctx(file: &str) -> impl Fn(pvdump_core::FormatError) -> Failure + '_ {
    move |e| Failure::from(e).context(file.to_string())
}

/// The dumped system's utsname and where it comes from. Today: the kdump header's, when it
/// records one (QEMU leaves it empty); reading it from guest memory (PV and plain ELF) is
/// `Dump::utsname()`'s job once it lands, and this becomes `dump.utsname()` with the same
/// source names.
fn utsname(dump: &Dump) -> Option<(Utsname, &'static str)> {
    let source = if dump.kdump().is_some() {
        "kdump_header"
    } else {
        "guest_memory"
    };
    dump.kdump()
        .map(|k| k.utsname())
        .filter(|u| !u.release.is_empty())
        .map(|u| (u, source))
}

impl Report {
    /// Describes `dump`, opened from `file`.
    pub fn new(dump: &Dump, file: &str) -> Result<Report, Failure> {
        let blocks = dump.memory();
        let cpus = if dump.is_locked() {
            None
        } else {
            Some(
                dump.cpus()
                    .map_err(|e| Failure::from(e).context(file.to_string()))?
                    .into_iter()
                    .map(|c| CpuInfo {
                        cpu: c.index,
                        pid: c.pid,
                        psw: [format!("{:#018x}", c.regs.psw[0]), format!("{:#018x}", c.regs.psw[1])],
                        prefix: format!("{:#010x}", c.regs.prefix),
                        has_osii: c.regs.has_osii,
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let cpu_count = match (&cpus, dump.pv()) {
            (Some(c), _) => c.len(),
            (None, Some(pv)) => pv.cpus().len(),
            (None, None) => 0,
        };
        Ok(Report {
            schema: SCHEMA,
            file: file.to_string(),
            file_size: dump.bytes().len() as u64,
            kind: kind_name(dump.kind()),
            description: dump.kind().describe(),
            memory: Memory {
                bytes: blocks.iter().map(|b| b.size).sum(),
                blocks: blocks
                    .iter()
                    .map(|b| Block {
                        start: hex(b.paddr),
                        size: b.size,
                    })
                    .collect(),
            },
            cpu_count,
            cpus,
            vmcoreinfo: dump.vmcoreinfo().map(|v| vmcoreinfo_info(v, dump.kind())),
            utsname: utsname(dump).map(|(u, source)| UtsInfo {
                source,
                sysname: u.sysname,
                nodename: u.nodename,
                release: u.release,
                version: u.version,
                machine: u.machine,
                domainname: u.domainname,
            }),
            elf: elf_info(dump),
            pv: pv_info(dump, file)?,
            kdump: kdump_info(dump, file)?,
        })
    }
}

/// The `kind` field's value.
pub fn kind_name(kind: DumpKind) -> &'static str {
    match kind {
        DumpKind::EncryptedPv => "encrypted-pv",
        DumpKind::PlainElf => "plain-elf",
        DumpKind::Kdump => "kdump",
        DumpKind::FlattenedKdump => "flattened-kdump",
    }
}

fn vmcoreinfo_info(v: &Vmcoreinfo, kind: DumpKind) -> VmcoreinfoInfo {
    let from_kdump = matches!(kind, DumpKind::Kdump | DumpKind::FlattenedKdump);
    let (found_in, location, paddr, file_offset) = match v.source {
        VmcoreinfoSource::OsInfo { .. } => ("os_info", "guest memory, os_info (lowcore 0xe18)", Some(v.paddr), None),
        VmcoreinfoSource::LowcoreNote { .. } => (
            "lowcore_note",
            "guest memory, note pointer (lowcore 0xe0c)",
            Some(v.paddr),
            None,
        ),
        VmcoreinfoSource::ElfNote { offset } if from_kdump => (
            "kdump_header",
            "kdump sub-header (offset_vmcoreinfo)",
            None,
            Some(offset),
        ),
        VmcoreinfoSource::ElfNote { offset } => ("elf_note", "VMCOREINFO note of the file", None, Some(offset)),
    };
    let crashtime = v.crashtime();
    VmcoreinfoInfo {
        found_in,
        location,
        paddr: paddr.map(hex),
        file_offset: file_offset.map(hex),
        size: v.text.len(),
        osrelease: v.osrelease().map(str::to_owned),
        build_id: v.get("BUILD-ID").map(|s| s.trim().to_owned()),
        pagesize: v.get("PAGESIZE").and_then(|s| s.trim().parse().ok()),
        crashtime,
        crashtime_utc: crashtime.and_then(|t| i64::try_from(t).ok()).and_then(time::rfc3339),
    }
}

fn elf_info(dump: &Dump) -> Option<ElfInfo> {
    let core = dump.elf()?;
    Some(ElfInfo {
        e_phoff: core.header().e_phoff,
        e_shoff: core.header().e_shoff,
        program_headers: core.phnum(),
        section_headers: core.shnum(),
        note_segments: core.note_segments().len(),
        loads: core
            .loads()
            .iter()
            .map(|l| Load {
                paddr: hex(l.paddr),
                memsz: l.memsz,
                offset: hex(l.file_offset),
                filesz: l.filesz,
            })
            .collect(),
    })
}

fn pv_info(dump: &Dump, file: &str) -> Result<Option<PvInfo>, Failure> {
    let Some(pv) = dump.pv() else {
        return Ok(None);
    };
    let compl = pv.completion().map_err(ctx(file))?;
    let counts = match dump.page_counts() {
        Some(c) => c,
        None => pv.page_counts().map_err(ctx(file))?,
    };
    Ok(Some(PvInfo {
        key: if dump.is_locked() { "not_given" } else { "matches" },
        cpu_note_sizes: pv.cpus().iter().map(|c| c.desc.len()).collect(),
        pv_compl: CompletionInfo {
            offset: hex(pv.completion_section().file_offset),
            size: pv.completion_section().size,
            version: compl.fields.version,
        },
        pv_mem_meta: SectionInfo {
            offset: hex(pv.mem_meta_section().file_offset),
            size: pv.mem_meta_section().size,
        },
        pages: PageStates {
            encrypted: counts.encrypted,
            zero: counts.zero,
            shared: counts.shared,
            mapped_flag: counts.mapped_flag,
            unbacked: counts.unbacked,
        },
    }))
}

fn kdump_info(dump: &Dump, file: &str) -> Result<Option<KdumpInfo>, Failure> {
    let Some(k) = dump.kdump() else {
        return Ok(None);
    };
    let (present, dumped) = k.page_counts().map_err(ctx(file))?;
    let h = &k.header;
    Ok(Some(KdumpInfo {
        flattened: k.is_flat(),
        flattened_records: k.record_count(),
        kdump_size: k.len(),
        header_version: h.header_version,
        block_size: h.block_size,
        status: hex(u64::from(h.status)),
        compression: k.compression().name(),
        nr_cpus: h.nr_cpus,
        max_mapnr: k.max_mapnr(),
        pages: KdumpPages { present, dumped },
        dump_level: k.sub.dump_level,
        timestamp: h.tv_sec,
        timestamp_utc: if h.tv_sec == 0 { None } else { time::rfc3339(h.tv_sec) },
        notes_size: k.sub.size_note,
    }))
}
