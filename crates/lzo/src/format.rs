//! The LZO1X stream format, as the decompressors of liblzo2 (`lzo1x_decompress_safe`) and
//! Linux (`lib/lzo/lzo1x_decompress_safe.c`, described in the kernel's
//! `Documentation/staging/lzo.rst`) read it.
//!
//! *State* is the number of literals the previous instruction copied: 0, 1 to 3, or 4
//! (meaning "4 or more", after a literal run). Bytes written `xxxx` below are bit fields,
//! most significant bit first; `ext` is a length extension: zero or more `00` bytes, each
//! adding 255, then one non-zero byte that is added.
//!
//! | First byte | Meaning |
//! |---|---|
//! | `18..=255` (first byte of the stream only) | `b - 17` literals follow; state becomes `b - 17` if that is below 4, else 4 |
//! | `0000LLLL`, state 0 | literal run of `L + 3` bytes (4 to 18); `L = 0`: `18 + ext` bytes; state becomes 4 |
//! | `0000DDSS HHHHHHHH`, state 1 to 3 | copy 2 bytes, distance `(H << 2) + D + 1` (1 to 1024) |
//! | `0000DDSS HHHHHHHH`, state 4 | copy 3 bytes, distance `(H << 2) + D + 2049` (2049 to 3072) |
//! | `01LDDDSS HHHHHHHH` or `1LLDDDSS HHHHHHHH` | copy `(b >> 5) + 1` bytes (3 to 8), distance `(H << 3) + D + 1` (1 to 2048) |
//! | `001LLLLL` [ext] `DDDDDDSS DDDDDDDD` | copy `L + 2` bytes (3 to 33; `L = 0`: `33 + ext`), distance `D + 1` (1 to 16384) |
//! | `0001HLLL` [ext] `DDDDDDSS DDDDDDDD` | copy `L + 2` bytes (3 to 9; `L = 0`: `9 + ext`), distance `16384 + (H << 14) + D` (16385 to 49151); distance 16384 ends the stream |
//!
//! In the two-byte forms the distance field `D` is little-endian: its low 6 bits sit above
//! `SS` in the first byte, its high 8 bits in the second. After every copy, `S` (0 to 3)
//! literals follow and become the state. The end marker is `11 00 00`.

/// Largest distance of the short copy `01LDDDSS`/`1LLDDDSS` (M2).
pub const M2_MAX_DIST: usize = 2048;
/// Longest copy the short form can encode.
pub const M2_MAX_LEN: usize = 8;
/// Largest distance of `001LLLLL` (M3).
pub const M3_MAX_DIST: usize = 16384;
/// Longest copy `001LLLLL` encodes without an extension.
pub const M3_MAX_LEN: usize = 33;
/// Largest distance of `0001HLLL` (M4).
pub const M4_MAX_DIST: usize = 49151;
/// Longest copy `0001HLLL` encodes without an extension.
pub const M4_MAX_LEN: usize = 9;
/// Distance that `0001HLLL` reserves for the end of the stream.
pub const END_DIST: usize = 16384;
/// Opcode bits of M3 and M4.
pub const M3_OP: u8 = 0b0010_0000;
/// Opcode bits of M4.
pub const M4_OP: u8 = 0b0001_0000;
/// The end-of-stream marker.
pub const END_MARKER: [u8; 3] = [M4_OP | 1, 0, 0];
/// Longest literal run that the first byte of a stream encodes by itself (`17 + 238 = 255`).
pub const FIRST_RUN_MAX: usize = 238;
/// Longest literal run `0000LLLL` encodes without an extension.
pub const RUN_MAX: usize = 18;
