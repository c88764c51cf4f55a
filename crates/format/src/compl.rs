//! Completion data (`pv_compl`), version 1: the wrapped XTS key and tweak nonce.

use crate::consts::{COMPL_MAX_SIZE, COMPL_V1_SIZE};
use crate::error::{FormatError, Problem, Result, Structure};
use crate::layout::pv::{COMPLETION_AAD, COMPLETION_CIPHERTEXT, CompletionDataV1};

/// Validated completion data v1: the decoded fields and the 288 raw bytes (the GCM
/// additional data is authenticated as it is in the file).
#[derive(Debug, Clone, Copy)]
pub struct CompletionData<'a> {
    bytes: &'a [u8; COMPL_V1_SIZE],
    /// The decoded structure.
    pub fields: CompletionDataV1,
    /// File offset of the section data.
    pub offset: u64,
}

impl<'a> CompletionData<'a> {
    /// Checks size, version and length field of the `pv_compl` section data located at file
    /// offset `offset`.
    pub fn parse(section: &'a [u8], offset: u64) -> Result<Self> {
        let bad = |at: u64, problem| FormatError::invalid(Structure::CompletionData, at, problem);
        let size = section.len() as u64;
        let Some(version) = section.get(..4) else {
            return Err(bad(offset, Problem::CompletionNoVersion { size }));
        };
        let version = u32::from_be_bytes([version[0], version[1], version[2], version[3]]);
        if version != 1 {
            return Err(bad(
                offset,
                Problem::UnknownVersion {
                    found: version,
                    hint: "; only version 1 is known (a newer Ultravisor may need a newer pvdump)",
                },
            ));
        }
        let Some(bytes) = section
            .get(..COMPL_V1_SIZE)
            .and_then(|b| <&[u8; COMPL_V1_SIZE]>::try_from(b).ok())
        else {
            return Err(bad(
                offset,
                Problem::CompletionTooSmall {
                    size,
                    need: COMPL_V1_SIZE as u64,
                },
            ));
        };
        if size > COMPL_MAX_SIZE {
            return Err(bad(
                offset,
                Problem::CompletionTooLarge {
                    size,
                    max: COMPL_MAX_SIZE,
                },
            ));
        }
        let fields = CompletionDataV1::read(bytes);
        if fields.length as usize != COMPL_V1_SIZE {
            return Err(bad(
                offset + 4,
                Problem::LengthField {
                    found: fields.length,
                    expected: COMPL_V1_SIZE as u32,
                },
            ));
        }
        Ok(CompletionData { bytes, fields, offset })
    }

    /// The raw 288 bytes.
    pub fn bytes(&self) -> &'a [u8; COMPL_V1_SIZE] {
        self.bytes
    }

    /// The authenticated, unencrypted part (GCM additional data).
    pub fn aad(&self) -> &'a [u8] {
        &self.bytes[COMPLETION_AAD]
    }

    /// The encrypted part.
    pub fn ciphertext(&self) -> &'a [u8] {
        &self.bytes[COMPLETION_CIPHERTEXT]
    }

    /// File offset of the HKDF seed.
    pub fn seed_offset(&self) -> u64 {
        self.offset + 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Vec<u8> {
        let c = CompletionDataV1 {
            version: 1,
            length: 288,
            seed: [1; 64],
            iv: [2; 12],
            ciphertext: [3; 176],
            tag: [4; 16],
        };
        c.to_bytes().to_vec()
    }

    fn problem(bytes: &[u8]) -> (u64, Problem) {
        match CompletionData::parse(bytes, 0x1000).unwrap_err() {
            FormatError::Invalid {
                structure: Structure::CompletionData,
                offset,
                problem,
            } => (offset, problem),
            e => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn parses_version_1() {
        let b = valid();
        let c = CompletionData::parse(&b, 0x1000).unwrap();
        assert_eq!(c.fields.seed, [1; 64]);
        assert_eq!(c.fields.iv, [2; 12]);
        assert_eq!(c.aad(), &b[..96]);
        assert_eq!(c.ciphertext(), &[3; 176]);
        assert_eq!(c.seed_offset(), 0x1010);
        // A larger section (up to 4 KiB) is accepted; the rest is ignored.
        let mut big = b.clone();
        big.resize(4096, 0);
        assert!(CompletionData::parse(&big, 0).is_ok());
    }

    #[test]
    fn rejects_sizes_versions_and_lengths() {
        assert_eq!(problem(&[0, 0]), (0x1000, Problem::CompletionNoVersion { size: 2 }));
        let mut b = valid();
        b[3] = 2;
        assert!(matches!(
            problem(&b),
            (0x1000, Problem::UnknownVersion { found: 2, .. })
        ));
        let b = valid();
        assert_eq!(
            problem(&b[..200]),
            (0x1000, Problem::CompletionTooSmall { size: 200, need: 288 })
        );
        let mut big = valid();
        big.resize(4097, 0);
        assert_eq!(
            problem(&big),
            (0x1000, Problem::CompletionTooLarge { size: 4097, max: 4096 })
        );
        let mut b = valid();
        b[7] = 0;
        assert_eq!(
            problem(&b),
            (
                0x1004,
                Problem::LengthField {
                    found: 256,
                    expected: 288
                }
            )
        );
    }
}
