//! The dumped kernel's `utsname` (what `uname -a` prints), read from guest memory.
//!
//! The kernel keeps it in `init_uts_ns.name`, a `struct new_utsname` of six NUL-padded
//! 65-byte strings ([`NewUtsname`]). VMCOREINFO names the variable and the member:
//! `SYMBOL(init_uts_ns)` is its kernel virtual address and `OFFSET(uts_namespace.name)` the
//! offset of `name` inside it. The virtual address becomes a guest physical one with the
//! kernel's own rule, [`Vmcoreinfo::kernel_va_to_pa`] (identity before Linux 6.10;
//! `KERNELOFFSET`/`KERNELOFFPHYS`/`IDENTITYBASE` from 6.10 on); see docs/kernel-memory.md.
//!
//! This is what zgetdump shows as "UTS node name" and "UTS kernel version" for an ELF
//! dump, and what pvdump writes into a kdump header's `new_utsname`.

use crate::error::Result;
use crate::layout::kdump::{NewUtsname, UTS_LEN, c_string, uts_field};
use crate::source::{PageSource, read_phys};
use crate::vmcoreinfo::Vmcoreinfo;

/// The dumped system's utsname, as text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Utsname {
    /// sysname ("Linux").
    pub sysname: String,
    /// nodename (host name).
    pub nodename: String,
    /// release (`uname -r`).
    pub release: String,
    /// version (`uname -v`).
    pub version: String,
    /// machine ("s390x").
    pub machine: String,
    /// domainname.
    pub domainname: String,
}

impl Utsname {
    /// Decodes the six NUL-padded fields (text up to the first NUL, invalid UTF-8 replaced).
    pub fn from_raw(u: &NewUtsname) -> Utsname {
        Utsname {
            sysname: c_string(&u.sysname),
            nodename: c_string(&u.nodename),
            release: c_string(&u.release),
            version: c_string(&u.version),
            machine: c_string(&u.machine),
            domainname: c_string(&u.domainname),
        }
    }

    /// Encodes the six fields NUL-padded (each cut to 64 bytes at a character boundary).
    pub fn to_raw(&self) -> NewUtsname {
        NewUtsname {
            sysname: uts_field(&self.sysname),
            nodename: uts_field(&self.nodename),
            release: uts_field(&self.release),
            version: uts_field(&self.version),
            machine: uts_field(&self.machine),
            domainname: uts_field(&self.domainname),
        }
    }

