//! Bounds-checked, endian-explicit reads. Nothing here can panic: every access goes through
//! `get`, and file-provided offsets are added with overflow checks.

use crate::error::{FormatError, Result, Structure};

/// Returns `data[offset .. offset + size]`, or an `OutOfBounds` error naming the structure.
pub fn slice(data: &[u8], offset: u64, size: u64, structure: impl FnOnce() -> Structure) -> Result<&[u8]> {
    let file_len = data.len() as u64;
    match offset.checked_add(size) {
        Some(end) if end <= file_len => Ok(&data[offset as usize..end as usize]),
        _ => Err(FormatError::OutOfBounds {
            structure: structure(),
            offset,
            size,
            file_len,
        }),
    }
}

/// Fixed-size array view at `offset` of an in-memory buffer (not a file offset).
pub fn array<const N: usize>(buf: &[u8], offset: usize) -> Option<&[u8; N]> {
    buf.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

/// Big-endian u16 at `offset`, or 0 when out of range (callers check lengths first).
pub fn be16(buf: &[u8], offset: usize) -> u16 {
    array::<2>(buf, offset).map_or(0, |a| u16::from_be_bytes(*a))
}

/// Big-endian u32 at `offset`, or 0 when out of range (callers check lengths first).
pub fn be32(buf: &[u8], offset: usize) -> u32 {
    array::<4>(buf, offset).map_or(0, |a| u32::from_be_bytes(*a))
}

/// Big-endian u64 at `offset`, or 0 when out of range (callers check lengths first).
pub fn be64(buf: &[u8], offset: usize) -> u64 {
    array::<8>(buf, offset).map_or(0, |a| u64::from_be_bytes(*a))
}

/// Copies a fixed-size array out of a slice already checked to be long enough; missing bytes
/// read as zero instead of panicking.
pub fn copy_array<const N: usize>(buf: &[u8], offset: usize) -> [u8; N] {
    array::<N>(buf, offset).copied().unwrap_or([0; N])
}

/// Rounds `v` up to a multiple of 4 (ELF note padding), failing on overflow.
pub fn pad4(v: u64) -> Option<u64> {
    v.checked_add(3).map(|x| x & !3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_checks_overflow_and_length() {
        let d = [1u8, 2, 3, 4];
        assert_eq!(slice(&d, 1, 2, || Structure::NoteName).unwrap(), &[2, 3]);
        assert_eq!(slice(&d, 4, 0, || Structure::NoteName).unwrap(), &[] as &[u8]);
        let e = slice(&d, u64::MAX, 2, || Structure::NoteName).unwrap_err();
        assert_eq!(
            e,
            FormatError::OutOfBounds {
                structure: Structure::NoteName,
                offset: u64::MAX,
                size: 2,
                file_len: 4
            }
        );
        assert!(slice(&d, 3, 2, || Structure::NoteName).is_err());
    }

    #[test]
    fn short_reads_are_zero_not_panics() {
        let d = [0x12u8, 0x34, 0x56];
        assert_eq!(be16(&d, 1), 0x3456);
        assert_eq!(be32(&d, 0), 0);
        assert_eq!(be64(&d, usize::MAX), 0);
        assert_eq!(copy_array::<2>(&d, 2), [0, 0]);
        assert_eq!(pad4(5), Some(8));
        assert_eq!(pad4(u64::MAX), None);
    }
}
