//! Fuzz target `decrypt`: arbitrary bytes → PvDump → OpenedDump (fixed key of the seed
//! fixture) → plain ELF vmcore written to a sink.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pvdump_fuzz_common::decrypt(data);
});

#[path = "../src/common.rs"]
mod pvdump_fuzz_common;
