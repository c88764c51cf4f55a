//! `pvdump info`.

use pvdump_core::{FormatError, KdumpFile};
use serde_json::{Value, json};

use crate::args::InfoArgs;
use crate::exit::Failure;
use crate::input::{open_dump, read_key};

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

pub fn run(args: &InfoArgs) -> Result<(), Failure> {
    let cck = args.key.key.as_deref().map(|k| read_key(k, false)).transpose()?;
    let dump = open_dump(&args.dump, cck.as_ref())?;
    drop(cck);
    let ctx = || format!("{}", args.dump.display());
    if let Some(k) = dump.kdump() {
        return kdump_info(args, dump.bytes(), k);
    }
    let Some(core) = dump.elf() else {
        return Err(Failure::from(FormatError::NotPvDump).context(ctx()));
    };
    let mut j = json!({
        "file": args.dump.display().to_string(),
        "file_size": dump.bytes().len(),
        "elf": {
            "e_phoff": core.header().e_phoff,
            "e_shoff": core.header().e_shoff,
            "e_ehsize": core.header().e_ehsize,
            "program_headers": core.phnum(),
            "section_headers": core.shnum(),
            "note_segments": core.note_segments().len(),
        },
        "memory": core.loads().iter().map(|l| json!({
            "paddr": hex(l.paddr), "size": l.memsz, "file_offset": hex(l.file_offset), "file_size": l.filesz,
        })).collect::<Vec<_>>(),
        "memory_bytes": core.loads().iter().map(|l| l.memsz).sum::<u64>(),
    });
    let Some(pv) = dump.pv() else {
        return Err(Failure::from(FormatError::NotPvDump).context(ctx()));
    };
    let compl = pv.completion().map_err(|e| Failure::from(e).context(ctx()))?;
    let counts = match dump.page_counts() {
        Some(c) => c,
        None => pv.page_counts().map_err(|e| Failure::from(e).context(ctx()))?,
    };
    j["pv"] = json!({
        "cpus": pv.cpus().len(),
        "cpu_note_sizes": pv.cpus().iter().map(|c| c.desc.len()).collect::<Vec<_>>(),
        "pv_compl": { "offset": hex(pv.completion_section().file_offset), "size": pv.completion_section().size, "version": compl.fields.version },
        "pv_mem_meta": { "offset": hex(pv.mem_meta_section().file_offset), "size": pv.mem_meta_section().size },
        "pages": { "encrypted": counts.encrypted, "zero": counts.zero, "shared": counts.shared, "mapped_flag": counts.mapped_flag, "unbacked": counts.unbacked, "invalid": 0 },
    });
    if !dump.is_locked() {
        j["key"] = json!("matches");
        j["cpus"] = Value::Array(
            dump.cpus()?
                .iter()
                .map(|c| {
                    json!({
                        "cpu": c.index,
                        "qemu_pid": c.pid,
                        "psw": [hex(c.regs.psw[0]), hex(c.regs.psw[1])],
                        "prefix": hex(u64::from(c.regs.prefix)),
                        "has_osii": c.regs.has_osii,
                    })
                })
                .collect(),
        );
        j["vmcoreinfo"] = match dump.vmcoreinfo() {
            Some(v) => json!({
                "found": true,
                "source": pvdump_core::vmcoreinfo_source(v),
                "paddr": hex(v.paddr),
                "size": v.text.len(),
                "osrelease": v.osrelease(),
                "crashtime": v.crashtime(),
            }),
            None => json!({ "found": false }),
        };
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
    } else {
        print_text(&j);
    }
    Ok(())
}

fn print_text(j: &Value) {
    println!(
        "File:            {} ({} bytes)",
        j["file"].as_str().unwrap_or(""),
        j["file_size"]
    );
    println!(
        "ELF:             s390x big-endian core, {} program headers, {} section headers, e_ehsize {}",
        j["elf"]["program_headers"], j["elf"]["section_headers"], j["elf"]["e_ehsize"]
    );
    println!("Memory:          {} MiB", j["memory_bytes"].as_u64().unwrap_or(0) >> 20);
    for m in j["memory"].as_array().into_iter().flatten() {
        println!(
            "  block          guest {} size {:#x} at file offset {}",
            m["paddr"].as_str().unwrap_or(""),
            m["size"].as_u64().unwrap_or(0),
            m["file_offset"].as_str().unwrap_or("")
        );
    }
    let pv = &j["pv"];
    println!("Protected Virtualization dump:");
    println!("  CPUs           {}", pv["cpus"]);
    println!(
        "  pv_compl       version {}, {} bytes at {}",
        pv["pv_compl"]["version"],
        pv["pv_compl"]["size"],
        pv["pv_compl"]["offset"].as_str().unwrap_or("")
    );
    println!(
        "  pv_mem_meta    {} bytes at {}",
        pv["pv_mem_meta"]["size"],
        pv["pv_mem_meta"]["offset"].as_str().unwrap_or("")
    );
    let p = &pv["pages"];
    println!(
        "  pages          {} encrypted, {} zero, {} shared, {} invalid ({} with the mapped flag)",
        p["encrypted"], p["zero"], p["shared"], p["invalid"], p["mapped_flag"]
    );
    if j.get("key").is_none() {
        println!("Key:             not given (use --key to verify it and show registers)");
        return;
    }
    println!("Key:             matches this dump");
    for c in j["cpus"].as_array().into_iter().flatten() {
        println!(
            "  CPU {:<3}        PSW {} {}  prefix {}{}",
            c["cpu"],
            c["psw"][0].as_str().unwrap_or(""),
            c["psw"][1].as_str().unwrap_or(""),
            c["prefix"].as_str().unwrap_or(""),
            if c["has_osii"].as_bool() == Some(true) {
                "  (has_osii: partial instruction results)"
            } else {
                ""
            }
        );
    }
    let v = &j["vmcoreinfo"];
    if v["found"].as_bool() == Some(true) {
        println!(
            "VMCOREINFO:      {} bytes at {} via {}; kernel {}",
            v["size"],
            v["paddr"].as_str().unwrap_or(""),
            v["source"].as_str().unwrap_or(""),
            v["osrelease"].as_str().unwrap_or("unknown")
        );
    } else {
        println!("VMCOREINFO:      not found in guest memory");
    }
}

