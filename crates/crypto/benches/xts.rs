//! The page decryption kernel: pvdump's batched XTS against xts-mode (one block per call).
//! `cargo bench -p pvdump-crypto --bench xts`

use aes::cipher::KeyInit;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pvdump_crypto::{PageCipher, XtsKey};

fn bench(c: &mut Criterion) {
    let key = XtsKey::from_bytes(std::array::from_fn(|i| i as u8 * 7 + 1));
    let fast = PageCipher::new(&key, [0x5a; 16]);
    let slow = xts_mode::Xts128::new(
        aes::Aes256::new_from_slice(&key.expose()[..32]).unwrap(),
        aes::Aes256::new_from_slice(&key.expose()[32..]).unwrap(),
    );
    let mut pages = vec![[0u8; 4096]; 256]; // 1 MiB
    for (i, p) in pages.iter_mut().enumerate() {
        p.fill(i as u8);
    }
    let mut g = c.benchmark_group("xts-page-decrypt");
    g.throughput(Throughput::Bytes(pages.len() as u64 * 4096));
    g.bench_function("pvdump decrypt_page (in place)", |b| {
        b.iter(|| {
            for (i, p) in pages.iter_mut().enumerate() {
                let mut comp = [0u8; 16];
                comp[8..].copy_from_slice(&(i as u64 * 4096).to_be_bytes());
                fast.decrypt_page(&comp, p);
            }
        })
    });
    let src = pages.clone();
    g.bench_function("pvdump decrypt_page_from (mapped input to buffer)", |b| {
        b.iter(|| {
            for (i, (p, s)) in pages.iter_mut().zip(&src).enumerate() {
                let mut comp = [0u8; 16];
                comp[8..].copy_from_slice(&(i as u64 * 4096).to_be_bytes());
                fast.decrypt_page_from(&comp, s, p);
            }
        })
    });
    {
        use aes::cipher::BlockCipherDecrypt;
        let raw = aes::Aes256::new_from_slice(&key.expose()[..32]).unwrap();
        g.bench_function("aes 0.9 decrypt_blocks alone (ECB, no tweaks): the ceiling", |b| {
            b.iter(|| {
                for p in pages.iter_mut() {
                    let (blocks, _) = aes::Block::slice_as_chunks_mut(p);
                    raw.decrypt_blocks(blocks);
                }
            })
        });
    }
    g.bench_function("xts-mode 0.6 decrypt_sector", |b| {
        b.iter(|| {
            for (i, p) in pages.iter_mut().enumerate() {
                let mut comp = [0u8; 16];
                comp[8..].copy_from_slice(&(i as u64 * 4096).to_be_bytes());
                slow.decrypt_sector(p, fast.tweak_for(&comp).into());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
