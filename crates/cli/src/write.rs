//! Writing an output (ELF or kdump, file or stream) for `decrypt` and `convert`.

use std::io::IsTerminal;
use std::path::Path;

use pvdump_core::{Compression, Dump, Output, Progress, WriteOptions, Written};
use pvdump_vmcore::{AtomicFile, same_file};

use crate::args::{Format, OutputArgs};
use crate::exit::{Code, Failure};
use crate::signals::CANCEL;

/// Checks the output options before any work: not over the input, not over an existing
/// file without --force, no binary data to a terminal, --compress only with kdump.
/// Returns whether the output is standard output.
pub fn check_output(out: &OutputArgs, format: Format, input: &Path) -> Result<bool, Failure> {
    if out.compress.is_some() && format != Format::Kdump {
        return Err(Failure::usage("--compress applies only to --format kdump"));
    }
    if let Some(0) = out.threads {
        return Err(Failure::usage("--threads must be at least 1"));
    }
    let to_stdout = out.output.as_os_str() == "-";
    if !to_stdout {
        if same_file(&out.output, input) {
            return Err(Failure::usage(format!(
                "refusing to write the output over the input dump {}",
                input.display()
            )));
        }
        if !out.force && std::fs::symlink_metadata(&out.output).is_ok() {
            return Err(Failure::usage(format!(
                "{} already exists; pass --force to replace it",
                out.output.display()
            )));
        }
    } else if std::io::stdout().is_terminal() {
        return Err(Failure::usage(
            "refusing to write a binary dump to a terminal; redirect standard output or use -o FILE",
        ));
    }
    Ok(to_stdout)
}

/// The compression a kdump output uses.
pub fn compression(out: &OutputArgs) -> Compression {
    out.compress.map_or(Compression::Zlib, |c| c.to_compression())
}

/// Human name of the output format.
pub fn describe(format: Format, out: &OutputArgs) -> String {
    match format {
        Format::Elf => "ELF vmcore".into(),
        Format::Kdump if out.output.as_os_str() == "-" => {
            format!("flattened kdump-compressed, {}", compression(out))
        }
        Format::Kdump => format!("kdump-compressed, {}", compression(out)),
    }
}

/// Writes `dump` in `format` to the output (temp file + rename for a file).
pub fn write_output(dump: &Dump, format: Format, out: &OutputArgs) -> Result<Written, Failure> {
    let pool = thread_pool(out.threads)?;
    let total = dump.memory().iter().map(|b| b.size).sum();
    let bar = (!out.quiet && std::io::stderr().is_terminal()).then(|| Bar::new(total));
    let format = match format {
        Format::Elf => pvdump_core::Format::Elf,
        Format::Kdump => pvdump_core::Format::Kdump(compression(out)),
    };
    let result = pool.install(|| -> Result<Written, Failure> {
        let opts = WriteOptions {
            cancel: Some(&CANCEL),
            window: 4 * rayon::current_num_threads(),
            progress: bar.as_ref().map(|b| b as &dyn Progress),
            ..WriteOptions::default()
        };
        let write = |o: &mut Output<'_>| -> Result<Written, Failure> { Ok(dump.write(format, o, &opts)?) };
        if out.output.as_os_str() == "-" {
            let mut stdout = stdout_file()?;
            write(&mut Output::Stream(&mut stdout))
        } else {
            let file = AtomicFile::create(&out.output, out.force)?;
            crate::signals::set_temp_path(file.temp_path());
            let written = write(&mut Output::File(file.file()));
            // The input is no longer read after this: a SIGBUS cannot come any more.
            crate::signals::clear_temp_path();
            let w = written?;
            file.commit()?;
            Ok(w)
        }
    });
    if let Some(b) = bar {
        b.0.finish_and_clear();
    }
    result
}

/// A progress bar on stderr (only when stderr is a terminal and --quiet is not given):
/// bytes of memory done, rate and ETA.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new(total: u64) -> Bar {
        let bar =
            indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr_with_hz(8));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Bar(bar)
    }
}

impl Progress for Bar {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
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

/// The one-line summary printed on success.
pub fn summary(out: &OutputArgs, format: Format, w: &Written, secs: f64) -> String {
    let dest = if out.output.as_os_str() == "-" {
        "standard output".to_string()
    } else {
        out.output.display().to_string()
    };
    let pages = match &w.kdump {
        Some(k) => format!(
            ", {} pages ({} compressed, {} stored raw, {} zero)",
            k.pages, k.compressed_pages, k.raw_pages, k.zero_pages
        ),
        None => String::new(),
    };
    format!(
        "pvdump: wrote {dest} ({}, {} bytes){pages}: {} MiB of memory, {secs:.2} s, {:.0} MB/s",
        describe(format, out),
        w.bytes,
        w.memory >> 20,
        w.memory as f64 / secs.max(1e-9) / 1e6
    )
}
