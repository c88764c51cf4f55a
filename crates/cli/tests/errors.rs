//! Every documented error path of `decrypt`: the exit code, a message that says what and
//! where, and no output file left behind.

mod common;
use common::*;

use pvdump_synth::SynthSpec;

struct Case {
    tmp: TempDir,
    key: std::path::PathBuf,
    dump: std::path::PathBuf,
    out: std::path::PathBuf,
}

fn case(tag: &str, mutate: impl FnOnce(&mut Vec<u8>, &SynthSpec)) -> Case {
    let spec = SynthSpec::simple(0xe770_0000 + tag.len() as u64, 1, 2);
    let mut dump = spec.dump_bytes();
    mutate(&mut dump, &spec);
    let tmp = TempDir::new(tag);
    let key = tmp.path("cck.bin");
    std::fs::write(&key, spec.cck()).unwrap();
    let d = tmp.path("dump.elf");
    std::fs::write(&d, &dump).unwrap();
    Case {
        out: tmp.path("out.elf"),
        key,
        dump: d,
        tmp,
    }
}

impl Case {
    fn decrypt(&self) -> std::process::Output {
        run(&[&"decrypt", &"--key", &self.key, &self.dump, &"-o", &self.out])
    }
    /// Asserts the exit code, that stderr contains every needle, and that only the inputs
    /// remain in the folder.
    fn expect(&self, code: i32, needles: &[&str]) -> String {
        let o = self.decrypt();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "stderr: {err}");
        for n in needles {
            assert!(err.contains(n), "expected {n:?} in: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        let left: Vec<_> = self
            .tmp
            .entries()
            .into_iter()
            .filter(|e| e != "cck.bin" && e != "dump.elf")
            .collect();
        assert!(left.is_empty(), "output or temp file left behind: {left:?}");
        err
    }
}

/// File offsets of `pv_compl`, `pv_mem_meta` and CPU 0's note descriptor.
fn layout(dump: &[u8]) -> (u64, u64, u64) {
    let d = pvdump_format::PvDump::parse(dump).unwrap();
    (
        d.completion_section().file_offset,
        d.mem_meta_section().file_offset,
        d.cpus()[0].desc_offset,
    )
}

#[test]
fn wrong_key_is_exit_3() {
    let c = case("wrongkey", |_, _| {});
    std::fs::write(&c.key, [0x42u8; 32]).unwrap();
    c.expect(3, &["the key does not match this dump", "pv_compl", "all 2 CPU notes"]);
}

#[test]
fn corrupted_completion_data_is_exit_4_not_wrong_key() {
    let c = case("badcompl", |d, _| {
        let (compl, _, _) = layout(d);
        d[compl as usize + 150] ^= 1; // ciphertext byte
    });
    let e = c.expect(4, &["completion data", "is corrupted", "the key is right"]);
    assert!(!e.contains("does not match"));
}

#[test]
fn corrupted_cpu_note_names_the_cpu() {
    let c = case("badcpu", |d, _| {
        let (_, _, cpu0) = layout(d);
        d[cpu0 as usize + 100] ^= 0x80;
    });
    c.expect(4, &["CPU 0", "NT_S390_PV_CPU_DATA", "is corrupted"]);
}

#[test]
fn missing_pv_compl_is_not_a_pv_dump() {
    let c = case("nocompl", |d, _| {
        // Rename the section: "pv_compl" -> "pv_compX" in .shstrtab (last 35 bytes).
        let n = d.len();
        let at = n - 35 + 13 + 7;
        assert_eq!(d[at], b'l');
        d[at] = b'X';
    });
    c.expect(
        4,
        &[
            "not an encrypted Protected Virtualization dump",
            "pv_compl",
            "--enable-dump",
        ],
    );
}

#[test]
fn invalid_page_state_names_frame_and_address() {
    let mut component_offset = 0;
    let c = case("badpage", |d, _| {
        let (_, meta, _) = layout(d);
        let at = meta as usize + 5 * 16;
        d[at..at + 16].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03]); // zero + shared
        component_offset = at;
    });
    c.expect(
        4,
        &[
            "page frame 0x5",
            "guest address 0x5000",
            &format!("tweak component at file offset {component_offset:#x}"),
            "ffffffff000000000000000000000003",
            "both the zero (0x01) and shared (0x02)",
        ],
    );
}

