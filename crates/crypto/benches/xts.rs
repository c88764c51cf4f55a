//! The page decryption kernel, per backend and per core, against the `aes` ECB ceiling and
//! xts-mode (one block per call).
//!
//! `cargo bench -p pvdump-crypto --bench xts` first prints a table measured in CPU time of
//! the benchmarking thread (from /proc/thread-self/schedstat), which is what `openssl speed`
//! divides by (its default is CPU user time, `-elapsed` switches to wall time), so the two
//! compare on a busy machine; then criterion's wall-clock runs follow. Compare with
//! `openssl speed -evp aes-256-xts -bytes 4096` (and `-decrypt`).

use aes::cipher::KeyInit;
use criterion::{Criterion, Throughput, criterion_group};
use pvdump_crypto::{Backend, PageCipher, XtsKey};

fn component(i: usize) -> [u8; 16] {
    let mut comp = [0u8; 16];
    comp[8..].copy_from_slice(&(i as u64 * 4096).to_be_bytes());
    comp
}

fn bench(c: &mut Criterion) {
    let key = XtsKey::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(1)));
    let mut pages = vec![[0u8; 4096]; 256]; // 1 MiB
    for (i, p) in pages.iter_mut().enumerate() {
        p.fill(i as u8);
    }
    let src = pages.clone();
    let mut g = c.benchmark_group("xts-page");
    g.throughput(Throughput::Bytes(pages.len() as u64 * 4096));
    for backend in Backend::ALL {
        let Ok(cipher) = PageCipher::with_backend(&key, [0x5a; 16], backend) else {
            eprintln!("backend {backend} not available on this CPU: not measured");
            continue;
        };
        let name = backend.name();
        g.bench_function(format!("{name} decrypt_page (in place)"), |b| {
            b.iter(|| {
                for (i, p) in pages.iter_mut().enumerate() {
                    cipher.decrypt_page(&component(i), p);
                }
            })
        });
        g.bench_function(format!("{name} decrypt_page_from (mapped input to buffer)"), |b| {
            b.iter(|| {
                for (i, (p, s)) in pages.iter_mut().zip(&src).enumerate() {
                    cipher.decrypt_page_from(&component(i), s, p);
                }
            })
        });
        g.bench_function(format!("{name} encrypt_page"), |b| {
            b.iter(|| {
                for (i, p) in pages.iter_mut().enumerate() {
                    cipher.encrypt_page(&component(i), p);
                }
            })
        });
    }
    {
        use aes::cipher::BlockCipherDecrypt;
        let raw = aes::Aes256::new_from_slice(&key.expose()[..32]).unwrap();
        g.bench_function("aes 0.9 decrypt_blocks alone (ECB, no tweaks)", |b| {
            b.iter(|| {
                for p in pages.iter_mut() {
                    let (blocks, _) = aes::Block::slice_as_chunks_mut(p);
                    raw.decrypt_blocks(blocks);
                }
            })
        });
    }
    let slow = xts_mode::Xts128::new(
        aes::Aes256::new_from_slice(&key.expose()[..32]).unwrap(),
        aes::Aes256::new_from_slice(&key.expose()[32..]).unwrap(),
    );
    let portable = PageCipher::with_backend(&key, [0x5a; 16], Backend::Portable).unwrap();
    g.bench_function("xts-mode 0.6 decrypt_sector", |b| {
        b.iter(|| {
            for (i, p) in pages.iter_mut().enumerate() {
                slow.decrypt_sector(p, portable.tweak_for(&component(i)).into());
            }
        })
    });
    g.finish();
}

/// Nanoseconds this thread has run on a CPU, or `None` off Linux.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// GB/s (10^9 bytes per second of thread CPU time, or of wall time where that is not
/// available) of `f` over `bytes`, median of 7 samples of at least 0.25 s each.
fn cpu_rate(bytes: u64, mut f: impl FnMut()) -> (f64, &'static str) {
    f();
    let mut rates = Vec::new();
    let mut clock = "cpu";
    for _ in 0..7 {
        let (c0, w0) = (thread_cpu_ns(), std::time::Instant::now());
        let mut n = 0u64;
        while w0.elapsed().as_millis() < 250 || n < 4 {
            f();
            n += 1;
        }
        let ns = match (c0, thread_cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64,
            _ => {
                clock = "wall";
                w0.elapsed().as_nanos() as f64
            }
        };
        rates.push((n * bytes) as f64 / ns);
    }
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], clock)
}

/// The per-core table in CPU time.
fn cpu_table() {
    let key = XtsKey::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(1)));
    let mut pages = vec![[0u8; 4096]; 256];
    for (i, p) in pages.iter_mut().enumerate() {
        p.fill(i as u8);
    }
    let src = pages.clone();
    let bytes = pages.len() as u64 * 4096;
    println!("per-core throughput, 1 MiB of 4 KiB pages per call, median of 7 (GB/s = 10^9 B/s):");
    for backend in Backend::ALL {
        let Ok(c) = PageCipher::with_backend(&key, [0x5a; 16], backend) else {
            println!("  {:<9} not available on this CPU", backend.name());
            continue;
        };
        let (dec, clock) = cpu_rate(bytes, || {
            for (i, p) in pages.iter_mut().enumerate() {
                c.decrypt_page(&component(i), p);
            }
        });
        let (from, _) = cpu_rate(bytes, || {
            for (i, (p, s)) in pages.iter_mut().zip(&src).enumerate() {
                c.decrypt_page_from(&component(i), s, p);
            }
        });
        let (enc, _) = cpu_rate(bytes, || {
            for (i, p) in pages.iter_mut().enumerate() {
                c.encrypt_page(&component(i), p);
            }
        });
        println!(
            "  {:<9} decrypt_page {dec:5.2}  decrypt_page_from {from:5.2}  encrypt_page {enc:5.2}  GB/s per {clock} second",
            backend.name()
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not and gets criterion's
    // one-iteration smoke run only.
    if std::env::args().any(|a| a == "--bench") {
        cpu_table();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
