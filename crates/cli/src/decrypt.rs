//! `pvdump decrypt`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use pvdump_crypto::OpenedDump;
use pvdump_format::{PageSource, PvDump};
use pvdump_vmcore::{AtomicFile, Output, WriteOptions, build_notes, same_file, write_elf};

use crate::args::{DecryptArgs, Format};
use crate::exit::{Code, Failure};
use crate::input::{Input, read_key};
use crate::signals::CANCEL;

pub fn run(args: &DecryptArgs) -> Result<(), Failure> {
    let to_stdout = args.output.as_os_str() == "-";
    if !to_stdout {
        if same_file(&args.output, &args.dump) {
            return Err(Failure::usage(format!(
                "refusing to write the output over the input dump {}",
                args.dump.display()
            )));
        }
        if !args.force && std::fs::symlink_metadata(&args.output).is_ok() {
            return Err(Failure::usage(format!(
                "{} already exists; pass --force to replace it",
                args.output.display()
            )));
        }
    } else if std::io::stdout().is_terminal() {
        return Err(Failure::usage(
            "refusing to write a binary dump to a terminal; redirect standard output or use -o FILE",
        ));
    }
    let pool = thread_pool(args.threads)?;
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
    let opts = WriteOptions {
        cancel: Some(&CANCEL),
        ..WriteOptions::default()
    };
    let started = Instant::now();
    let stats = pool.install(|| -> Result<_, Failure> {
        let opts = WriteOptions {
            window: 4 * rayon::current_num_threads(),
            ..opts
        };
        match args.format {
            Format::Elf => {
                if to_stdout {
                    let mut stdout = stdout_file()?;
                    let mut out = Output::Stream(&mut stdout);
                    Ok(write_elf(&opened, &notes, &mut out, &opts)?)
                } else {
                    let file = AtomicFile::create(&args.output, args.force)?;
                    crate::signals::set_temp_path(file.temp_path());
                    let written = write_elf(&opened, &notes, &mut Output::File(file.file()), &opts);
                    // The input is no longer read after this: a SIGBUS cannot come any more.
                    crate::signals::clear_temp_path();
                    let stats = written?;
                    file.commit()?;
                    Ok(stats)
                }
            }
        }
    })?;
    if !args.quiet {
        let secs = started.elapsed().as_secs_f64();
        let c = opened.page_counts();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "pvdump: wrote {} ({}): {} CPUs, {} MiB of memory ({} encrypted, {} zero, {} shared pages){}, {:.2} s, {:.0} MB/s",
            display_out(&args.output),
            match args.format {
                Format::Elf => "ELF vmcore",
            },
            opened.cpus().len(),
            opened.total_bytes() >> 20,
            c.encrypted,
            c.zero,
            c.shared,
            vmcoreinfo
                .as_ref()
                .and_then(|v| v.osrelease())
                .map(|r| format!(", kernel {r}"))
                .unwrap_or_default(),
            secs,
            stats.memory as f64 / secs.max(1e-9) / 1e6
        );
    }
    Ok(())
}

fn display_out(p: &Path) -> String {
    if p.as_os_str() == "-" {
        "standard output".into()
    } else {
        p.display().to_string()
    }
}

pub fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool, Failure> {
    let mut b = rayon::ThreadPoolBuilder::new();
    match threads {
        Some(0) => return Err(Failure::usage("--threads must be at least 1")),
        Some(n) => b = b.num_threads(n),
        None => {}
    }
    b.build()
        .map_err(|e| Failure::new(Code::Io, anyhow::anyhow!("cannot start worker threads: {e}")))
}

/// Standard output as a plain file handle (a duplicate of fd 1): no line buffering, no
/// newline scanning of binary data.
fn stdout_file() -> Result<std::fs::File, Failure> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Failure::io("cannot use standard output", e))?;
    Ok(std::fs::File::from(fd))
}
