//! Compress → decompress round trips, the destination-size contract and the stream shapes the
//! compressor relies on.

mod common;

use common::{PAGE, Rng, synthetic_pages};
use proptest::prelude::*;
use pvdump_lzo::{CompressError, Compressor, DecompressError, decompress, worst_case_len};

/// Compresses `data` into a worst-case buffer, checks the bound and the round trip, and
/// returns the stream.
fn round_trip(c: &mut Compressor, data: &[u8]) -> Vec<u8> {
    let mut z = vec![0u8; worst_case_len(data.len())];
    let n = c.compress(data, &mut z).expect("worst_case_len suffices");
    assert!(n <= worst_case_len(data.len()));
    z.truncate(n);
    let mut back = vec![0xa5u8; data.len()];
    assert_eq!(decompress(&z, &mut back), Ok(data.len()), "len {}", data.len());
    assert!(back == data, "round trip differs for {} bytes", data.len());
    // Into a larger buffer it decodes the same, and the rest is untouched.
    let mut big = vec![0x5au8; data.len() + 17];
    assert_eq!(decompress(&z, &mut big), Ok(data.len()));
    assert_eq!(&big[..data.len()], data);
    assert!(big[data.len()..].iter().all(|&b| b == 0x5a));
    // One byte less of output space is an output overrun, never a panic.
    if !data.is_empty() {
        let mut short = vec![0u8; data.len() - 1];
        assert!(matches!(
            decompress(&z, &mut short),
            Err(DecompressError::OutputOverrun { .. })
        ));
    }
    // Any cut of the stream is rejected.
    for cut in [0, 1, z.len() / 2, z.len() - 1] {
        assert!(decompress(&z[..cut], &mut back).is_err(), "cut at {cut} accepted");
    }
    z
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Rng(seed).fill(&mut v);
    v
}

/// Data with many repeats: words from a small alphabet of random strings.
fn compressible(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed);
    let dict: Vec<Vec<u8>> = (0..16).map(|i| random(1 + (i * 5) % 40, seed ^ i as u64)).collect();
    let mut v = Vec::with_capacity(len + 64);
    while v.len() < len {
        if r.below(5) == 0 {
            v.push(r.next() as u8);
        } else {
            v.extend_from_slice(&dict[r.below(16) as usize]);
        }
    }
    v.truncate(len);
    v
}

const SIZES: &[usize] = &[
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 18, 19, 20, 31, 32, 33, 34, 35, 63, 64, 100, 237, 238, 239, 240, 255,
    256, 257, 273, 274, 511, 512, 1000, 2047, 2048, 2049, 4095, 4096, 4097, 8192, 16383, 16384, 16385, 49151, 49152,
    65535, 65536, 65537, 100_000,
];

#[test]
fn sizes_random_and_compressible() {
    let mut c = Compressor::new();
    for &n in SIZES {
        round_trip(&mut c, &random(n, n as u64));
        let z = round_trip(&mut c, &compressible(n, n as u64));
        if n >= 4096 {
            assert!(z.len() < n / 2, "{n} compressible bytes → {}", z.len());
        }
    }
}

#[test]
fn pathological_inputs() {
    let mut c = Compressor::new();
    for &n in SIZES {
        // All zero, all one value: one long copy of distance 1.
        let z = round_trip(&mut c, &vec![0u8; n]);
        if n >= 1024 {
            assert!(z.len() <= 16 + n / 255, "{n} zeros → {} bytes", z.len());
        }
        round_trip(&mut c, &vec![0xffu8; n]);
        // Repeating patterns of every short period, and a period longer than a copy.
        for period in [2usize, 3, 4, 5, 7, 8, 13, 64, 255, 1000, 3000] {
            let pat = random(period, period as u64);
            let v: Vec<u8> = pat.iter().copied().cycle().take(n).collect();
            round_trip(&mut c, &v);
        }
        // Counting bytes: no 4-byte repeat closer than 256.
        let v: Vec<u8> = (0..n).map(|i| i as u8).collect();
        round_trip(&mut c, &v);
    }
}

