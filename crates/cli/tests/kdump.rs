//! `--format kdump` and `pvdump convert`: every reference dump, every compression, the
//! flattened stream, read back by our own reader, by libkdumpfile (python3-libkdumpfile)
//! and through `makedumpfile -R`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pvdump_format::KdumpFile;
use pvdump_synth::{Content, SynthSpec};

mod common;
use common::{reference_dirs, skip};

const BIN: &str = env!("CARGO_BIN_EXE_pvdump");
const COMPRESSIONS: [&str; 5] = ["zlib", "zstd", "lzo", "snappy", "none"];

fn tempdir_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pvdump-kdump-test-{}-{name}", std::process::id()))
}

/// Removes a test's directory (only reached when the test passed: failures keep it).
fn cleanup(name: &str) {
    let _ = std::fs::remove_dir_all(tempdir_path(name));
}

fn tempdir(name: &str) -> PathBuf {
    let d = tempdir_path(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn pvdump(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).stdin(Stdio::null()).output().unwrap()
}

fn ok(args: &[&str]) {
    let o = pvdump(args);
    assert!(
        o.status.success(),
        "pvdump {args:?} failed: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs pvdump with stdout into `out` (for `-o -`).
fn ok_to_file(args: &[&str], out: &Path) {
    let f = std::fs::File::create(out).unwrap();
    let st = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(f)
        .status()
        .unwrap();
    assert!(st.success(), "pvdump {args:?} > {} failed: {st:?}", out.display());
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// (pswm, pswa, gprs, acrs) per CPU.
type Regs = (u64, u64, [u64; 16], [u32; 16]);

fn expected_cpus(dir: &Path) -> Vec<Regs> {
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("expected_cpus.json")).unwrap()).unwrap();
    let h = |v: &serde_json::Value| u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    j["cpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                h(&c["psw"][0]),
                h(&c["psw"][1]),
                std::array::from_fn(|i| h(&c["gprs"][i])),
                std::array::from_fn(|i| h(&c["acrs"][i]) as u32),
            )
        })
        .collect()
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// PRSTATUS registers from a big-endian note blob, in note order.
fn prstatus_regs(notes: &[u8]) -> Vec<Regs> {
    let mut v = Vec::new();
    let mut pos = 0;
    while pos + 12 <= notes.len() {
        let (namesz, descsz, ty) = (
            be32(notes, pos) as usize,
            be32(notes, pos + 4) as usize,
            be32(notes, pos + 8),
        );
        let desc = pos + 12 + namesz.next_multiple_of(4);
        if &notes[pos + 12..pos + 12 + namesz] == b"CORE\0" && ty == 1 {
            let d = &notes[desc..desc + descsz];
            v.push((
                be64(d, 112),
                be64(d, 120),
                std::array::from_fn(|i| be64(d, 128 + 8 * i)),
                std::array::from_fn(|i| be32(d, 256 + 4 * i)),
            ));
        }
        pos = desc + descsz.next_multiple_of(4);
    }
    v
}

/// Reads `path` back with pvdump's reader and compares every page and register.
fn check_kdump(path: &Path, mem: &[u8], cpus: &[Regs], compression: &str) -> KdumpSummary {
    let data = std::fs::read(path).unwrap();
    let k = KdumpFile::parse(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(k.header.header_version, 6);
    let uts = k.utsname();
    assert_eq!(uts.sysname, "Linux");
    assert_eq!(uts.machine, "s390x");
    assert!(!uts.version.is_empty());
    assert_eq!(k.header.block_size, 4096);
    assert_eq!(k.header.nr_cpus as usize, cpus.len());
    assert_eq!(k.compression().name(), compression);
    assert_eq!(k.max_mapnr(), mem.len() as u64 / 4096);
    let (present, dumped) = k.page_counts().unwrap();
    assert_eq!((present, dumped), (mem.len() as u64 / 4096, mem.len() as u64 / 4096));
    let mut next = 0u64;
    k.for_each_page(|pfn, page| {
        assert_eq!(pfn, next, "{}: pages out of order", path.display());
        let a = (pfn * 4096) as usize;
        assert!(page == &mem[a..a + 4096], "{}: page {pfn:#x} differs", path.display());
        next += 1;
    })
    .unwrap();
    assert_eq!(next, mem.len() as u64 / 4096, "{}: every page read", path.display());
    let notes = k.notes().unwrap();
    assert_eq!(prstatus_regs(&notes), cpus, "{}: registers", path.display());
    KdumpSummary {
        release: uts.release.clone(),
        tv_sec: k.header.tv_sec as u64,
        vmcoreinfo: k.vmcoreinfo().unwrap().map(|v| v.into_owned()),
        flat: k.is_flat(),
    }
}

struct KdumpSummary {
    release: String,
    tv_sec: u64,
    vmcoreinfo: Option<Vec<u8>>,
    flat: bool,
}

fn manifest_vmcoreinfo(dir: &Path) -> Option<String> {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    m["vmcoreinfo"]["text"].as_str().map(str::to_owned)
}

/// Decrypts every reference dump with every compression to a file and to a flattened stream.
/// Returns (dir, compression, file output, flattened output).
fn outputs(tag: &str) -> Vec<(PathBuf, &'static str, PathBuf, PathBuf)> {
    let mut v = Vec::new();
    let tmp = tempdir(tag);
    for dir in reference_dirs() {
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let (key, dump) = (dir.join("cck.bin"), dir.join("pvdump.elf"));
        for c in COMPRESSIONS {
            let file = tmp.join(format!("{name}.{c}.kdump"));
            let flat = tmp.join(format!("{name}.{c}.flat"));
            ok(&[
                "decrypt",
                "-q",
                "--key",
                s(&key),
                s(&dump),
                "--format",
                "kdump",
                "--compress",
                c,
                "-o",
                s(&file),
            ]);
            ok_to_file(
                &[
                    "decrypt",
                    "-q",
                    "--key",
                    s(&key),
                    s(&dump),
                    "--format",
                    "kdump",
                    "-c",
                    c,
                    "-o",
                    "-",
                ],
                &flat,
            );
            v.push((dir.clone(), c, file, flat));
        }
    }
    v
}

#[test]
fn reference_dumps_every_compression_and_flattened_read_back() {
    for (dir, c, file, flat) in outputs("readback") {
        let mem = std::fs::read(dir.join("expected_mem.bin")).unwrap();
        let cpus = expected_cpus(&dir);
        let vmci = manifest_vmcoreinfo(&dir);
        for (path, is_flat) in [(&file, false), (&flat, true)] {
            let sum = check_kdump(path, &mem, &cpus, c);
            assert_eq!(sum.flat, is_flat);
            match &vmci {
                Some(text) => {
                    assert_eq!(sum.vmcoreinfo.as_deref(), Some(text.as_bytes()), "{}", path.display());
                    assert_eq!(sum.release, "6.1.0-pvoracle");
                    assert_eq!(sum.tv_sec, 1_700_000_000);
                }
                None => {
                    assert_eq!(sum.vmcoreinfo, None);
                    assert_eq!(sum.release, pvdump_vmcore::kdump::RELEASE_PLACEHOLDER);
                    assert_eq!(sum.tv_sec, 0);
                }
            }
        }
        // Zero pages share one block: a compressed file is smaller than the memory.
        if c != "none" {
            assert!(std::fs::metadata(&file).unwrap().len() < mem.len() as u64);
        }
    }
    cleanup("readback");
}

const LIBKDUMPFILE_CHECK: &str = r#"
import sys, json, kdumpfile
path, mem_path, cpus_path = sys.argv[1:4]
try:
    k = kdumpfile.kdumpfile(path)
except kdumpfile.exceptions.NotImplementedException as e:
    # libkdumpfile < 0.5.3 (Debian 12 has 0.5.1) cannot read flattened streams.
    if open(path, 'rb').read(16) == b'makedumpfile' + bytes(4) and 'Unknown file format' in str(e):
        print('UNSUPPORTED-FLAT', e)
        sys.exit(3)
    raise
a = k.attr
assert a['arch.name'] == 's390x', a['arch.name']
cpus = json.load(open(cpus_path))['cpus']
assert a['cpu.number'] == len(cpus), (a['cpu.number'], len(cpus))
mem = open(mem_path, 'rb').read()
for addr in range(0, len(mem), 4096):
    b = k.read(kdumpfile.KDUMP_MACHPHYSADDR, addr, 4096)
    if bytes(b) != mem[addr:addr + 4096]:
        raise SystemExit(f'{path}: page {addr:#x} differs')
for i, c in enumerate(cpus):
    r = a['cpu'][str(i)]['reg']
    exp = {'pswm': c['psw'][0], 'pswa': c['psw'][1]}
    for j in range(16):
        exp[f'r{j}'] = c['gprs'][j]
        exp[f'a{j}'] = c['acrs'][j]
    for name, v in exp.items():
        if int(r[name]) != int(v, 16):
            raise SystemExit(f'{path}: cpu {i} {name}: {int(r[name]):#x} != {v}')
print(f'ok {len(mem) // 4096} pages {len(cpus)} cpus')
"#;

const PYTHON: &str = "/usr/bin/python3";

fn have_libkdumpfile() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import kdumpfile"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Checks `path` with libkdumpfile; false when this libkdumpfile cannot read flattened streams.
fn libkdumpfile_check(path: &Path, dir: &Path) -> bool {
    let o = Command::new(PYTHON)
        .args(["-c", LIBKDUMPFILE_CHECK, s(path)])
        .arg(dir.join("expected_mem.bin"))
        .arg(dir.join("expected_cpus.json"))
        .output()
        .unwrap();
    if o.status.code() == Some(3) && String::from_utf8_lossy(&o.stdout).starts_with("UNSUPPORTED-FLAT") {
        return false;
    }
    assert!(
        o.status.success(),
        "libkdumpfile rejected {}:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("ok "));
    true
}

fn have_makedumpfile() -> bool {
    Command::new("makedumpfile").arg("-h").output().is_ok()
}

/// `makedumpfile -R rebuilt < flat`.
fn rearrange(flat: &Path, rebuilt: &Path) {
    let st = Command::new("makedumpfile")
        .arg("-R")
        .arg(rebuilt)
        .stdin(std::fs::File::open(flat).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "makedumpfile -R {} failed", flat.display());
}

#[test]
fn libkdumpfile_reads_every_output() {
    if !have_libkdumpfile() {
        skip(
            "python3-libkdumpfile is not installed (apt-get install python3-libkdumpfile); libkdumpfile check not run",
        );
        return;
    }
    for (dir, _c, file, flat) in outputs("libkdumpfile") {
        assert!(libkdumpfile_check(&file, &dir));
        if !libkdumpfile_check(&flat, &dir) {
            // Not silent: this libkdumpfile predates flattened support, so the stream is
            // checked after `makedumpfile -R` instead.
            eprintln!(
                "\n!!!!! NOTE: this libkdumpfile cannot open flattened streams (needs >= 0.5.3); checking {} through makedumpfile -R !!!!!\n",
                flat.display()
            );
            if !have_makedumpfile() {
                skip("libkdumpfile cannot read flattened streams and makedumpfile is not installed");
                continue;
            }
            let rebuilt = flat.with_extension("rebuilt");
            rearrange(&flat, &rebuilt);
            assert!(libkdumpfile_check(&rebuilt, &dir));
        }
    }
    cleanup("libkdumpfile");
}

#[test]
fn makedumpfile_r_rebuilds_the_same_file() {
    if !have_makedumpfile() {
        skip("makedumpfile is not installed (apt-get install makedumpfile); makedumpfile -R check not run");
        return;
    }
    let lkf = have_libkdumpfile();
    if !lkf {
        skip("python3-libkdumpfile is not installed; the rearranged files are only compared byte for byte");
    }
    for (dir, c, file, flat) in outputs("makedumpfile") {
        let rebuilt = flat.with_extension("rebuilt");
        rearrange(&flat, &rebuilt);
        assert!(
            std::fs::read(&rebuilt).unwrap() == std::fs::read(&file).unwrap(),
            "{c}: makedumpfile -R of the flattened stream differs from the file output"
        );
        if lkf {
            assert!(libkdumpfile_check(&rebuilt, &dir));
        }
    }
    cleanup("makedumpfile");
}

fn synth_dump(tmp: &Path, spec: &SynthSpec) -> (PathBuf, PathBuf) {
    let dump = tmp.join("synth.elf");
    let key = tmp.join("synth.cck");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&dump).unwrap());
    spec.write_dump(&mut f).unwrap();
    drop(f);
    std::fs::write(&key, spec.cck()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dump, key)
}

#[test]
fn mostly_zero_dump_compresses_below_a_quarter() {
    let tmp = tempdir("zero");
    let mut spec = SynthSpec::simple(90, 32, 2);
    spec.zero_permille = 900;
    spec.shared_permille = 20;
    spec.content = Content::Compressible;
    let (dump, key) = synth_dump(&tmp, &spec);
    let out = tmp.join("out.kdump");
    ok(&[
        "decrypt",
        "-q",
        "--key",
        s(&key),
        s(&dump),
        "--format",
        "kdump",
        "-o",
        s(&out),
    ]);
    let in_len = std::fs::metadata(&dump).unwrap().len();
    let out_len = std::fs::metadata(&out).unwrap().len();
    assert!(out_len * 4 < in_len, "kdump {out_len} bytes, input {in_len}");
    let mem = spec.expected_memory();
    let cpus: Vec<Regs> = spec
        .cpu_registers()
        .iter()
        .map(|r| (r.psw[0], r.psw[1], r.gprs, r.acrs))
        .collect();
    check_kdump(&out, &mem, &cpus, "zlib");
    cleanup("zero");
}

/// A write that fails half way (file size limit) leaves neither OUT nor a temporary file.
#[test]
fn failed_write_leaves_nothing() {
    let tmp = tempdir("fail");
    let spec = SynthSpec::simple(7, 16, 1); // random content: ~16 MiB of kdump
    let (dump, key) = synth_dump(&tmp, &spec);
    let outdir = tmp.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let elf = tmp.join("plain.elf");
    ok(&["decrypt", "-q", "--key", s(&key), s(&dump), "-o", s(&elf)]);
    let cases: [Vec<&str>; 2] = [
        vec!["decrypt", "--key", s(&key), s(&dump), "--format", "kdump", "-o"],
        vec!["convert", s(&elf), "--format", "kdump", "-c", "none", "-o"],
    ];
    for case in cases {
        let out = outdir.join("vmcore.kdump");
        // 2048 blocks of 512 bytes (POSIX sh): 1 MiB; SIGXFSZ ignored so the write fails with EFBIG.
        let st = Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 2048; exec \"$@\"")
            .arg("sh")
            .arg(BIN)
            .args(&case)
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            st.status.code(),
            Some(5),
            "{case:?}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let left: Vec<_> = std::fs::read_dir(&outdir).unwrap().map(|e| e.unwrap().path()).collect();
        assert!(left.is_empty(), "{case:?} left {left:?}");
    }
    cleanup("fail");
}

