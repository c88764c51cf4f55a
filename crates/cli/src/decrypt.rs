//! `pvdump decrypt`.

use std::io::Write;
use std::time::Instant;

use pvdump_core::KeySource;

use crate::args::DecryptArgs;
use crate::exit::Failure;
use crate::input::{named, read_key, warn_irregularities};
use crate::signals;
use crate::write::{open_output, protected_inputs, summary, write_output};

pub fn run(args: &DecryptArgs) -> Result<(), Failure> {
    let key = KeySource::from_arg(&args.key);
    // The output is decided (and a FIFO's reader awaited) before the key is read.
    let target = open_output(&args.out, args.format, &protected_inputs(Some(&key), &args.dump))?;
    signals::check()?;
    let cck = read_key(&args.key, args.out.quiet)?;
    signals::check()?;
    let dump = pvdump_core::Dump::open_encrypted(&args.dump, &cck).map_err(|e| named(e, &args.dump))?;
    drop(cck);
    warn_irregularities(&dump, &args.dump);
    let cpus = dump.cpus()?;
    for cpu in cpus.iter().filter(|c| c.regs.has_osii) {
        let _ = writeln!(
            std::io::stderr(),
            "pvdump: warning: CPU {} was dumped in the middle of an instruction (has_osii): its registers may contain partial instruction results",
            cpu.index
        );
    }
    signals::check()?;
    let stream = target.is_stream();
    let started = Instant::now();
    let written = write_output(&dump, args.format, &args.out, target)?;
    if !args.out.quiet {
        let c = dump.page_counts().unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "{}; {} CPUs ({} encrypted, {} zero, {} shared pages){}",
            summary(
                &args.out,
                args.format,
                stream,
                &written,
                started.elapsed().as_secs_f64()
            ),
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
