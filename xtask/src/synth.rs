//! `cargo xtask synth OUT.elf KEY.bin MIB [random|compressible] [ZERO_PERMILLE]`: one
//! synthetic encrypted PV dump (simulated Ultravisor) and its key, for experiments.

use std::io::BufWriter;

use anyhow::{Context, bail};
use pvdump_synth::{Content, SynthSpec};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if args.len() < 3 {
        bail!("usage: cargo xtask synth OUT.elf KEY.bin MIB [random|compressible] [ZERO_PERMILLE]");
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
    std::fs::write(&args[1], spec.cck()).with_context(|| args[1].clone())?;
    eprintln!(
        "wrote {} ({len} bytes, {mib} MiB of memory) and key {}",
        args[0], args[1]
    );
    Ok(())
}
