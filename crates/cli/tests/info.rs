//! `pvdump info` on every format pvdump reads or writes, text and JSON, and the JSON checked
//! against docs/info.schema.json.

mod common;

use std::path::{Path, PathBuf};

use common::{TempDir, pvdump, run, stderr, workspace};
use pvdump_format::MemoryBlock;
use pvdump_synth::{SynthSpec, VmcoreinfoPlacement};
use serde_json::Value;

const VMCOREINFO: &str = "OSRELEASE=6.12.107+deb13-s390x\nBUILD-ID=4581f08e1a8be2afce33b2e9dbbcd35ea1519c7f\n\
PAGESIZE=4096\nCRASHTIME=1709251199\nSYMBOL(init_uts_ns)=3ffffe17b90\n";

/// A dump with two memory blocks, 100 CPUs (three-digit numbers), one of them dumped
/// mid-instruction, and VMCOREINFO through the lowcore note pointer; plus every output
/// pvdump makes of it.
struct Set {
    _tmp: TempDir,
    spec: SynthSpec,
    key: PathBuf,
    pv: PathBuf,
    elf: PathBuf,
    kdump: PathBuf,
    flat: PathBuf,
}

fn set(tag: &str) -> Set {
    let mut spec = SynthSpec::simple(0x1f0_0000 + tag.len() as u64, 1, 100);
    spec.blocks = vec![
        MemoryBlock {
            paddr: 0,
            size: 1 << 20,
        },
        MemoryBlock {
            paddr: 16 << 20,
            size: 512 << 10,
        },
    ];
    spec.osii_cpus = vec![64];
    spec.vmcoreinfo = Some((VmcoreinfoPlacement::LowcoreNote, VMCOREINFO.to_string()));
    let tmp = TempDir::new(&format!("info-{tag}"));
    let key = tmp.path("cck.bin");
    std::fs::write(&key, spec.cck()).unwrap();
    set_private(&key);
    let pv = tmp.path("pv.elf");
    std::fs::write(&pv, spec.dump_bytes()).unwrap();
    let (elf, kdump, flat) = (
        tmp.path("vmcore.elf"),
        tmp.path("vmcore.kdump"),
        tmp.path("vmcore.flat"),
    );
    for (out, format) in [(&elf, "elf"), (&kdump, "kdump")] {
        let o = run(&[&"decrypt", &"-q", &"--key", &key, &pv, &"-f", &format, &"-o", out]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = pvdump()
        .args(["decrypt", "-q", "-f", "kdump", "-o", "-", "--key"])
        .arg(&key)
        .arg(&pv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(&flat, &o.stdout).unwrap();
    Set {
        _tmp: tmp,
        spec,
        key,
        pv,
        elf,
        kdump,
        flat,
    }
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `pvdump info [--key KEY] [--json] FILE`: succeeds, prints nothing on stderr.
fn info(file: &Path, key: Option<&Path>, json: bool) -> String {
    let mut cmd = pvdump();
    cmd.arg("info");
    if let Some(k) = key {
        cmd.arg("--key").arg(k);
    }
    if json {
        cmd.arg("--json");
    }
    let o = cmd.arg(file).output().unwrap();
    assert!(o.status.success(), "info {}: {}", file.display(), stderr(&o));
    assert_eq!(stderr(&o), "", "info {}", file.display());
    String::from_utf8(o.stdout).unwrap()
}

fn info_json(file: &Path, key: Option<&Path>) -> Value {
    let text = info(file, key, true);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    validate(&v);
    v
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(workspace().join("docs/info.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).expect("docs/info.schema.json is JSON");
    jsonschema::validator_for(&schema).expect("docs/info.schema.json is a valid JSON Schema")
}

/// Fails with every schema violation listed.
fn validate(v: &Value) {
    let errors: Vec<String> = schema()
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "info --json violates docs/info.schema.json:\n{}\n{v:#}",
        errors.join("\n")
    );
}

fn hex64(v: u64) -> String {
    format!("{v:#018x}")
}

/// What every kind shares: memory blocks, CPUs with registers, VMCOREINFO.
fn assert_common(j: &Value, spec: &SynthSpec, vmcoreinfo_from: &str) {
    assert_eq!(j["schema"], "pvdump-info/1");
    let blocks: Vec<(String, u64)> = j["memory"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["start"].as_str().unwrap().to_string(), b["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        blocks,
        vec![("0x0".to_string(), 1 << 20), ("0x1000000".to_string(), 512 << 10)]
    );
    assert_eq!(j["memory"]["bytes"], (1 << 20) + (512 << 10));
    assert_eq!(j["cpu_count"], 100);
    let regs = spec.cpu_registers();
    let cpus = j["cpus"].as_array().unwrap();
    assert_eq!(cpus.len(), 100);
    for (i, (c, r)) in cpus.iter().zip(&regs).enumerate() {
        assert_eq!(c["cpu"], i);
        assert_eq!(c["psw"][0], hex64(r.psw[0]), "CPU {i}");
        assert_eq!(c["psw"][1], hex64(r.psw[1]), "CPU {i}");
        assert_eq!(c["prefix"], format!("{:#010x}", r.prefix), "CPU {i}");
    }
    let v = &j["vmcoreinfo"];
    assert_eq!(v["found_in"], vmcoreinfo_from);
    assert_eq!(v["size"], VMCOREINFO.len());
    assert_eq!(v["osrelease"], "6.12.107+deb13-s390x");
    assert_eq!(v["build_id"], "4581f08e1a8be2afce33b2e9dbbcd35ea1519c7f");
    assert_eq!(v["pagesize"], 4096);
    assert_eq!(v["crashtime"], 1_709_251_199);
    assert_eq!(v["crashtime_utc"], "2024-02-29T23:59:59Z");
}

#[test]
fn info_describes_every_format() {
    let s = set("formats");
    // Encrypted, without the key: structure only.
    let j = info_json(&s.pv, None);
    assert_eq!(j["kind"], "encrypted-pv");
    assert_eq!(j["file_size"], std::fs::metadata(&s.pv).unwrap().len());
    assert_eq!(j["pv"]["key"], "not_given");
    assert_eq!(j["cpu_count"], 100);
    assert_eq!(j["cpus"], Value::Null);
    assert_eq!(j["vmcoreinfo"], Value::Null);
    assert_eq!(j["memory"]["blocks"].as_array().unwrap().len(), 2);
    let p = &j["pv"]["pages"];
    let pages: u64 = ["encrypted", "zero", "shared"]
        .iter()
        .map(|k| p[k].as_u64().unwrap())
        .sum();
    assert_eq!(pages, 384);
    // With the key: registers and VMCOREINFO from decrypted memory.
    let j = info_json(&s.pv, Some(&s.key));
    assert_eq!(j["kind"], "encrypted-pv");
    assert_eq!(j["pv"]["key"], "matches");
    assert_common(&j, &s.spec, "lowcore_note");
    assert!(j["vmcoreinfo"]["paddr"].as_str().unwrap().starts_with("0x"));
    let osii: Vec<u64> = j["cpus"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["has_osii"] == true)
        .map(|c| c["cpu"].as_u64().unwrap())
        .collect();
    assert_eq!(osii, vec![64]);
    // pvdump's ELF output: the VMCOREINFO note.
    let j = info_json(&s.elf, None);
    assert_eq!(j["kind"], "plain-elf");
    assert_eq!((&j["pv"], &j["kdump"]), (&Value::Null, &Value::Null));
    assert_common(&j, &s.spec, "elf_note");
    assert_eq!(j["elf"]["loads"].as_array().unwrap().len(), 2);
    // pvdump's kdump file and flattened stream: the header's VMCOREINFO and utsname.
    for (file, kind, flat) in [(&s.kdump, "kdump", false), (&s.flat, "flattened-kdump", true)] {
        let j = info_json(file, None);
        assert_eq!(j["kind"], kind);
        assert_common(&j, &s.spec, "kdump_header");
        let k = &j["kdump"];
        assert_eq!(k["flattened"], flat);
        assert_eq!(k["compression"], "zlib");
        assert_eq!(k["nr_cpus"], 100);
        assert_eq!(k["pages"]["dumped"], 384);
        assert_eq!(k["kdump_size"], std::fs::metadata(&s.kdump).unwrap().len());
        assert_eq!(k["timestamp_utc"], "2024-02-29T23:59:59Z");
        assert_eq!(j["utsname"]["source"], "kdump_header");
        assert_eq!(j["utsname"]["release"], "6.12.107+deb13-s390x");
        assert_eq!(j["utsname"]["machine"], "s390x");
        assert_eq!(k["flattened_records"].is_u64(), flat);
    }
}

#[test]
fn info_text_shows_an_aligned_cpu_table_and_the_vmcoreinfo_highlights() {
    let s = set("text");
    for (file, key) in [
        (&s.pv, Some(s.key.as_path())),
        (&s.elf, None),
        (&s.kdump, None),
        (&s.flat, None),
    ] {
        let text = info(file, key, false);
        let regs = s.spec.cpu_registers();
        let rows: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("CPUs:"))
            .skip(2)
            .take_while(|l| l.starts_with("    "))
            .collect();
        assert_eq!(rows.len(), 100, "{text}");
        let psw_col = rows[0].find(&format!("{:016x}", regs[0].psw[0])).unwrap();
        for (i, row) in rows.iter().enumerate() {
            let want = format!(
                "{i:>width$}  {:016x} {:016x}  {:08x}",
                regs[i].psw[0],
                regs[i].psw[1],
                regs[i].prefix,
                width = psw_col - 2 - 17
            );
            assert_eq!(
                row[17..].trim_end_matches("  dumped mid-instruction (has_osii)"),
                want,
                "{text}"
            );
        }
        assert!(text.contains("  OSRELEASE      6.12.107+deb13-s390x\n"), "{text}");
        assert!(
            text.contains("  BUILD-ID       4581f08e1a8be2afce33b2e9dbbcd35ea1519c7f\n"),
            "{text}"
        );
        assert!(text.contains("  PAGESIZE       4096\n"), "{text}");
        assert!(
            text.contains("  CRASHTIME      2024-02-29 23:59:59 UTC (1709251199)\n"),
            "{text}"
        );
        assert!(text.contains("Memory:          1.5 MiB in 2 blocks\n"), "{text}");
        assert!(text.contains("0000000001000000-000000000107ffff  512 KiB\n"), "{text}");
    }
    // has_osii only in the PV dump's table (plain notes cannot carry it).
    assert!(info(&s.pv, Some(&s.key), false).contains(" 64  "));
    let text = info(&s.pv, Some(&s.key), false);
    assert_eq!(text.matches("dumped mid-instruction (has_osii)").count(), 1, "{text}");
    let text = info(&s.pv, None, false);
    assert!(
        text.contains("CPUs:            100 (registers are encrypted; give --key)\n"),
        "{text}"
    );
    assert!(text.contains("Key:             not given"), "{text}");
    let text = info(&s.flat, None, false);
    assert!(text.contains("Kind:            kdump-compressed, flattened"), "{text}");
    assert!(text.contains("UTS release:     6.12.107+deb13-s390x\n"), "{text}");
}

#[test]
fn info_json_never_contains_key_material() {
    let s = set("secret");
    let key = std::fs::read(&s.key).unwrap();
    let key_hex = hex::encode(&key);
    for json in [true, false] {
        let out = info(&s.pv, Some(&s.key), json);
        for window in key_hex.as_bytes().chunks(16) {
            let w = std::str::from_utf8(window).unwrap();
            assert!(!out.contains(w), "key bytes {w} in info output");
        }
    }
}

#[test]
fn a_key_for_a_plain_dump_is_ignored_with_a_warning() {
    let s = set("plainkey");
    let o = run(&[&"info", &"--key", &s.key, &s.elf]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "pvdump: warning: {} is not encrypted (plain s390x ELF vmcore): --key is not used\n",
            s.elf.display()
        )
    );
}

#[test]
fn the_schema_rejects_what_it_should() {
    // The validator is only worth something if it fails on wrong output.
    let s = set("schema");
    let good = info_json(&s.pv, Some(&s.key));
    let v = schema();
    assert!(v.is_valid(&good));
    let mut bad = good.clone();
    bad["cpus"][3]["psw"][0] = Value::from("0x704c00180000000"); // 15 digits
    assert!(!v.is_valid(&bad));
    let mut bad = good.clone();
    bad.as_object_mut().unwrap().remove("utsname");
    assert!(!v.is_valid(&bad));
    let mut bad = good.clone();
    bad["schema"] = Value::from("pvdump-info/2");
    assert!(!v.is_valid(&bad));
    let mut bad = good.clone();
    bad["kdump"] = serde_json::json!({});
    assert!(!v.is_valid(&bad));
    let mut bad = good;
    bad["undocumented"] = Value::from(1);
    assert!(!v.is_valid(&bad));
}

#[test]
fn every_project_fixture_validates() {
    for dir in common::project_fixture_dirs() {
        let key = dir.join("cck.bin");
        let tmp = TempDir::new("fixture-key");
        let private = tmp.path("cck.bin");
        std::fs::copy(&key, &private).unwrap();
        set_private(&private);
        info_json(&dir.join("pvdump.elf"), None);
        let j = info_json(&dir.join("pvdump.elf"), Some(&private));
        let m = common::json(&dir.join("manifest.json"));
        for k in ["encrypted", "zero", "shared", "mapped_flag"] {
            assert_eq!(j["pv"]["pages"][k], m["memory"]["pages"][k], "{}: {k}", dir.display());
        }
    }
}

/// QEMU's own dumps of real Debian kernels (../shared/tools/real_s390x_dump.sh), too big for
/// the repository: run with `PVDUMP_REAL_DUMPS=/work/cache cargo test -p pvdump --test info
/// -- --ignored` where DIR holds real-*/real-256m-2cpu.{elf,kdump-raw-zlib,kdump-zlib}.
#[test]
#[ignore = "needs QEMU's real s390x dumps: set PVDUMP_REAL_DUMPS (see the comment)"]
fn qemu_real_dumps() {
    let root = PathBuf::from(std::env::var_os("PVDUMP_REAL_DUMPS").expect("PVDUMP_REAL_DUMPS is not set"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let elf = dir.join("real-256m-2cpu.elf");
        if !elf.is_file() {
            continue;
        }
        let want_release = std::fs::read_to_string(dir.join("real-256m-2cpu.vmcoreinfo"))
            .ok()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("OSRELEASE=").map(str::to_string)));
        for (name, kind) in [
            ("real-256m-2cpu.elf", "plain-elf"),
            ("real-256m-2cpu.kdump-raw-zlib", "kdump"),
            ("real-256m-2cpu.kdump-zlib", "flattened-kdump"),
        ] {
            let j = info_json(&dir.join(name), None);
            assert_eq!(j["kind"], kind, "{name}");
            assert_eq!(j["memory"]["bytes"], 256 << 20, "{name}");
            assert_eq!(j["cpu_count"], 2, "{name}");
            assert_eq!(j["vmcoreinfo"]["found_in"], "lowcore_note", "{name}");
            if let Some(r) = &want_release {
                assert_eq!(j["vmcoreinfo"]["osrelease"], r.as_str(), "{name}");
            }
            info(&dir.join(name), None, false);
            seen += 1;
        }
    }
    assert!(seen > 0, "no real-*/real-256m-2cpu.elf under {}", root.display());
}
