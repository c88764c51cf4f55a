//! Fuzz target `parse`: arbitrary bytes through the whole structural parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pvdump_fuzz_common::parse(data);
});

#[path = "../src/common.rs"]
mod pvdump_fuzz_common;
