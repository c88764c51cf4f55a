//! Command-line definition. The help text is the user manual: keep it accurate.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const EXIT_CODES: &str = "\
Exit codes:
  0    success
  2    usage error, unusable key file, or output exists (without --force)
  3    the key does not match this dump
  4    the dump is invalid, corrupted, or not an encrypted PV dump
  5    I/O error (unreadable input, unwritable or full output)
  130  interrupted (SIGINT/SIGTERM); no output file is left behind";

const AFTER: &str = "\
Examples:
  pvdump info guest.elf
  pvdump info --key cck.bin guest.elf --json
  pvdump decrypt --key cck.bin guest.elf -o vmcore
  pvdump decrypt --key cck.bin guest.elf -o - | ssh host 'cat > vmcore'

The key is the 32-byte customer communication key (CCK) given to genprotimg/pvimg --cck
when the Secure Execution image was built with dumping enabled.

Exit codes:
  0    success
  2    usage error, unusable key file, or output exists (without --force)
  3    the key does not match this dump
  4    the dump is invalid, corrupted, or not an encrypted PV dump
  5    I/O error (unreadable input, unwritable or full output)
  130  interrupted (SIGINT/SIGTERM); no output file is left behind";

/// Decrypt IBM Z Secure Execution (Protected Virtualization) guest dumps.
///
/// QEMU's `dump-guest-memory` on a Secure Execution guest writes an encrypted ELF core:
/// memory pages are AES-XTS encrypted and CPU registers are sealed in NT_S390_PV_CPU_DATA
/// notes. With the guest's customer communication key (CCK), pvdump turns it into a plain
/// s390x ELF vmcore for crash, gdb, drgn and makedumpfile.
#[derive(Debug, Parser)]
#[command(name = "pvdump", version, after_help = AFTER, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decrypt a PV dump into a plain vmcore.
    ///
    /// Every page state and every CPU note is checked before any output is written. The
    /// output is written under a temporary name next to OUT and renamed when complete, so a
    /// failure or Ctrl-C never leaves a partial file. Zero pages become holes (sparse file).
    #[command(after_help = EXIT_CODES)]
    Decrypt(DecryptArgs),
    /// Describe a dump: layout, memory, CPUs, page states; with --key also registers.
    ///
    /// Without a key this shows everything that is not encrypted. With --key it also
    /// verifies the key and shows each CPU's PSW and prefix, partial-instruction flags and
    /// the kernel release from VMCOREINFO.
    #[command(after_help = EXIT_CODES)]
    Info(InfoArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Plain s390x ELF vmcore (as zgetdump -f elf writes it).
    Elf,
}

#[derive(Debug, Args)]
pub struct KeyArg {
    /// Customer communication key file: 32 raw bytes, or 64 hex digits.
    #[arg(short, long, value_name = "CCK")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Customer communication key file: 32 raw bytes, or 64 hex digits.
    #[arg(short, long, value_name = "CCK")]
    pub key: PathBuf,
    /// The encrypted dump written by QEMU dump-guest-memory.
    #[arg(value_name = "DUMP")]
    pub dump: PathBuf,
    /// Output file, or '-' for standard output (a stream: zero pages are written out).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Elf)]
    pub format: Format,
    /// Replace OUT if it exists (it is replaced only once the new file is complete).
    #[arg(long)]
    pub force: bool,
    /// Worker threads for decryption (default: all cores).
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print nothing on success (errors and warnings are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The dump to describe.
    #[arg(value_name = "DUMP")]
    pub dump: PathBuf,
    #[command(flatten)]
    pub key: KeyArg,
    /// Machine-readable output (never contains key material).
    #[arg(long)]
    pub json: bool,
}