    /// The fields with their names, in `struct new_utsname` order.
    pub fn fields(&self) -> [(&'static str, &str); 6] {
        [
            ("sysname", &self.sysname),
            ("nodename", &self.nodename),
            ("release", &self.release),
            ("version", &self.version),
            ("machine", &self.machine),
            ("domainname", &self.domainname),
        ]
    }
}

/// Guest physical address of `init_uts_ns.name`, from VMCOREINFO: `SYMBOL(init_uts_ns)` +
/// `OFFSET(uts_namespace.name)` translated with [`Vmcoreinfo::kernel_va_to_pa`]. `None` when
/// VMCOREINFO lacks either line or the address cannot be translated.
pub fn utsname_paddr(info: &Vmcoreinfo) -> Option<u64> {
    let va = info
        .symbol("init_uts_ns")?
        .checked_add(info.offset("uts_namespace.name")?)?;
    info.kernel_va_to_pa(va)
}

/// Reads the kernel's `init_uts_ns.name` from guest memory, located through VMCOREINFO (see
/// [`utsname_paddr`]).
///
/// `Ok(None)` when the guest gives no way to find it (no `SYMBOL(init_uts_ns)` or
/// `OFFSET(uts_namespace.name)`, an address that cannot be translated or is not in the
/// dump) or when what is there is not a kernel's utsname: every field must end with a NUL
/// inside its 65 bytes and hold no control character, `sysname` must not be empty, and
/// `release` must equal VMCOREINFO's `OSRELEASE` when that is present. Errors are those of
/// reading the memory itself (a damaged page of a kdump file).
pub fn guest_utsname<S: PageSource + ?Sized>(src: &S, info: &Vmcoreinfo) -> Result<Option<Utsname>> {
    let Some(pa) = utsname_paddr(info) else {
        return Ok(None);
    };
    let mut raw = [0u8; NewUtsname::SIZE];
    if !read_phys(src, pa, &mut raw)? {
        return Ok(None);
    }
    let plausible = raw.chunks(UTS_LEN).all(|field| {
        let end = field.iter().position(|&b| b == 0);
        end.is_some_and(|end| field[..end].iter().all(|&b| b >= 0x20 && b != 0x7f))
    });
    let uts = Utsname::from_raw(&NewUtsname::read(&raw));
    if !plausible || uts.sysname.is_empty() || info.osrelease().is_some_and(|r| r != uts.release) {
        return Ok(None);
    }
    Ok(Some(uts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::PAGE_SIZE;
    use crate::source::MemoryBlock;
    use crate::vmcoreinfo::VmcoreinfoSource;

    /// Guest memory from address 0.
    struct Mem {
        blocks: Vec<MemoryBlock>,
        bytes: Vec<u8>,
    }

    impl Mem {
        fn new(size: u64) -> Mem {
            Mem {
                blocks: vec![MemoryBlock { paddr: 0, size }],
                bytes: vec![0; size as usize],
            }
        }
        fn put(&mut self, at: u64, b: &[u8]) {
            self.bytes[at as usize..at as usize + b.len()].copy_from_slice(b);
        }
    }

    impl PageSource for Mem {
        fn blocks(&self) -> &[MemoryBlock] {
            &self.blocks
        }
        fn read_pages(&self, paddr: u64, out: &mut [u8], zero: &mut [bool]) -> Result<()> {
            out.copy_from_slice(&self.bytes[paddr as usize..paddr as usize + out.len()]);
            zero.fill(false);
            Ok(())
        }
    }

    fn info(text: &str) -> Vmcoreinfo {
        Vmcoreinfo {
            text: text.as_bytes().to_vec(),
            paddr: 0,
            source: VmcoreinfoSource::ElfNote { offset: 0 },
        }
    }

    fn uts(release: &str, version: &str) -> Utsname {
        Utsname {
            sysname: "Linux".into(),
            nodename: "(none)".into(),
            release: release.into(),
            version: version.into(),
            machine: "s390x".into(),
            domainname: "(none)".into(),
        }
    }

    /// 6.1.0-50-s390x: the image is identity-mapped (no KERNELOFFPHYS), pa = va.
    #[test]
    fn identity_layout_of_older_kernels() {
        let want = uts("6.1.0-50-s390x", "#1 SMP Debian 6.1.176-1 (2026-07-02)");
        let mut mem = Mem::new(16 * PAGE_SIZE);
        // Straddles a page boundary on purpose.
        mem.put(0x8f80, &want.to_raw().to_bytes());
        let v = info("OSRELEASE=6.1.0-50-s390x\nSYMBOL(init_uts_ns)=8f78\nOFFSET(uts_namespace.name)=8\n");
        assert_eq!(v.kernel_va_to_pa(0xef4898), Some(0xef4898));
        assert_eq!(utsname_paddr(&v), Some(0x8f80));
        assert_eq!(guest_utsname(&mem, &v).unwrap(), Some(want));
    }

    /// 6.12.107+deb13-s390x: the image has its own virtual area (values from the real
    /// kernel's VMCOREINFO, memory scaled down).
    #[test]
    fn image_layout_of_6_10_and_later() {
        let v = info(
            "OSRELEASE=6.12.107+deb13-s390x\nIDENTITYBASE=0\nKERNELOFFSET=3fffe7f8000\n\
             KERNELOFFPHYS=8f8000\nSYMBOL(init_uts_ns)=3ffffe17b90\nOFFSET(uts_namespace.name)=0\n",
        );
        // The real kernel's numbers: SYMBOL(init_uts_ns) lies in the image.
        assert_eq!(v.kernel_va_to_pa(0x3ff_ffe1_7b90), Some(0x1f1_7b90));
        // Below KERNELOFFSET: the identity map.
        assert_eq!(v.kernel_va_to_pa(0x1234), Some(0x1234));
        let want = uts("6.12.107+deb13-s390x", "#1 SMP Debian 6.12.107-1 (2026-08-29)");
        let mut mem = Mem::new(0x200_0000);
        mem.put(0x1f1_7b90, &want.to_raw().to_bytes());
        assert_eq!(guest_utsname(&mem, &v).unwrap(), Some(want.clone()));
        // Taken as identity-mapped (the pre-6.10 rule), the symbol lies outside memory.
        let old_rule = info("SYMBOL(init_uts_ns)=3ffffe17b90\nOFFSET(uts_namespace.name)=0\n");
        assert_eq!(guest_utsname(&mem, &old_rule).unwrap(), None);
    }

    #[test]
    fn identity_base_moves_the_identity_map() {
        let v = info("IDENTITYBASE=10000000\nKERNELOFFSET=3fffe7f8000\nKERNELOFFPHYS=8f8000\n");
        assert_eq!(v.kernel_va_to_pa(0x1000_2000), Some(0x2000));
        assert_eq!(v.kernel_va_to_pa(0xfff_ffff), None, "below the identity map");
        assert_eq!(v.kernel_va_to_pa(0x3fffe7f8000), Some(0x8f8000));
        let high = info("KERNELOFFSET=1000\nKERNELOFFPHYS=ffffffffffffff00\n");
        assert_eq!(high.kernel_va_to_pa(0x1100), None, "overflow");
        assert_eq!(high.kernel_va_to_pa(0x10ff), Some(u64::MAX));
        // A 6.10+ VMCOREINFO with a garbled value gives no way to translate.
        let bad = info("KERNELOFFSET=zz\nKERNELOFFPHYS=8f8000\n");
        assert_eq!(bad.kernel_va_to_pa(0x1000), None);
        let no_virt = info("KERNELOFFPHYS=8f8000\n");
        assert_eq!(no_virt.kernel_va_to_pa(0x1000), None);
        let no_identity = info("KERNELOFFSET=3fffe7f8000\nKERNELOFFPHYS=8f8000\n");
        assert_eq!(no_identity.kernel_va_to_pa(0x1000), Some(0x1000));
    }

    #[test]
    fn no_way_or_no_utsname_gives_none() {
        let want = uts("6.1.0", "#1");
        let mut mem = Mem::new(4 * PAGE_SIZE);
        mem.put(0x1000, &want.to_raw().to_bytes());
        let find_in = |mem: &Mem, text: &str| guest_utsname(mem, &info(text)).unwrap();
        let find = |text: &str| find_in(&mem, text);
        assert_eq!(
            find("SYMBOL(init_uts_ns)=1000\nOFFSET(uts_namespace.name)=0\n"),
            Some(want.clone())
        );
        assert_eq!(find("SYMBOL(init_uts_ns)=1000\n"), None, "no OFFSET");
        assert_eq!(find("OFFSET(uts_namespace.name)=0\n"), None, "no SYMBOL");
        assert_eq!(
            find("SYMBOL(init_uts_ns)=3f00\nOFFSET(uts_namespace.name)=0\n"),
            None,
            "past memory"
        );
        assert_eq!(
            find("SYMBOL(init_uts_ns)=2000\nOFFSET(uts_namespace.name)=0\n"),
            None,
            "zeros: empty sysname"
        );
        assert_eq!(
            find("OSRELEASE=6.2\nSYMBOL(init_uts_ns)=1000\nOFFSET(uts_namespace.name)=0\n"),
            None,
            "release is not OSRELEASE"
        );
        // A field without its NUL, or with a control character, is no utsname.
        let mut full = want.to_raw().to_bytes();
        full[65..130].fill(b'x');
        let at_1000 = "SYMBOL(init_uts_ns)=1000\nOFFSET(uts_namespace.name)=0\n";
        mem.put(0x1000, &full);
        assert_eq!(find_in(&mem, at_1000), None);
        let mut ctl = want.to_raw().to_bytes();
        ctl[66] = b'\n';
        mem.put(0x1000, &ctl);
        assert_eq!(find_in(&mem, at_1000), None);
    }

    #[test]
    fn raw_round_trip_and_field_names() {
        let u = uts("6.12.0", "#1 SMP");
        assert_eq!(Utsname::from_raw(&u.to_raw()), u);
        let names: Vec<&str> = u.fields().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["sysname", "nodename", "release", "version", "machine", "domainname"]
        );
    }
}
