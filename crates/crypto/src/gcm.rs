//! AES-256-GCM: opening (and, for the simulated Ultravisor, sealing) the completion data and
//! the CPU notes.

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use pvdump_format::consts::{COMPL_V1_SIZE, CPU_CONFIDENTIAL_SIZE, CPU_DUMP_V1_SIZE};
use pvdump_format::{CompletionDataV1, CpuDumpV1, CpuRegisters};
use zeroize::{Zeroize, Zeroizing};

use crate::keys::{DumpKey, XtsKey};

/// The GCM tag did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("AES-GCM authentication failed")]
pub struct TagMismatch;

/// What the completion data carries. Its Debug output shows neither field.
#[derive(Clone)]
pub struct CompletionSecrets {
    /// ORed into every page's tweak component.
    pub nonce: [u8; 16],
    /// Data key ‖ tweak key.
    pub xts_key: XtsKey,
}

impl std::fmt::Debug for CompletionSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompletionSecrets(<nonce and XTS key redacted>)")
    }
}

impl Drop for CompletionSecrets {
    fn drop(&mut self) {
        self.nonce.zeroize();
    }
}

fn cipher(key: &DumpKey) -> Aes256Gcm {
    Aes256Gcm::new(key.expose().into())
}

fn open(key: &DumpKey, iv: [u8; 12], aad: &[u8], ct: &[u8], tag: [u8; 16], out: &mut [u8]) -> Result<(), TagMismatch> {
    out.copy_from_slice(ct);
    let r = cipher(key).decrypt_inout_detached(&Nonce::from(iv), aad, out.into(), &Tag::from(tag));
    if r.is_err() {
        out.zeroize();
        return Err(TagMismatch);
    }
    Ok(())
}

/// Opens completion data v1 with the dump key.
pub fn open_completion(key: &DumpKey, compl: &CompletionDataV1<'_>) -> Result<CompletionSecrets, TagMismatch> {
    let mut plain = Zeroizing::new([0u8; 176]);
    open(
        key,
        compl.iv(),
        compl.aad(),
        compl.ciphertext(),
        compl.tag(),
        &mut plain[..],
    )?;
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&plain[..16]);
    let mut k = [0u8; 64];
    k.copy_from_slice(&plain[16..80]);
    let xts_key = XtsKey::from_bytes(k);
    k.zeroize();
    Ok(CompletionSecrets { nonce, xts_key })
}

/// Opens one CPU dump v1 with the dump key and interprets the registers.
pub fn open_cpu(key: &DumpKey, cpu: &CpuDumpV1<'_>) -> Result<CpuRegisters, TagMismatch> {
    let mut plain = Zeroizing::new([0u8; CPU_CONFIDENTIAL_SIZE]);
    open(key, cpu.iv(), cpu.aad(), cpu.ciphertext(), cpu.tag(), &mut plain[..])?;
    Ok(CpuRegisters::from_confidential(&plain))
}

fn seal(key: &DumpKey, iv: [u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
    let tag = cipher(key)
        .encrypt_inout_detached(&Nonce::from(iv), aad, buf.into())
        .expect("GCM sealing of a few hundred bytes cannot exceed the GCM length limits");
    tag.into()
}

/// Builds completion data v1 (the Ultravisor's side): seed and IV in clear, nonce and XTS
/// key encrypted under the dump key derived from `seed`.
pub fn seal_completion(
    key: &DumpKey,
    seed: &[u8; 64],
    iv: [u8; 12],
    secrets: &CompletionSecrets,
) -> [u8; COMPL_V1_SIZE] {
    let mut out = [0u8; COMPL_V1_SIZE];
    out[0..4].copy_from_slice(&1u32.to_be_bytes());
    out[4..8].copy_from_slice(&(COMPL_V1_SIZE as u32).to_be_bytes());
    out[16..80].copy_from_slice(seed);
    out[80..92].copy_from_slice(&iv);
    out[96..112].copy_from_slice(&secrets.nonce);
    out[112..176].copy_from_slice(secrets.xts_key.expose());
    let (aad, rest) = out.split_at_mut(96);
    let tag = seal(key, iv, aad, &mut rest[..176]);
    out[272..288].copy_from_slice(&tag);
    out
}

/// Builds a CPU dump v1 note descriptor of `len` bytes (≥ 1568; extra bytes are zero).
pub fn seal_cpu(key: &DumpKey, iv: [u8; 12], regs: &CpuRegisters, len: usize) -> Vec<u8> {
    let len = len.max(CPU_DUMP_V1_SIZE);
    let mut out = vec![0u8; len];
    out[0..4].copy_from_slice(&1u32.to_be_bytes());
    out[4..8].copy_from_slice(&(CPU_DUMP_V1_SIZE as u32).to_be_bytes());
    out[8..20].copy_from_slice(&iv);
    let mut area = Zeroizing::new(regs.to_confidential());
    out[32..1552].copy_from_slice(&area[..]);
    area.zeroize();
    let (aad, rest) = out.split_at_mut(32);
    let tag = seal(key, iv, aad, &mut rest[..CPU_CONFIDENTIAL_SIZE]);
    out[1552..1568].copy_from_slice(&tag);
    out
}
