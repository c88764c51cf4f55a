//! Compresses a file 4 KiB page by page, as the kdump writer does (all-zero pages skipped,
//! a page stored raw unless it shrinks), and prints the time and the sizes. For instruction
//! counts next to `lzop -1`:
//!
//! ```sh
//! cargo build --release -p pvdump-lzo --example pages
//! perf stat -e instructions target/release/examples/pages mem.bin
//! perf stat -e instructions lzop -1 -c mem.bin > /dev/null
//! ```
//!
//! `--lzokay` uses the lzokay crate instead; `--all` compresses all-zero pages too;
//! `--limit` gives the compressor a destination of 4095 bytes (it stops as soon as the
//! page cannot shrink) instead of one of `worst_case_len`;
//! `--decompress` times decompressing the pages instead (pvdump-lzo's streams, with
//! pvdump-lzo's or lzokay's decompressor); `--repeat N` runs N passes (the time printed is
//! the fastest).

use std::time::Instant;

use pvdump_lzo::Compressor;

const PAGE: usize = 4096;
static ZERO: [u8; PAGE] = [0; PAGE];

/// CPU time of this thread in seconds (`/proc/thread-self/schedstat`), or wall time where
/// that is missing: robust to other processes on a shared machine.
fn cpu_seconds(wall: Instant) -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(|| wall.elapsed().as_secs_f64(), |ns| ns as f64 / 1e9)
}

fn main() {
    let mut lzokay = false;
    let mut all = false;
    let mut limit = false;
    let mut unpack = false;
    let mut repeat = 1;
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--lzokay" => lzokay = true,
            "--all" => all = true,
            "--limit" => limit = true,
            "--decompress" => unpack = true,
            "--repeat" => repeat = args.next().and_then(|n| n.parse().ok()).unwrap_or(1),
            _ => file = Some(a),
        }
    }
    let Some(file) = file else {
        eprintln!("usage: pages [--lzokay] [--all] [--limit] [--decompress] [--repeat N] FILE");
        std::process::exit(2);
    };
    let mem = std::fs::read(&file).unwrap_or_else(|e| {
        eprintln!("{file}: {e}");
        std::process::exit(1)
    });
    let mut ours = Compressor::new();
    if unpack {
        decompress_pages(&mem, all, lzokay, repeat, &mut ours);
        return;
    }
    let mut dict = lzokay::compress::Dict::new();
    let mut out = vec![0u8; 2 * PAGE];
    let mut best = f64::MAX;
    let (mut packed, mut pages, mut raw) = (0usize, 0usize, 0usize);
    for _ in 0..repeat {
        let wall = Instant::now();
        let t = cpu_seconds(wall);
        (packed, pages, raw) = (0, 0, 0);
        for p in mem.chunks_exact(PAGE) {
            if !all && p == ZERO {
                continue;
            }
            pages += 1;
            let n = if lzokay {
                lzokay::compress::compress_no_alloc(p, &mut out, &mut dict).ok()
            } else {
                let cap = if limit { PAGE - 1 } else { out.len() };
                ours.compress(p, &mut out[..cap]).ok()
            };
            match n {
                Some(n) if n < PAGE => packed += n,
                _ => {
                    packed += PAGE;
                    raw += 1;
                }
            }
        }
        best = best.min(cpu_seconds(wall) - t);
    }
    println!(
        "{}: {} of {} pages compressed ({raw} stored raw) in {best:.4} s of CPU: {:.0} MB/s of file, {:.0} MB/s of compressed pages, ratio {:.3}",
        if lzokay { "lzokay" } else { "pvdump-lzo" },
        pages,
        mem.len() / PAGE,
        mem.len() as f64 / best / 1e6,
        (pages * PAGE) as f64 / best / 1e6,
        packed as f64 / (pages * PAGE).max(1) as f64
    );
}

/// Compresses the pages, then times decompressing all of them.
fn decompress_pages(mem: &[u8], all: bool, lzokay: bool, repeat: usize, c: &mut Compressor) {
    let mut out = vec![0u8; pvdump_lzo::worst_case_len(PAGE)];
    let streams: Vec<Vec<u8>> = mem
        .chunks_exact(PAGE)
        .filter(|p| all || *p != ZERO)
        .map(|p| {
            let n = c.compress(p, &mut out).expect("worst_case_len");
            out[..n].to_vec()
        })
        .collect();
    let mut page = vec![0u8; PAGE];
    let mut best = f64::MAX;
    for _ in 0..repeat {
        let wall = Instant::now();
        let t = cpu_seconds(wall);
        for s in &streams {
            let n = if lzokay {
                lzokay::decompress::decompress(s, &mut page).ok()
            } else {
                pvdump_lzo::decompress(s, &mut page).ok()
            };
            assert_eq!(n, Some(PAGE));
        }
        best = best.min(cpu_seconds(wall) - t);
    }
    println!(
        "{}: decompressed {} pages in {best:.4} s of CPU: {:.0} MB/s of pages",
        if lzokay { "lzokay" } else { "pvdump-lzo" },
        streams.len(),
        (streams.len() * PAGE) as f64 / best / 1e6
    );
}
