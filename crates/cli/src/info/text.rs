//! The text form of `pvdump info`: labelled lines, an aligned CPU table, memory blocks.
//! Strings that come from the dump (utsname, VMCOREINFO values) are printed with control
//! characters escaped, so a hostile dump cannot drive the terminal.

use std::fmt::Write;

use super::report::{CpuInfo, Report};
use super::time;

/// Width of the label column.
const LABEL: usize = 17;
/// Memory blocks listed in text (the JSON lists all).
const MAX_BLOCKS_SHOWN: usize = 16;

/// A dump-derived string with control characters (and backslashes) escaped.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `n` bytes in the largest binary unit that keeps it readable ("256 MiB", "4 KiB", "1.5 GiB").
pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut v = n as f64;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A number with thousands separators ("1,234,567").
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The CPU table: a header and one row per CPU, columns aligned whatever the CPU numbers
/// (1 or 1000 CPUs); PSW halves as 16 hex digits, prefix as 8.
pub fn cpu_table(cpus: &[CpuInfo]) -> Vec<String> {
    let width = cpus
        .iter()
        .map(|c| c.cpu.to_string().len())
        .max()
        .unwrap_or(0)
        .max("CPU".len());
    let mut lines = vec![format!(
        "{:>width$}  {:<33}  {:<8}",
        "CPU", "PSW (mask, address)", "prefix"
    )];
    for c in cpus {
        let digits = |s: &str| s.trim_start_matches("0x").to_string();
        let mut line = format!(
            "{:>width$}  {:0>16} {:0>16}  {:0>8}",
            c.cpu,
            digits(&c.psw[0]),
            digits(&c.psw[1]),
            digits(&c.prefix)
        );
        if c.has_osii {
            line.push_str("  dumped mid-instruction (has_osii)");
        }
        lines.push(line);
    }
    for l in &mut lines {
        l.truncate(l.trim_end().len());
    }
    lines
}

struct Out(String);

impl Out {
    fn line(&mut self, label: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.0, "{:<LABEL$}{value}", format!("{label}:"));
    }
    fn sub(&mut self, label: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.0, "  {:<w$}{value}", label, w = LABEL - 2);
    }
    fn indented(&mut self, text: &str) {
        let _ = writeln!(self.0, "{:LABEL$}{text}", "");
    }
}