#[test]
fn incompressible_expands_by_the_literal_headers_only() {
    let mut c = Compressor::new();
    for &n in SIZES {
        let z = round_trip(&mut c, &random(n, 99 + n as u64));
        // One header byte (238 literals or fewer) or 2 + (n - 19) / 255 bytes, and the
        // 3-byte end marker; random data has no 4-byte repeats to speak of.
        let header = if n == 0 {
            0
        } else if n <= 238 {
            1
        } else {
            2 + (n - 19) / 255
        };
        assert!(z.len() <= n + header + 3 + n / 1000, "{n} → {}", z.len());
    }
}

#[test]
fn exact_streams_for_tiny_inputs() {
    let mut c = Compressor::new();
    let mut z = [0u8; 64];
    // Empty input: the end marker alone.
    assert_eq!(c.compress(&[], &mut z), Ok(3));
    assert_eq!(&z[..3], &[0x11, 0, 0]);
    // 1 to 3 literals: first byte 17 + n, state n.
    assert_eq!(c.compress(b"abc", &mut z), Ok(7));
    assert_eq!(&z[..7], &[20, b'a', b'b', b'c', 0x11, 0, 0]);
    // A literal, then a copy of 7 at distance 1 (M2: (7-1)<<5 | 0 = 0xc0, H = 0).
    assert_eq!(c.compress(b"xxxxxxxx", &mut z), Ok(1 + 1 + 2 + 3));
    assert_eq!(&z[..7], &[18, b'x', 0xc0, 0x00, 0x11, 0, 0]);
    // 300 random bytes: the long first run uses 0000LLLL with an extension (300 - 18 = 282
    // = 255 + 27: one 00 and 27).
    let r = random(300, 1);
    let mut big = vec![0u8; worst_case_len(300)];
    let n = c.compress(&r, &mut big).unwrap();
    assert_eq!(&big[..3], &[0, 0, 27]);
    assert_eq!(&big[3..303], &r[..]);
    assert_eq!(&big[303..n], &[0x11, 0, 0]);
}

#[test]
fn far_copies_use_every_distance_form() {
    // A random block, zeros, the block again at distances that need M2 (up to 2048), M3
    // (up to 16384), M4 with H = 0 (up to 32768) and H = 1 (up to 49151); beyond 49151
    // nothing may be copied.
    let mut c = Compressor::new();
    for dist in [
        1000usize, 2048, 2049, 10000, 16384, 16385, 30000, 32768, 32769, 45000, 49151, 49152, 60000,
    ] {
        let block = random(600, dist as u64);
        let mut v = block.clone();
        v.resize(dist, 0);
        v.extend_from_slice(&block);
        let z = round_trip(&mut c, &v);
        if dist <= 49151 {
            assert!(z.len() < 600 + 300, "distance {dist}: {} bytes", z.len());
        } else {
            assert!(z.len() > 1200, "distance {dist} must not be copied ({} bytes)", z.len());
        }
    }
}

#[test]
fn destination_size_is_exact() {
    // Every capacity below the stream's length fails with OutputTooSmall, the exact length
    // succeeds with the same stream.
    let mut c = Compressor::new();
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), b"a".to_vec(), b"abcd".to_vec(), vec![0; 300]];
    inputs.extend(synthetic_pages(16, 5));
    inputs.push(random(700, 3));
    inputs.push(compressible(3000, 4));
    for data in &inputs {
        let mut full = vec![0u8; worst_case_len(data.len())];
        let n = c.compress(data, &mut full).unwrap();
        let step = if n > 600 { 7 } else { 1 };
        for cap in (0..n).step_by(step).chain([n - 1]) {
            let mut z = vec![0u8; cap];
            assert_eq!(
                c.compress(data, &mut z),
                Err(CompressError::OutputTooSmall { capacity: cap }),
                "len {} cap {cap}",
                data.len()
            );
        }
        let mut z = vec![0u8; n];
        assert_eq!(c.compress(data, &mut z), Ok(n));
        assert_eq!(z, full[..n]);
    }
}

#[test]
fn output_does_not_depend_on_history() {
    // The same page compresses to the same bytes with a fresh compressor and with one that
    // has seen other pages (stale table entries must never be used).
    let pages = synthetic_pages(64, 11);
    let mut used = Compressor::new();
    for p in &pages {
        let mut a = vec![0u8; worst_case_len(PAGE)];
        let mut b = vec![0u8; worst_case_len(PAGE)];
        let na = Compressor::new().compress(p, &mut a).unwrap();
        let nb = used.compress(p, &mut b).unwrap();
        assert_eq!(a[..na], b[..nb]);
    }
}

