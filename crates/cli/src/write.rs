//! Writing an output (ELF or kdump, file or stream) for `decrypt` and `convert`.
//!
//! [`open_output`] decides what OUT is before the key is read or anything is decrypted: a new
//! private file (mode 0600, unnamed until complete), a stream (standard output, a character
//! device, a FIFO), or a refusal. [`write_output`] writes and publishes it.

use std::fs::File;
use std::io::IsTerminal;
use std::path::Path;

use pvdump_core::{Compression, Dump, Output, Progress, WriteOptions, Written};
use pvdump_vmcore::{Destination, Policy, ProtectedInput, Role};

use crate::args::{Format, OutputArgs};
use crate::exit::{Code, Failure};
use crate::signals;

/// Most chunks (1 MiB each) a stream output keeps in flight, whatever the thread count.
const MAX_WINDOW: usize = 64;

/// Where the output goes, opened and checked before any work.
pub enum Target {
    /// Standard output (`-o -`): a stream.
    Stdout(File),
    /// A new private file or an existing character device or FIFO.
    Path(Destination),
}

impl Target {
    /// Whether the output is written as a stream (bytes in order; kdump flattened).
    pub fn is_stream(&self) -> bool {
        !matches!(self, Target::Path(Destination::File(_)))
    }
}

/// Whether OUT means standard output.
fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-" || path == Path::new("/dev/stdout")
}

/// The inputs the output must never overwrite: the key (when `key` has a file behind it) and
/// the dump. Paths that cannot be inspected are left out; opening them fails later with the
/// proper message.
pub fn protected_inputs(key: Option<&pvdump_core::KeySource>, dump: &Path) -> Vec<ProtectedInput> {
    let mut v = Vec::new();
    if let Some(m) = key.and_then(|k| k.metadata().ok()) {
        v.push(ProtectedInput::from_metadata(&m, Role::Key));
    }
    if let Ok(p) = ProtectedInput::from_path(dump, Role::Dump) {
        v.push(p);
    }
    v
}

/// Checks the output options and opens the output, before the key is read and before any
/// byte is written: `--compress` only with kdump; OUT not an input (through any link), not a
/// terminal, not a directory, block device, socket or symbolic link; an existing regular file
/// only with `--force`. A FIFO is opened here, so this waits for its reader.
pub fn open_output(out: &OutputArgs, format: Format, protect: &[ProtectedInput]) -> Result<Target, Failure> {
    if out.compress.is_some() && format != Format::Kdump {
        return Err(Failure::usage("--compress applies only to --format kdump"));
    }
    if is_stdout(&out.output) {
        let file = stdout_file()?;
        if file.is_terminal() {
            return Err(Failure::usage(
                "refusing to write a binary dump to a terminal; redirect standard output or use -o FILE",
            ));
        }
        // `>> dump.elf` would append the output to an input (a `>` has already truncated it).
        if let Ok(meta) = file.metadata()
            && let Some(p) = protect
                .iter()
                .find(|p| ProtectedInput::from_metadata(&meta, p.role) == **p)
        {
            return Err(Failure::usage(format!(
                "standard output is {}; refusing to write the output over an input",
                p.role
            )));
        }
        return Ok(Target::Stdout(file));
    }
    let dest = Destination::open(&out.output, Policy::new(out.force), protect)?;
    if let Destination::Stream(f) = &dest
        && f.is_terminal()
    {
        return Err(Failure::usage(format!(
            "{}: is a terminal; refusing to write a binary dump to a terminal",
            out.output.display()
        )));
    }
    Ok(Target::Path(dest))
}

/// The compression a kdump output uses.
pub fn compression(out: &OutputArgs) -> Compression {
    out.compress.map_or(Compression::Zlib, |c| c.to_compression())
}

/// Human name of the output format.
pub fn describe(format: Format, out: &OutputArgs, stream: bool) -> String {
    match format {
        Format::Elf => "ELF vmcore".into(),
        Format::Kdump if stream => format!("flattened kdump-compressed, {}", compression(out)),
        Format::Kdump => format!("kdump-compressed, {}", compression(out)),
    }
}

/// Writes `dump` in `format` to `target` and publishes it: a file gets its name only now, and
/// not at all after a signal.
pub fn write_output(dump: &Dump, format: Format, out: &OutputArgs, target: Target) -> Result<Written, Failure> {
    let pool = thread_pool(out.threads)?;
    let total = dump.memory().iter().map(|b| b.size).sum();
    let bar = (!out.quiet && std::io::stderr().is_terminal()).then(|| Bar::new(total));
    let format = match format {
        Format::Elf => pvdump_core::Format::Elf,
        Format::Kdump => pvdump_core::Format::Kdump(compression(out)),
    };
    let result = pool.install(|| -> Result<Written, Failure> {
        let opts = WriteOptions {
            cancel: Some(&signals::CANCEL),
            window: (4 * rayon::current_num_threads()).clamp(1, MAX_WINDOW),
            progress: bar.as_ref().map(|b| b as &dyn Progress),
            ..WriteOptions::default()
        };
        match target {
            Target::Stdout(mut f) => dump
                .write(format, &mut Output::Stream(&mut f), &opts)
                .map_err(stream_failure),
            Target::Path(mut dest) => {
                let stream = matches!(dest, Destination::Stream(_));
                let written = dump
                    .write(format, &mut dest.output(), &opts)
                    .map_err(|e| if stream { stream_failure(e) } else { Failure::from(e) })?;
                // A signal that came after the last chunk: the output is discarded (dropping
                // an unnamed file removes it), not published.
                signals::check()?;
                dest.finish()?;
                Ok(written)
            }
        }
    });
    if let Some(b) = bar {
        b.0.finish_and_clear();
    }
    result
}

/// A failure writing a stream: the reader going away (EPIPE) is [`Code::BrokenPipe`], which
/// is reported by the exit status only.
fn stream_failure(e: pvdump_core::Error) -> Failure {
    if is_broken_pipe(&e) {
        Failure::new(Code::BrokenPipe, e)
    } else {
        Failure::from(e)
    }
}

/// Whether an error was caused by a closed pipe.
pub fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cur = err.source();
    }
    false
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

/// The worker pool: `threads` workers (1..=1024, checked by the argument parser), or one
/// per core.
pub fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool, Failure> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        b = b.num_threads(n.max(1));
    }
    b.build()
        .map_err(|e| Failure::new(Code::Io, anyhow::anyhow!("cannot start worker threads: {e}")))
}

/// Standard output as a plain file handle (a duplicate of fd 1): no line buffering, no
/// newline scanning of binary data.
fn stdout_file() -> Result<File, Failure> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Failure::io("cannot use standard output", e))?;
    Ok(File::from(fd))
}

/// The one-line summary printed on success.
pub fn summary(out: &OutputArgs, format: Format, stream: bool, w: &Written, secs: f64) -> String {
    let dest = if is_stdout(&out.output) {
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
        describe(format, out, stream),
        w.bytes,
        w.memory >> 20,
        w.memory as f64 / secs.max(1e-9) / 1e6
    )
}