/// The whole text.
pub fn render(r: &Report) -> String {
    let mut o = Out(String::new());
    o.line("File", format!("{} ({} bytes)", r.file, grouped(r.file_size)));
    o.line("Kind", r.description);
    if let Some(pv) = &r.pv {
        o.line(
            "Key",
            if pv.key == "matches" {
                "matches this dump"
            } else {
                "not given (use --key to verify it and to show registers and VMCOREINFO)"
            },
        );
    }
    let n = r.memory.blocks.len();
    o.line(
        "Memory",
        format!("{} in {n} block{}", size(r.memory.bytes), if n == 1 { "" } else { "s" }),
    );
    for b in r.memory.blocks.iter().take(MAX_BLOCKS_SHOWN) {
        let start = u64::from_str_radix(b.start.trim_start_matches("0x"), 16).unwrap_or(0);
        o.indented(&format!(
            "{:016x}-{:016x}  {}",
            start,
            start.saturating_add(b.size).saturating_sub(1),
            size(b.size)
        ));
    }
    if n > MAX_BLOCKS_SHOWN {
        o.indented(&format!("... and {} more (--json lists all)", n - MAX_BLOCKS_SHOWN));
    }
    match &r.cpus {
        Some(cpus) => {
            if cpus.is_empty() {
                o.line("CPUs", "0 (the dump holds no CPU state)");
            } else {
                o.line("CPUs", cpus.len());
                for l in cpu_table(cpus) {
                    o.indented(&l);
                }
            }
        }
        None => o.line("CPUs", format!("{} (registers are encrypted; give --key)", r.cpu_count)),
    }
    match &r.utsname {
        Some(u) => {
            let shown = |s: &str| {
                if s.is_empty() {
                    "(empty)".to_string()
                } else {
                    printable(s)
                }
            };
            o.line("UTS node name", shown(&u.nodename));
            o.line("UTS release", shown(&u.release));
            o.line("UTS version", shown(&u.version));
            o.line(
                "UTS machine",
                format!(
                    "{} (utsname from the {})",
                    shown(&u.machine),
                    if u.source == "kdump_header" {
                        "kdump header"
                    } else {
                        "guest memory"
                    }
                ),
            );
        }
        None => o.line("UTS", "not known"),
    }
    match &r.vmcoreinfo {
        Some(v) => {
            let at = match (&v.paddr, &v.file_offset) {
                (Some(p), _) => format!(" at guest address {p}"),
                (None, Some(off)) if v.found_in == "kdump_header" => match &r.kdump {
                    Some(k) if k.flattened => format!(" at offset {off} of the rebuilt kdump file"),
                    _ => format!(" at file offset {off}"),
                },
                (None, Some(off)) => format!(" at file offset {off}"),
                (None, None) => String::new(),
            };
            o.line("VMCOREINFO", format!("{} bytes{at}, from {}", v.size, v.location));
            let none = || "-".to_string();
            o.sub("OSRELEASE", v.osrelease.as_deref().map_or_else(none, printable));
            o.sub("BUILD-ID", v.build_id.as_deref().map_or_else(none, printable));
            o.sub("PAGESIZE", v.pagesize.map_or_else(none, |p| p.to_string()));
            o.sub(
                "CRASHTIME",
                match (v.crashtime, &v.crashtime_utc) {
                    (Some(t), Some(d)) => {
                        format!("{} ({t})", time::human(t as i64).unwrap_or_else(|| d.clone()))
                    }
                    (Some(t), None) => format!("{t} (not a date)"),
                    _ => "- (no panic recorded)".to_string(),
                },
            );
        }
        None if r.pv.as_ref().is_some_and(|p| p.key != "matches") => {
            o.line("VMCOREINFO", "in encrypted memory (give --key)")
        }
        None => o.line("VMCOREINFO", "not found"),
    }
    if let Some(e) = &r.elf {
        o.line(
            "ELF",
            format!(
                "s390x big-endian core, {} program headers ({} PT_LOAD, {} PT_NOTE), {} section headers",
                e.program_headers,
                e.loads.len(),
                e.note_segments,
                e.section_headers
            ),
        );
    }
    if let Some(pv) = &r.pv {
        o.line("Protected Virtualization", "");
        o.sub(
            "pv_compl",
            format!(
                "version {}, {} bytes at {}",
                pv.pv_compl.version, pv.pv_compl.size, pv.pv_compl.offset
            ),
        );
        o.sub(
            "pv_mem_meta",
            format!("{} bytes at {}", pv.pv_mem_meta.size, pv.pv_mem_meta.offset),
        );
        o.sub(
            "CPU notes",
            format!("{} sealed (NT_S390_PV_CPU_DATA)", pv.cpu_note_sizes.len()),
        );
        let p = &pv.pages;
        o.sub(
            "pages",
            format!(
                "{} encrypted, {} zero, {} shared ({} with the mapped flag), {} past p_filesz",
                p.encrypted, p.zero, p.shared, p.mapped_flag, p.unbacked
            ),
        );
    }
    if let Some(k) = &r.kdump {
        o.line(
            "kdump",
            format!(
                "header version {}, block size {}, {} bytes{}",
                k.header_version,
                k.block_size,
                grouped(k.kdump_size),
                match k.flattened_records {
                    Some(n) => format!(" once rebuilt (flattened: {n} records; makedumpfile -R rebuilds it)"),
                    None => String::new(),
                }
            ),
        );
        o.sub("compression", format!("{} (status {})", k.compression, k.status));
        o.sub(
            "pages",
            format!(
                "{} present, {} dumped, max_mapnr {}",
                k.pages.present, k.pages.dumped, k.max_mapnr
            ),
        );
        o.sub("nr_cpus", k.nr_cpus);
        o.sub("dump level", k.dump_level);
        o.sub(
            "timestamp",
            match &k.timestamp_utc {
                Some(_) => time::human(k.timestamp).unwrap_or_default(),
                None if k.timestamp == 0 => "not recorded".to_string(),
                None => format!("{} (not a date)", k.timestamp),
            },
        );
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(n: usize, osii: bool) -> CpuInfo {
        CpuInfo {
            cpu: n,
            pid: Some(n as u32 + 1),
            psw: [
                format!("{:#018x}", 0x0704_c001_8000_0000u64),
                format!("{:#018x}", 0x1234 + n as u64),
            ],
            prefix: format!("{:#010x}", 0x1a000 + n as u32 * 0x2000),
            has_osii: osii,
        }
    }

    #[test]
    fn cpu_table_aligns_up_to_four_digit_cpu_numbers() {
        for count in [1usize, 3, 10, 64, 65, 100, 1000] {
            let cpus: Vec<CpuInfo> = (0..count).map(|n| cpu(n, false)).collect();
            let lines = cpu_table(&cpus);
            assert_eq!(lines.len(), count + 1);
            // Every row has the same length and the PSW starts in the same column.
            let len = lines[1].len();
            let psw_col = lines[1].find("0704c00180000000").unwrap();
            for l in &lines[1..] {
                assert_eq!(l.len(), len, "{count} CPUs: {l:?}");
                assert_eq!(l.find("0704c00180000000"), Some(psw_col), "{count} CPUs: {l:?}");
            }
            // The header's "PSW" and "prefix" stand over their columns.
            assert_eq!(lines[0].find("PSW"), Some(psw_col), "{lines:?}");
            assert_eq!(lines[0].find("prefix"), Some(psw_col + 35), "{lines:?}");
            // The CPU number is right-aligned under "CPU", two spaces before the PSW.
            let width = psw_col - 2;
            assert_eq!(lines[0][..width].trim_start(), "CPU");
            for (n, l) in lines[1..].iter().enumerate() {
                assert_eq!(l[..width].trim_start(), n.to_string(), "{l:?}");
                assert_eq!(&l[width..psw_col], "  ");
                assert_eq!(&l[psw_col + 33..psw_col + 35], "  ");
            }
        }
    }

    #[test]
    fn cpu_rows_are_zero_padded() {
        let lines = cpu_table(&[cpu(0, false), cpu(9, true)]);
        assert_eq!(lines[0], "CPU  PSW (mask, address)                prefix");
        assert_eq!(lines[1], "  0  0704c00180000000 0000000000001234  0001a000");
        assert_eq!(
            lines[2],
            "  9  0704c00180000000 000000000000123d  0002c000  dumped mid-instruction (has_osii)"
        );
        let c = CpuInfo {
            cpu: 1,
            pid: None,
            psw: ["0x0".into(), "0x0".into()],
            prefix: "0x0".into(),
            has_osii: false,
        };
        assert_eq!(cpu_table(&[c])[1], "  1  0000000000000000 0000000000000000  00000000");
    }

    #[test]
    fn dump_strings_cannot_drive_the_terminal() {
        assert_eq!(printable("6.1.0\x1b[31m\n\\x"), "6.1.0\\u{1b}[31m\\n\\\\x");
        assert_eq!(
            printable("#1 SMP Debian 6.12.107-1 (2026-08-29)"),
            "#1 SMP Debian 6.12.107-1 (2026-08-29)"
        );
    }

    #[test]
    fn sizes_and_numbers() {
        assert_eq!(size(0), "0 bytes");
        assert_eq!(size(4096), "4 KiB");
        assert_eq!(size(256 << 20), "256 MiB");
        assert_eq!(size(3 << 29), "1.5 GiB");
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(269_496_099), "269,496,099");
    }
}
