//! Reproducible archives: ustar with fixed owner, order and mtimes, gzip without a timestamp.

use super::*;

/// A file or folder in a release archive.
pub struct Entry {
    /// Path inside the archive; a folder ends with '/'.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Contents (empty for a folder).
    pub data: Vec<u8>,
}

pub(super) fn octal(field: &mut [u8], value: u64) -> anyhow::Result<()> {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    if s.len() > digits {
        bail!("{value} does not fit a {digits}-digit tar field");
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// A POSIX ustar archive of `entries`, in the given order, every entry owned by 0:0 and
/// dated `mtime`: the same bytes for the same input, whatever tar is installed.
pub fn ustar(entries: &[Entry], mtime: u64) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for e in entries {
        let dir = e.path.ends_with('/');
        if e.path.len() > 100 || e.path.is_empty() || !e.path.is_ascii() {
            bail!("tar: unsupported name {:?}", e.path);
        }
        if dir && !e.data.is_empty() {
            bail!("tar: folder {} with contents", e.path);
        }
        let mut h = [0u8; 512];
        h[..e.path.len()].copy_from_slice(e.path.as_bytes());
        octal(&mut h[100..108], u64::from(e.mode))?;
        octal(&mut h[108..116], 0)?;
        octal(&mut h[116..124], 0)?;
        octal(&mut h[124..136], e.data.len() as u64)?;
        octal(&mut h[136..148], mtime)?;
        h[156] = if dir { b'5' } else { b'0' };
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        octal(&mut h[329..337], 0)?;
        octal(&mut h[337..345], 0)?;
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        octal(&mut h[148..155], sum)?;
        h[155] = b' ';
        out.extend_from_slice(&h);
        out.extend_from_slice(&e.data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    Ok(out)
}

/// gzip of `data` with no name and no timestamp in its header.
pub fn gzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data)?;
    Ok(enc.finish()?)
}
