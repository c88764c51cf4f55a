//! Finding the kernel's VMCOREINFO in (decrypted) guest memory, the way zgetdump, crash and
//! libkdumpfile do: `os_info` at absolute 0xE18 first, then the note pointer at 0xE0C.

use crate::bytes::{be16, be32, be64};
use crate::error::Result;
use crate::source::{PageSource, read_phys};

/// Lowcore field holding the address of `struct os_info`.
pub const LC_OS_INFO: u64 = 0xe18;
/// Lowcore field holding the address of the VMCOREINFO ELF note (unaligned u64).
pub const LC_VMCORE_INFO: u64 = 0xe0c;
/// "OSINFOSZ"
pub const OS_INFO_MAGIC: u64 = 0x4f53_494e_464f_535a;
/// Size of `struct os_info`.
pub const OS_INFO_SIZE: usize = 4096;
/// Offset of `entry[0]` (VMCOREINFO) in `struct os_info`.
pub const OS_INFO_ENTRY0: usize = 32;
/// Largest VMCOREINFO text pvdump will copy (the kernel uses one page).
pub const MAX_VMCOREINFO: u64 = 1 << 20;

/// Where the text was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmcoreinfoSource {
    /// `os_info` entry 0; `os_info` is the address of the structure.
    OsInfo {
        /// Guest physical address of `struct os_info`.
        os_info: u64,
    },
    /// The ELF note whose address is at lowcore 0xE0C.
    LowcoreNote {
        /// Guest physical address of the note.
        note: u64,
    },
    /// A VMCOREINFO ELF note of the dump file itself (plain vmcores, kdump files).
    ElfNote {
        /// File offset of the text.
        offset: u64,
    },
}

/// The VMCOREINFO text of the dumped kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmcoreinfo {
    /// The text without trailing NUL bytes.
    pub text: Vec<u8>,
    /// Guest physical address of the text (0 when it comes from the dump file's notes).
    pub paddr: u64,
    /// Where it was found.
    pub source: VmcoreinfoSource,
}

impl Vmcoreinfo {
    /// The text of a VMCOREINFO note of the dump file (trailing NULs dropped).
    pub fn from_note(desc: &[u8], offset: u64) -> Vmcoreinfo {
        Vmcoreinfo {
            text: trim_nul(desc.to_vec()),
            paddr: 0,
            source: VmcoreinfoSource::ElfNote { offset },
        }
    }

    /// The value of `KEY=value`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        std::str::from_utf8(&self.text).ok()?.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k == key).then_some(v)
        })
    }

    /// Kernel release (`OSRELEASE=`).
    pub fn osrelease(&self) -> Option<&str> {
        self.get("OSRELEASE")
    }

    /// Crash time in seconds since the epoch (`CRASHTIME=`).
    pub fn crashtime(&self) -> Option<u64> {
        self.get("CRASHTIME")?.trim().parse().ok()
    }

    /// The kernel virtual address of a symbol (`SYMBOL(name)=`, hexadecimal without `0x`).
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.hex(&format!("SYMBOL({name})"))
    }

    /// The byte offset of a structure member (`OFFSET(struct.member)=`, decimal).
    pub fn offset(&self, member: &str) -> Option<u64> {
        self.get(&format!("OFFSET({member})"))?.trim().parse().ok()
    }

    /// A hexadecimal value (`KEY=value` without `0x`, as the kernel's `%lx` writes it).
    pub fn hex(&self, key: &str) -> Option<u64> {
        let v = self.get(key)?.trim();
        u64::from_str_radix(v.strip_prefix("0x").unwrap_or(v), 16).ok()
    }

    /// Translates a kernel virtual address of the identity map or the kernel image (a
    /// `SYMBOL()` value, the address of a static variable) to a guest physical address, with
    /// the s390x kernel's own rule (`__pa()` in arch/s390/include/asm/page.h):
    ///
    /// - Linux 6.10 and later map the kernel image at its own virtual address and say so in
    ///   VMCOREINFO with `KERNELOFFPHYS=` (the image's physical address), `KERNELOFFSET=`
    ///   (its virtual address) and `IDENTITYBASE=` (where the identity map of all physical
    ///   memory starts). An address below `KERNELOFFSET` lies in the identity map:
    ///   pa = va − IDENTITYBASE; any other lies in the image: pa = va − KERNELOFFSET +
    ///   KERNELOFFPHYS.
    /// - Older kernels (no `KERNELOFFPHYS` line; `KERNELOFFSET` there is a KASLR offset of
    ///   an image that is still identity-mapped) run with virtual = physical: pa = va.
    ///
    /// `None` when the address is below the identity map, the arithmetic overflows, or a
    /// 6.10+ VMCOREINFO lacks or garbles one of the three values: then the guest gives no
    /// way to translate. Addresses of vmalloc'ed or module memory (page-table mapped) are
    /// not covered by this rule and come out wrong; VMCOREINFO's symbols are all static.
    pub fn kernel_va_to_pa(&self, va: u64) -> Option<u64> {
        if self.get("KERNELOFFPHYS").is_none() {
            return Some(va);
        }
        let image_phys = self.hex("KERNELOFFPHYS")?;
        let image_virt = self.hex("KERNELOFFSET")?;
        // IDENTITYBASE came with KERNELOFFPHYS (6.10); a missing one means 0.
        let identity = match self.get("IDENTITYBASE") {
            Some(_) => self.hex("IDENTITYBASE")?,
            None => 0,
        };
        if va < image_virt {
            va.checked_sub(identity)
        } else {
            (va - image_virt).checked_add(image_phys)
        }
    }
}

