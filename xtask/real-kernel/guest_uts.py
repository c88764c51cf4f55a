#!/usr/bin/env python3
"""The guest's own utsname, read from the memory of a plain s390x ELF dump.

    guest_uts.py DUMP.elf

What a dump writer should put in a kdump header's new_utsname, computed
independently of pvdump:

1. VMCOREINFO: lowcore 0xE0C holds the 8-byte big-endian physical address
   of the kernel's ELF note "VMCOREINFO" (the dump needs no note of its own);
2. va = SYMBOL(init_uts_ns) + OFFSET(uts_namespace.name);
3. pa by the kernel's __pa() rule (arch/s390/include/asm/page.h): with
   KERNELOFFPHYS (6.10+) a va below KERNELOFFSET is va - IDENTITYBASE, any
   other va - KERNELOFFSET + KERNELOFFPHYS; without it (older kernels, whose
   image is identity-mapped) pa = va;
4. the six 65-byte NUL-padded fields at pa: sysname, nodename, release,
   version, machine, domainname.

Cross-check: the same va translated by a DAT page-table walk from control
register 13 (the kernel's primary ASCE) of the first CPU's NT_S390_CTRS note.

Prints one line of canonical JSON: {"pa": .., "pa_by_cr13": .., "uts": {..},
"crashtime": .., "osrelease": ..}; exit status 1 if the two translations
disagree or a field is not NUL-terminated.
"""
import json
import struct
import sys

FIELDS = ("sysname", "nodename", "release", "version", "machine", "domainname")
FIELD_LEN = 65  # __NEW_UTS_LEN + 1
NT_S390_CTRS = 0x304


class Dump:
    """Physical memory and notes of a 64-bit big-endian ELF core."""

    def __init__(self, path):
        self.f = open(path, "rb")
        eh = self.f.read(64)
        if eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 2:
            sys.exit(f"{path}: not a 64-bit big-endian ELF file")
        (phoff,) = struct.unpack_from(">Q", eh, 0x20)
        phentsize, phnum = struct.unpack_from(">HH", eh, 0x36)
        self.loads, self.notes = [], []
        for i in range(phnum):
            self.f.seek(phoff + i * phentsize)
            p_type, _, off, _, paddr, filesz, _, _ = struct.unpack(">IIQQQQQQ", self.f.read(56))
            if p_type == 1:
                self.loads.append((paddr, filesz, off))
            elif p_type == 4:
                self.f.seek(off)
                self.notes += parse_notes(self.f.read(filesz))

    def read(self, pa, n):
        for paddr, filesz, off in self.loads:
            if paddr <= pa and pa + n <= paddr + filesz:
                self.f.seek(off + pa - paddr)
                return self.f.read(n)
        raise ValueError(f"physical {pa:#x}+{n:#x} is not in the dump")

    def u64(self, pa):
        return struct.unpack(">Q", self.read(pa, 8))[0]


def parse_notes(data):
    """[(name, type, desc)] of an ELF note segment (4-byte aligned)."""
    out, pos = [], 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(">III", data, pos)
        name_end = pos + 12 + namesz
        desc = pos + 12 + (namesz + 3) // 4 * 4
        out.append((data[pos + 12:name_end].rstrip(b"\0"), ntype, data[desc:desc + descsz]))
        pos = desc + (descsz + 3) // 4 * 4
    return out


def vmcoreinfo(dump):
    """The guest's VMCOREINFO as a dict, found through lowcore 0xE0C."""
    note = dump.u64(0xE0C)
    namesz, descsz, _ = struct.unpack(">III", dump.read(note, 12))
    if dump.read(note + 12, namesz) != b"VMCOREINFO\0":
        sys.exit(f"no VMCOREINFO note at {note:#x} (lowcore 0xE0C)")
    text = dump.read(note + 12 + (namesz + 3) // 4 * 4, descsz).decode("ascii", "replace")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def pa_by_rule(info, va):
    """The kernel's __pa() for an address in the identity map or the image."""
    if "KERNELOFFPHYS" not in info:
        return va
    if va < int(info["KERNELOFFSET"], 16):
        return va - int(info.get("IDENTITYBASE", "0"), 16)
    return va - int(info["KERNELOFFSET"], 16) + int(info["KERNELOFFPHYS"], 16)


def pa_by_dat(dump, asce, va):
    """s390x dynamic address translation of va through the tables of asce."""
    table = asce & ~0xFFF
    level = (asce >> 2) & 3  # 3 region-first .. 1 region-third, 0 segment
    while level > 0:  # region tables: 2048 entries of 8 bytes
        index = (va >> (20 + 11 * level)) & 0x7FF
        entry = dump.u64(table + index * 8)
        if entry & 0x20:
            raise ValueError(f"va {va:#x}: invalid region entry (level {level})")
        if level == 1 and entry & 0x400:  # region-third FC: 2 GiB frame
            return (entry & ~0x7FFFFFFF) | (va & 0x7FFFFFFF)
        table = entry & ~0xFFF
        level -= 1
    entry = dump.u64(table + ((va >> 20) & 0x7FF) * 8)  # segment table
    if entry & 0x20:
        raise ValueError(f"va {va:#x}: invalid segment entry")
    if entry & 0x400:  # segment FC: 1 MiB frame
        return (entry & ~0xFFFFF) | (va & 0xFFFFF)
    pte = dump.u64((entry & ~0x7FF) + ((va >> 12) & 0xFF) * 8)  # 256-entry page table
    if pte & 0x400:
        raise ValueError(f"va {va:#x}: invalid page entry")
    return (pte & ~0xFFF) | (va & 0xFFF)


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} DUMP.elf")
    dump = Dump(sys.argv[1])
    info = vmcoreinfo(dump)
    va = int(info["SYMBOL(init_uts_ns)"], 16) + int(info["OFFSET(uts_namespace.name)"])
    pa = pa_by_rule(info, va)
    ctrs = [d for name, t, d in dump.notes if name == b"LINUX" and t == NT_S390_CTRS]
    pa_dat = pa_by_dat(dump, struct.unpack_from(">Q", ctrs[0], 13 * 8)[0], va) if ctrs else None

    raw = dump.read(pa, FIELD_LEN * len(FIELDS))
    uts, ok = {}, pa_dat in (None, pa)
    for i, name in enumerate(FIELDS):
        field = raw[i * FIELD_LEN:(i + 1) * FIELD_LEN]
        ok &= b"\0" in field
        uts[name] = field.split(b"\0", 1)[0].decode("utf-8", "replace")
    print(json.dumps({"va": hex(va), "pa": hex(pa), "pa_by_cr13": pa_dat and hex(pa_dat),
                      "uts": uts, "crashtime": info.get("CRASHTIME"),
                      "osrelease": info.get("OSRELEASE")}, sort_keys=True, separators=(",", ":")))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