#[test]
fn convert_plain_elf_to_kdump_and_elf() {
    let tmp = tempdir("convert");
    for dir in reference_dirs() {
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let (key, dump) = (dir.join("cck.bin"), dir.join("pvdump.elf"));
        let elf = tmp.join(format!("{name}.elf"));
        ok(&["decrypt", "-q", "--key", s(&key), s(&dump), "-o", s(&elf)]);
        // A PV dump is refused with a pointer to decrypt.
        let o = pvdump(&["convert", s(&dump), "-o", s(&tmp.join("refused"))]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("pvdump decrypt"));
        assert!(!tmp.join("refused").exists());
        // ELF -> ELF: notes passed through, same layout: the very same bytes.
        let elf2 = tmp.join(format!("{name}.elf2"));
        ok(&["convert", "-q", s(&elf), "--format", "elf", "-o", s(&elf2)]);
        assert!(
            std::fs::read(&elf).unwrap() == std::fs::read(&elf2).unwrap(),
            "{name}: ELF round trip"
        );
        // ELF -> kdump, and the same from decrypt: identical files.
        let k1 = tmp.join(format!("{name}.conv.kdump"));
        let k2 = tmp.join(format!("{name}.dec.kdump"));
        ok(&["convert", "-q", s(&elf), "-c", "zstd", "-o", s(&k1)]);
        ok(&[
            "decrypt",
            "-q",
            "--key",
            s(&key),
            s(&dump),
            "-f",
            "kdump",
            "-c",
            "zstd",
            "-o",
            s(&k2),
        ]);
        let mem = std::fs::read(dir.join("expected_mem.bin")).unwrap();
        check_kdump(&k1, &mem, &expected_cpus(&dir), "zstd");
        assert!(
            std::fs::read(&k1).unwrap() == std::fs::read(&k2).unwrap(),
            "{name}: convert == decrypt"
        );
    }
    cleanup("convert");
}

