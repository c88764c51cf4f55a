//! Serve a dump as a read-only FUSE filesystem: `MOUNTPOINT/vmcore.elf` holds exactly the
//! bytes `pvdump decrypt -f elf` writes, decrypted on demand, never written anywhere.
//!
//! The filesystem ([`DumpFs`]) is a thin layer over [`pvdump_core::Dump::elf_image`], the
//! random-access view of the ELF writer's own layout: headers and notes come from memory,
//! memory pages are read from the mapped dump and decrypted when a reader asks for them.
//!
//! Privacy: the mount is owner-only (no `allow_other`), `ro,nosuid,nodev,noexec,noatime`
//! with `default_permissions`; the directory is 0500 and the file 0400. Files are opened
//! with direct I/O, so decrypted pages never enter the kernel's page cache; they exist only
//! in the server's reply buffers (at most [`CACHE_BYTES`]), which are wiped after every
//! reply and when the filesystem is unmounted.
//!
//! Speed: reads of [`PARALLEL_MIN`] bytes or more are split into [`PIECE`]-byte pieces
//! decrypted in parallel; the file reports a 1 MiB `st_blksize` so `cat`, `cp` and `dd`
//! read 1 MiB at a time.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use pvdump_core::{Dump, read_key_file};
//! use pvdump_mount::{DumpFs, mount};
//!
//! let key = read_key_file("cck.bin".as_ref())?;
//! let dump = Dump::open_encrypted("guest.elf".as_ref(), &key.cck)?;
//! let server = mount(DumpFs::new(dump, None)?, "/mnt/dump".as_ref())?;
//! server.check_readable()?;
//! // ... crash vmlinux /mnt/dump/vmcore.elf ...
//! server.unmounter().unmount()?;
//! server.wait()?;
//! # Ok(()) }
//! ```
//!
//! Linux only: on other systems this crate is empty.

#![cfg(target_os = "linux")]
#![warn(missing_docs)]

mod error;
mod fs;
mod read;
mod session;

pub use error::MountError;
pub use fs::DumpFs;
pub use session::{Server, Unmounted, Unmounter, detach, mount};

/// The name of the file in the mounted directory.
pub const FILE_NAME: &str = "vmcore.elf";

/// The largest read the server answers (the kernel is told so at INIT; a larger request
/// would get a short read). Also the `st_blksize` of the file, so standard tools read this
/// much at a time.
pub const MAX_READ: usize = 1 << 20;

/// Threads that take requests from the kernel: two concurrent readers are served at once.
pub const SESSION_THREADS: usize = 2;

/// Reads of at least this many bytes are decrypted in parallel.
pub const PARALLEL_MIN: usize = 256 << 10;

/// The size of the pieces a large read is split into for parallel decryption.
pub const PIECE: usize = 64 << 10;

/// The most decrypted bytes the server holds at once: one reply buffer per session thread,
/// each one request (widened to whole pages). Buffers are wiped after every reply and at
/// unmount. About 2 MiB.
pub const CACHE_BYTES: usize = SESSION_THREADS * (MAX_READ + 2 * read::PAGE as usize);
