//! `pvdump`: the thin command-line front end. All logic lives in the library crates
//! (`pvdump-core` and the crates below it); this binary parses arguments, prints, and maps
//! errors to the documented exit codes.

mod args;
mod convert;
mod decrypt;
mod exit;
mod info;
mod input;
mod manual;
mod mount;
mod signals;
mod version;
mod write;

use std::io::Write;

use clap::Parser;

fn main() {
    make_undumpable();
    quiet_on_closed_stdout();
    // First of all, so that no signal finds the default action (death without cleanup).
    signals::install();
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_with_clap_error(e),
    };
    let result = match &cli.command {
        args::Command::Decrypt(a) => decrypt::run(a),
        args::Command::Info(a) => info::run(a),
        args::Command::Convert(a) => convert::run(a),
        args::Command::Mount(a) => mount::run(a),
        args::Command::Completions(a) => print_stdout(&manual::completions(a.shell)),
        args::Command::Man => print_stdout(manual::man_page().as_bytes()),
    };
    if let Err(f) = result {
        // A closed output pipe is told by the exit status alone, as a process killed by
        // SIGPIPE would be; everything else gets its message (if stderr still works).
        if f.code != exit::Code::BrokenPipe {
            let _ = writeln!(std::io::stderr(), "pvdump: error: {:#}", f.error);
        }
        std::process::exit(f.code as i32);
    }
}

/// Makes the process non-dumpable (Linux `PR_SET_DUMPABLE` 0) for its whole life: the key,
/// the keys derived from it and the decrypted guest memory pass through this process, so a
/// crash must not write them into a core file (systemd-coredump, apport, or `core` in the
/// working directory), and other processes of the same user must not read its memory through
/// ptrace or /proc/PID/mem. A side effect: a debugger or strace needs CAP_SYS_PTRACE to attach.
fn make_undumpable() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: prctl(PR_SET_DUMPABLE) takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// `println!` panics when standard output is a closed pipe (`pvdump info | head -1`); this
/// hook turns that panic into the quiet exit status of a closed pipe (141) instead of a panic
/// message, and any other failure to print into an ordinary I/O error (exit 5). Any other
/// panic is a bug and still speaks in the one message style (the exit status stays 101).
fn quiet_on_closed_stdout() {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(cause) = msg.strip_prefix("failed printing to stdout: ") {
            if cause.contains(&format!("(os error {})", libc::EPIPE)) {
                std::process::exit(exit::Code::BrokenPipe as i32);
            }
            let _ = writeln!(
                std::io::stderr(),
                "pvdump: error: cannot write to standard output: {cause}"
            );
            std::process::exit(exit::Code::Io as i32);
        }
        let _ = writeln!(
            std::io::stderr(),
            "pvdump: error: internal error (a bug in pvdump; please report it): {info}"
        );
    }));
}

/// Writes `bytes` to standard output. A reader that went away (`pvdump info x | head`) is
/// told by the exit status of a closed pipe (141) alone; any other write error is an I/O
/// error (exit 5).
pub fn print_stdout(bytes: &[u8]) -> Result<(), exit::Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(exit::Failure::new(exit::Code::BrokenPipe, e)),
        Err(e) => Err(exit::Failure::io("cannot write to standard output", e)),
    }
}

/// Help and version go to stdout with exit 0; usage errors get the one message style
/// (`pvdump: error: ...`) and exit 2.
fn exit_with_clap_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        std::process::exit(0);
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // `pvdump` alone: say what is wrong, then show the help (on stderr, exit 2).
        eprint!("pvdump: error: no command given\n\n{}", e.render());
        std::process::exit(exit::Code::Usage as i32);
    }
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let _ = write!(std::io::stderr(), "pvdump: error: {text}");
    std::process::exit(exit::Code::Usage as i32);
}

#[cfg(test)]
mod tests {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_process_becomes_undumpable() {
        super::make_undumpable();
        // SAFETY: PR_GET_DUMPABLE takes no pointer and returns the flag.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }, 0);
    }
}