#[test]
fn info_describes_kdump_and_flattened() {
    let tmp = tempdir("info");
    for dir in reference_dirs() {
        let (key, dump) = (dir.join("cck.bin"), dir.join("pvdump.elf"));
        let out = tmp.join("a.kdump");
        let flat = tmp.join("a.flat");
        let _ = std::fs::remove_file(&out);
        ok(&[
            "decrypt",
            "-q",
            "--key",
            s(&key),
            s(&dump),
            "-f",
            "kdump",
            "-c",
            "snappy",
            "-o",
            s(&out),
        ]);
        ok_to_file(
            &["decrypt", "-q", "--key", s(&key), s(&dump), "-f", "kdump", "-o", "-"],
            &flat,
        );
        let cpus = expected_cpus(&dir).len() as u64;
        let pages = std::fs::metadata(dir.join("expected_mem.bin")).unwrap().len() / 4096;
        for (p, comp, flat) in [(&out, "snappy", false), (&flat, "zlib", true)] {
            let o = pvdump(&["info", "--json", s(p)]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let k = &j["kdump"];
            assert_eq!(k["compression"], comp);
            assert_eq!(k["nr_cpus"], cpus);
            assert_eq!(j["cpu_count"], cpus);
            assert_eq!(k["pages"]["present"], pages);
            assert_eq!(k["pages"]["dumped"], pages);
            assert_eq!(j["utsname"]["machine"], "s390x");
            assert_eq!(k["flattened"], flat);
            assert_eq!(j["kind"], if flat { "flattened-kdump" } else { "kdump" });
            let text = pvdump(&["info", s(p)]);
            assert!(text.status.success());
            assert!(String::from_utf8_lossy(&text.stdout).contains(&format!("  compression    {comp} (status ")));
        }
    }
    cleanup("info");
}

#[test]
fn compress_needs_kdump_format() {
    let tmp = tempdir("usage");
    let o = pvdump(&["convert", "x.elf", "-f", "elf", "-c", "zstd", "-o", s(&tmp.join("o"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--compress applies only to --format kdump"));
    cleanup("usage");
}
