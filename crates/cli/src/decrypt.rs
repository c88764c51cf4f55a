//! `pvdump decrypt`.

use std::io::Write;
use std::time::Instant;

use crate::args::DecryptArgs;
use crate::exit::Failure;
use crate::input::{named, read_key};
use crate::write::{check_output, summary, write_output};

pub fn run(args: &DecryptArgs) -> Result<(), Failure> {
    check_output(&args.out, args.format, &args.dump)?;
    let cck = read_key(&args.key, args.out.quiet)?;
    let dump = pvdump_core::Dump::open_encrypted(&args.dump, &cck).map_err(|e| named(e, &args.dump))?;
    drop(cck);
    let cpus = dump.cpus()?;
    for cpu in cpus.iter().filter(|c| c.regs.has_osii) {
        eprintln!(
            "pvdump: warning: CPU {} was dumped in the middle of an instruction (has_osii): its registers may contain partial instruction results",
            cpu.index
        );
    }
    let started = Instant::now();
    let written = write_output(&dump, args.format, &args.out)?;
    if !args.out.quiet {
        let c = dump.page_counts().unwrap_or_default();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{}; {} CPUs ({} encrypted, {} zero, {} shared pages){}",
            summary(&args.out, args.format, &written, started.elapsed().as_secs_f64()),
            cpus.len(),
            c.encrypted,
            c.zero,
            c.shared,
            dump.vmcoreinfo()
                .and_then(|v| v.osrelease())
                .map(|r| format!(", kernel {r}"))
                .unwrap_or_default(),
        );
    }
    Ok(())
}
