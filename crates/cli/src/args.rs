//! Command-line definition. The help text is the user manual: keep it accurate.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Examples and notes shown after the top-level --help; the exit-code table follows.
pub const EXAMPLES: &str = "\
Examples:
  pvdump info guest.elf
  pvdump info --key cck.bin guest.elf --json
  pvdump decrypt --key cck.bin guest.elf -o vmcore
  pvdump decrypt --key cck.bin guest.elf -o - | ssh host 'cat > vmcore'
  pvdump decrypt --key cck.bin guest.elf --format kdump -o vmcore.kdump
  pvdump decrypt --key cck.bin guest.elf --format kdump -o - | makedumpfile -R vmcore.kdump
  pvdump convert vmcore.elf --format kdump --compress zstd -o vmcore.kdump
  pvdump info vmcore.kdump

The key is the 32-byte customer communication key (CCK) given to genprotimg/pvimg --cck
when the Secure Execution image was built with dumping enabled.
";

fn after_help() -> String {
    format!("{EXAMPLES}\n{}", crate::exit::help_table())
}

/// Decrypt IBM Z Secure Execution (Protected Virtualization) guest dumps.
///
/// QEMU's `dump-guest-memory` on a Secure Execution guest writes an encrypted ELF core:
/// memory pages are AES-XTS encrypted and CPU registers are sealed in NT_S390_PV_CPU_DATA
/// notes. With the guest's customer communication key (CCK), pvdump turns it into a plain
/// s390x ELF vmcore or a kdump-compressed dump for crash, gdb, drgn and makedumpfile.
#[derive(Debug, Parser)]
#[command(
    name = "pvdump",
    version,
    long_version = crate::version::LONG.as_str(),
    after_help = after_help(),
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decrypt a PV dump into a plain vmcore.
    ///
    /// Every page state and every CPU note is checked before any output is written. The
    /// output file is private (mode 0600) from its first byte and gets its name only when
    /// complete, so a failure, Ctrl-C or even kill -9 never leaves a partial file. In ELF
    /// output zero pages become holes (sparse file: every zero page on tmpfs, runs of 16 or
    /// more on disk file systems); in kdump output they all share one zero block.
    #[command(after_help = crate::exit::help_table())]
    Decrypt(DecryptArgs),
    /// Describe any dump pvdump reads or writes: kind, memory, CPUs, VMCOREINFO, utsname.
    ///
    /// Works on encrypted PV dumps, plain s390x ELF vmcores (pvdump's output, QEMU's
    /// dump-guest-memory of a normal guest), kdump-compressed files and flattened kdump
    /// streams. Shows the memory blocks, each CPU's PSW and prefix, the VMCOREINFO
    /// highlights (kernel release, build ID, page size, crash time and where it was found),
    /// the dumped system's utsname where known, the page states of a PV dump and the
    /// compression and page counts of a kdump file.
    ///
    /// An encrypted dump without --key shows only what is not encrypted (layout, page
    /// states); with --key the key is verified and registers and VMCOREINFO are shown.
    /// --json prints the same as one JSON object (schema "pvdump-info/1", docs/json.md);
    /// it never contains key material.
    #[command(after_help = crate::exit::help_table())]
    Info(InfoArgs),
    /// Convert a plain (non-PV) s390x ELF vmcore to kdump-compressed or ELF; no key needed.
    ///
    /// The input is an ELF vmcore that is not encrypted: pvdump's own ELF output, a QEMU
    /// dump-guest-memory file of a normal guest, a copy of /proc/vmcore. Its notes (CPU
    /// registers, VMCOREINFO) are copied unchanged. An encrypted PV dump is refused: use
    /// `pvdump decrypt`.
    #[command(after_help = crate::exit::help_table())]
    Convert(ConvertArgs),
    /// Mount a decrypted view of a PV dump: no plaintext is ever written to a disk.
    ///
    /// MOUNTPOINT/vmcore.elf then holds exactly the bytes `pvdump decrypt` writes (ELF),
    /// decrypted on demand from the dump: point crash, drgn or gdb at it. Everything decrypt
    /// checks (key, completion data, CPU notes, page states) is checked before mounting.
    ///
    /// Privacy: only you can open the mount (no allow_other, not even root); it is
    /// read-only, nosuid, nodev and noexec, the file has mode 0400. Reads bypass the page
    /// cache (direct I/O), so decrypted bytes live only in the server's cache: two reply
    /// buffers of 1 MiB, wiped after every reply and at unmount.
    ///
    /// By default pvdump returns once the file is readable and keeps serving in the
    /// background; unmount with `umount MOUNTPOINT` or `fusermount3 -u MOUNTPOINT`. With
    /// --foreground it stays attached and Ctrl-C or SIGTERM unmounts. A mount that a reader
    /// still holds is detached at once and served until the reader closes the file.
    #[command(after_help = mount_help())]
    Mount(MountArgs),
    /// Print a shell completion script to standard output.
    ///
    /// bash: `pvdump completions bash > ~/.local/share/bash-completion/completions/pvdump`;
    /// zsh: `pvdump completions zsh > ~/.zfunc/_pvdump` (with ~/.zfunc in $fpath);
    /// fish: `pvdump completions fish > ~/.config/fish/completions/pvdump.fish`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to standard output.
    ///
    /// Read it with `pvdump man | man -l -`; install it with
    /// `pvdump man > /usr/local/share/man/man1/pvdump.1`.
    Man,
}

