//! The project's own synthetic fixtures: small encrypted dumps with known plaintext.

use std::path::Path;

use anyhow::Context;
use pvdump_format::consts::PAGE_SIZE;
use pvdump_format::{CpuRegisters, MemoryBlock, PageCounts};
use pvdump_synth::{Content, SynthSpec, TweakStyle, VmcoreinfoPlacement};
use serde_json::json;
use sha2::{Digest, Sha256};

const MIB: u64 = 1 << 20;

/// Every fixture: name, what it exercises, spec.
pub fn specs() -> Vec<(&'static str, &'static str, SynthSpec)> {
    let base = |seed, mib, cpus| SynthSpec::simple(seed, mib, cpus);
    vec![
        (
            "mixed-2m-3cpu",
            "encrypted, zero and shared pages; tweak component = guest address",
            {
                let mut s = base(0x1001, 2, 3);
                s.zero_permille = 300;
                s.shared_permille = 100;
                s.content = Content::Compressible;
                s
            },
        ),
        (
            "many-cpus-1m-64cpu",
            "64 CPUs, one note group each",
            base(0x1002, 1, 64),
        ),
        (
            "quirks-1m-2cpu",
            "random tweaks, garbage in zero pages, the mapped flag, has_osii on CPU 1, 2048-byte CPU notes",
            {
                let mut s = base(0x1003, 1, 2);
                s.zero_permille = 400;
                s.shared_permille = 200;
                s.mapped_permille = 500;
                s.tweak_style = TweakStyle::Random;
                s.zero_fill_garbage = true;
                s.osii_cpus = vec![1];
                s.cpu_note_len = 2048;
                s
            },
        ),
        (
            "gap-2loads-2cpu",
            "two PT_LOADs with a 1 MiB gap; tweaks indexed by absolute page frame",
            {
                let mut s = base(0x1004, 1, 2);
                s.blocks = vec![
                    MemoryBlock { paddr: 0, size: MIB },
                    MemoryBlock {
                        paddr: 2 * MIB,
                        size: MIB,
                    },
                ];
                s
            },
        ),
        (
            "vmcoreinfo-osinfo-1m-1cpu",
            "VMCOREINFO through os_info at 0xE18 (magic, checksum)",
            {
                let mut s = base(0x1005, 1, 1);
                s.vmcoreinfo = Some((
                    VmcoreinfoPlacement::OsInfo,
                    "OSRELEASE=6.8.0-pvdump-osinfo\nPAGESIZE=4096\nCRASHTIME=1763800000\n".into(),
                ));
                s
            },
        ),
        (
            "vmcoreinfo-note-1m-2cpu",
            "VMCOREINFO through the note pointer at 0xE0C",
            {
                let mut s = base(0x1006, 1, 2);
                s.vmcoreinfo = Some((
                    VmcoreinfoPlacement::LowcoreNote,
                    "OSRELEASE=5.14.0-pvdump-note\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=1234000\n".into(),
                ));
                s
            },
        ),
    ]
}

fn cpus_json(cpus: &[CpuRegisters]) -> serde_json::Value {
    let x = |v: u64, w: usize| format!("{v:#0w$x}", w = w + 2);
    json!({ "cpus": cpus.iter().enumerate().map(|(i, r)| json!({
        "cpu_index": i, "qemu_cpu_id": i + 1,
        "gprs": r.gprs.iter().map(|&v| x(v, 16)).collect::<Vec<_>>(),
        "psw": r.psw.iter().map(|&v| x(v, 16)).collect::<Vec<_>>(),
        "prefix": x(r.prefix.into(), 8), "fpc": x(r.fpc.into(), 8), "todpreg": x(r.todpreg.into(), 8),
        "timer": x(r.timer, 16), "todcmp": x(r.todcmp, 16),
        "acrs": r.acrs.iter().map(|&v| x(v.into(), 8)).collect::<Vec<_>>(),
        "ctrs": r.ctrs.iter().map(|&v| x(v, 16)).collect::<Vec<_>>(),
        "fprs": r.fprs.iter().map(|&v| x(v, 16)).collect::<Vec<_>>(),
        "vxrs_low": r.vxrs_low.iter().map(|&v| x(v, 16)).collect::<Vec<_>>(),
        "vxrs_high": r.vxrs_high.iter().map(|v| format!("{:#034x}", u128::from_be_bytes(*v))).collect::<Vec<_>>(),
        "gs_cb": r.gs_cb.iter().map(|&v| x(v, 16)).collect::<Vec<_>>(),
        "has_osii": r.has_osii,
    })).collect::<Vec<_>>() })
}

/// SHA-256 of the plaintext memory laid out from guest address 0 (gaps as zeros).
pub fn memory_sha256(spec: &SynthSpec) -> String {
    let mut h = Sha256::new();
    let mut at = 0u64;
    let zero = [0u8; PAGE_SIZE as usize];
    spec.for_each_plain_page(|pfn, page| {
        while at < pfn * PAGE_SIZE {
            h.update(zero);
            at += PAGE_SIZE;
        }
        h.update(page);
        at += PAGE_SIZE;
    });
    hex::encode(h.finalize())
}

fn counts(dump: &[u8]) -> anyhow::Result<PageCounts> {
    Ok(pvdump_format::PvDump::parse(dump)?.page_counts()?)
}

pub fn run(dir: &Path) -> anyhow::Result<()> {
    for (name, what, spec) in specs() {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        let dump = spec.dump_bytes();
        let c = counts(&dump)?;
        std::fs::write(d.join("pvdump.elf"), &dump)?;
        std::fs::write(d.join("cck.bin"), spec.cck())?;
        std::fs::write(
            d.join("expected_cpus.json"),
            serde_json::to_string_pretty(&cpus_json(&spec.cpu_registers()))? + "\n",
        )?;
        let manifest = json!({
            "generator": "cargo xtask fixtures (pvdump simulated Ultravisor)",
            "description": what,
            "seed": spec.seed,
            "dump_size": dump.len(),
            "memory": {
                "blocks": spec.blocks.iter().map(|b| json!({"start": b.paddr, "size": b.size})).collect::<Vec<_>>(),
                "sha256": memory_sha256(&spec),
                "pages": { "encrypted": c.encrypted, "zero": c.zero, "shared": c.shared, "mapped_flag": c.mapped_flag },
            },
            "vmcoreinfo": spec.vmcoreinfo.as_ref().map(|(_, t)| json!({ "text": t })),
        });
        std::fs::write(d.join("manifest.json"), serde_json::to_string_pretty(&manifest)? + "\n")?;
        println!("{name:28} {:>9} bytes  {what}", dump.len());
    }
    Ok(())
}
