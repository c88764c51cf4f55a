#!/usr/bin/python3
"""Read every page of a kdump file through libkdumpfile.

    check_kdumpfile.py KDUMP

Run it with Debian's /usr/bin/python3 and python3-libkdumpfile (the distro's
libkdumpfile, independent of the copy that drgn's wheel bundles).

Prints one line of canonical JSON (sorted keys, no spaces):

    {"pages": max_pfn,            pages the file describes (pfn 0 .. max_pfn-1)
     "present": n,                pages the file's bitmap says it holds
     "sha256": "...",             SHA-256 of all max_pfn pages in pfn order,
                                  a page the file does not hold counted as
                                  4096 zero bytes (what a dump excludes is
                                  zero or free memory), so the caller can
                                  compare it with the plain memory's hash
     "arch": "s390x" | null,      what libkdumpfile recognised (from the
     "uts": {...}}                header's utsname / VMCOREINFO), if anything

Pages are read by machine-physical address (KDUMP_MACHPHYSADDR): reading
them needs no address translation, which libkdumpfile <= 0.5.4 cannot set
up for 6.10+ s390x kernels.  Every present page must read (a decompression
or format error fails the script, exit status 1).
"""
import hashlib
import json
import sys

import kdumpfile

PAGE = 4096


def attr(k, key):
    """An attribute's value, or None when libkdumpfile has none."""
    try:
        return k.attr[key]
    except (KeyError, kdumpfile.exceptions.KDumpBaseException):
        return None


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} KDUMP")
    k = kdumpfile.kdumpfile(sys.argv[1])
    if attr(k, "arch.page_size") != PAGE:
        sys.exit(f"page size {attr(k, 'arch.page_size')}, expected {PAGE}")
    max_pfn = int(k.attr["max_pfn"])
    # bit i of the page bitmap (LSB first) says whether the file holds pfn i
    bitmap = k.attr["file.pagemap"].get_bits(0, max_pfn - 1)
    if len(bitmap) * 8 < max_pfn:
        sys.exit(f"page bitmap has {len(bitmap) * 8} bits for {max_pfn} pages")

    digest = hashlib.sha256()
    zero = bytes(PAGE)
    present = 0
    for pfn in range(max_pfn):
        if bitmap[pfn >> 3] >> (pfn & 7) & 1:
            page = k.read(kdumpfile.KDUMP_MACHPHYSADDR, pfn * PAGE, PAGE)
            if len(page) != PAGE:
                sys.exit(f"pfn {pfn:#x}: short read ({len(page)} bytes)")
            digest.update(page)
            present += 1
        else:
            digest.update(zero)

    uts = {}
    for field in ("sysname", "nodename", "release", "version", "machine", "domainname"):
        value = attr(k, f"linux.uts.{field}")
        if value is not None:
            uts[field] = value
    result = {"pages": max_pfn, "present": present, "sha256": digest.hexdigest(),
              "arch": attr(k, "arch.name"), "uts": uts}
    print(json.dumps(result, sort_keys=True, separators=(",", ":")))


if __name__ == "__main__":
    main()
