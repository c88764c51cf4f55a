//! `pvdump convert`: a plain s390x ELF vmcore (or a kdump file) to kdump-compressed or ELF.

use std::io::Write;
use std::time::Instant;

use pvdump_core::{DumpKind, FormatError};

use crate::args::ConvertArgs;
use crate::exit::Failure;
use crate::input::open_dump;
use crate::signals;
use crate::write::{open_output, protected_inputs, summary, write_output};

pub fn run(args: &ConvertArgs) -> Result<(), Failure> {
    let target = open_output(&args.out, args.format, &protected_inputs(None, &args.input))?;
    signals::check()?;
    let dump = open_dump(&args.input, None)?;
    if dump.kind() == DumpKind::EncryptedPv {
        return Err(Failure::from(FormatError::EncryptedInput).context(args.input.display().to_string()));
    }
    let stream = target.is_stream();
    let started = Instant::now();
    let written = write_output(&dump, args.format, &args.out, target)?;
    if !args.out.quiet {
        let cpus = dump.notes()?.cpus;
        let _ = writeln!(
            std::io::stderr(),
            "{}; {} CPUs{}",
            summary(
                &args.out,
                args.format,
                stream,
                &written,
                started.elapsed().as_secs_f64()
            ),
            cpus,
            dump.vmcoreinfo()
                .and_then(|v| v.osrelease())
                .map(|r| format!(", kernel {r}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
