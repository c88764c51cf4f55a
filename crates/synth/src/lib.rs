//! A simulated IBM Z Ultravisor: builds complete, deterministic encrypted Protected
//! Virtualization dumps laid out byte for byte as QEMU's `dump-guest-memory` writes them,
//! with known plaintext and registers. pvdump's fixtures, tests, fuzz seeds and benchmarks
//! come from here; the shipped `pvdump` binary never links it.
//!
//! - [`SynthSpec`]: what a dump holds (memory blocks, page-state shares, CPUs, VMCOREINFO
//!   placement, quirks) as a pure function of a seed, so a 4 GiB dump can be generated and
//!   verified without holding it in memory.
//! - [`seal_plain`]: the same Ultravisor applied to the memory and registers of a real plain
//!   dump (`cargo xtask synth --content-from PLAIN.elf`), so real kernels can be sealed.
//! - [`real_like_guest`]: a small plain guest dump shaped like a real kernel's (VMCOREINFO
//!   through the lowcore, `init_uts_ns`, both kernel layouts), for tests without network.
//! - [`pvelf`]: the QEMU PV ELF layout (section headers first, notes, memory,
//!   `pv_mem_meta`, `pv_compl`, `.shstrtab`).
//!
//! ```
//! let spec = pvdump_synth::SynthSpec::simple(7, 1, 2); // seed 7, 1 MiB, 2 CPUs
//! let dump = spec.dump_bytes();
//! let parsed = pvdump_format::PvDump::parse(&dump).unwrap();
//! assert_eq!(parsed.cpus().len(), 2);
//! ```

#![warn(missing_docs)]

mod plain;
pub mod pvelf;
mod seal;
mod spec;

pub use plain::{IMAGE_PHYS, IMAGE_VIRT, KernelLayout, PlainGuest, real_like_guest};
pub use seal::{SealError, SealOptions, Sealed, seal_plain};
pub use spec::{Content, Rng, SynthSpec, TweakStyle, VmcoreinfoPlacement};