/// Examples shown after `pvdump mount --help`; the exit-code table follows.
const MOUNT_EXAMPLES: &str = "\
Examples:
  mkdir -p /mnt/guest
  pvdump mount --key cck.bin guest.elf /mnt/guest
  crash vmlinux /mnt/guest/vmcore.elf
  drgn -c /mnt/guest/vmcore.elf -s vmlinux
  gdb-multiarch vmlinux /mnt/guest/vmcore.elf
  umount /mnt/guest                  # or: fusermount3 -u /mnt/guest

Needs Linux and FUSE (/dev/fuse; without root also fusermount3 from the fuse3 package).
";

fn mount_help() -> String {
    format!("{MOUNT_EXAMPLES}\n{}", crate::exit::help_table())
}

#[derive(Debug, Args)]
pub struct MountArgs {
    /// Customer communication key: a file of 32 raw bytes or 64 hex digits, a FIFO or pipe
    /// (--key <(gpg -d cck.gpg)), or '-' for standard input.
    #[arg(short, long, value_name = "CCK")]
    pub key: PathBuf,
    /// The encrypted dump written by QEMU dump-guest-memory.
    #[arg(value_name = "DUMP")]
    pub dump: PathBuf,
    /// An existing directory; vmcore.elf appears in it.
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,
    /// Stay attached until unmounted (Ctrl-C, SIGTERM, umount) instead of serving in the
    /// background.
    #[arg(short, long)]
    pub foreground: bool,
    /// Decryption threads (default: all cores).
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,
    /// No messages besides errors and warnings.
    #[arg(short, long)]
    pub quiet: bool,
    /// Internal: the pipe on which a background server tells its parent it is ready.
    #[arg(long, hide = true, value_name = "FD")]
    pub ready_fd: Option<i32>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Plain s390x ELF vmcore (as zgetdump -f elf writes it).
    Elf,
    /// kdump-compressed (makedumpfile/diskdump "KDUMP" format) as crash, libkdumpfile and
    /// drgn read it; with -o - the flattened format (`makedumpfile -R OUT` rebuilds the file).
    Kdump,
}

/// Page compression of --format kdump. Every reader supports zlib; the others need a
/// reader built with them. Compare on your own dumps: sizes and speeds depend on the memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compress {
    /// zlib level 1: the default, readable by every kdump reader.
    Zlib,
    /// zstd level 1 (readers built with zstd): usually a little smaller than zlib.
    Zstd,
    /// LZO1X-1 (readers built with lzo): fast to write and to read, compresses a little less
    /// than zlib.
    Lzo,
    /// Raw snappy (readers built with snappy): the fastest, compresses least.
    Snappy,
    /// No compression (zero pages still share one block).
    None,
}

impl Compress {
    pub fn to_compression(self) -> pvdump_core::Compression {
        use pvdump_core::Compression as C;
        match self {
            Compress::Zlib => C::Zlib,
            Compress::Zstd => C::Zstd,
            Compress::Lzo => C::Lzo,
            Compress::Snappy => C::Snappy,
            Compress::None => C::None,
        }
    }
}

/// Output options shared by `decrypt` and `convert`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output file, or '-' for standard output.
    ///
    /// A new file is created with mode 0600 (whatever the umask) and named only once complete.
    /// Standard output, an existing character device or FIFO are written as a stream (an ELF
    /// in order with its zero pages, a kdump file in the flattened format); they are never
    /// replaced. Directories, block devices, sockets, symbolic links, terminals and the inputs
    /// (key file, dump) are refused.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Page compression for --format kdump (default zlib, which every reader supports).
    ///
    /// zlib: every kdump reader (crash, makedumpfile, libkdumpfile, drgn) has it. zstd is
    /// usually a little smaller, snappy the fastest and largest, lzo fast to write and read, none
    /// uncompressed (zero pages still share one block).
    #[arg(short, long, value_enum, value_name = "ALGO")]
    pub compress: Option<Compress>,
    /// Replace OUT if it is an existing regular file (atomically, once the new file is
    /// complete). Never a device, FIFO, link or directory, nor an input.
    #[arg(long)]
    pub force: bool,
    /// Worker threads, 1 to 1024 (default: all cores).
    #[arg(
        short = 'j',
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = clap::builder::RangedI64ValueParser::<usize>::new().range(1..=1024)
    )]
    pub threads: Option<usize>,
    /// No progress bar and no summary line (errors and warnings are still printed). The
    /// progress bar is shown only when stderr is a terminal.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A plain (not encrypted) s390x ELF vmcore.
    #[arg(value_name = "VMCORE")]
    pub input: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Kdump)]
    pub format: Format,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct KeyArg {
    /// Customer communication key: a file of 32 raw bytes or 64 hex digits, a FIFO or pipe
    /// (--key <(gpg -d cck.gpg)), or '-' for standard input.
    #[arg(short, long, value_name = "CCK")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Customer communication key: a file of 32 raw bytes or 64 hex digits, a FIFO or pipe
    /// (--key <(gpg -d cck.gpg)), or '-' for standard input.
    #[arg(short, long, value_name = "CCK")]
    pub key: PathBuf,
    /// The encrypted dump written by QEMU dump-guest-memory.
    #[arg(value_name = "DUMP")]
    pub dump: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Elf)]
    pub format: Format,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The dump to describe.
    #[arg(value_name = "DUMP")]
    pub dump: PathBuf,
    #[command(flatten)]
    pub key: KeyArg,
    /// Print one JSON object (schema "pvdump-info/1", see docs/json.md) instead of text;
    /// it never contains key material.
    #[arg(long)]
    pub json: bool,
}