#[test]
fn existing_output_is_refused_and_untouched_without_force() {
    let c = case("exists", |_, _| {});
    std::fs::write(&c.out, b"precious").unwrap();
    let o = c.decrypt();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("already exists; pass --force"));
    assert_eq!(std::fs::read(&c.out).unwrap(), b"precious");
    let o = run(&[&"decrypt", &"-q", &"--force", &"--key", &c.key, &c.dump, &"-o", &c.out]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(std::fs::read(&c.out).unwrap(), b"precious");
    assert_eq!(c.tmp.entries(), ["cck.bin", "dump.elf", "out.elf"]);
}

#[test]
fn output_over_input_is_refused_even_with_force() {
    let c = case("overinput", |_, _| {});
    let before = std::fs::read(&c.dump).unwrap();
    let o = run(&[&"decrypt", &"--force", &"--key", &c.key, &c.dump, &"-o", &c.dump]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is the input dump; refusing to write the output over an input"));
    assert_eq!(std::fs::read(&c.dump).unwrap(), before);
}

#[test]
fn unusable_key_files_are_exit_2_and_name_the_size() {
    let c = case("keyfiles", |_, _| {});
    std::fs::write(&c.key, [1u8; 16]).unwrap();
    c.expect(2, &["holds 16 bytes", "32 raw bytes", "64 hex digits"]);
    std::fs::write(&c.key, b"").unwrap();
    c.expect(2, &["key file is empty"]);
    std::fs::write(&c.key, "ab".repeat(31) + "\n").unwrap();
    c.expect(2, &["62 hex digits; expected 64"]);
    std::fs::remove_file(&c.key).unwrap();
    std::fs::create_dir(&c.key).unwrap();
    c.expect(2, &["is a directory"]);
    std::fs::remove_dir(&c.key).unwrap();
    c.expect(2, &["cck.bin", "No such file"]);
    std::fs::write(&c.key, "07".repeat(32)).unwrap();
}

#[test]
fn hex_key_file_works() {
    let c = case("hexkey", |_, _| {});
    let raw = std::fs::read(&c.key).unwrap();
    let hex: String = raw.iter().map(|b| format!("{b:02X}")).collect();
    std::fs::write(&c.key, hex + "\n").unwrap();
    let o = c.decrypt();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn missing_dump_and_unwritable_output_are_exit_5() {
    let c = case("io", |_, _| {});
    let o = run(&[&"decrypt", &"--key", &c.key, &c.tmp.path("nope.elf"), &"-o", &c.out]);
    assert_eq!(o.status.code(), Some(5));
    assert!(stderr(&o).contains("cannot open dump"));
    let o = run(&[
        &"decrypt",
        &"--key",
        &c.key,
        &c.dump,
        &"-o",
        &c.tmp.path("no/such/dir/out.elf"),
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot open the output's directory"),
        "{}",
        stderr(&o)
    );
    assert_eq!(c.tmp.entries(), ["cck.bin", "dump.elf"]);
}

#[test]
fn truncated_dump_names_the_structure() {
    let mut cut = 0;
    let c = case("trunc", |d, _| {
        let (compl, _, _) = layout(d);
        cut = compl as usize + 100;
        d.truncate(cut);
    });
    // The section-name string table is the last structure of the file and the first one
    // read through the section headers: it is what a cut after `pv_compl` names.
    c.expect(
        4,
        &[
            "section name string table (section 3)",
            &format!("({cut:#x} bytes)"),
            "reaches past the end of the file",
            "the dump is truncated",
        ],
    );
}

#[test]
fn not_an_elf_and_wrong_machine() {
    let c = case("notelf", |d, _| d[0] = b'X');
    c.expect(4, &["not an ELF file", "bytes 0..4"]);
    let c = case("machine", |d, _| d[19] = 62);
    c.expect(4, &["e_machine is 62, expected 22 (EM_S390)"]);
}

#[test]
fn info_reports_page_states_and_verifies_key() {
    let c = case("info", |_, _| {});
    let o = run(&[&"info", &c.dump]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("CPUs:            2 (registers are encrypted; give --key)") && text.contains("not given"),
        "{text}"
    );
    let o = run(&[&"info", &"--json", &"--key", &c.key, &c.dump]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["pv"]["key"], "matches");
    assert_eq!(j["cpus"].as_array().unwrap().len(), 2);
    let p = &j["pv"]["pages"];
    assert_eq!(
        p["encrypted"].as_u64().unwrap() + p["zero"].as_u64().unwrap() + p["shared"].as_u64().unwrap(),
        256
    );
    let key_hex: String = std::fs::read(&c.key)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains(&key_hex[..16]),
        "key material in info --json"
    );
    std::fs::write(&c.key, [9u8; 32]).unwrap();
    let o = run(&[&"info", &"--key", &c.key, &c.dump]);
    assert_eq!(o.status.code(), Some(3));
}
