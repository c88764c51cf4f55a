//! `pvdump`: the thin command-line front end. All logic lives in the library crates.

mod args;
mod convert;
mod decrypt;
mod exit;
mod info;
mod input;
mod signals;
mod write;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    signals::install();
    let result = match &cli.command {
        args::Command::Decrypt(a) => decrypt::run(a),
        args::Command::Info(a) => info::run(a),
        args::Command::Convert(a) => convert::run(a),
    };
    if let Err(f) = result {
        eprintln!("pvdump: error: {:#}", f.error);
        std::process::exit(f.code as i32);
    }
}
