//! 4 KiB page compression: pvdump-lzo against lzokay (criterion), on synthetic kernel-like
//! pages and, when the plain ELF dump of a real guest is present
//! (`/work/cache/real-bookworm/real-256m-2cpu.elf` or `$PVDUMP_REAL_ELF`), on its memory.
//!
//! After criterion, a whole-memory pass compares, on the real dump's memory, every page
//! through pvdump-lzo and lzokay (all-zero pages skipped, as the kdump writer does) with
//! `lzop -1` of the same plaintext (extracted to a temporary file). Set
//! `LZO_BENCH_WHOLE=0` to leave it out. The machine may be shared: that pass measures CPU
//! time (this thread's from `/proc/thread-self/schedstat`, lzop's user + system time from
//! the shell's `times`), takes the fastest of several runs, and prints the load average.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::io::{Read, Seek, SeekFrom};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{PAGE, synthetic_pages};
use criterion::{Criterion, Throughput};
use pvdump_lzo::{Compressor, decompress, worst_case_len};

static ZERO: [u8; PAGE] = [0; PAGE];

fn bench_pages(c: &mut Criterion, name: &str, pages: &[Vec<u8>]) {
    let bytes = (pages.len() * PAGE) as u64;
    let mut g = c.benchmark_group(format!("compress-4k/{name}"));
    g.throughput(Throughput::Bytes(bytes));
    let mut out = vec![0u8; worst_case_len(PAGE)];
    let mut ours = Compressor::new();
    g.bench_function("pvdump-lzo", |b| {
        b.iter(|| {
            let mut total = 0;
            for p in pages {
                total += ours.compress(black_box(p), &mut out).unwrap_or(PAGE);
            }
            total
        })
    });
    let mut dict = lzokay::compress::Dict::new();
    g.bench_function("lzokay", |b| {
        b.iter(|| {
            let mut total = 0;
            for p in pages {
                total += lzokay::compress::compress_no_alloc(black_box(p), &mut out, &mut dict).unwrap_or(PAGE);
            }
            total
        })
    });
    g.finish();

    let streams: Vec<Vec<u8>> = pages
        .iter()
        .map(|p| {
            let n = ours.compress(p, &mut out).unwrap();
            out[..n].to_vec()
        })
        .collect();
    let mut g = c.benchmark_group(format!("decompress-4k/{name}"));
    g.throughput(Throughput::Bytes(bytes));
    let mut page = vec![0u8; PAGE];
    g.bench_function("pvdump-lzo", |b| {
        b.iter(|| {
            for s in &streams {
                black_box(decompress(black_box(s), &mut page).unwrap_or(0));
            }
        })
    });
    g.bench_function("lzokay", |b| {
        b.iter(|| {
            for s in &streams {
                black_box(lzokay::decompress::decompress(black_box(s), &mut page).unwrap_or(0));
            }
        })
    });
    g.finish();
    let packed: usize = streams.iter().map(Vec::len).sum();
    println!(
        "{name}: {} pages, pvdump-lzo ratio {:.3}",
        pages.len(),
        packed as f64 / bytes as f64
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// CPU time this thread has used.
fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .expect("/proc/thread-self/schedstat")
}

/// Fastest of `runs` CPU timings of `f`, and its last result.
fn fastest<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t = cpu_time();
        let r = f();
        best = best.min(cpu_time() - t);
        last = Some(r);
    }
    (best, last.expect("runs > 0"))
}

