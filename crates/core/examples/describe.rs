//! Describes any dump pvdump reads: `cargo run -p pvdump-core --example describe -- DUMP [CCK]`.
//!
//! Prints the kind, the memory blocks, each CPU's PSW and prefix, the kernel release, and the
//! first 16 bytes of guest memory (the s390x lowcore's restart PSW).

use pvdump_core::{Dump, read_key_file};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let path = args.next().ok_or("usage: describe DUMP [CCK]")?;
    let key = args.next().map(|k| read_key_file(k.as_ref())).transpose()?;
    let dump = Dump::open(path.as_ref(), key.as_ref().map(|k| &k.cck))?;
    println!("{}", dump.kind().describe());
    for b in dump.memory() {
        println!("memory {:#014x}..{:#014x}", b.paddr, b.end());
    }
    if dump.is_locked() {
        println!("encrypted: give the key to see registers and memory");
        return Ok(());
    }
    for cpu in dump.cpus()? {
        println!(
            "CPU {:>3}  PSW {:016x} {:016x}  prefix {:#x}",
            cpu.index, cpu.regs.psw[0], cpu.regs.psw[1], cpu.regs.prefix
        );
    }
    if let Some(v) = dump.vmcoreinfo() {
        println!("kernel {}", v.osrelease().unwrap_or("unknown"));
    }
    let mut lowcore = [0u8; 16];
    dump.read_phys(0, &mut lowcore)?;
    println!("lowcore[0..16] {lowcore:02x?}");
    Ok(())
}