/// Describes a kdump-compressed file or flattened stream (as pvdump writes them).
fn kdump_info(args: &InfoArgs, data: &[u8], k: &KdumpFile<'_>) -> Result<(), Failure> {
    let ctx = || format!("{}", args.dump.display());
    let (present, dumped) = k.page_counts().map_err(|e| Failure::from(e).context(ctx()))?;
    let notes = k.notes().map_err(|e| Failure::from(e).context(ctx()))?;
    let cpus = count_prstatus(&notes);
    let vmci = k.vmcoreinfo().map_err(|e| Failure::from(e).context(ctx()))?;
    let h = &k.header;
    let u = k.utsname();
    let j = json!({
        "file": args.dump.display().to_string(),
        "file_size": data.len(),
        "format": if k.is_flat() { "kdump-compressed, flattened (makedumpfile -F)" } else { "kdump-compressed" },
        "flattened_records": k.record_count(),
        "header_version": h.header_version,
        "utsname": {
            "sysname": u.sysname, "nodename": u.nodename, "release": u.release,
            "version": u.version, "machine": u.machine, "domainname": u.domainname,
        },
        "timestamp": h.tv_sec,
        "compression": k.compression().name(),
        "status": hex(u64::from(h.status)),
        "block_size": h.block_size,
        "nr_cpus": h.nr_cpus,
        "prstatus_notes": cpus,
        "max_mapnr": k.max_mapnr(),
        "pages": { "present": present, "dumped": dumped },
        "memory_bytes": present * k.block_size(),
        "dump_level": k.sub.dump_level,
        "notes_size": k.sub.size_note,
        "vmcoreinfo_size": vmci.as_ref().map(|v| v.len()),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
        return Ok(());
    }
    println!("File:            {} ({} bytes)", ctx(), data.len());
    println!(
        "Format:          {}{}",
        j["format"].as_str().unwrap_or(""),
        k.record_count().map(|n| format!(", {n} records")).unwrap_or_default()
    );
    println!(
        "Header:          version {}, block size {}, status {:#x}",
        h.header_version, h.block_size, h.status
    );
    println!(
        "utsname:         {} {} {} ({})",
        u.sysname, u.machine, u.release, u.version
    );
    println!(
        "Crash time:      {}",
        if h.tv_sec == 0 {
            "not recorded".to_string()
        } else {
            format!("{} (seconds since the epoch)", h.tv_sec)
        }
    );
    println!("Compression:     {}", k.compression().name());
    println!("CPUs:            {} (nr_cpus), {} PRSTATUS notes", h.nr_cpus, cpus);
    println!(
        "Memory:          {} MiB: {} pages present, {} dumped, max_mapnr {}",
        (present * k.block_size()) >> 20,
        present,
        dumped,
        k.max_mapnr()
    );
    match vmci {
        Some(v) => println!("VMCOREINFO:      {} bytes", v.len()),
        None => println!("VMCOREINFO:      none"),
    }
    Ok(())
}

/// Number of NT_PRSTATUS notes named "CORE" in a big-endian note blob.
fn count_prstatus(notes: &[u8]) -> usize {
    let mut pos = 0usize;
    let mut n = 0;
    while notes.len().saturating_sub(pos) >= 12 {
        let w = |i: usize| {
            u32::from_be_bytes([
                notes[pos + i],
                notes[pos + i + 1],
                notes[pos + i + 2],
                notes[pos + i + 3],
            ]) as usize
        };
        let (namesz, descsz, ty) = (w(0), w(4), w(8));
        let name_end = pos + 12 + namesz;
        if notes.get(pos + 12..name_end).is_some_and(|nm| nm.starts_with(b"CORE")) && ty == 1 {
            n += 1;
        }
        let Some(next) = (pos + 12)
            .checked_add(namesz.next_multiple_of(4))
            .and_then(|p| p.checked_add(descsz.next_multiple_of(4)))
        else {
            break;
        };
        pos = next;
    }
    n
}
