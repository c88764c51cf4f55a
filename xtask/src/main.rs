//! Developer tasks. `cargo run --release -p xtask -- synth OUT.elf KEY.bin MIB [random|compressible] [ZERO_PERMILLE]`
//! writes a synthetic encrypted PV dump (simulated Ultravisor) and its key, for benchmarks.

use std::io::BufWriter;

use anyhow::{Context, bail};
use pvdump_vmcore::synth::{Content, SynthSpec};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("synth") if args.len() >= 4 => {
            let mib: u64 = args[3].parse().context("MIB")?;
            let mut spec = SynthSpec::simple(0x5eed, mib, 4);
            spec.content = match args.get(4).map(String::as_str) {
                None | Some("compressible") => Content::Compressible,
                Some("random") => Content::Random,
                Some(o) => bail!("unknown content {o}"),
            };
            if let Some(z) = args.get(5) {
                spec.zero_permille = z.parse().context("ZERO_PERMILLE")?;
            }
            let f = std::fs::File::create(&args[1]).with_context(|| args[1].clone())?;
            let len = spec.write_dump(&mut BufWriter::with_capacity(1 << 20, f))?;
            std::fs::write(&args[2], spec.cck()).with_context(|| args[2].clone())?;
            eprintln!(
                "wrote {} ({len} bytes, {mib} MiB of memory) and key {}",
                args[1], args[2]
            );
            Ok(())
        }
        _ => bail!("usage: xtask synth OUT.elf KEY.bin MIB [random|compressible] [ZERO_PERMILLE]"),
    }
}
