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
mod signals;
mod version;
mod write;

use std::io::Write;

use clap::Parser;

fn main() {
    // A bug must still speak in the one message style (the exit status stays Rust's 101).
    std::panic::set_hook(Box::new(|info| {
        eprintln!("pvdump: error: internal error (a bug in pvdump; please report it): {info}");
    }));
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_with_clap_error(e),
    };
    signals::install();
    let result = match &cli.command {
        args::Command::Decrypt(a) => decrypt::run(a),
        args::Command::Info(a) => info::run(a),
        args::Command::Convert(a) => convert::run(a),
        args::Command::Completions(a) => print_stdout(&manual::completions(a.shell)),
        args::Command::Man => print_stdout(manual::man_page().as_bytes()),
    };
    if let Err(f) = result {
        eprintln!("pvdump: error: {:#}", f.error);
        std::process::exit(f.code as i32);
    }
}

/// Writes `bytes` to standard output. A reader that went away (`pvdump info x | head`) is
/// not an error; any other write error is an I/O error (exit 5).
pub fn print_stdout(bytes: &[u8]) -> Result<(), exit::Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
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
    eprint!("pvdump: error: {text}");
    std::process::exit(exit::Code::Usage as i32);
}
