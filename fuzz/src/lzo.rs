//! The `lzo` fuzz harness, shared by the cargo-fuzz target (`fuzz/fuzz_targets/lzo.rs`) and
//! the regression test (`crates/lzo/tests/fuzz_regressions.rs`), so a saved input replays
//! exactly what the fuzzer ran.

use std::cell::RefCell;

use pvdump_lzo::{CompressError, Compressor, DecompressError, decompress, worst_case_len};

/// Output space given to the decompressor for arbitrary input (a 64 KiB block; pages are
/// 4 KiB).
pub const MAX_OUTPUT: usize = 1 << 16;

thread_local! {
    /// One compressor for every input, as a kdump worker thread uses it: stale table
    /// entries of earlier inputs must never leak into the output.
    static COMPRESSOR: RefCell<Compressor> = RefCell::new(Compressor::new());
}

/// One execution: the input as a compressed stream (must not panic, and what decodes must
/// decode the same way into a buffer of exactly its size), then as plaintext (compress,
/// decompress: must give the input back; a destination one byte too small must fail).
pub fn lzo(data: &[u8]) {
    let mut out = vec![0u8; MAX_OUTPUT];
    if let Ok(n) = decompress(data, &mut out) {
        assert!(n <= MAX_OUTPUT);
        let mut exact = vec![0u8; n];
        assert_eq!(decompress(data, &mut exact), Ok(n));
        assert!(exact == out[..n]);
        if n > 0 {
            assert!(matches!(
                decompress(data, &mut exact[..n - 1]),
                Err(DecompressError::OutputOverrun { .. })
            ));
        }
    }

    COMPRESSOR.with_borrow_mut(|c| {
        let mut z = vec![0u8; worst_case_len(data.len())];
        let n = c.compress(data, &mut z).expect("worst_case_len is enough");
        let mut back = vec![0u8; data.len()];
        assert_eq!(decompress(&z[..n], &mut back), Ok(data.len()));
        assert!(back == data, "round trip differs");
        let mut short = vec![0u8; n - 1];
        assert_eq!(
            c.compress(data, &mut short),
            Err(CompressError::OutputTooSmall { capacity: n - 1 })
        );
        // A cut stream is always rejected.
        assert!(decompress(&z[..n - 1], &mut back).is_err());
    });
}
