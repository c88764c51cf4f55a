//! `pvdump decrypt`.

use std::io::Write;
use std::time::Instant;

use pvdump_crypto::OpenedDump;
use pvdump_format::{PageSource, PvDump};
use pvdump_vmcore::{KdumpInfo, build_notes};

use crate::args::DecryptArgs;
use crate::exit::Failure;
use crate::input::{Input, read_key};
use crate::write::{check_output, write_output};

pub fn run(args: &DecryptArgs) -> Result<(), Failure> {
    check_output(&args.out, args.format, &args.dump)?;
    let cck = read_key(&args.key)?;
    let input = Input::open(&args.dump)?;
    let dump =
        PvDump::parse(input.bytes()).map_err(|e| Failure::from(e).context(format!("{}", args.dump.display())))?;
    let opened =
        OpenedDump::open(&dump, &cck).map_err(|e| Failure::from(e).context(format!("{}", args.dump.display())))?;
    drop(cck);
    for cpu in opened.cpus().iter().filter(|c| c.regs.has_osii) {
        eprintln!(
            "pvdump: warning: CPU {} was dumped in the middle of an instruction (has_osii): its registers may contain partial instruction results",
            cpu.index
        );
    }
    let vmcoreinfo = opened.vmcoreinfo()?;
    let regs: Vec<_> = opened.cpus().iter().map(|c| c.regs.clone()).collect();
    let notes = build_notes(&regs, vmcoreinfo.as_ref().map(|v| v.text.as_slice()));
    let info = KdumpInfo {
        release: vmcoreinfo.as_ref().and_then(|v| v.osrelease()).map(str::to_owned),
        crashtime: vmcoreinfo.as_ref().and_then(|v| v.crashtime()),
        nr_cpus: u32::try_from(regs.len()).unwrap_or(u32::MAX),
    };
    let started = Instant::now();
    let written = write_output(&opened, &notes, &info, args.format, &args.out)?;
    if !args.out.quiet {
        let c = opened.page_counts();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{}; {} CPUs ({} encrypted, {} zero, {} shared pages){}",
            crate::write::summary(&args.out, args.format, &written, started.elapsed().as_secs_f64()),
            opened.cpus().len(),
            c.encrypted,
            c.zero,
            c.shared,
            vmcoreinfo
                .as_ref()
                .and_then(|v| v.osrelease())
                .map(|r| format!(", kernel {r}"))
                .unwrap_or_default(),
        );
        debug_assert_eq!(written.memory, opened.total_bytes());
    }
    Ok(())
}
