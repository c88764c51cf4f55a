//! Completion data (`pv_compl`), version 1: the wrapped XTS key and tweak nonce.

use crate::bytes::{be32, copy_array};
use crate::consts::{COMPL_MAX_SIZE, COMPL_V1_SIZE};
use crate::error::{FormatError, Result};

/// A zero-copy view of completion data v1 (288 bytes at the start of `pv_compl`).
#[derive(Debug, Clone, Copy)]
pub struct CompletionDataV1<'a> {
    bytes: &'a [u8; COMPL_V1_SIZE],
    /// File offset of the section data.
    pub offset: u64,
}

impl<'a> CompletionDataV1<'a> {
    /// Byte range that is authenticated but not encrypted.
    pub const AAD: std::ops::Range<usize> = 0..96;
    /// Byte range of the ciphertext (nonce, XTS key, reserved).
    pub const CIPHERTEXT: std::ops::Range<usize> = 96..272;
    /// Byte range of the GCM tag.
    pub const TAG: std::ops::Range<usize> = 272..288;

    /// Checks size and version of the `pv_compl` section data located at `offset`.
    pub fn parse(section: &'a [u8], offset: u64) -> Result<Self> {
        let what = "completion data (section `pv_compl`)";
        let size = section.len() as u64;
        if size < 4 {
            return Err(FormatError::invalid(
                what,
                offset,
                format!("section is {size} bytes, too small to hold a version"),
            ));
        }
        let version = be32(section, 0);
        if version != 1 {
            return Err(FormatError::invalid(
                what,
                offset,
                format!("version is {version}; only version 1 is known (a newer Ultravisor may need a newer pvdump)"),
            ));
        }
        if size < COMPL_V1_SIZE as u64 {
            return Err(FormatError::invalid(
                what,
                offset,
                format!("section is {size} bytes, version 1 needs {COMPL_V1_SIZE}"),
            ));
        }
        if size > COMPL_MAX_SIZE {
            return Err(FormatError::invalid(
                what,
                offset,
                format!("section is {size} bytes, more than the {COMPL_MAX_SIZE} allowed"),
            ));
        }
        let len = be32(section, 4);
        if len as usize != COMPL_V1_SIZE {
            return Err(FormatError::invalid(
                what,
                offset + 4,
                format!("length field is {len}, version 1 requires {COMPL_V1_SIZE}"),
            ));
        }
        let bytes = section
            .get(..COMPL_V1_SIZE)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| FormatError::invalid(what, offset, "too short"))?;
        Ok(CompletionDataV1 { bytes, offset })
    }

    /// The raw 288 bytes.
    pub fn bytes(&self) -> &'a [u8; COMPL_V1_SIZE] {
        self.bytes
    }
    pub fn version(&self) -> u32 {
        be32(self.bytes, 0)
    }
    /// HKDF salt.
    pub fn seed(&self) -> [u8; 64] {
        copy_array(self.bytes, 16)
    }
    /// GCM IV.
    pub fn iv(&self) -> [u8; 12] {
        copy_array(self.bytes, 80)
    }
    pub fn aad(&self) -> &'a [u8] {
        &self.bytes[Self::AAD]
    }
    pub fn ciphertext(&self) -> &'a [u8] {
        &self.bytes[Self::CIPHERTEXT]
    }
    pub fn tag(&self) -> [u8; 16] {
        copy_array(self.bytes, Self::TAG.start)
    }
}
