//! Fuzz target `lzo`: arbitrary bytes → LZO decompressor (must not panic); arbitrary bytes
//! → LZO compressor → decompressor (must give the input back).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pvdump_fuzz_lzo::lzo(data);
});

#[path = "../src/lzo.rs"]
mod pvdump_fuzz_lzo;