/// User + system CPU time of `lzop -1 -c file > /dev/null` (fastest of `runs`) and the
/// size of its output.
fn lzop(file: &std::path::Path, runs: usize) -> Result<(Duration, usize), String> {
    let secs = |t: &str| -> Option<f64> {
        let (m, s) = t.trim_end_matches('s').split_once('m')?;
        Some(m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
    };
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let o = Command::new("bash")
            .args(["-c", "lzop -1 -c \"$0\" > /dev/null && times"])
            .arg(file)
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).into_owned());
        }
        // `times`: the shell's user and system time, then its children's.
        let text = String::from_utf8_lossy(&o.stdout);
        let child = text.lines().nth(1).ok_or("no output from times")?;
        let t: f64 = child.split_whitespace().filter_map(secs).sum();
        best = best.min(Duration::from_secs_f64(t));
    }
    let out = Command::new("lzop")
        .args(["-1", "-c"])
        .arg(file)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    Ok((best, out.stdout.len()))
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// Every page of the real dump's memory through both compressors, and `lzop -1` on it.
fn whole_memory() {
    let path = common::real_elf();
    let Ok(mut f) = std::fs::File::open(&path) else {
        println!("whole-memory pass: {} absent, left out", path.display());
        return;
    };
    let (off, len) = common::first_load(&mut f).expect("PT_LOAD");
    let mut mem = vec![0u8; len as usize];
    f.seek(SeekFrom::Start(off)).unwrap();
    f.read_exact(&mut mem).unwrap();
    let tmp = std::env::temp_dir().join(format!("pvdump-lzo-bench-{}.mem", std::process::id()));
    std::fs::write(&tmp, &mem).unwrap();
    let nonzero: Vec<&[u8]> = mem.chunks_exact(PAGE).filter(|p| *p != ZERO).collect();
    let total_pages = mem.len() / PAGE;
    println!(
        "\nwhole memory of {}: {} MiB, {total_pages} pages, {} not all-zero; load average {}",
        path.display(),
        mem.len() >> 20,
        nonzero.len(),
        loadavg()
    );

    // As the kdump writer: skip all-zero pages, store a page raw unless it shrinks.
    let mut out = vec![0u8; PAGE - 1];
    let mut ours = Compressor::new();
    let (t_ours, size_ours) = fastest(5, || {
        let mut size = 0;
        for p in mem.chunks_exact(PAGE) {
            if p == ZERO {
                continue;
            }
            size += ours.compress(p, &mut out).unwrap_or(PAGE);
        }
        size
    });
    let mut big = vec![0u8; worst_case_len(PAGE)];
    let mut dict = lzokay::compress::Dict::new();
    let (t_lzokay, size_lzokay) = fastest(1, || {
        let mut size = 0;
        for p in &nonzero {
            let n = lzokay::compress::compress_no_alloc(p, &mut big, &mut dict).unwrap_or(PAGE);
            size += n.min(PAGE);
        }
        size
    });
    // The non-zero pages alone, without the zero check.
    let nz_bytes = nonzero.len() * PAGE;
    let (t_nz, _) = fastest(5, || {
        let mut size = 0;
        for p in &nonzero {
            size += ours.compress(p, &mut big).unwrap_or(PAGE);
        }
        size
    });
    let lzop = lzop(&tmp, 3);
    let _ = std::fs::remove_file(&tmp);
    let m = mem.len();
    println!("| compressor | input | CPU time | MB/s of memory | output |");
    println!("|---|---|---|---|---|");
    println!(
        "| pvdump-lzo, per page | {} MiB (zero pages skipped) | {:.3} s | {:.0} | {:.1} MiB |",
        m >> 20,
        t_ours.as_secs_f64(),
        mbps(m, t_ours),
        size_ours as f64 / 1048576.0
    );
    println!(
        "| pvdump-lzo, non-zero pages only | {:.1} MiB | {:.3} s | {:.0} MB/s of those pages | |",
        nz_bytes as f64 / 1048576.0,
        t_nz.as_secs_f64(),
        mbps(nz_bytes, t_nz)
    );
    println!(
        "| lzokay, per page | {:.1} MiB (non-zero pages) | {:.3} s | {:.0} MB/s of those pages | {:.1} MiB |",
        nz_bytes as f64 / 1048576.0,
        t_lzokay.as_secs_f64(),
        mbps(nz_bytes, t_lzokay),
        size_lzokay as f64 / 1048576.0
    );
    match lzop {
        Ok((t, n)) => println!(
            "| lzop -1 -c FILE | {} MiB | {:.3} s | {:.0} | {:.1} MiB (with lzop's headers) |",
            m >> 20,
            t.as_secs_f64(),
            mbps(m, t),
            n as f64 / 1048576.0
        ),
        Err(e) => println!("| lzop -1 | not run: {e} | | | |"),
    }
    println!("load average after: {}", loadavg());
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let synthetic = synthetic_pages(512, 1);
    bench_pages(&mut c, "synthetic", &synthetic);
    match common::real_pages(512) {
        Some(real) => bench_pages(&mut c, "real", &real),
        None => println!("real pages: {} absent, left out", common::real_elf().display()),
    }
    c.final_summary();
    let testing = std::env::args().any(|a| a == "--test" || a == "--list");
    if !testing && std::env::var("LZO_BENCH_WHOLE").map_or(true, |v| v != "0") {
        whole_memory();
    }
}