/// The s390 CKSM checksum: a 32-bit one's-complement sum of big-endian words.
pub fn cksm(data: &[u8]) -> u32 {
    let mut sum: u64 = 0;
    for w in data.chunks(4) {
        let mut b = [0u8; 4];
        b[..w.len()].copy_from_slice(w);
        sum += u64::from(u32::from_be_bytes(b));
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    ((sum & 0xffff_ffff) + (sum >> 32)) as u32
}

fn read_u64<S: PageSource + ?Sized>(src: &S, addr: u64) -> Result<Option<u64>> {
    let mut b = [0u8; 8];
    Ok(read_phys(src, addr, &mut b)?.then(|| u64::from_be_bytes(b)))
}

fn trim_nul(mut text: Vec<u8>) -> Vec<u8> {
    if let Some(p) = text.iter().position(|&b| b == 0) {
        text.truncate(p);
    }
    text
}

/// Looks for VMCOREINFO; `Ok(None)` when the memory has none (not an error).
pub fn find_vmcoreinfo<S: PageSource + ?Sized>(src: &S) -> Result<Option<Vmcoreinfo>> {
    if let Some(found) = via_os_info(src)? {
        return Ok(Some(found));
    }
    via_lowcore_note(src)
}

fn via_os_info<S: PageSource + ?Sized>(src: &S) -> Result<Option<Vmcoreinfo>> {
    let Some(addr) = read_u64(src, LC_OS_INFO)? else {
        return Ok(None);
    };
    if addr == 0 || addr % 0x1000 != 0 {
        return Ok(None);
    }
    let mut os_info = vec![0u8; OS_INFO_SIZE];
    if !read_phys(src, addr, &mut os_info)? {
        return Ok(None);
    }
    if be64(&os_info, 0) != OS_INFO_MAGIC || be32(&os_info, 8) != cksm(&os_info[12..]) {
        return Ok(None);
    }
    let _version = (be16(&os_info, 12), be16(&os_info, 14));
    let text_addr = be64(&os_info, OS_INFO_ENTRY0);
    let size = be64(&os_info, OS_INFO_ENTRY0 + 8);
    if size == 0 || size > MAX_VMCOREINFO {
        return Ok(None);
    }
    let mut text = vec![0u8; size as usize];
    if !read_phys(src, text_addr, &mut text)? {
        return Ok(None);
    }
    Ok(Some(Vmcoreinfo {
        text: trim_nul(text),
        paddr: text_addr,
        source: VmcoreinfoSource::OsInfo { os_info: addr },
    }))
}

fn via_lowcore_note<S: PageSource + ?Sized>(src: &S) -> Result<Option<Vmcoreinfo>> {
    let Some(note) = read_u64(src, LC_VMCORE_INFO)? else {
        return Ok(None);
    };
    if note == 0 {
        return Ok(None);
    }
    let mut hdr = [0u8; 12];
    if !read_phys(src, note, &mut hdr)? {
        return Ok(None);
    }
    let namesz = be32(&hdr, 0);
    let descsz = u64::from(be32(&hdr, 4));
    if namesz == 0 || namesz > 128 || descsz > MAX_VMCOREINFO {
        return Ok(None);
    }
    let mut name = vec![0u8; namesz as usize];
    if !read_phys(src, note + 12, &mut name)? || !name.starts_with(b"VMCOREINFO\0") {
        return Ok(None);
    }
    let Some(text_addr) = note.checked_add(24) else {
        return Ok(None);
    };
    let mut text = vec![0u8; descsz as usize];
    if !read_phys(src, text_addr, &mut text)? {
        return Ok(None);
    }
    Ok(Some(Vmcoreinfo {
        text: trim_nul(text),
        paddr: text_addr,
        source: VmcoreinfoSource::LowcoreNote { note },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::elf::push_note;
    use crate::testutil::Flat;

    const TEXT: &[u8] = b"OSRELEASE=6.12.0\nPAGESIZE=4096\nCRASHTIME=1763800000\n";

    fn put(m: &mut [u8], at: u64, b: &[u8]) {
        m[at as usize..at as usize + b.len()].copy_from_slice(b);
    }

    fn with_os_info(text_size: u64) -> Vec<u8> {
        let mut m = vec![0u8; 0x4000];
        put(&mut m, LC_OS_INFO, &0x1000u64.to_be_bytes());
        let mut os = vec![0u8; OS_INFO_SIZE];
        os[0..8].copy_from_slice(&OS_INFO_MAGIC.to_be_bytes());
        os[32..40].copy_from_slice(&0x2000u64.to_be_bytes());
        os[40..48].copy_from_slice(&text_size.to_be_bytes());
        let c = cksm(&os[12..]);
        os[8..12].copy_from_slice(&c.to_be_bytes());
        put(&mut m, 0x1000, &os);
        put(&mut m, 0x2000, TEXT);
        m
    }

    #[test]
    fn found_through_os_info_with_a_valid_checksum() {
        let v = find_vmcoreinfo(&Flat::new(with_os_info(TEXT.len() as u64 + 10)))
            .unwrap()
            .unwrap();
        assert_eq!(v.text, TEXT, "trailing NULs dropped");
        assert_eq!(v.paddr, 0x2000);
        assert_eq!(v.source, VmcoreinfoSource::OsInfo { os_info: 0x1000 });
        assert_eq!(v.osrelease(), Some("6.12.0"));
        assert_eq!(v.crashtime(), Some(1_763_800_000));
        assert_eq!(v.get("PAGESIZE"), Some("4096"));
        assert_eq!(v.get("NOPE"), None);
    }

    #[test]
    fn a_bad_os_info_checksum_falls_back_to_the_lowcore_note() {
        let mut m = with_os_info(TEXT.len() as u64);
        m[0x1000 + 100] ^= 1; // the checksum no longer matches
        assert_eq!(find_vmcoreinfo(&Flat::new(m.clone())).unwrap(), None);
        let mut note = Vec::new();
        push_note(&mut note, "VMCOREINFO", 0, TEXT);
        put(&mut m, 0x3000, &note);
        put(&mut m, LC_VMCORE_INFO, &0x3000u64.to_be_bytes());
        let v = find_vmcoreinfo(&Flat::new(m)).unwrap().unwrap();
        assert_eq!(v.source, VmcoreinfoSource::LowcoreNote { note: 0x3000 });
        assert_eq!(v.paddr, 0x3000 + 24);
        assert_eq!(v.text, TEXT);
    }

    #[test]
    fn pointers_outside_memory_or_absurd_sizes_mean_no_vmcoreinfo() {
        let mut m = with_os_info(MAX_VMCOREINFO + 1);
        put(&mut m, LC_VMCORE_INFO, &0xffff_0000u64.to_be_bytes());
        assert_eq!(find_vmcoreinfo(&Flat::new(m)).unwrap(), None);
        assert_eq!(find_vmcoreinfo(&Flat::new(vec![0; 0x1000])).unwrap(), None);
    }

    #[test]
    fn cksm_is_a_ones_complement_sum_of_words() {
        assert_eq!(cksm(&[]), 0);
        assert_eq!(cksm(&[0, 0, 0, 1, 0, 0, 0, 2]), 3);
        assert_eq!(cksm(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2]), 2, "end-around carry");
        assert_eq!(cksm(&[0x12]), 0x1200_0000, "a short tail is padded with zeros");
    }
}
