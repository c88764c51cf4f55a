//! One definition of every on-disk structure pvdump reads or writes.
//!
//! Each structure is declared once, with its size and the byte offset of every named field
//! (as in the C headers and `formats.md`), and gets a `read` from a fixed-size array and a
//! `write` to one. Readers and writers in every crate use these definitions, so a fix to a
//! layout reaches both directions. Everything inside s390x dumps is big-endian; fields not
//! named are reserved: written as zero, ignored when read.
//!
//! The definitions are checked at compile time: every field lies inside the structure and no
//! two fields overlap.
//!
//! - [`elf`]: ELF64 headers (goblin's typed headers, both directions) and the note header.
//! - [`s390`]: the s390x core notes (PRSTATUS, PRPSINFO, FPREGSET and the register notes).
//! - [`kdump`]: `disk_dump_header`, `kdump_sub_header`, `page_desc`, the flattened format.
//! - [`pv`]: the Ultravisor's completion data, CPU dump and tweak components.

pub mod elf;
pub mod kdump;
pub mod pv;
pub mod s390;

/// A big-endian value of fixed size inside an on-disk structure.
pub trait Field: Sized + Copy {
    /// Bytes on disk.
    const SIZE: usize;
    /// The all-zero value.
    const ZERO: Self;
    /// Decodes from the first `SIZE` bytes of `b` (missing bytes read as zero).
    fn get(b: &[u8]) -> Self;
    /// Encodes into the first `SIZE` bytes of `b` (bytes past its end are dropped).
    fn put(&self, b: &mut [u8]);
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            const ZERO: Self = 0;
            #[inline]
            fn get(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                let n = a.len().min(b.len());
                a[..n].copy_from_slice(&b[..n]);
                <$t>::from_be_bytes(a)
            }
            #[inline]
            fn put(&self, b: &mut [u8]) {
                let a = self.to_be_bytes();
                let n = a.len().min(b.len());
                b[..n].copy_from_slice(&a[..n]);
            }
        }
    )*};
}
int_field!(u8, u16, u32, u64, i32, i64);

impl<T: Field, const N: usize> Field for [T; N] {
    const SIZE: usize = T::SIZE * N;
    const ZERO: Self = [T::ZERO; N];
    #[inline]
    fn get(b: &[u8]) -> Self {
        std::array::from_fn(|i| T::get(b.get(i * T::SIZE..).unwrap_or(&[])))
    }
    #[inline]
    fn put(&self, b: &mut [u8]) {
        for (i, v) in self.iter().enumerate() {
            if let Some(dst) = b.get_mut(i * T::SIZE..) {
                v.put(dst);
            }
        }
    }
}

/// Compile-time check of a layout: every `(offset, size)` lies inside `total` and no two
/// overlap. Used by [`layout!`](crate::layout) in a `const` item, so a wrong offset is a
/// build error.
pub const fn check_layout(fields: &[(usize, usize)], total: usize) {
    let mut i = 0;
    while i < fields.len() {
        let (off, size) = fields[i];
        assert!(off + size <= total, "a field reaches past the end of its structure");
        let mut j = i + 1;
        while j < fields.len() {
            let (o2, s2) = fields[j];
            assert!(off + size <= o2 || o2 + s2 <= off, "two fields overlap");
            j += 1;
        }
        i += 1;
    }
}

/// Declares a fixed-size big-endian structure with explicit field offsets.
///
/// ```ignore
/// layout! {
///     /// Doc.
///     pub struct Name(SIZE) {
///         /// Doc.
///         pub field: u32 = 8,
///     }
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! layout {
    (
        $(#[$m:meta])*
        pub struct $name:ident($size:expr) {
            $( $(#[$fm:meta])* pub $f:ident : $t:ty = $off:expr ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fm])* pub $f: $t, )*
        }

        const _: () = $crate::layout::check_layout(
            &[$( ($off, <$t as $crate::layout::Field>::SIZE) ),*],
            $size,
        );

        impl Default for $name {
            fn default() -> Self {
                <$name as $crate::layout::Field>::ZERO
            }
        }

        impl $crate::layout::Field for $name {
            const SIZE: usize = $size;
            const ZERO: Self = $name { $( $f: <$t as $crate::layout::Field>::ZERO, )* };
            fn get(b: &[u8]) -> Self {
                let mut a = [0u8; $size];
                let n = b.len().min($size);
                a[..n].copy_from_slice(&b[..n]);
                Self::read(&a)
            }
            fn put(&self, b: &mut [u8]) {
                let a = self.to_bytes();
                let n = b.len().min($size);
                b[..n].copy_from_slice(&a[..n]);
            }
        }

        impl $name {
            /// Size of the structure on disk, in bytes.
            pub const SIZE: usize = $size;

            /// Decodes the structure from its on-disk bytes.
            pub fn read(b: &[u8; $size]) -> Self {
                $name {
                    $( $f: <$t as $crate::layout::Field>::get(&b[$off..]), )*
                }
            }

            /// Decodes the structure from the start of `b`, or `None` when `b` is shorter.
            pub fn read_from(b: &[u8]) -> Option<Self> {
                b.get(..$size)?.try_into().ok().map(Self::read)
            }

            /// Encodes the structure into `b` (reserved bytes are left as they are).
            pub fn write_into(&self, b: &mut [u8; $size]) {
                $( $crate::layout::Field::put(&self.$f, &mut b[$off..]); )*
            }

            /// Encodes the structure; reserved bytes are zero.
            pub fn to_bytes(self) -> [u8; $size] {
                let mut b = [0u8; $size];
                self.write_into(&mut b);
                b
            }
        }
    };
}
pub use crate::layout;

#[cfg(test)]
mod tests {
    use super::*;

    layout! {
        /// A test structure.
        pub struct Sample(16) {
            /// A word.
            pub a: u32 = 0,
            /// Two halves.
            pub b: [u16; 2] = 4,
            /// A double word.
            pub c: u64 = 8,
        }
    }

    #[test]
    fn fields_round_trip_big_endian() {
        let s = Sample {
            a: 0x0102_0304,
            b: [0x0506, 0x0708],
            c: 0x090a_0b0c_0d0e_0f10,
        };
        let bytes = s.to_bytes();
        assert_eq!(bytes, core::array::from_fn(|i| i as u8 + 1));
        assert_eq!(Sample::read(&bytes), s);
        assert_eq!(Sample::read_from(&bytes[..15]), None);
        assert_eq!(Sample::default().to_bytes(), [0; 16]);
        assert_eq!(Sample::SIZE, 16);
    }

    #[test]
    fn reserved_bytes_are_kept_by_write_into() {
        let mut b = [0xaa; 16];
        Sample::default().write_into(&mut b);
        assert_eq!(b, [0; 16]);
    }

    #[test]
    #[should_panic(expected = "overlap")]
    fn overlapping_fields_are_rejected() {
        check_layout(&[(0, 8), (4, 4)], 16);
    }

    #[test]
    #[should_panic(expected = "past the end")]
    fn fields_past_the_end_are_rejected() {
        check_layout(&[(12, 8)], 16);
    }
}
