//! `pvdump convert`: a plain s390x ELF vmcore to kdump-compressed or ELF.

use std::io::Write;
use std::time::Instant;

use pvdump_format::consts::{NT_PRSTATUS, NT_VMCOREINFO};
use pvdump_format::{ElfCore, FormatError, PlainElf, find_vmcoreinfo};
use pvdump_vmcore::{KdumpInfo, NoteBlob, push_note};

use crate::args::ConvertArgs;
use crate::exit::{Code, Failure};
use crate::input::Input;
use crate::write::{check_output, summary, write_output};

pub fn run(args: &ConvertArgs) -> Result<(), Failure> {
    check_output(&args.out, args.format, &args.input)?;
    let input = Input::open(&args.input)?;
    let ctx = || format!("{}", args.input.display());
    let core = ElfCore::parse(input.bytes()).map_err(|e| Failure::from(e).context(ctx()))?;
    let plain = PlainElf::from_core(core).map_err(|e| match e {
        FormatError::EncryptedInput => Failure::new(Code::Usage, e).context(ctx()),
        e => Failure::from(e).context(ctx()),
    })?;
    let (notes, vmcoreinfo) = input_notes(&plain).map_err(|e| Failure::from(e).context(ctx()))?;
    let text = vmcoreinfo
        .as_deref()
        .and_then(|t| std::str::from_utf8(t).ok())
        .unwrap_or("");
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k == key).then(|| v.trim().to_owned())
        })
    };
    let info = KdumpInfo {
        release: get("OSRELEASE"),
        crashtime: get("CRASHTIME").and_then(|v| v.parse().ok()),
        nr_cpus: u32::try_from(notes.cpus).unwrap_or(u32::MAX),
    };
    let started = Instant::now();
    let written = write_output(&plain, &notes, &info, args.format, &args.out)?;
    if !args.out.quiet {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{}; {} CPUs{}",
            summary(&args.out, args.format, &written, started.elapsed().as_secs_f64()),
            notes.cpus,
            info.release.map(|r| format!(", kernel {r}")).unwrap_or_default()
        );
    }
    Ok(())
}

/// The input's PT_NOTE bytes, unchanged and concatenated, with the position of the
/// VMCOREINFO text. Without a VMCOREINFO note, the text is looked up in guest memory (s390x
/// lowcore) and a note is appended. Returns the blob and the VMCOREINFO text.
pub fn input_notes(plain: &PlainElf<'_>) -> Result<(NoteBlob, Option<Vec<u8>>), FormatError> {
    let core = plain.core();
    let mut bytes = Vec::new();
    for seg in core.note_segments() {
        let end = seg.file_offset.checked_add(seg.size);
        let data = end
            .and_then(|e| {
                core.data()
                    .get(usize::try_from(seg.file_offset).ok()?..usize::try_from(e).ok()?)
            })
            .ok_or_else(|| {
                FormatError::invalid(
                    format!("PT_NOTE segment {}", seg.phdr_index),
                    seg.file_offset,
                    "runs past the end of the file",
                )
            })?;
        bytes.extend_from_slice(data);
    }
    // Offsets of each segment inside the concatenation, to map note offsets into the blob.
    let mut starts = Vec::new();
    let mut pos = 0u64;
    for seg in core.note_segments() {
        starts.push((seg.file_offset, seg.size, pos));
        pos += seg.size;
    }
    let mut cpus = 0;
    let mut vmcoreinfo = None;
    for n in core.notes() {
        let n = n?;
        if n.name == b"CORE" && n.n_type == NT_PRSTATUS {
            cpus += 1;
        }
        if n.name == b"VMCOREINFO" && n.n_type == NT_VMCOREINFO && vmcoreinfo.is_none() {
            let at = starts
                .iter()
                .find(|(off, size, _)| n.desc_offset >= *off && n.desc_offset < off + size)
                .map(|(off, _, blob_pos)| (n.desc_offset - off + blob_pos) as usize);
            if let Some(at) = at {
                vmcoreinfo = Some((at, n.desc.len()));
            }
        }
    }
    let text = match vmcoreinfo {
        Some((at, len)) => bytes.get(at..at + len).map(<[u8]>::to_vec),
        None => match find_vmcoreinfo(plain)? {
            Some(v) => {
                let at = push_note(&mut bytes, "VMCOREINFO", NT_VMCOREINFO, &v.text);
                vmcoreinfo = Some((at, v.text.len()));
                Some(v.text)
            }
            None => None,
        },
    };
    Ok((
        NoteBlob {
            bytes,
            vmcoreinfo,
            cpus,
        },
        text,
    ))
}
