//! `cargo xtask synth`: one synthetic encrypted PV dump (simulated Ultravisor) and its key,
//! for experiments.
//!
//! - `synth OUT.elf KEY.bin MIB [random|compressible] [ZERO_PERMILLE]`: generated memory.
//! - `synth --content-from PLAIN.elf OUT.elf KEY.bin`: the memory blocks, pages and CPU
//!   registers of a real plain s390x ELF vmcore (QEMU's dump of a normal guest), sealed as
//!   QEMU and the Ultravisor would have written them for a Secure Execution guest.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, bail};
use pvdump_format::PlainElf;
use pvdump_synth::{Content, SealOptions, Sealed, SynthSpec, seal_plain};

const USAGE: &str = "usage: cargo xtask synth OUT.elf KEY.bin MIB [random|compressible] [ZERO_PERMILLE]\n       \
                     cargo xtask synth --content-from PLAIN.elf OUT.elf KEY.bin";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if args.first().map(String::as_str) == Some("--content-from") {
        let [_, plain, out, key] = args else {
            bail!("{USAGE}");
        };
        let s = seal_file(
            Path::new(plain),
            Path::new(out),
            Path::new(key),
            &SealOptions::default(),
        )?;
        eprintln!(
            "wrote {out} ({} bytes: {} CPUs, {} encrypted, {} zero, {} shared pages) and key {key}",
            s.file_len, s.cpus, s.encrypted, s.zero, s.shared
        );
        return Ok(());
    }
    if args.len() < 3 {
        bail!("{USAGE}");
    }
    let mib: u64 = args[2].parse().context("MIB")?;
    let mut spec = SynthSpec::simple(0x5eed, mib, 4);
    spec.content = match args.get(3).map(String::as_str) {
        None | Some("compressible") => Content::Compressible,
        Some("random") => Content::Random,
        Some(o) => bail!("unknown content {o}"),
    };
    if let Some(z) = args.get(4) {
        spec.zero_permille = z.parse().context("ZERO_PERMILLE")?;
    }
    let f = std::fs::File::create(&args[0]).with_context(|| args[0].clone())?;
    let len = spec.write_dump(&mut BufWriter::with_capacity(1 << 20, f))?;
    write_private(Path::new(&args[1]), &spec.cck())?;
    eprintln!(
        "wrote {} ({len} bytes, {mib} MiB of memory) and key {}",
        args[0], args[1]
    );
    Ok(())
}

/// Seals the plain ELF vmcore `plain` into the encrypted PV dump `out` and writes its
/// customer key (32 raw bytes) to `key`.
pub fn seal_file(plain: &Path, out: &Path, key: &Path, opts: &SealOptions) -> anyhow::Result<Sealed> {
    let input = pvdump_core::Input::map(plain).with_context(|| plain.display().to_string())?;
    let elf = PlainElf::parse(input.bytes()).with_context(|| plain.display().to_string())?;
    let f = std::fs::File::create(out).with_context(|| out.display().to_string())?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let sealed = seal_plain(&elf, opts, &mut w).with_context(|| out.display().to_string())?;
    w.flush().with_context(|| out.display().to_string())?;
    write_private(key, &opts.cck())?;
    Ok(sealed)
}

/// Writes `bytes` to a new file `path` readable by the owner only (key files).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| path.display().to_string())?;
    f.write_all(bytes).with_context(|| path.display().to_string())
}