#[test]
fn worst_case_input_stays_within_the_bound() {
    // The most expanding pattern for a greedy 4-byte matcher: a 4-byte copy (saving one
    // byte) then 19 fresh literals (costing two header bytes), over and over; compressed
    // into exactly `worst_case_len` bytes (the unchecked path up to 49151 bytes).
    let mut c = Compressor::new();
    for n in [4096usize, 20_000, 49_151, 200_000] {
        let mut r = Rng(n as u64);
        let mut v = Vec::new();
        let mut prev = [0u8; 4];
        r.fill(&mut prev);
        while v.len() < n {
            v.extend_from_slice(&prev);
            let mut lit = [0u8; 19];
            r.fill(&mut lit);
            v.extend_from_slice(&lit);
            prev.copy_from_slice(&lit[15..]);
        }
        v.truncate(n);
        let z = round_trip(&mut c, &v);
        assert!(z.len() <= n + n / 23 + n / 255 + 6, "{n} → {}", z.len());
    }
}

#[test]
fn synthetic_pages_compress_like_lzo1x_1() {
    // Compression ratio in the ballpark of lzokay (which searches harder than LZO1X-1, so
    // it may be smaller; tests/liblzo.rs compares with liblzo2's LZO1X-1 itself).
    let pages = synthetic_pages(512, 1);
    let mut c = Compressor::new();
    let mut dict = lzokay::compress::Dict::new();
    let (mut ours, mut theirs) = (0usize, 0usize);
    for p in &pages {
        ours += round_trip(&mut c, p).len();
        let mut z = vec![0u8; worst_case_len(PAGE)];
        theirs += lzokay::compress::compress_no_alloc(p, &mut z, &mut dict).unwrap();
    }
    eprintln!("512 synthetic pages: ours {ours} bytes, lzokay {theirs} bytes");
    assert!(ours * 100 <= theirs * 120, "ours {ours} vs lzokay {theirs}");
}

#[test]
fn real_pages_round_trip() {
    match common::real_pages(2048) {
        Some(pages) => {
            let mut c = Compressor::new();
            let total: usize = pages.iter().map(|p| round_trip(&mut c, p).len()).sum();
            eprintln!(
                "{} real non-zero pages → {total} bytes ({:.3})",
                pages.len(),
                total as f64 / (pages.len() * PAGE) as f64
            );
        }
        None => eprintln!(
            "note: {} absent; the synthetic pages stand in for real memory",
            common::real_elf().display()
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
        round_trip(&mut Compressor::new(), &data);
    }

    #[test]
    fn compressible_bytes_round_trip(
        alphabet in 1u8..6,
        runs in proptest::collection::vec((0usize..300, any::<u8>(), 1usize..80), 0..60),
    ) {
        // Runs of a byte, copies of earlier parts, bytes from a tiny alphabet.
        let mut v: Vec<u8> = Vec::new();
        for (kind, b, len) in runs {
            match kind % 3 {
                0 => v.extend(std::iter::repeat_n(b, len)),
                1 if !v.is_empty() => {
                    let from = (b as usize * 37) % v.len();
                    for i in 0..len {
                        v.push(v[from + i % (v.len() - from)]);
                    }
                }
                _ => v.extend((0..len).map(|i| (b as usize + i) as u8 % alphabet)),
            }
        }
        round_trip(&mut Compressor::new(), &v);
    }

    #[test]
    fn pages_with_edits_round_trip(seed in any::<u64>(), edits in proptest::collection::vec((0usize..PAGE, any::<u8>()), 0..32)) {
        let mut page = common::synthetic_page((seed % 8) as usize, seed);
        for (at, b) in edits {
            page[at] = b;
        }
        round_trip(&mut Compressor::new(), &page);
    }

    #[test]
    fn arbitrary_input_never_panics_the_decompressor(
        data in proptest::collection::vec(any::<u8>(), 0..400),
        cap in 0usize..3000,
    ) {
        let mut out = vec![0u8; cap];
        if let Ok(n) = decompress(&data, &mut out) {
            prop_assert!(n <= cap);
        }
    }
}
