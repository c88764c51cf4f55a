//! Test and bench inputs: synthetic kernel-like pages and pages of a real guest's memory.
//! Shared by the integration tests and `benches/lzo.rs` (through `#[path]`).
#![allow(dead_code)]

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Page size of the kdump writer.
pub const PAGE: usize = 4096;

/// SplitMix64: a small deterministic generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// Words of kernel log messages, paths and names, separated by `|`.
const WORDS: &str = "kernel|task|struct|page|memory|mapping|device|driver|virtio|s390x|ccw|irq|timer|\
    sched|cpu|node|zone|slab|inode|dentry|file|socket|buffer|error|warning|/usr/lib|/proc/self|systemd|\
    busybox|init|0x0000|ffff|=|: |[|]|(|)|\n| | | ";

/// The kinds of synthetic pages, roughly in the proportions of a running kernel's memory.
pub const KINDS: &[&str] = &[
    "structs",
    "pagetable",
    "text",
    "code",
    "partial",
    "random",
    "sparse",
    "mixed",
];

/// One synthetic page of kind `KINDS[kind]` (big-endian, like s390x memory).
pub fn synthetic_page(kind: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed ^ ((kind as u64) << 56));
    let mut p = vec![0u8; PAGE];
    match KINDS[kind % KINDS.len()] {
        // Arrays of 64..256-byte structs: kernel pointers, list heads, small counters, zeros.
        "structs" => {
            let size = [64, 96, 128, 192, 256][r.below(5) as usize];
            let heap = 0x0000_0000_0100_0000u64 + (r.below(0x100) << 20);
            for (i, s) in p.chunks_mut(size).enumerate() {
                for (j, w) in s.chunks_mut(8).enumerate() {
                    let v = match (j + r.below(3) as usize) % 6 {
                        0 => heap + ((i * size + j * 8) as u64),
                        1 => heap + (r.below(1 << 16) << 3),
                        2 => r.below(64),
                        3 => 0x0000_03ff_e000_0000 + (r.below(1 << 20) << 4),
                        _ => 0,
                    };
                    let b = v.to_be_bytes();
                    w.copy_from_slice(&b[..w.len()]);
                }
            }
        }
        // Page table: frame addresses that mostly increase, flags, some invalid entries.
        "pagetable" => {
            let mut frame = r.below(1 << 16) << 12;
            for w in p.chunks_mut(8) {
                let v = if r.below(10) == 0 { 0x400 } else { frame | 0x03 };
                frame += if r.below(8) == 0 { r.below(64) << 12 } else { 1 << 12 };
                w.copy_from_slice(&v.to_be_bytes());
            }
        }
        // Log messages, paths, names.
        "text" => {
            let words: Vec<&str> = WORDS.split('|').collect();
            let mut s = Vec::with_capacity(PAGE);
            while s.len() < PAGE {
                s.extend_from_slice(words[r.below(words.len() as u64) as usize].as_bytes());
                if r.below(7) == 0 {
                    s.extend_from_slice(format!("{}", r.below(100000)).as_bytes());
                }
            }
            p.copy_from_slice(&s[..PAGE]);
        }
        // Machine code: 2-, 4- and 6-byte instructions from a small set of opcodes with
        // register and displacement fields.
        "code" => {
            let ops: [&[u8]; 10] = [
                &[0xe3, 0x00],
                &[0xb9, 0x04],
                &[0x18],
                &[0xa7, 0x08],
                &[0xc0, 0xe5],
                &[0x41],
                &[0xeb, 0x00],
                &[0x07, 0xfe],
                &[0x58],
                &[0xa7, 0xf4],
            ];
            let mut i = 0;
            while i < PAGE {
                let op = ops[r.below(ops.len() as u64) as usize];
                let len = [2, 4, 6][r.below(3) as usize].max(op.len());
                let mut ins = [0u8; 6];
                ins[..op.len()].copy_from_slice(op);
                for b in &mut ins[op.len()..len] {
                    *b = if r.below(3) == 0 {
                        r.next() as u8
                    } else {
                        (r.below(16) as u8) << 4
                    };
                }
                let n = len.min(PAGE - i);
                p[i..i + n].copy_from_slice(&ins[..n]);
                i += n;
            }
        }
        // A partly used slab: structs, then zeros.
        "partial" => {
            let used = r.below(PAGE as u64) as usize;
            let src = synthetic_page(0, r.next());
            p[..used].copy_from_slice(&src[..used]);
        }
        // Compressed or encrypted data.
        "random" => r.fill(&mut p),
        // Mostly zero with a few words set.
        "sparse" => {
            for _ in 0..r.below(40) {
                let at = r.below((PAGE / 8) as u64) as usize * 8;
                p[at..at + 8].copy_from_slice(&r.next().to_be_bytes());
            }
        }
        // Quarters of the other kinds.
        _ => {
            for q in 0..4 {
                let k = r.below(KINDS.len() as u64 - 1) as usize;
                let src = synthetic_page(k, r.next());
                p[q * 1024..(q + 1) * 1024].copy_from_slice(&src[q * 1024..(q + 1) * 1024]);
            }
        }
    }
    p
}

/// `n` synthetic pages cycling through every kind.
pub fn synthetic_pages(n: usize, seed: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| synthetic_page(i % KINDS.len(), seed.wrapping_add(i as u64 * 7919)))
        .collect()
}

/// The plain s390x ELF dump of a real Linux guest ($PVDUMP_REAL_ELF or the cache path).
pub fn real_elf() -> PathBuf {
    std::env::var_os("PVDUMP_REAL_ELF")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/cache/real-bookworm/real-256m-2cpu.elf"))
}

/// File offset and length of the first PT_LOAD of a big-endian ELF64 core.
pub fn first_load(f: &mut std::fs::File) -> std::io::Result<(u64, u64)> {
    let mut eh = [0u8; 64];
    f.seek(SeekFrom::Start(0))?;
    f.read_exact(&mut eh)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a big-endian ELF64 core");
    if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 2 {
        return Err(bad());
    }
    let u16_at = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let u64_at = |b: &[u8], i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap());
    let phoff = u64_at(&eh, 0x20);
    let phentsize = u16_at(&eh, 0x36) as u64;
    let phnum = u16_at(&eh, 0x38) as u64;
    for i in 0..phnum {
        let mut ph = [0u8; 56];
        f.seek(SeekFrom::Start(phoff + i * phentsize))?;
        f.read_exact(&mut ph)?;
        if u32::from_be_bytes(ph[..4].try_into().unwrap()) == 1 {
            return Ok((u64_at(&ph, 8), u64_at(&ph, 0x20)));
        }
    }
    Err(bad())
}

/// Up to `max` pages of the real dump's memory, evenly spread, all-zero pages left out
/// (the kdump writer stores those without compressing them). `None` if the dump is absent.
pub fn real_pages(max: usize) -> Option<Vec<Vec<u8>>> {
    let path = real_elf();
    let mut f = std::fs::File::open(&path).ok()?;
    let (off, len) = first_load(&mut f).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let total = (len / PAGE as u64) as usize;
    let mut pages = Vec::new();
    let mut page = vec![0u8; PAGE];
    let stride = (total / (4 * max).max(1)).max(1);
    let mut i = 0;
    while i < total && pages.len() < max {
        f.seek(SeekFrom::Start(off + (i * PAGE) as u64)).unwrap();
        f.read_exact(&mut page).unwrap();
        if page.iter().any(|&b| b != 0) {
            pages.push(page.clone());
        }
        i += stride;
    }
    Some(pages)
}
