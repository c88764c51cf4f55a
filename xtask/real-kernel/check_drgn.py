#!/usr/bin/env python3
"""What a kernel engineer would look at first in a Linux vmcore, through drgn.

    check_drgn.py [--vmcoreinfo FILE] VMLINUX DUMP MARKER

VMLINUX is the guest kernel's debug image (Debian: linux-image-<kver>-dbg,
usr/lib/debug/boot/vmlinux-<kver>); DUMP is an ELF vmcore or a kdump file
(drgn reads the latter through libkdumpfile); MARKER is the line the guest
wrote to its kernel log (marker.txt of real_s390x_dump.sh).  --vmcoreinfo
supplies the VMCOREINFO text for a dump that carries no VMCOREINFO note
(QEMU's plain s390x ELF; real_s390x_dump.sh saves it as *.vmcoreinfo).
drgn trusts an ELF core's p_paddr only when the file has a VMCOREINFO note
(libdrgn/program.c); with --vmcoreinfo on an ELF file the script therefore
registers the PT_LOAD segments as physical memory itself, as drgn would
have done had the note been there: without that, every page-table walk
fails ("could not find physical memory segment"), so every vmap'ed kernel
stack (6.1) and every kernel-image address (6.12) is unreadable.

Prints one line of canonical JSON (sorted keys, no spaces) so that the
caller can compare two dumps of the same guest byte for byte:

    {"dmesg_has_marker": bool,
     "tasks":  [[pid, comm], ...]              every task (thread), by pid,
     "stacks": {"pid": [frame, ...], ...}      stack trace of each task,
     "idle":   {"cpu": [frame, ...], ...}}     each online CPU's idle task

A frame is its function name; a frame drgn cannot name (user space, or a
PC outside any symbol) is written as "0x<pc>", so a wrong register shows.
A stack drgn cannot unwind is ["error: <message>"]; the message is
deterministic for a given dump, so it still compares.  The exit status is
non-zero when the marker is missing, no task was found or a stack failed,
so the script can also be used alone.

DRGN_PREFER_PGTABLE_READER=1 is set (unless the caller sets it): for a kdump
file drgn then translates kernel addresses with its own s390x page-table
walker (drgn >= 0.3.0 knows the 6.10+ layout) instead of libkdumpfile's,
which takes SYMBOL(swapper_pg_dir) for a physical address and so cannot
translate any kernel address of a 6.10+ s390x kdump file ("No way to
translate"; measured with the copy in drgn 0.3.0's wheel and with Debian's
0.5.1).  ELF files are unaffected.
"""
import argparse
import json
import mmap
import os
import struct
import sys

os.environ.setdefault("DRGN_PREFER_PGTABLE_READER", "1")  # before libdrgn reads it
import drgn  # noqa: E402
from drgn.helpers.linux.cpumask import for_each_online_cpu  # noqa: E402
from drgn.helpers.linux.pid import for_each_task  # noqa: E402
from drgn.helpers.linux.printk import get_printk_records  # noqa: E402
from drgn.helpers.linux.sched import idle_task  # noqa: E402


def frames(prog, task):
    """Function names of the task's stack trace, innermost first."""
    try:
        trace = prog.stack_trace(task)
    except (drgn.FaultError, ValueError, LookupError) as e:
        return [f"error: {e}"]
    out = []
    for frame in trace:
        name = frame.name
        if name is None:
            try:
                name = hex(frame.pc)
            except (drgn.FaultError, ValueError, LookupError):
                name = "?"
        out.append(name)
    return out


def add_physical_segments(prog, path):
    """Register the PT_LOADs of ELF core PATH as physical memory (p_paddr)."""
    f = open(path, "rb")
    ident = f.read(16)
    if ident[:4] != b"\x7fELF" or ident[4] != 2:
        return  # not a 64-bit ELF file: a kdump file, drgn needs no help
    end = ">" if ident[5] == 2 else "<"
    f.seek(0x20)
    (phoff,) = struct.unpack(end + "Q", f.read(8))
    f.seek(0x36)
    phentsize, phnum = struct.unpack(end + "HH", f.read(4))
    mem = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    for i in range(phnum):
        p_type, _, off, _, paddr, filesz, _, _ = struct.unpack_from(
            end + "IIQQQQQQ", mem, phoff + i * phentsize)
        if p_type != 1 or filesz == 0:
            continue

        def read(_addr, count, offset, _physical, base=off):
            return mem[base + offset:base + offset + count]

        prog.add_memory_segment(paddr, filesz, read, physical=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vmcoreinfo", help="VMCOREINFO text, for a dump without the note")
    ap.add_argument("vmlinux")
    ap.add_argument("dump")
    ap.add_argument("marker")
    args = ap.parse_args()

    vmcoreinfo = None
    if args.vmcoreinfo:
        with open(args.vmcoreinfo, "rb") as f:
            vmcoreinfo = f.read()
    prog = drgn.Program(vmcoreinfo=vmcoreinfo)
    prog.set_core_dump(args.dump)
    if vmcoreinfo is not None:
        add_physical_segments(prog, args.dump)
    # Only the given vmlinux: the guest has no loadable modules, and no
    # host directory or debuginfod server is consulted for the kernel.
    prog.load_debug_info([args.vmlinux], main=True)
    if not prog.main_module().debug_file_path:
        sys.exit(f"{args.vmlinux} does not match the kernel in {args.dump} (build-id)")

    marker = args.marker.encode()
    has_marker = any(marker in r.text for r in get_printk_records(prog))

    tasks, stacks = [], {}
    for task in for_each_task(prog):
        pid = int(task.pid)
        tasks.append([pid, task.comm.string_().decode("utf-8", "replace")])
        stacks[str(pid)] = frames(prog, task)
    tasks.sort()
    idle = {str(cpu): frames(prog, idle_task(prog, cpu)) for cpu in for_each_online_cpu(prog)}

    result = {"dmesg_has_marker": has_marker, "tasks": tasks, "stacks": stacks, "idle": idle}
    print(json.dumps(result, sort_keys=True, separators=(",", ":")))
    failed = [p for p, s in list(stacks.items()) + list(idle.items()) if s[0].startswith("error: ")]
    if not has_marker or not tasks or failed:
        print(f"check_drgn: marker {'found' if has_marker else 'MISSING'}, {len(tasks)} tasks, "
              f"stack errors for {failed or 'none'}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
