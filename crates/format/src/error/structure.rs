//! [`Structure`]: the on-disk structure an error is about.

use std::fmt;

/// The on-disk structure an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Structure {
    /// The ELF file header.
    ElfHeader,
    /// The program header table.
    ProgramHeaderTable {
        /// Entries the header claims.
        entries: u64,
    },
    /// One program header (`kind` is "PT_LOAD" or "PT_NOTE" once known).
    ProgramHeader {
        /// Index in the table.
        index: u64,
        /// Segment type, when it matters.
        kind: Option<&'static str>,
    },
    /// The bytes of a PT_LOAD segment.
    LoadData {
        /// Program header index.
        index: u64,
        /// Guest physical address of the segment.
        paddr: u64,
    },
    /// The bytes of a PT_NOTE segment.
    NoteData {
        /// Program header index.
        index: u64,
    },
    /// A note header inside a PT_NOTE segment.
    NoteHeader {
        /// Program header index of the segment.
        segment: u64,
    },
    /// The name of a note.
    NoteName,
    /// The descriptor of a note.
    NoteDescriptor,
    /// A note of this type (when its descriptor is too short for the type).
    Note {
        /// Note type.
        n_type: u32,
    },
    /// The section header table.
    SectionHeaderTable {
        /// Entries the header claims.
        entries: u64,
    },
    /// One section header.
    SectionHeader {
        /// Index in the table.
        index: u64,
    },
    /// The section header of the section-name string table.
    StringTableHeader {
        /// Index of the string table section.
        index: u64,
    },
    /// The section-name string table.
    StringTable {
        /// Index of the string table section.
        index: u64,
    },
    /// The data of a named section.
    SectionData {
        /// Section index.
        index: u64,
        /// Section name.
        name: String,
    },
    /// A named section as a whole.
    Section {
        /// Section index.
        index: u64,
        /// Section name.
        name: String,
    },
    /// Completion data in section `pv_compl`.
    CompletionData,
    /// The NT_S390_PV_CPU_DATA note of a CPU.
    CpuNote {
        /// CPU number (note order).
        cpu: usize,
    },
    /// The group of notes QEMU writes for one CPU.
    CpuNoteGroup,
    /// All PT_NOTE segments.
    Notes,
    /// One guest page.
    PageFrame {
        /// Page frame number.
        pfn: u64,
    },
    /// `disk_dump_header` of a kdump file.
    KdumpHeader,
    /// `kdump_sub_header` of a kdump file.
    KdumpSubHeader,
    /// The ELF notes a kdump sub-header points at.
    KdumpNotes,
    /// The VMCOREINFO text a kdump sub-header points at.
    KdumpVmcoreinfo,
    /// A bitmap of a kdump file (1 or 2).
    KdumpBitmap {
        /// Which bitmap.
        which: u8,
    },
    /// A page descriptor of a kdump file.
    PageDescriptor {
        /// Descriptor index.
        index: u64,
    },
    /// The stored data of one page of a kdump file.
    PageData {
        /// Page frame number.
        pfn: u64,
    },
    /// The header block of a flattened stream.
    FlatHeader,
    /// A record header of a flattened stream.
    FlatRecord,
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Structure::ElfHeader => f.write_str("ELF header"),
            Structure::ProgramHeaderTable { entries } => write!(f, "program header table ({entries} entries)"),
            Structure::ProgramHeader { index, kind: None } => write!(f, "program header {index}"),
            Structure::ProgramHeader { index, kind: Some(k) } => write!(f, "program header {index} ({k})"),
            Structure::LoadData { index, paddr } => {
                write!(
                    f,
                    "memory of program header {index} (PT_LOAD, guest address {paddr:#x})"
                )
            }
            Structure::NoteData { index } => write!(f, "notes of program header {index} (PT_NOTE)"),
            Structure::NoteHeader { segment } => write!(f, "note header in PT_NOTE segment {segment}"),
            Structure::NoteName => f.write_str("note name"),
            Structure::NoteDescriptor => f.write_str("note descriptor"),
            Structure::Note { n_type } => write!(f, "note type {n_type:#x}"),
            Structure::SectionHeaderTable { entries } => write!(f, "section header table ({entries} entries)"),
            Structure::SectionHeader { index } => write!(f, "section header {index}"),
            Structure::StringTableHeader { index } => write!(f, "section header {index} (string table)"),
            Structure::StringTable { index } => write!(f, "section name string table (section {index})"),
            Structure::SectionData { index, name } => write!(f, "data of section {index} (`{name}`)"),
            Structure::Section { index, name } => write!(f, "section {index} (`{name}`)"),
            Structure::CompletionData => f.write_str("completion data (section `pv_compl`)"),
            Structure::CpuNote { cpu } => write!(f, "NT_S390_PV_CPU_DATA note of CPU {cpu}"),
            Structure::CpuNoteGroup => f.write_str("CPU note group"),
            Structure::Notes => f.write_str("notes"),
            Structure::PageFrame { pfn } => write!(f, "page frame {pfn:#x}"),
            Structure::KdumpHeader => f.write_str("disk_dump_header"),
            Structure::KdumpSubHeader => f.write_str("kdump_sub_header"),
            Structure::KdumpNotes => f.write_str("ELF notes of the kdump sub-header"),
            Structure::KdumpVmcoreinfo => f.write_str("VMCOREINFO"),
            Structure::KdumpBitmap { which } => {
                write!(f, "{} bitmap", if *which == 1 { "1st" } else { "2nd" })
            }
            Structure::PageDescriptor { index } => write!(f, "page descriptor {index}"),
            Structure::PageData { pfn } => write!(f, "page data of pfn {pfn:#x}"),
            Structure::FlatHeader => f.write_str("makedumpfile flat header"),
            Structure::FlatRecord => f.write_str("flattened record header"),
        }
    }
}
