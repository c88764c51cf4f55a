//! AES-256-GCM: opening (and, for the simulated Ultravisor, sealing) the completion data and
//! the CPU notes.

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use pvdump_format::consts::{COMPL_V1_SIZE, CPU_DUMP_V1_SIZE};
use pvdump_format::layout::pv::{
    COMPLETION_AAD, COMPLETION_CIPHERTEXT, COMPLETION_NONCE, COMPLETION_XTS_KEY, CPU_DUMP_AAD, CPU_DUMP_CIPHERTEXT,
    CompletionDataV1, CpuDumpV1, CpuStateV1,
};
use pvdump_format::{CompletionData, CpuDump, CpuRegisters};
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
pub fn open_completion(key: &DumpKey, compl: &CompletionData<'_>) -> Result<CompletionSecrets, TagMismatch> {
    let mut plain = Zeroizing::new([0u8; COMPLETION_CIPHERTEXT.end - COMPLETION_CIPHERTEXT.start]);
    open(
        key,
        compl.fields.iv,
        compl.aad(),
        compl.ciphertext(),
        compl.fields.tag,
        &mut plain[..],
    )?;
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&plain[COMPLETION_NONCE]);
    let mut k = [0u8; 64];
    k.copy_from_slice(&plain[COMPLETION_XTS_KEY]);
    let xts_key = XtsKey::from_bytes(k);
    k.zeroize();
    Ok(CompletionSecrets { nonce, xts_key })
}

/// Opens one CPU dump v1 with the dump key and interprets the registers.
pub fn open_cpu(key: &DumpKey, cpu: &CpuDump<'_>) -> Result<CpuRegisters, TagMismatch> {
    let mut plain = Zeroizing::new([0u8; CpuStateV1::SIZE]);
    open(
        key,
        cpu.fields.iv,
        cpu.aad(),
        cpu.ciphertext(),
        cpu.fields.tag,
        &mut plain[..],
    )?;
    Ok(CpuRegisters::from_state(&CpuStateV1::read(&plain)))
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
    let mut out = CompletionDataV1 {
        version: 1,
        length: COMPL_V1_SIZE as u32,
        seed: *seed,
        iv,
        ..CompletionDataV1::default()
    }
    .to_bytes();
    let mut plain = Zeroizing::new([0u8; COMPLETION_CIPHERTEXT.end - COMPLETION_CIPHERTEXT.start]);
    plain[COMPLETION_NONCE].copy_from_slice(&secrets.nonce);
    plain[COMPLETION_XTS_KEY].copy_from_slice(secrets.xts_key.expose());
    out[COMPLETION_CIPHERTEXT].copy_from_slice(&plain[..]);
    let (aad, rest) = out.split_at_mut(COMPLETION_AAD.end);
    let tag = seal(key, iv, aad, &mut rest[..plain.len()]);
    let mut fields = CompletionDataV1::read(&out);
    fields.tag = tag;
    fields.write_into(&mut out);
    out
}

/// Builds a CPU dump v1 note descriptor of `len` bytes (≥ 1568; extra bytes are zero).
pub fn seal_cpu(key: &DumpKey, iv: [u8; 12], regs: &CpuRegisters, len: usize) -> Vec<u8> {
    let mut head = CpuDumpV1 {
        version: 1,
        length: CPU_DUMP_V1_SIZE as u32,
        iv,
        ..CpuDumpV1::default()
    }
    .to_bytes();
    let area = Zeroizing::new(regs.to_state().to_bytes());
    head[CPU_DUMP_CIPHERTEXT].copy_from_slice(&area[..]);
    let (aad, rest) = head.split_at_mut(CPU_DUMP_AAD.end);
    let tag = seal(key, iv, aad, &mut rest[..CpuStateV1::SIZE]);
    let mut fields = CpuDumpV1::read(&head);
    fields.tag = tag;
    fields.write_into(&mut head);
    let mut out = head.to_vec();
    out.resize(len.max(CPU_DUMP_V1_SIZE), 0);
    out
}
