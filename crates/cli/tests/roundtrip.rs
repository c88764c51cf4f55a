//! Property test: random memory, page states, layouts and CPU states go through the
//! simulated Ultravisor (encrypt) and back through pvdump (decrypt) unchanged.

mod common;
use common::*;

use proptest::prelude::*;
use pvdump_crypto::{Cck, OpenedDump};
use pvdump_format::{MemoryBlock, PvDump};
use pvdump_synth::{Content, SynthSpec, TweakStyle, VmcoreinfoPlacement};
use pvdump_vmcore::{Output, WriteOptions, build_notes, write_elf};

fn decrypt_in_process(spec: &SynthSpec) -> Vec<u8> {
    let dump = spec.dump_bytes();
    let parsed = PvDump::parse(&dump).expect("synthetic dump parses");
    let opened = OpenedDump::open(parsed.clone(), &Cck::from_bytes(spec.cck())).expect("opens with its key");
    let regs: Vec<_> = opened.cpus().iter().map(|c| c.regs.clone()).collect();
    let vmci = opened.vmcoreinfo().unwrap();
    let notes = build_notes(&regs, vmci.as_ref().map(|v| v.text.as_slice()));
    let mut out = Vec::new();
    let opts = WriteOptions {
        chunk_pages: 3,
        window: 2,
        ..WriteOptions::default()
    };
    write_elf(&opened, &notes, &mut Output::Stream(&mut out), &opts).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn synthetic_dumps_round_trip(
        seed in any::<u64>(),
        sizes in prop::collection::vec((0u64..4, 1u64..24), 1..4),
        cpus in 1usize..5,
        zero in 0u32..700,
        shared in 0u32..300,
        mapped in 0u32..1000,
        random_tweaks in any::<bool>(),
        garbage in any::<bool>(),
        long_notes in any::<bool>(),
        compressible in any::<bool>(),
        vmci in 0u8..3,
    ) {
        let mut blocks = Vec::new();
        let mut at = 0u64;
        if vmci > 0 {
            // VMCOREINFO structures live in pages 0 and 0x10..0x12: those must exist.
            blocks.push(MemoryBlock { paddr: 0, size: 0x13000 });
            at = 0x13000;
        }
        for (gap, pages) in sizes {
            at += gap * 4096;
            blocks.push(MemoryBlock { paddr: at, size: pages * 4096 });
            at += pages * 4096;
        }
        let spec = SynthSpec {
            seed,
            blocks,
            cpus,
            zero_permille: zero,
            shared_permille: shared,
            mapped_permille: mapped,
            tweak_style: if random_tweaks { TweakStyle::Random } else { TweakStyle::Address },
            zero_fill_garbage: garbage,
            osii_cpus: vec![0],
            vmcoreinfo: match vmci {
                1 => Some((VmcoreinfoPlacement::OsInfo, format!("OSRELEASE=prop-{seed}\n"))),
                2 => Some((VmcoreinfoPlacement::LowcoreNote, format!("OSRELEASE=note-{seed}\nPAGESIZE=4096\n"))),
                _ => None,
            },
            content: if compressible { Content::Compressible } else { Content::Random },
            cpu_note_len: if long_notes { 2048 } else { 1568 },
            ehsize: 8,
        };
        let out = decrypt_in_process(&spec);
        let v = Vmcore { bytes: out };
        prop_assert!(v.memory() == spec.expected_memory(), "memory differs");
        assert_cpus(&v.cpus(), &spec.cpu_registers(), "round trip");
        let want = spec.vmcoreinfo.as_ref().map(|(_, t)| t.as_bytes().to_vec());
        prop_assert_eq!(v.vmcoreinfo_note(), want);
        let core = v.core();
        prop_assert_eq!(core.loads().len(), spec.blocks.len());
        for (l, b) in core.loads().iter().zip(&spec.blocks) {
            prop_assert_eq!((l.paddr, l.memsz), (b.paddr, b.size));
        }
    }
}
