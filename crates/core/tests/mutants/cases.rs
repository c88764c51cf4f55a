//! The table of damaged dumps.

use super::*;

/// Every damaged dump of the corpus, for the base dump's layout `l`.
pub fn mutants(l: &Layout) -> Vec<Mutant> {
    let mut v = Vec::new();
    const PAST_END: &str = "reaches past the end of the file";

    // --- Truncation at every structure boundary and inside each structure.
    v.push(dump_case(
        "truncate: empty file",
        4,
        &["0 bytes long", "ELF header"],
        |_, d| d.clear(),
    ));
    v.push(dump_case(
        "truncate: inside the ELF header",
        4,
        &["40 bytes long"],
        |_, d| d.truncate(40),
    ));
    v.push(dump_case(
        "truncate: after the ELF header",
        4,
        &["section header 0", "offset 0x40", PAST_END],
        |_, d| d.truncate(64),
    ));
    v.push(dump_case(
        "truncate: inside the section headers",
        4,
        &["program header table", "offset 0x140", PAST_END],
        |_, d| d.truncate(200),
    ));
    v.push(dump_case(
        "truncate: inside the program headers",
        4,
        &["program header table", "offset 0x140", PAST_END],
        |l, d| d.truncate(l.phoff + 60),
    ));
    for (name, at) in [
        ("truncate: at the start of the notes", l.note_off),
        ("truncate: inside the notes", l.note_off + 3000),
    ] {
        v.push(dump_case(
            name,
            4,
            &["notes of program header 0 (PT_NOTE)", &hex(l.note_off), PAST_END],
            move |_, d| d.truncate(at),
        ));
    }
    for (name, at) in [
        ("truncate: at the start of memory", l.mem_off),
        ("truncate: inside memory", l.mem_off + 12345),
        ("truncate: last memory page", l.mem_meta_off - 1),
    ] {
        v.push(dump_case(
            name,
            4,
            &["memory of program header 1 (PT_LOAD", &hex(l.mem_off), PAST_END],
            move |_, d| d.truncate(at),
        ));
    }
    // Everything after memory is found through the section headers; the string table is
    // the last structure and the first one read, so it is what the message names.
    for (name, at) in [
        ("truncate: at pv_mem_meta", l.mem_meta_off),
        ("truncate: inside pv_mem_meta", l.mem_meta_off + 100),
        ("truncate: at pv_compl", l.compl_off),
        ("truncate: inside pv_compl", l.compl_off + 96),
        ("truncate: at the string table", l.strtab_off),
        ("truncate: last byte missing", l.len - 1),
    ] {
        v.push(dump_case(
            name,
            4,
            &["section name string table (section 3)", &hex(l.strtab_off), PAST_END],
            move |_, d| d.truncate(at),
        ));
    }
    // Random offsets (a fixed LCG, so the corpus is reproducible).
    let mut x = 0x243f_6a88_85a3_08d3u64;
    for _ in 0..8 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let at = 64 + (x >> 33) as usize % (l.len - 64);
        v.push(dump_case(
            format!("truncate: random offset {at:#x}"),
            4,
            &[PAST_END],
            move |_, d| d.truncate(at),
        ));
    }

    // --- Completion data: AAD (reserved, IV, seed, version, length), ciphertext, tag.
    let c = l.compl_off;
    let corrupted_compl = ["pv_compl", "is corrupted", "although the key is right"];
    v.push(dump_case(
        "pv_compl: AAD reserved bit",
        4,
        &corrupted_compl,
        move |_, d| flip(d, c + 9),
    ));
    v.push(dump_case("pv_compl: AAD IV bit", 4, &corrupted_compl, move |_, d| {
        flip(d, c + 85)
    }));
    v.push(dump_case(
        "pv_compl: ciphertext bit (nonce)",
        4,
        &corrupted_compl,
        move |_, d| flip(d, c + 100),
    ));
    v.push(dump_case(
        "pv_compl: ciphertext bit (XTS key)",
        4,
        &corrupted_compl,
        move |_, d| flip(d, c + 150),
    ));
    v.push(dump_case("pv_compl: tag bit", 4, &corrupted_compl, move |_, d| {
        flip(d, c + 280)
    }));
    // A damaged seed derives another dump key, so nothing opens: it reads as a wrong key,
    // and the message says the seed may be damaged.
    v.push(dump_case(
        "pv_compl: AAD seed bit",
        3,
        &["does not match", "key seed", &hex(c + 16)],
        move |_, d| flip(d, c + 20),
    ));
    v.push(dump_case(
        "pv_compl: version",
        4,
        &["completion data", &hex(c), "version is 17"],
        move |_, d| flip(d, c + 3),
    ));
    v.push(dump_case(
        "pv_compl: length field",
        4,
        &["completion data", &hex(c + 4), "length field"],
        move |_, d| flip(d, c + 6),
    ));

    // --- CPU notes: AAD, ciphertext, tag of each CPU; version; header fields.
    for (cpu, &(_, desc)) in l.cpu_notes.iter().enumerate() {
        for (part, at) in [("AAD IV", 10), ("AAD reserved", 25), ("ciphertext", 700), ("tag", 1560)] {
            let cpu_s = format!("CPU {cpu}");
            v.push(dump_case(
                format!("CPU {cpu} note: {part} bit"),
                4,
                &[&cpu_s, "NT_S390_PV_CPU_DATA", &hex(desc), "corrupted"],
                move |_, d| flip(d, desc + at),
            ));
        }
        v.push(dump_case(
            format!("CPU {cpu} note: version"),
            4,
            &[&format!("CPU {cpu}"), &hex(desc), "version is 17"],
            move |_, d| flip(d, desc + 3),
        ));
    }
    let (pv0, _) = l.cpu_notes[0];
    let first = l.note_off;
    v.push(dump_case(
        "note header: n_descsz huge",
        4,
        &["note header in PT_NOTE segment 0", &hex(first), "n_descsz 4294967280"],
        move |_, d| put32(d, first + 4, 0xffff_fff0),
    ));
    v.push(dump_case(
        "note header: n_namesz huge",
        4,
        &["note header in PT_NOTE segment 0", &hex(first), "n_namesz 4294967295"],
        move |_, d| put32(d, first, u32::MAX),
    ));
    v.push(dump_case(
        "note header: PV CPU note n_descsz too small",
        4,
        &["NT_S390_PV_CPU_DATA note of CPU 0", "n_descsz is 1024"],
        move |_, d| {
            // Shrink the descriptor and turn the rest into a harmless padding note.
            put32(d, pv0 + 4, 1024);
            let pad = pv0 + 20 + 1024;
            put32(d, pad, 0);
            put32(d, pad + 4, 1568 - 1024 - 12);
            put32(d, pad + 8, 0x7777);
        },
    ));
    v.push(dump_case(
        "note header: n_namesz bit",
        4,
        &["note header in PT_NOTE segment 0"],
        move |_, d| flip(d, first + 3),
    ));

    // --- Lying sizes and offsets in section headers.
    let sh1 = l.shdr(1);
    let sh2 = l.shdr(2);
    let sh3 = l.shdr(3);
    let len = l.len as u64;
    v.push(dump_case(
        "pv_mem_meta: sh_offset past EOF",
        4,
        &["data of section 1 (`pv_mem_meta`)", &hex(l.len + 16), PAST_END],
        move |_, d| put64(d, sh1 + 24, len + 16),
    ));
    v.push(dump_case(
        "pv_mem_meta: sh_offset + sh_size overflows u64",
        4,
        &["data of section 1 (`pv_mem_meta`)", "0xfffffffffffffff0", PAST_END],
        move |_, d| put64(d, sh1 + 24, u64::MAX - 15),
    ));
    v.push(dump_case(
        "pv_mem_meta: sh_size huge",
        4,
        &["data of section 1 (`pv_mem_meta`)", "0xffffffffffff0000", PAST_END],
        move |_, d| put64(d, sh1 + 32, 0xffff_ffff_ffff_0000),
    ));
    v.push(dump_case(
        "pv_mem_meta: sh_size not a multiple of 16",
        4,
        &["section 1 (`pv_mem_meta`)", &hex(sh1), "not a non-zero multiple of 16"],
        move |_, d| put64(d, sh1 + 32, 4095),
    ));
    v.push(dump_case(
        "pv_mem_meta: sh_size 0",
        4,
        &["section 1 (`pv_mem_meta`)", &hex(sh1), "not a non-zero multiple of 16"],
        move |_, d| put64(d, sh1 + 32, 0),
    ));
    v.push(dump_case(
        "pv_mem_meta: too small for the memory",
        4,
        &["section 1 (`pv_mem_meta`)", "128 pages", "0x100000"],
        move |_, d| put64(d, sh1 + 32, 2048),
    ));
    v.push(dump_case(
        "pv_compl: sh_offset past EOF",
        4,
        &["data of section 2 (`pv_compl`)", PAST_END],
        move |_, d| put64(d, sh2 + 24, len),
    ));
    v.push(dump_case(
        "pv_compl: too small",
        4,
        &["completion data", &hex(l.compl_off), "200 bytes", "needs 288"],
        move |_, d| put64(d, sh2 + 32, 200),
    ));
    v.push(dump_case(
        "pv_compl: over 4 KiB",
        4,
        &["completion data", &hex(l.len), "8192 bytes", "4096"],
        move |l, d| {
            // A copy of the completion data, padded to 8 KiB, appended to the file.
            let compl = d[l.compl_off..l.compl_off + 288].to_vec();
            d.extend_from_slice(&compl);
            d.resize(l.len + 8192, 0);
            put64(d, sh2 + 24, l.len as u64);
            put64(d, sh2 + 32, 8192);
        },
    ));
    v.push(dump_case(
        "string table: sh_size over 1 MiB",
        4,
        &["section header 3 (string table)", &hex(sh3), "larger than the 1048576"],
        move |_, d| put64(d, sh3 + 32, 2 << 20),
    ));
    v.push(dump_case(
        "string table: sh_name past the table",
        4,
        &["section header 1", &hex(sh1), "points past the string table"],
        move |_, d| put32(d, sh1, 1000),
    ));

    // --- Lying program headers.
    let ph0 = l.phdr(0);
    let ph1 = l.phdr(1);
    v.push(dump_case(
        "PT_LOAD: p_offset past EOF",
        4,
        &["memory of program header 1 (PT_LOAD", PAST_END],
        move |_, d| put64(d, ph1 + 8, len),
    ));
    v.push(dump_case(
        "PT_LOAD: p_offset + p_filesz overflows u64",
        4,
        &["memory of program header 1 (PT_LOAD", PAST_END],
        move |_, d| put64(d, ph1 + 8, u64::MAX - 0xfff),
    ));
    v.push(dump_case(
        "PT_LOAD: p_filesz past EOF",
        4,
        &["program header 1", PAST_END],
        move |_, d| {
            put64(d, ph1 + 32, 1 << 30);
            put64(d, ph1 + 40, 1 << 30);
        },
    ));
    v.push(dump_case(
        "PT_LOAD: p_filesz > p_memsz",
        4,
        &["program header 1 (PT_LOAD)", &hex(ph1), "larger than p_memsz"],
        move |_, d| put64(d, ph1 + 40, 0x1000),
    ));
    v.push(dump_case(
        "PT_LOAD: p_paddr + p_memsz overflows",
        4,
        &["program header 1 (PT_LOAD)", &hex(ph1), "overflows"],
        move |_, d| put64(d, ph1 + 24, u64::MAX - 0xfff),
    ));
    v.push(dump_case(
        "PT_LOAD: absurd p_memsz",
        4,
        &["program header table", "0x10000000000 bytes of guest memory"],
        move |_, d| put64(d, ph1 + 40, 1 << 40),
    ));
    v.push(dump_case(
        "PT_LOAD: file part beyond pv_mem_meta",
        4,
        &[
            "data of section 1 (`pv_mem_meta`)",
            "256 pages",
            "reaches guest address 0x101000",
        ],
        move |_, d| {
            put64(d, ph1 + 32, 257 << 12);
            put64(d, ph1 + 40, 257 << 12);
        },
    ));
    v.push(dump_case(
        "PT_LOAD: overlapping PT_LOADs",
        4,
        &["(PT_LOAD)", "overlaps program header"],
        move |l, d| {
            let mo = l.mem_off as u64;
            put32(d, ph0, 1);
            put64(d, ph0 + 8, mo);
            put64(d, ph0 + 24, 0x1000);
            put64(d, ph0 + 32, 0x1000);
            put64(d, ph0 + 40, 0x1000);
        },
    ));
    v.push(dump_case(
        "PT_NOTE: p_offset past EOF",
        4,
        &["notes of program header 0 (PT_NOTE)", PAST_END],
        move |_, d| put64(d, ph0 + 8, len + 1),
    ));
    v.push(dump_case(
        "PT_NOTE: p_filesz cuts a note",
        4,
        &["note header in PT_NOTE segment 0", "left in the segment"],
        move |_, d| put64(d, ph0 + 32, 100),
    ));

    // --- ELF header fields.
    v.push(dump_case("ELF: bad magic", 4, &["not an ELF file"], |_, d| d[1] = b'X'));
    v.push(dump_case(
        "ELF: 32-bit class",
        4,
        &["EI_CLASS", "offset 0x4"],
        |_, d| d[4] = 1,
    ));
    v.push(dump_case(
        "ELF: little-endian",
        4,
        &["EI_DATA", "offset 0x5"],
        |_, d| d[5] = 1,
    ));
    v.push(dump_case(
        "ELF: machine x86_64",
        4,
        &["e_machine", "offset 0x12", "62"],
        |_, d| put16(d, 18, 62),
    ));
    v.push(dump_case("ELF: type ET_EXEC", 4, &["e_type", "offset 0x10"], |_, d| {
        put16(d, 16, 2)
    }));
    v.push(dump_case(
        "ELF: e_phnum = 0xffff without section 0",
        4,
        &["ELF header", "offset 0x38", "PN_XNUM", "no section header 0"],
        |_, d| {
            put16(d, 56, 0xffff);
            put64(d, 40, 0);
        },
    ));
    v.push(dump_case(
        "ELF: e_phnum = 0xffff, section 0 sh_info = 0",
        4,
        &["section header 0", "offset 0x40", "sh_info"],
        |_, d| put16(d, 56, 0xffff),
    ));
    v.push(dump_case(
        "ELF: e_phnum = 0xffff, section 0 sh_info huge",
        4,
        &["ELF header", "offset 0x38", "more than pvdump supports"],
        |_, d| {
            put16(d, 56, 0xffff);
            put32(d, 64 + 44, u32::MAX);
        },
    ));
    v.push(dump_case(
        "ELF: e_phnum huge",
        4,
        &["program header table (65000 entries)", "offset 0x140", PAST_END],
        |_, d| put16(d, 56, 65000),
    ));
    v.push(dump_case(
        "ELF: e_shnum huge",
        4,
        &["section header table (65280 entries)", "offset 0x40", PAST_END],
        |_, d| put16(d, 60, 0xff00),
    ));
    v.push(dump_case(
        "ELF: e_shstrndx out of range",
        4,
        &["ELF header", "offset 0x3e", "e_shstrndx 9"],
        |_, d| put16(d, 62, 9),
    ));
    v.push(dump_case(
        "ELF: e_phentsize wrong",
        4,
        &["e_phentsize is 32"],
        |_, d| put16(d, 54, 32),
    ));
    v.push(dump_case(
        "ELF: e_shentsize wrong",
        4,
        &["e_shentsize is 40"],
        |_, d| put16(d, 58, 40),
    ));

    // --- Every invalid page state, on page frame 2.
    let comp = l.component(2);
    for (name, b14, b15, why) in [
        ("page state: no flag", 0u8, 0u8, "neither the zero"),
        ("page state: zero + shared", 0, 0x03, "both the zero"),
        ("page state: reserved bits", 0, 0x21, "reserved bits 0x20"),
        ("page state: byte 14 set", 0x01, 0x01, "reserved byte 14"),
        ("page state: mapped only", 0, 0x04, "only the mapped flag"),
    ] {
        v.push(dump_case(name, 4, &["page frame 0x2", &hex(comp), why], move |_, d| {
            d[comp..comp + 4].copy_from_slice(&[0xff; 4]);
            d[comp + 14] = b14;
            d[comp + 15] = b15;
        }));
    }
    v.push(dump_case(
        "page state: two invalid pages",
        4,
        &["page frame 0x2", "1 more invalid page states follow"],
        move |_, d| {
            for pfn in [2, 3] {
                let o = comp + 16 * (pfn - 2);
                d[o..o + 4].copy_from_slice(&[0xff; 4]);
                d[o + 15] = 0;
            }
        },
    ));

    // --- Missing sections.
    let st = l.strtab_off;
    v.push(dump_case(
        "missing pv_compl (renamed)",
        4,
        &["no `pv_compl` section"],
        move |_, d| d[st + 13] = b'x',
    ));
    v.push(dump_case(
        "missing pv_mem_meta (renamed)",
        4,
        &["section 2 (`pv_compl`)", &hex(sh2), "no `pv_mem_meta`"],
        move |_, d| d[st + 1] = b'x',
    ));
    v.push(dump_case(
        "missing section headers (e_shoff = 0)",
        4,
        &["no `pv_compl` section"],
        |_, d| put64(d, 40, 0),
    ));

    v
}
