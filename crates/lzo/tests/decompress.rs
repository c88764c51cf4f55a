//! The decompressor on hand-assembled streams: every instruction form decodes as the format
//! says, and every error variant is reported with its offset.

use pvdump_lzo::{DecompressError, decompress};

fn dec(src: &[u8], cap: usize) -> Result<Vec<u8>, DecompressError> {
    let mut out = vec![0u8; cap];
    let n = decompress(src, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// A literal run of `n` bytes (n > 18) as the stream's first instruction (`0000 0000` and
/// an extension), with the bytes `f(i)`.
fn long_run(n: usize, f: impl Fn(usize) -> u8) -> (Vec<u8>, Vec<u8>) {
    let mut s = vec![0u8];
    let mut rem = n - 18;
    while rem > 255 {
        s.push(0);
        rem -= 255;
    }
    s.push(rem as u8);
    let lit: Vec<u8> = (0..n).map(f).collect();
    s.extend_from_slice(&lit);
    (s, lit)
}

#[test]
fn empty_stream() {
    assert_eq!(dec(&[0x11, 0, 0], 0), Ok(vec![]));
    assert_eq!(dec(&[0x11, 0, 0], 10), Ok(vec![]));
}

#[test]
fn first_byte_literal_forms() {
    // 18..=20: 1 to 3 literals (state 1..3); 21..=255: 4 to 238 literals (state 4).
    assert_eq!(dec(&[18, b'a', 0x11, 0, 0], 8), Ok(b"a".to_vec()));
    assert_eq!(dec(&[20, b'a', b'b', b'c', 0x11, 0, 0], 8), Ok(b"abc".to_vec()));
    assert_eq!(dec(&[21, b'a', b'b', b'c', b'd', 0x11, 0, 0], 8), Ok(b"abcd".to_vec()));
    let mut s = vec![255u8];
    s.extend(0..238u8);
    s.extend([0x11, 0, 0]);
    assert_eq!(dec(&s, 300), Ok((0..238u8).collect()));
    // A first byte of 0..=15 is a literal run (0000LLLL): 1 → 4 literals.
    assert_eq!(dec(&[1, b'w', b'x', b'y', b'z', 0x11, 0, 0], 8), Ok(b"wxyz".to_vec()));
}

#[test]
fn long_literal_run_extension() {
    // 0000 0000, 00, 27: 18 + 255 + 27 = 300 literals.
    let (mut s, lit) = long_run(300, |i| (i * 7) as u8);
    assert_eq!(&s[..3], &[0, 0, 27]);
    s.extend([0x11, 0, 0]);
    assert_eq!(dec(&s, 300), Ok(lit));
}

#[test]
fn short_copies_and_the_two_byte_copy() {
    let s = [
        20, b'a', b'b', b'c', // "abc", state 3
        0x49, 0x00, b'd', // 01 0 010 01: 3 bytes from distance 3, then 1 literal
        0x0c, 0x00, // state 1: 0000 11 00, H 0: 2 bytes from distance 4
        0x01, b'w', b'x', b'y', b'z', // state 0: literal run of 4
        0xe0, 0x00, // 1 11 000 00: 8 bytes from distance 1
        0x11, 0, 0,
    ];
    assert_eq!(dec(&s, 64), Ok(b"abcabcdabwxyzzzzzzzzz".to_vec()));
}

#[test]
fn three_byte_copy_after_a_literal_run() {
    // After a literal run (state 4), 0000DDSS HHHHHHHH copies 3 bytes from
    // 2049 + D + (H << 2) back: D = 3, H = 1 → 2056.
    let (mut s, mut want) = long_run(2100, |i| (i % 251) as u8);
    s.extend([0x0c | 2, 0x01, b'p', b'q']); // S = 2: two literals follow
    s.extend([0x11, 0, 0]);
    let from = 2100 - 2056;
    let copied = want[from..from + 3].to_vec();
    want.extend(copied);
    want.extend(b"pq");
    assert_eq!(dec(&s, 4000), Ok(want));
}

#[test]
fn medium_copy_with_extension_and_state_bits() {
    // 001 00000, ext 7 → 33 + 7 = 40 bytes, distance field 99 → 100 back, S = 3.
    let (mut s, mut want) = long_run(120, |i| (i * 13 + 1) as u8);
    let d = 99usize << 2 | 3;
    s.extend([0x20, 7, d as u8, (d >> 8) as u8, b'x', b'y', b'z']);
    s.extend([0x11, 0, 0]);
    for i in 0..40 {
        want.push(want[120 - 100 + i]);
    }
    want.extend(b"xyz");
    assert_eq!(dec(&s, 400), Ok(want));
}

#[test]
fn far_copy_with_high_distance_bit() {
    // 0001 1 011: H = 1, 3 + 2 = 5 bytes, D = 232: 16384 + 16384 + 232 = 33000 back; then
    // 0001 0 000, ext 1: 9 + 1 = 10 bytes from 16384 + 5 back.
    let n = 34000;
    let (mut s, mut want) = long_run(n, |i| (i % 253) as u8 ^ (i >> 8) as u8);
    let d = 232usize << 2;
    s.extend([0x1b, d as u8, (d >> 8) as u8]);
    for i in 0..5 {
        want.push(want[n - 33000 + i]);
    }
    let d2 = 5usize << 2;
    s.extend([0x10, 1, d2 as u8, (d2 >> 8) as u8]);
    let len = want.len();
    for i in 0..10 {
        want.push(want[len - 16389 + i]);
    }
    s.extend([0x11, 0, 0]);
    assert_eq!(dec(&s, 40000), Ok(want));
}

#[test]
fn overlapping_copies_repeat_the_pattern() {
    for dist in 1..=8usize {
        // `dist` literals, then one copy of 100 bytes from `dist` back.
        let mut s = vec![17 + dist as u8];
        let lit: Vec<u8> = (0..dist as u8).map(|i| b'a' + i).collect();
        s.extend_from_slice(&lit);
        let d = (dist - 1) << 2;
        s.extend([0x20, 100 - 33, d as u8, (d >> 8) as u8, 0x11, 0, 0]);
        let want: Vec<u8> = lit.iter().copied().cycle().take(dist + 100).collect();
        assert_eq!(dec(&s, 200), Ok(want), "distance {dist}");
    }
}

#[test]
fn input_overrun() {
    use DecompressError::InputOverrun;
    // Literals of the first byte missing.
    assert_eq!(dec(&[20, b'a'], 8), Err(InputOverrun { offset: 0 }));
    // The H byte of a short copy missing.
    assert_eq!(dec(&[18, b'a', 0x40], 8), Err(InputOverrun { offset: 2 }));
    // Half a distance field.
    assert_eq!(dec(&[18, b'a', 0x21, 0x00], 8), Err(InputOverrun { offset: 2 }));
    // A length extension that never ends.
    assert_eq!(dec(&[0, 0, 0, 0], 8), Err(InputOverrun { offset: 0 }));
    assert_eq!(dec(&[18, b'a', 0x20, 0, 0], 8), Err(InputOverrun { offset: 2 }));
    // A literal run (state 0: after a copy without literals) cut short.
    assert_eq!(
        dec(&[18, b'a', 0x40, 0x00, 0x05, b'x', b'y'], 600),
        Err(InputOverrun { offset: 4 })
    );
    // The S literals after a copy missing.
    assert_eq!(dec(&[18, b'a', 0x42, 0x00, b'x'], 8), Err(InputOverrun { offset: 2 }));
    // The end marker cut.
    assert_eq!(dec(&[18, b'a', 0x11, 0], 8), Err(InputOverrun { offset: 2 }));
}

#[test]
fn output_overrun() {
    use DecompressError::OutputOverrun;
    assert_eq!(
        dec(&[20, b'a', b'b', b'c', 0x11, 0, 0], 2),
        Err(OutputOverrun { offset: 0 })
    );
    // 8-byte copy into 5 bytes of room.
    assert_eq!(
        dec(&[18, b'a', 0xe0, 0x00, 0x11, 0, 0], 5),
        Err(OutputOverrun { offset: 2 })
    );
    // Literals after a copy.
    assert_eq!(
        dec(&[18, b'a', 0x43, 0x00, 1, 2, 3, 0x11, 0, 0], 5),
        Err(OutputOverrun { offset: 2 })
    );
    // A huge extended length does not overflow anything.
    let mut s = vec![18, b'a', 0x20];
    s.extend(std::iter::repeat_n(0u8, 10_000));
    s.extend([1, 0, 0, 0x11, 0, 0]);
    assert_eq!(dec(&s, 100), Err(OutputOverrun { offset: 2 }));
}

#[test]
fn lookbehind_overrun() {
    use DecompressError::LookbehindOverrun;
    // Distance 2 with one byte produced.
    assert_eq!(
        dec(&[18, b'a', 0x44, 0x00, 0x11, 0, 0], 8),
        Err(LookbehindOverrun {
            offset: 2,
            distance: 2,
            produced: 1
        })
    );
    // The 3-byte copy after a literal run reaches at least 2049 back.
    assert_eq!(
        dec(&[21, 1, 2, 3, 4, 0x00, 0x00, 0x11, 0, 0], 8),
        Err(LookbehindOverrun {
            offset: 5,
            distance: 2049,
            produced: 4
        })
    );
    // A far copy as the first instruction (a first byte of 16 or 17 is not a literal form).
    assert_eq!(
        dec(&[0x11, 0x04, 0x00, 0x11, 0, 0], 8),
        Err(LookbehindOverrun {
            offset: 0,
            distance: 16385,
            produced: 0
        })
    );
    // The 2-byte copy after 1 to 3 literals.
    assert_eq!(
        dec(&[18, b'a', 0x04, 0x00, 0x11, 0, 0], 8),
        Err(LookbehindOverrun {
            offset: 2,
            distance: 2,
            produced: 1
        })
    );
}

#[test]
fn missing_end() {
    use DecompressError::MissingEnd;
    assert_eq!(dec(&[], 8), Err(MissingEnd { offset: 0 }));
    assert_eq!(dec(&[20, b'a', b'b', b'c'], 8), Err(MissingEnd { offset: 4 }));
    assert_eq!(dec(&[18, b'a', 0x40, 0x00], 8), Err(MissingEnd { offset: 4 }));
}

#[test]
fn bad_end_marker() {
    use DecompressError::BadEndMarker;
    // Distance 16384 with length 4, and with an extended length.
    assert_eq!(dec(&[18, b'a', 0x12, 0, 0], 8), Err(BadEndMarker { offset: 2 }));
    assert_eq!(dec(&[0x10, 0x01, 0x00, 0x00], 8), Err(BadEndMarker { offset: 0 }));
    // The state bits of the marker are ignored, as by liblzo2 and Linux.
    assert_eq!(dec(&[18, b'a', 0x11, 0x01, 0x00], 8), Ok(b"a".to_vec()));
}

#[test]
fn trailing_data() {
    use DecompressError::TrailingData;
    assert_eq!(dec(&[0x11, 0, 0, 0], 8), Err(TrailingData { offset: 3 }));
    assert_eq!(
        dec(&[18, b'a', 0x11, 0, 0, 0x11, 0, 0], 8),
        Err(TrailingData { offset: 5 })
    );
}

#[test]
fn errors_display_their_offsets() {
    let e = DecompressError::LookbehindOverrun {
        offset: 5,
        distance: 2049,
        produced: 4,
    };
    assert_eq!(
        e.to_string(),
        "LZO copy at offset 5 reaches 2049 bytes back, but only 4 bytes were produced"
    );
    assert!(
        DecompressError::TrailingData { offset: 9 }
            .to_string()
            .contains("offset 9")
    );
    let c = pvdump_lzo::CompressError::OutputTooSmall { capacity: 7 };
    assert_eq!(c.to_string(), "LZO output does not fit in 7 bytes");
}
