//! `pvdump`: the thin command-line front end. All logic lives in the library crates
//! (`pvdump-core` and the crates below it); this binary parses arguments, prints, and maps
//! errors to the documented exit codes.

mod args;
mod convert;
mod decrypt;
mod exit;
mod info;
mod input;
mod mount;
mod signals;
mod write;

use clap::Parser;

fn main() {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_with_clap_error(e),
    };
    signals::install();
    let result = match &cli.command {
        args::Command::Decrypt(a) => decrypt::run(a),
        args::Command::Info(a) => info::run(a),
        args::Command::Convert(a) => convert::run(a),
        args::Command::Mount(a) => mount::run(a),
    };
    if let Err(f) = result {
        eprintln!("pvdump: error: {:#}", f.error);
        std::process::exit(f.code as i32);
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
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    eprint!("pvdump: error: {text}");
    std::process::exit(exit::Code::Usage as i32);
}
