//! The `lzo` fuzz harness, shared by the cargo-fuzz target (`fuzz/fuzz_targets/lzo.rs`) and
//! the regression test (`crates/lzo/tests/fuzz_regressions.rs`), so a saved input replays
//! exactly what the fuzzer ran.

use std::cell::RefCell;

use pvdump_lzo::{CompressError, Compressor, DecompressError, decompress, worst_case_len};

/// Output space given to the decompressor for arbitrary input (a 64 KiB block; pages are
/// 4 KiB).
pub const MAX_OUTPUT: usize = 1 << 16;

thread_local! {
    /// One compressor for every input, as a kdump worker thread uses it: nothing of an
    /// earlier input may leak into the output.
    static COMPRESSOR: RefCell<Compressor> = RefCell::new(Compressor::new());
}

/// Page size of the kdump writer; the compressor has a separate path for it.
const PAGE: usize = 4096;

/// Compresses `data` into a `worst_case_len` buffer and checks the round trip; a destination
/// one byte too small must fail, and one of `cap` bytes (the kdump writer's 4095 for a page)
/// must give the same stream or fail exactly when the stream is longer. Returns the stream.
fn round_trip(c: &mut Compressor, data: &[u8], cap: usize) -> Vec<u8> {
    let mut z = vec![0u8; worst_case_len(data.len())];
    let n = c.compress(data, &mut z).expect("worst_case_len is enough");
    z.truncate(n);
    let mut back = vec![0u8; data.len()];
    assert_eq!(decompress(&z, &mut back), Ok(data.len()));
    assert!(back == data, "round trip differs");
    let mut short = vec![0u8; n - 1];
    assert_eq!(
        c.compress(data, &mut short),
        Err(CompressError::OutputTooSmall { capacity: n - 1 })
    );
    let mut limited = vec![0u8; cap];
    match c.compress(data, &mut limited) {
        Ok(m) => assert!(
            m == n && limited[..m] == z[..],
            "a smaller destination changed the stream"
        ),
        Err(e) => assert!(n > cap && e == CompressError::OutputTooSmall { capacity: cap }),
    }
    // A cut stream is always rejected.
    assert!(decompress(&z[..n - 1], &mut back).is_err());
    z
}

/// One execution: the input as a compressed stream (must not panic, and what decodes must
/// decode the same way into a buffer of exactly its size), then as plaintext (compress,
/// decompress: must give the input back), then as the start of a 4096-byte page (the rest
/// zero), which takes the compressor's page path.
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
        round_trip(c, data, data.len().saturating_sub(1));
        let mut page = [0u8; PAGE];
        let k = data.len().min(PAGE);
        page[..k].copy_from_slice(&data[..k]);
        round_trip(c, &page, PAGE - 1);
    });
}
