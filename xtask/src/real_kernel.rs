//! `cargo xtask real-kernel`: real s390x Linux kernels, sealed, decrypted and read back by
//! the tools a kernel engineer uses (issue 11).
//!
//! Per Debian suite (bookworm: Linux 6.1, identity-mapped kernel image; trixie: Linux 6.12,
//! the image in its own virtual area since 6.10):
//!
//! 1. a plain QEMU dump of a real guest from `../shared/tools/real_s390x_dump.sh` (boots
//!    Debian's kernel under qemu-system-s390x TCG; always with `KSUITE`, so the tool never
//!    changes dpkg's architectures), cached under `CACHE/<suite>/dump/`;
//! 2. the kernel's debug vmlinux (`linux-image-<kver>-dbg`, through the tool's private s390x
//!    apt configuration), its build-id checked against VMCOREINFO `BUILD-ID`, the .deb
//!    deleted after extraction; drgn 0.3.0 from PyPI pinned by hash (`pip --target`);
//! 3. the dump sealed by the simulated Ultravisor (`pvdump_synth::seal_plain`, what `cargo
//!    xtask synth --content-from` does), decrypted by the release `pvdump` to ELF and to
//!    kdump (zlib);
//! 4. checks: memory (SHA-256) and registers exact against the original; the VMCOREINFO note
//!    of the ELF output and `offset_vmcoreinfo` of the kdump output equal the guest's text;
//!    the kdump header's utsname equals the guest's `init_uts_ns` (all six fields, also
//!    read independently by guest_uts.py); libkdumpfile (Debian's python3-libkdumpfile)
//!    reads every page of the kdump output; drgn finds the guest's marker in dmesg, and
//!    lists the same tasks with identical stack traces on the original, the ELF and the kdump
//!    output; a negative self-test (a flipped memory byte, a changed PSW, a dropped VMCOREINFO
//!    note in a copy of the ELF output) must make those checks fail;
//! 5. with `--crash` (too slow for CI: 6-10 minutes on two cores): crash 8.0.6 for s390x under
//!    qemu-user runs `log`, `ps`, `bt -a` on the ELF and the kdump output, which must agree;
//!    with `--zgetdump` (about 3 minutes, most of it building the sysroot once): zgetdump
//!    2.35, the reference decryptor, under qemu-user decrypts the sealed dump to notes and
//!    memory byte-identical to pvdump's ELF output, and `zgetdump -i` shows the guest's
//!    utsname for the PV dump and both outputs.
//!
//! A summary table is printed; any failed check makes the exit status non-zero. The cache
//! root is `--cache DIR`, else `$PVDUMP_REAL_KERNEL_CACHE`, else `target/real-kernel/`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, anyhow, bail, ensure};
use pvdump_core::{Cck, CpuRegisters, Dump, Utsname, VmcoreinfoSource};
use pvdump_synth::SealOptions;
use sha2::{Digest, Sha256};

/// The Debian suites checked by default.
pub const SUITES: [&str; 2] = ["bookworm", "trixie"];
/// drgn from PyPI, pinned: version and the SHA-256 of its CPython 3.11/3.12/3.13 x86_64 wheels.
const DRGN_REQUIREMENT: &str = "drgn==0.3.0 \
    --hash=sha256:69c8b8ce9d1b714f1bcd871101b88f41694d0bc1746485b18d4f1238c72a884d \
    --hash=sha256:1f1792f1bd9740fe2263fe99df316215b4b5df80b90a33857c27bfa756d480c0 \
    --hash=sha256:a2a29ca8fdb9cc58d7d771b8b3eb1b83c1e8fa3ee836d6bcc979eed2cfcb93a6\n";
/// Where drgn is installed under the cache root.
const DRGN_DIR: &str = "py-drgn-0.3.0";
/// The dump the tool writes (256 MiB, 2 CPUs: its defaults).
const DUMP_NAME: &str = "real-256m-2cpu";
/// The interpreter with Debian's python3-libkdumpfile (and pip).
const DEFAULT_PYTHON: &str = "/usr/bin/python3";

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Suites to check.
    pub suites: Vec<String>,
    /// Also run crash under qemu-user.
    pub crash: bool,
    /// Also run zgetdump 2.35 (the reference decryptor) under qemu-user.
    pub zgetdump: bool,
    /// Cache root.
    pub cache: Option<PathBuf>,
    /// Keep the sealed and decrypted files of passing suites.
    pub keep: bool,
}

pub const USAGE: &str = "real-kernel [--suite bookworm|trixie|all]... [--crash] [--zgetdump] [--cache DIR] [--keep]";

/// Parses the options after `real-kernel`.
pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        suites: Vec::new(),
        crash: false,
        zgetdump: false,
        cache: None,
        keep: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--suite" => match it.next().map(String::as_str) {
                Some("all") => o.suites.extend(SUITES.map(String::from)),
                Some(s) if SUITES.contains(&s) => o.suites.push(s.to_owned()),
                other => bail!("--suite takes bookworm, trixie or all, not {other:?}\nusage: cargo xtask {USAGE}"),
            },
            "--crash" => o.crash = true,
            "--zgetdump" => o.zgetdump = true,
            "--keep" => o.keep = true,
            "--cache" => o.cache = Some(PathBuf::from(it.next().context("--cache needs a directory")?)),
            other => bail!("unknown option {other}\nusage: cargo xtask {USAGE}"),
        }
    }
    if o.suites.is_empty() {
        o.suites = SUITES.map(String::from).to_vec();
    }
    o.suites.dedup();
    Ok(o)
}

/// One line of the summary.
struct Row {
    suite: String,
    check: &'static str,
    result: Result<String, String>,
    secs: f64,
}

/// Collects the results of one run.
#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Runs `f` as check `check` of `suite`, records and prints its result.
    fn check<T>(
        &mut self,
        suite: &str,
        check: &'static str,
        f: impl FnOnce() -> anyhow::Result<(T, String)>,
    ) -> Option<T> {
        let t = Instant::now();
        eprintln!("[real-kernel {suite}] {check} ...");
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        let (value, result) = match r {
            Ok((v, note)) => (Some(v), Ok(note)),
            Err(e) => (None, Err(format!("{e:#}"))),
        };
        match &result {
            Ok(n) => eprintln!("[real-kernel {suite}] {check}: ok ({secs:.1} s) {n}"),
            Err(e) => eprintln!("[real-kernel {suite}] {check}: FAILED ({secs:.1} s): {e}"),
        }
        self.rows.push(Row {
            suite: suite.to_owned(),
            check,
            result,
            secs,
        });
        value
    }

    fn failed(&self) -> usize {
        self.rows.iter().filter(|r| r.result.is_err()).count()
    }

    fn print(&self) {
        println!(
            "\n{:<9} {:<34} {:<6} {:>7}  notes",
            "suite", "check", "result", "seconds"
        );
        for r in &self.rows {
            let (res, note) = match &r.result {
                Ok(n) => ("ok", n.as_str()),
                Err(e) => ("FAILED", e.as_str()),
            };
            let note = note.lines().next().unwrap_or("");
            println!("{:<9} {:<34} {:<6} {:>7.1}  {note}", r.suite, r.check, res, r.secs);
        }
    }
}

/// Everything one suite's checks need.
struct Case {
    suite: String,
    dir: PathBuf,
    dump_dir: PathBuf,
    plain: PathBuf,
    vmcoreinfo_file: PathBuf,
    marker: String,
    kver: String,
    kdeb_version: String,
}

impl Case {
    fn work(&self, name: &str) -> PathBuf {
        self.dir.join("work").join(name)
    }
}

/// Tools and paths shared by all suites.
struct Env {
    ws: PathBuf,
    cache: PathBuf,
    python: PathBuf,
    pvdump: PathBuf,
    scripts: PathBuf,
}

pub fn run(ws: &Path, o: &Options) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let cache = match (&o.cache, std::env::var_os("PVDUMP_REAL_KERNEL_CACHE")) {
        (Some(c), _) => c.clone(),
        (None, Some(c)) if !c.is_empty() => PathBuf::from(c),
        _ => ws.join("target/real-kernel"),
    };
    std::fs::create_dir_all(&cache).with_context(|| cache.display().to_string())?;
    let cache = cache.canonicalize()?;
    let python = std::env::var_os("PVDUMP_PYTHON").map_or_else(|| PathBuf::from(DEFAULT_PYTHON), PathBuf::from);
    preflight(ws, &python)?;
    eprintln!("[real-kernel] cache {}; building the release pvdump", cache.display());
    let status = Command::new("cargo")
        .args(["build", "--release", "-q", "-p", "pvdump"])
        .current_dir(ws)
        .status()?;
    ensure!(status.success(), "cargo build --release -p pvdump failed");
    let env = Env {
        ws: ws.to_path_buf(),
        cache,
        python,
        pvdump: ws.join("target/release/pvdump"),
        scripts: ws.join("xtask/real-kernel"),
    };
    let mut report = Report::default();
    let drgn = report.check("all", "drgn 0.3.0 (pip, pinned by hash)", || install_drgn(&env));
    for suite in &o.suites {
        run_suite(&env, suite, o, drgn.as_deref(), &mut report);
    }
    report.print();
    let failed = report.failed();
    println!(
        "\n{} checks, {failed} failed, {:.0} s in all (cache {})",
        report.rows.len(),
        t0.elapsed().as_secs_f64(),
        env.cache.display()
    );
    if failed > 0 {
        bail!("{failed} real-kernel checks failed");
    }
    Ok(())
}

/// Fails early, naming everything missing, instead of half-way through a suite.
fn preflight(ws: &Path, python: &Path) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    let tool = ws.join("../shared/tools/real_s390x_dump.sh");
    if !tool.is_file() {
        missing.push(format!("{} (the shared tools beside the clone)", tool.display()));
    }
    for t in ["apt-get", "dpkg-deb", "tar", "cargo"] {
        if !on_path(t) {
            missing.push(t.to_owned());
        }
    }
    let probe = |code: &str| {
        Command::new(python)
            .args(["-c", code])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !probe("import kdumpfile") {
        missing.push(format!(
            "{} with kdumpfile (apt-get install python3-libkdumpfile)",
            python.display()
        ));
    }
    if !probe("import pip") {
        missing.push(format!("{} -m pip (apt-get install python3-pip)", python.display()));
    }
    if !missing.is_empty() {
        bail!(
            "cargo xtask real-kernel needs:\n  {}{}",
            missing.join("\n  "),
            if std::env::var("CI").as_deref() == Ok("true") {
                "\n(CI=true: nothing is skipped)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// Runs `cmd`, failing with its output when it fails; returns stdout.
fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        bail!(
            "{cmd:?} failed ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn install_drgn(env: &Env) -> anyhow::Result<(PathBuf, String)> {
    let dir = env.cache.join(DRGN_DIR);
    if dir.join("drgn/__init__.py").is_file() {
        return Ok((dir, "cached".into()));
    }
    let tmp = env.cache.join(format!("{DRGN_DIR}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    let req = env.cache.join("drgn-requirements.txt");
    std::fs::write(&req, DRGN_REQUIREMENT)?;
    output(
        Command::new(&env.python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"])
            .args(["--only-binary", ":all:", "--require-hashes", "--target"])
            .arg(&tmp)
            .arg("-r")
            .arg(&req),
    )?;
    std::fs::rename(&tmp, &dir)?;
    Ok((dir, "installed".into()))
}

fn run_suite(env: &Env, suite: &str, o: &Options, drgn: Option<&Path>, report: &mut Report) {
    let Some(case) = report.check(suite, "real guest dump (QEMU TCG)", || obtain_dump(env, suite)) else {
        return;
    };
    let vmlinux = report.check(suite, "debug vmlinux (build-id)", || obtain_vmlinux(&case));
    let sealed = report.check(suite, "seal (simulated Ultravisor)", || seal(&case));
    if sealed.is_none() {
        return;
    }
    let decrypted = report.check(suite, "pvdump decrypt -> ELF, kdump", || decrypt(env, &case));
    if decrypted.is_none() {
        return;
    }
    let original = report.check(suite, "original: memory, registers", || Facts::of_plain(&case));
    let Some(original) = original else { return };
    report.check(suite, "memory exact (PV, ELF, kdump)", || {
        check_memory(&case, &original)
    });
    report.check(suite, "registers exact (PV, ELF, kdump)", || {
        check_registers(&case, &original)
    });
    report.check(suite, "VMCOREINFO (ELF note, kdump)", || check_vmcoreinfo(&case));
    report.check(suite, "utsname (kdump header, guest)", || check_utsname(env, &case));
    report.check(suite, "libkdumpfile reads every page", || {
        check_libkdumpfile(env, &case, &original)
    });
    let drgn_json = match (drgn, &vmlinux) {
        (Some(py), Some(vmlinux)) => report.check(suite, "drgn dmesg/tasks/stacks (3 dumps)", || {
            check_drgn(env, &case, py, vmlinux)
        }),
        _ => None,
    };
    let negative = report.check(suite, "negative self-test", || {
        negative_self_test(
            env,
            &case,
            &original,
            drgn.zip(vmlinux.as_deref()),
            drgn_json.as_deref(),
        )
    });
    let mut crash_ok = true;
    if o.crash {
        crash_ok = match &vmlinux {
            Some(v) => report.check(suite, "crash log/ps/bt (qemu-user)", || check_crash(env, &case, v)),
            None => None,
        }
        .is_some();
    }
    if o.zgetdump {
        let ok = report.check(suite, "zgetdump 2.35 -i, -k (qemu-user)", || check_zgetdump(env, &case));
        crash_ok &= ok.is_some();
    }
    let all_ok = report
        .rows
        .iter()
        .filter(|r| r.suite == suite)
        .all(|r| r.result.is_ok());
    if all_ok && crash_ok && negative.is_some() && !o.keep {
        // The sealed and decrypted files are made again on every run; the dump, vmlinux and
        // drgn stay cached.
        let _ = std::fs::remove_dir_all(case.dir.join("work"));
    }
}

fn obtain_dump(env: &Env, suite: &str) -> anyhow::Result<(Case, String)> {
    let dir = env.cache.join(suite);
    let dump_dir = dir.join("dump");
    let plain = dump_dir.join(format!("{DUMP_NAME}.elf"));
    let vmcoreinfo_file = dump_dir.join(format!("{DUMP_NAME}.vmcoreinfo"));
    let suite_file = dump_dir.join("kernel/.suite");
    let have = |p: &Path| p.is_file() && std::fs::metadata(p).is_ok_and(|m| m.len() > 0);
    let cached = [&plain, &vmcoreinfo_file, &dump_dir.join("marker.txt"), &suite_file]
        .iter()
        .all(|p| have(p))
        && std::fs::read_to_string(&suite_file).is_ok_and(|s| s.lines().next() == Some(suite));
    if !cached {
        std::fs::create_dir_all(&dump_dir)?;
        // The tool's "already there" test looks only at the dumps: make it boot again.
        let _ = std::fs::remove_file(&plain);
        let log = std::fs::File::create(dir.join("real_s390x_dump.log"))?;
        let status = Command::new(env.ws.join("../shared/tools/real_s390x_dump.sh"))
            .arg(&dump_dir)
            .env("KSUITE", suite)
            .env("FORMATS", "elf")
            .env("MEM", "256")
            .env("SMP", "2")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()?;
        ensure!(
            status.success(),
            "real_s390x_dump.sh failed ({status}); see {}",
            dir.join("real_s390x_dump.log").display()
        );
        ensure!(
            have(&plain) && have(&vmcoreinfo_file),
            "real_s390x_dump.sh left no dump"
        );
    }
    let marker = std::fs::read_to_string(dump_dir.join("marker.txt"))?.trim().to_owned();
    let from = std::fs::read_to_string(dump_dir.join("kernel/.from")).context("kernel/.from of the tool")?;
    // linux-image-6.12.107+deb13-s390x_6.12.107-1_s390x.deb
    let mut parts = from.trim().trim_end_matches(".deb").split('_');
    let (Some(pkg), Some(version)) = (parts.next(), parts.next()) else {
        bail!("unexpected kernel/.from {from:?}");
    };
    let kver = pkg
        .strip_prefix("linux-image-")
        .context("kernel package name")?
        .to_owned();
    let kdeb_version = version.replace("%3a", ":");
    let note = format!("{kver} ({kdeb_version}), {}", if cached { "cached" } else { "booted" });
    Ok((
        Case {
            suite: suite.to_owned(),
            dir,
            dump_dir,
            plain,
            vmcoreinfo_file,
            marker,
            kver,
            kdeb_version,
        },
        note,
    ))
}

/// The GNU build-id of an ELF file (its NT_GNU_BUILD_ID note), read without mapping it.
fn build_id(path: &Path) -> anyhow::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let mut eh = [0u8; 64];
    f.read_exact(&mut eh)?;
    ensure!(
        &eh[..4] == b"\x7fELF" && eh[4] == 2,
        "{}: not a 64-bit ELF file",
        path.display()
    );
    let be = eh[5] == 2;
    let u16_at = |b: &[u8], o: usize| {
        let a = [b[o], b[o + 1]];
        if be {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    };
    let u32_at = |b: &[u8], o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let u64_at = |b: &[u8], o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        if be {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        }
    };
    let (phoff, phentsize, phnum) = (u64_at(&eh, 0x20), u16_at(&eh, 0x36), u16_at(&eh, 0x38));
    ensure!(
        phentsize == 56 && phnum < 256,
        "{}: odd program headers",
        path.display()
    );
    let mut ph = vec![0u8; 56 * usize::from(phnum)];
    f.seek(SeekFrom::Start(phoff))?;
    f.read_exact(&mut ph)?;
    for p in ph.chunks_exact(56) {
        if u32_at(p, 0) != 4 {
            continue;
        }
        let (off, size) = (u64_at(p, 8), u64_at(p, 32));
        ensure!(size < 1 << 20, "{}: PT_NOTE of {size} bytes", path.display());
        let mut notes = vec![0u8; size as usize];
        f.seek(SeekFrom::Start(off))?;
        f.read_exact(&mut notes)?;
        let mut pos = 0usize;
        while pos + 12 <= notes.len() {
            let namesz = u32_at(&notes, pos) as usize;
            let descsz = u32_at(&notes, pos + 4) as usize;
            let ntype = u32_at(&notes, pos + 8);
            let name = pos + 12;
            let desc = name + namesz.next_multiple_of(4);
            let end = desc + descsz.next_multiple_of(4);
            if end > notes.len() + 3 || desc + descsz > notes.len() {
                break;
            }
            if ntype == 3 && notes.get(name..name + namesz) == Some(b"GNU\0".as_slice()) {
                return Ok(hex::encode(&notes[desc..desc + descsz]));
            }
            pos = end;
        }
    }
    bail!("{}: no GNU build-id note", path.display())
}

/// VMCOREINFO of the original plain dump (the text the tool saved from guest memory).
fn vmcoreinfo_value(case: &Case, key: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(&case.vmcoreinfo_file)?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_owned))
        .with_context(|| format!("VMCOREINFO has no {key}"))
}

fn obtain_vmlinux(case: &Case) -> anyhow::Result<(PathBuf, String)> {
    let want = vmcoreinfo_value(case, "BUILD-ID")?.to_lowercase();
    let out = case.dir.join(format!("vmlinux-{}", case.kver));
    if out.is_file() && build_id(&out).is_ok_and(|b| b == want) {
        return Ok((out, format!("cached, build-id {want}")));
    }
    // The tool's private s390x apt configuration for this suite (its lists included).
    let ka = case.dump_dir.join(format!("apt-{}", case.suite));
    ensure!(
        ka.join("sources.list").is_file(),
        "{} has no sources.list",
        ka.display()
    );
    let d = |p: &str| ka.join(p).display().to_string();
    let apt_opts: Vec<String> = [
        format!("Dir::Etc::sourcelist={}", d("sources.list")),
        "Dir::Etc::sourceparts=-".into(),
        format!("Dir::Etc::preferencesparts={}", d("prefs.d")),
        format!("Dir::Etc::preferences={}", d("prefs")),
        format!("Dir::State={}", ka.join("state").display()),
        format!("Dir::State::lists={}", d("lists")),
        format!("Dir::State::status={}", d("status")),
        format!("Dir::Cache={}", d("cache")),
        format!("Dir::Cache::archives={}", d("archives")),
        "Dir::Cache::pkgcache=".into(),
        "Dir::Cache::srcpkgcache=".into(),
        "APT::Architecture=s390x".into(),
        "APT::Architectures=s390x".into(),
        "Debug::NoLocking=1".into(),
        "Acquire::Retries=3".into(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_owned(), o])
    .collect();
    let debs = case.dir.join("debs");
    std::fs::create_dir_all(&debs)?;
    let pkg = format!("linux-image-{}-dbg:s390x={}", case.kver, case.kdeb_version);
    let download = || {
        output(
            Command::new("apt-get")
                .args(&apt_opts)
                .args(["download", "-q", &pkg])
                .current_dir(&debs),
        )
    };
    if download().is_err() {
        output(Command::new("apt-get").args(&apt_opts).args(["update", "-q"]))?;
        download()?;
    }
    let deb = std::fs::read_dir(&debs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .starts_with(&format!("linux-image-{}-dbg_", case.kver))
            })
        })
        .context("apt-get download left no .deb")?;
    let size = std::fs::metadata(&deb)?.len();
    let tmp = out.with_extension("tmp");
    // tar stops after the one member (--occurrence); dpkg-deb then dies of SIGPIPE, so its
    // status says nothing: the build-id below decides.
    let script = format!(
        "dpkg-deb --fsys-tarfile \"$1\" | tar -x --occurrence=1 -O ./usr/lib/debug/boot/vmlinux-{} > \"$2\"",
        case.kver
    );
    let _ = Command::new("sh")
        .args(["-c", &script, "sh"])
        .arg(&deb)
        .arg(&tmp)
        .stderr(Stdio::null())
        .status()?;
    let got = build_id(&tmp)?;
    ensure!(
        got == want,
        "{}: build-id {got}, VMCOREINFO BUILD-ID {want}",
        deb.display()
    );
    std::fs::rename(&tmp, &out)?;
    std::fs::remove_file(&deb)?;
    Ok((out, format!("downloaded {} MB, build-id {want}", size / 1_000_000)))
}

fn seal(case: &Case) -> anyhow::Result<((), String)> {
    std::fs::create_dir_all(case.dir.join("work"))?;
    let s = crate::synth::seal_file(
        &case.plain,
        &case.work("pv.elf"),
        &case.work("key.bin"),
        &SealOptions::default(),
    )?;
    Ok((
        (),
        format!(
            "{} CPUs; {} encrypted, {} zero, {} shared pages",
            s.cpus, s.encrypted, s.zero, s.shared
        ),
    ))
}

fn decrypt(env: &Env, case: &Case) -> anyhow::Result<((), String)> {
    let mut notes = String::new();
    for (out, format) in [("out.elf", "elf"), ("out.kdump", "kdump")] {
        let t = Instant::now();
        let _ = std::fs::remove_file(case.work(out));
        output(
            Command::new(&env.pvdump)
                .args(["decrypt", "--quiet", "--key"])
                .arg(case.work("key.bin"))
                .arg(case.work("pv.elf"))
                .args(["--format", format, "-o"])
                .arg(case.work(out)),
        )?;
        write!(notes, "{format} {:.1} s; ", t.elapsed().as_secs_f64())?;
    }
    Ok(((), notes.trim_end_matches("; ").to_owned()))
}

/// What the original dump says: the reference for every comparison.
struct Facts {
    sha256: String,
    pages: u64,
    cpus: Vec<(Option<u32>, CpuRegisters)>,
}

impl Facts {
    fn of_plain(case: &Case) -> anyhow::Result<(Facts, String)> {
        let dump = Dump::open(&case.plain, None)?;
        let (sha256, pages) = memory_sha(&dump)?;
        let cpus = registers(&dump)?;
        ensure!(!cpus.is_empty(), "the original dump has no CPU notes");
        let note = format!("{pages} pages, {} CPUs, memory {}", cpus.len(), &sha256[..16]);
        Ok((Facts { sha256, pages, cpus }, note))
    }
}

/// SHA-256 of guest memory from address 0 to the end of the highest block, holes as zeros,
/// and the number of pages hashed.
fn memory_sha(dump: &Dump) -> anyhow::Result<(String, u64)> {
    const CHUNK: u64 = 256 * 4096;
    let src = dump.source()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK as usize];
    let mut zero = vec![false; 256];
    let mut at = 0u64;
    let zeros = vec![0u8; CHUNK as usize];
    for b in src.blocks() {
        while at < b.paddr {
            let n = (b.paddr - at).min(CHUNK);
            h.update(&zeros[..n as usize]);
            at += n;
        }
        while at < b.end() {
            let n = (b.end() - at).min(CHUNK);
            let pages = (n / 4096) as usize;
            src.read_pages(at, &mut buf[..n as usize], &mut zero[..pages])?;
            h.update(&buf[..n as usize]);
            at += n;
        }
    }
    Ok((hex::encode(h.finalize()), at / 4096))
}

fn registers(dump: &Dump) -> anyhow::Result<Vec<(Option<u32>, CpuRegisters)>> {
    Ok(dump.cpus()?.into_iter().map(|c| (c.pid, c.regs)).collect())
}

fn key(case: &Case) -> anyhow::Result<Cck> {
    Ok(Cck::from_key_file(&std::fs::read(case.work("key.bin"))?)?)
}

fn outputs(case: &Case) -> anyhow::Result<[(&'static str, Dump); 3]> {
    Ok([
        ("PV", Dump::open(&case.work("pv.elf"), Some(&key(case)?))?),
        ("ELF", Dump::open(&case.work("out.elf"), None)?),
        ("kdump", Dump::open(&case.work("out.kdump"), None)?),
    ])
}

fn check_memory(case: &Case, original: &Facts) -> anyhow::Result<((), String)> {
    check_memory_of(&outputs(case)?, original)?;
    Ok((
        (),
        format!("{} pages, SHA-256 {}", original.pages, &original.sha256[..16]),
    ))
}

fn check_memory_of(dumps: &[(&str, Dump)], original: &Facts) -> anyhow::Result<()> {
    for (name, d) in dumps {
        let (sha, pages) = memory_sha(d)?;
        ensure!(
            sha == original.sha256 && pages == original.pages,
            "{name}: memory {sha} ({pages} pages), original {} ({} pages)",
            original.sha256,
            original.pages
        );
    }
    Ok(())
}

fn check_registers(case: &Case, original: &Facts) -> anyhow::Result<((), String)> {
    check_registers_of(&outputs(case)?, original)?;
    let psws: Vec<String> = original.cpus.iter().map(|(_, r)| format!("{:#x}", r.psw[1])).collect();
    Ok((
        (),
        format!("{} CPUs, PSW addresses {}", original.cpus.len(), psws.join(" ")),
    ))
}

fn check_registers_of(dumps: &[(&str, Dump)], original: &Facts) -> anyhow::Result<()> {
    for (name, d) in dumps {
        let got = registers(d)?;
        ensure!(
            got.len() == original.cpus.len(),
            "{name}: {} CPUs, original {}",
            got.len(),
            original.cpus.len()
        );
        for (i, (g, o)) in got.iter().zip(&original.cpus).enumerate() {
            ensure!(g.0 == o.0, "{name}: CPU {i} has pid {:?}, original {:?}", g.0, o.0);
            ensure!(
                g.1 == o.1,
                "{name}: CPU {i} registers differ from the original's:\n{:?}\n{:?}",
                g.1,
                o.1
            );
        }
    }
    Ok(())
}

fn check_vmcoreinfo(case: &Case) -> anyhow::Result<((), String)> {
    let want = std::fs::read(&case.vmcoreinfo_file)?;
    let plain = Dump::open(&case.plain, None)?;
    let v = plain
        .vmcoreinfo()
        .context("the original dump: no VMCOREINFO in guest memory")?;
    ensure!(
        matches!(v.source, VmcoreinfoSource::LowcoreNote { .. }),
        "the original dump: VMCOREINFO found through {:?}, expected lowcore 0xE0C",
        v.source
    );
    ensure!(
        v.text == want,
        "the original dump: VMCOREINFO in guest memory differs from the tool's copy"
    );
    check_vmcoreinfo_of(&outputs(case)?, &want)?;
    Ok((
        (),
        format!(
            "{} bytes, OSRELEASE {}",
            want.len(),
            vmcoreinfo_value(case, "OSRELEASE")?
        ),
    ))
}

fn check_vmcoreinfo_of(dumps: &[(&str, Dump)], want: &[u8]) -> anyhow::Result<()> {
    for (name, d) in dumps {
        let v = d.vmcoreinfo().with_context(|| format!("{name}: no VMCOREINFO"))?;
        ensure!(v.text == want, "{name}: VMCOREINFO text differs from the guest's");
        match (*name, d.kdump()) {
            ("PV", _) => {}
            (_, Some(k)) => {
                // offset_vmcoreinfo/size_vmcoreinfo, and the note in the note blob.
                let text = k.vmcoreinfo()?.context("kdump: offset_vmcoreinfo is 0")?;
                ensure!(*text == *want, "kdump: the text at offset_vmcoreinfo differs");
                let notes = d.notes()?;
                let (off, len) = notes.vmcoreinfo.context("kdump: no VMCOREINFO note in the note blob")?;
                ensure!(notes.bytes[off..off + len] == *want, "kdump: VMCOREINFO note differs");
            }
            _ => ensure!(
                matches!(v.source, VmcoreinfoSource::ElfNote { .. }),
                "{name}: no VMCOREINFO note (VMCOREINFO only in guest memory, {:?})",
                v.source
            ),
        }
    }
    Ok(())
}

/// What the guest's `uname -a` says, from guest_uts.py (an independent reader of the
/// plain dump: VMCOREINFO, the kernel's __pa rule, cross-checked by a CR13 page-table walk).
fn guest_uts(env: &Env, case: &Case) -> anyhow::Result<Utsname> {
    let out = output(
        Command::new(&env.python)
            .arg(env.scripts.join("guest_uts.py"))
            .arg(&case.plain),
    )?;
    let j: serde_json::Value = serde_json::from_str(out.trim())?;
    ensure!(
        j["pa"] == j["pa_by_cr13"],
        "guest_uts.py: the __pa rule ({}) and the CR13 walk ({}) disagree",
        j["pa"],
        j["pa_by_cr13"]
    );
    uts_from_json(&j["uts"])
}

fn uts_from_json(j: &serde_json::Value) -> anyhow::Result<Utsname> {
    let f = |k: &str| {
        j[k].as_str()
            .map(str::to_owned)
            .with_context(|| format!("utsname JSON has no {k}: {j}"))
    };
    Ok(Utsname {
        sysname: f("sysname")?,
        nodename: f("nodename")?,
        release: f("release")?,
        version: f("version")?,
        machine: f("machine")?,
        domainname: f("domainname")?,
    })
}

fn check_utsname(env: &Env, case: &Case) -> anyhow::Result<((), String)> {
    let guest = guest_uts(env, case)?;
    // The real values: what Debian's kernel of this dump reports in a guest without a
    // host name (the tool's initramfs sets none).
    let release = vmcoreinfo_value(case, "OSRELEASE")?;
    ensure!(guest.sysname == "Linux" && guest.machine == "s390x", "guest: {guest:?}");
    ensure!(
        guest.release == release,
        "guest release {} != OSRELEASE {release}",
        guest.release
    );
    ensure!(
        guest.nodename == "(none)" && guest.domainname == "(none)",
        "guest: {guest:?}"
    );
    let version = format!("#1 SMP Debian {} (", case.kdeb_version);
    ensure!(
        guest.version.starts_with(&version),
        "guest version {:?} does not start with {version:?}",
        guest.version
    );
    let plain = Dump::open(&case.plain, None)?;
    ensure!(
        plain.utsname().as_ref() == Some(&guest),
        "Dump::utsname of the original: {:?}",
        plain.utsname()
    );
    for (name, d) in outputs(case)? {
        ensure!(
            d.utsname().as_ref() == Some(&guest),
            "{name}: Dump::utsname {:?}",
            d.utsname()
        );
        if let Some(k) = d.kdump() {
            ensure!(
                k.utsname() == guest,
                "kdump header utsname {:?} != guest {guest:?}",
                k.utsname()
            );
        }
    }
    Ok(((), format!("{} {} {}", guest.nodename, guest.release, guest.version)))
}

fn check_libkdumpfile(env: &Env, case: &Case, original: &Facts) -> anyhow::Result<((), String)> {
    let out = output(
        Command::new(&env.python)
            .arg(env.scripts.join("check_kdumpfile.py"))
            .arg(case.work("out.kdump")),
    )?;
    let j: serde_json::Value = serde_json::from_str(out.trim())?;
    ensure!(j["arch"] == "s390x", "libkdumpfile arch {}", j["arch"]);
    ensure!(
        j["pages"] == original.pages && j["present"] == original.pages,
        "libkdumpfile: {} pages, {} present; the original has {}",
        j["pages"],
        j["present"],
        original.pages
    );
    ensure!(
        j["sha256"] == original.sha256.as_str(),
        "libkdumpfile memory {} != original {}",
        j["sha256"],
        original.sha256
    );
    let uts = uts_from_json(&j["uts"])?;
    let guest = guest_uts(env, case)?;
    ensure!(uts == guest, "libkdumpfile utsname {uts:?} != guest {guest:?}");
    Ok((
        (),
        format!("{} pages present, arch s390x, utsname = guest's", j["present"]),
    ))
}

fn drgn_json(
    env: &Env,
    py: &Path,
    vmlinux: &Path,
    dump: &Path,
    vmcoreinfo: Option<&Path>,
    marker: &str,
) -> anyhow::Result<String> {
    let mut c = Command::new(&env.python);
    c.env("PYTHONPATH", py).env("DRGN_PREFER_PGTABLE_READER", "1");
    c.arg(env.scripts.join("check_drgn.py"));
    if let Some(v) = vmcoreinfo {
        c.arg("--vmcoreinfo").arg(v);
    }
    c.arg(vmlinux).arg(dump).arg(marker);
    Ok(output(&mut c)?.trim().to_owned())
}

fn check_drgn(env: &Env, case: &Case, py: &Path, vmlinux: &Path) -> anyhow::Result<(String, String)> {
    let original = drgn_json(env, py, vmlinux, &case.plain, Some(&case.vmcoreinfo_file), &case.marker)?;
    let elf = drgn_json(env, py, vmlinux, &case.work("out.elf"), None, &case.marker)?;
    let kdump = drgn_json(env, py, vmlinux, &case.work("out.kdump"), None, &case.marker)?;
    let j: serde_json::Value = serde_json::from_str(&original)?;
    ensure!(
        j["dmesg_has_marker"] == true,
        "drgn: the marker is not in the original's dmesg"
    );
    let tasks = j["tasks"].as_array().map_or(0, Vec::len);
    let burners = j["tasks"]
        .as_array()
        .map_or(0, |t| t.iter().filter(|t| t[1] == "pvdump-burner").count());
    ensure!(
        burners == 2,
        "drgn: {burners} pvdump-burner tasks in the original, expected 2"
    );
    ensure!(
        elf == original,
        "drgn: the ELF output differs from the original:\n{elf}\n{original}"
    );
    ensure!(
        kdump == original,
        "drgn: the kdump output differs from the original:\n{kdump}\n{original}"
    );
    Ok((
        original,
        format!("marker found, {tasks} tasks, every stack identical on all three"),
    ))
}

/// File offsets, inside the ELF output, of CPU 0's PRSTATUS PSW address, of the
/// VMCOREINFO note's name and of a byte of a non-zero memory page.
fn elf_spots(path: &Path) -> anyhow::Result<(u64, u64, u64)> {
    let input = pvdump_core::Input::map(path)?;
    let core = pvdump_format::ElfCore::parse(input.bytes())?;
    let mut psw = None;
    let mut vmci = None;
    for n in core.notes() {
        let n = n?;
        if n.name == b"CORE" && n.n_type == pvdump_format::consts::NT_PRSTATUS && psw.is_none() {
            // s390x elf_prstatus: pr_reg (psw mask, psw address, ...) starts at 112.
            psw = Some(n.desc_offset + 112 + 8);
        }
        if n.name == b"VMCOREINFO" {
            vmci = Some(n.offset + 12);
        }
    }
    let load = core.loads().first().context("no PT_LOAD")?;
    let data = input.bytes();
    // A byte in the middle of the first page (after the lowcore) that is not zero.
    let mem = (load.file_offset + 0x10000..load.file_offset + load.filesz)
        .step_by(4096)
        .map(|p| p + 2048)
        .find(|&p| data[p as usize] != 0)
        .context("no non-zero memory")?;
    Ok((psw.context("no PRSTATUS")?, vmci.context("no VMCOREINFO note")?, mem))
}

fn patch(path: &Path, offset: u64, f: impl FnOnce(&mut [u8])) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    let mut old = vec![0u8; 16];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut old)?;
    let mut new = old.clone();
    f(&mut new);
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(&new)?;
    Ok(old)
}

fn restore(path: &Path, offset: u64, old: &[u8]) -> anyhow::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(old)?;
    Ok(())
}

/// In a copy of the ELF output: a flipped memory byte, a changed PSW and a dropped
/// VMCOREINFO note must each make the checks fail (and the PSW drgn's stack traces change).
fn negative_self_test(
    env: &Env,
    case: &Case,
    original: &Facts,
    drgn: Option<(&Path, &Path)>,
    drgn_original: Option<&str>,
) -> anyhow::Result<((), String)> {
    let copy = case.work("negative.elf");
    std::fs::copy(case.work("out.elf"), &copy)?;
    let want_vmci = std::fs::read(&case.vmcoreinfo_file)?;
    let (psw, vmci, mem) = elf_spots(&copy)?;
    let open = || -> anyhow::Result<[(&'static str, Dump); 1]> { Ok([("copy", Dump::open(&copy, None)?)]) };
    // The unmodified copy passes: the failures below are the mutations' doing.
    check_memory_of(&open()?, original)?;
    check_registers_of(&open()?, original)?;
    check_vmcoreinfo_of(&open()?, &want_vmci)?;
    let mut notes = Vec::new();

    let old = patch(&copy, mem, |b| b[0] ^= 0x01)?;
    let e = check_memory_of(&open()?, original)
        .err()
        .context("a flipped memory byte went unnoticed")?;
    notes.push(format!("memory byte at {mem:#x}: {}", first_line(&e)));
    restore(&copy, mem, &old)?;

    let old = patch(&copy, psw, |b| {
        let v = u64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8])).wrapping_add(0x200);
        b[..8].copy_from_slice(&v.to_be_bytes());
    })?;
    let e = check_registers_of(&open()?, original)
        .err()
        .context("a changed PSW went unnoticed")?;
    notes.push(format!("PSW: {}", first_line(&e)));
    if let (Some((py, vmlinux)), Some(want)) = (drgn, drgn_original) {
        // drgn unwinds the running tasks from the PSW: their stacks must change.
        match drgn_json(env, py, vmlinux, &copy, None, &case.marker) {
            Ok(got) => {
                ensure!(got != want, "drgn's output did not change with CPU 0's PSW");
                notes.push("drgn: stacks change".into());
            }
            Err(e) => notes.push(format!("drgn: fails ({})", first_line(&e))),
        }
    }
    restore(&copy, psw, &old)?;

    let old = patch(&copy, vmci, |b| b[9] = b'X')?; // "VMCOREINFX": no longer the note
    let e = check_vmcoreinfo_of(&open()?, &want_vmci)
        .err()
        .context("a dropped VMCOREINFO note went unnoticed")?;
    notes.push(format!("VMCOREINFO note: {}", first_line(&e)));
    restore(&copy, vmci, &old)?;

    check_memory_of(&open()?, original)?;
    std::fs::remove_file(&copy)?;
    Ok(((), notes.join("; ")))
}

fn first_line(e: &anyhow::Error) -> String {
    let s = format!("{e:#}");
    let line = s.lines().next().unwrap_or("");
    match line.char_indices().nth(70) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_owned(),
    }
}

/// crash 8.0.6 for s390x (trixie's; its runtime libraries from forky, the only set this
/// mirror serves completely) under qemu-user: `log`, `ps`, `bt -a`, `sys` on the ELF and the
/// kdump output must print the same (minus the DUMPFILE line), with the guest's marker in
/// the log, both burner tasks in ps and every backtrace resolved.
fn check_crash(env: &Env, case: &Case, vmlinux: &Path) -> anyhow::Result<((), String)> {
    let root = env.cache.join("crash-sysroot");
    let prefix = output(
        Command::new(env.ws.join("../shared/tools/s390x_sysroot.sh"))
            .env("S390X_SUITES", "trixie forky")
            .env("S390X_SECURITY", "")
            .arg(&root)
            .args(["crash/trixie", "libc6/forky"]),
    )?;
    let prefix: Vec<String> = prefix
        .lines()
        .last()
        .context("s390x_sysroot.sh printed no prefix")?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let (qemu, qargs) = prefix.split_first().context("empty qemu-user prefix")?;
    let cmds = case.work("crash.cmds");
    std::fs::write(&cmds, "log\nps\nbt -a\nsys\nquit\n")?;
    let crash_bin = root.join("sysroot/usr/bin/crash");
    let run = |dump: PathBuf| {
        let mut c = Command::new(qemu);
        c.args(qargs)
            .arg(&crash_bin)
            .arg("-s")
            .arg(vmlinux)
            .arg(&dump)
            .arg("-i")
            .arg(&cmds);
        output(&mut c)
    };
    let (elf, kdump) = std::thread::scope(|s| {
        let a = s.spawn(|| run(case.work("out.elf")));
        let b = s.spawn(|| run(case.work("out.kdump")));
        (a.join(), b.join())
    });
    let elf = elf.map_err(|_| anyhow!("crash thread panicked"))??;
    let kdump = kdump.map_err(|_| anyhow!("crash thread panicked"))??;
    let strip = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.trim_start().starts_with("DUMPFILE:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    std::fs::write(case.work("crash-elf.txt"), &elf)?;
    std::fs::write(case.work("crash-kdump.txt"), &kdump)?;
    ensure!(
        elf.contains(&case.marker),
        "crash log of the ELF output lacks the marker"
    );
    ensure!(
        elf.matches("pvdump-burner").count() >= 2,
        "crash ps of the ELF output lacks the burner tasks"
    );
    for bad in [
        "invalid kernel virtual address",
        "cannot be determined",
        "not found in PID hash",
    ] {
        ensure!(!elf.contains(bad), "crash on the ELF output: {bad}");
    }
    ensure!(
        strip(&elf) == strip(&kdump),
        "crash prints differently for the ELF and the kdump output (see {})",
        case.work("crash-*.txt").display()
    );
    Ok(((), format!("{} lines, identical on ELF and kdump", elf.lines().count())))
}

/// s390-tools 2.35 for s390x (trixie's, runtime libraries from forky) under qemu-user:
/// `zgetdump -k` must decrypt the sealed dump to the notes and memory of pvdump's ELF output,
/// and `zgetdump -i` must show the guest's utsname for the PV dump, the ELF and the kdump
/// output (the node name and version pvdump's library reports too).
fn check_zgetdump(env: &Env, case: &Case) -> anyhow::Result<((), String)> {
    let root = env.cache.join("s390-tools-sysroot");
    let prefix = output(
        Command::new(env.ws.join("../shared/tools/s390x_sysroot.sh"))
            .env("S390X_SUITES", "trixie forky")
            .env("S390X_SECURITY", "")
            .arg(&root)
            .args(["s390-tools/trixie", "libc6/forky"]),
    )?;
    let prefix: Vec<String> = prefix
        .lines()
        .last()
        .context("s390x_sysroot.sh printed no prefix")?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let (qemu, qargs) = prefix.split_first().context("empty qemu-user prefix")?;
    let zgetdump = || {
        let mut c = Command::new(qemu);
        c.args(qargs).arg(root.join("sysroot/usr/sbin/zgetdump"));
        c
    };
    let guest = guest_uts(env, case)?;
    let (key, pv, elf, kdump) = (
        case.work("key.bin"),
        case.work("pv.elf"),
        case.work("out.elf"),
        case.work("out.kdump"),
    );
    for (name, dump) in [("PV", &pv), ("ELF", &elf), ("kdump", &kdump)] {
        let mut c = zgetdump();
        c.arg("-i");
        if name == "PV" {
            c.arg("-k").arg(&key);
        }
        // zgetdump prints its report on stderr.
        let out = c.arg(dump).stdin(Stdio::null()).output()?;
        ensure!(
            out.status.success(),
            "zgetdump -i of the {name} dump failed ({})",
            out.status
        );
        let info = String::from_utf8_lossy(&out.stderr).into_owned();
        for (label, want) in [
            ("UTS node name", &guest.nodename),
            ("UTS kernel release", &guest.release),
            ("UTS kernel version", &guest.version),
        ] {
            let got = info
                .lines()
                .find_map(|l| l.trim().strip_prefix(label))
                .map(|v| v.trim_start_matches('.').trim_start_matches(':').trim())
                .with_context(|| format!("zgetdump -i of the {name} dump shows no {label}:\n{info}"))?;
            ensure!(
                got == want,
                "zgetdump -i of the {name} dump: {label} {got:?}, guest {want:?}"
            );
        }
    }
    let zout = case.work("zgetdump.elf");
    let t = Instant::now();
    let status = zgetdump()
        .arg("-k")
        .arg(&key)
        .arg(&pv)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&zout)?)
        .stderr(Stdio::null())
        .status()?;
    ensure!(status.success(), "zgetdump -k failed ({status})");
    let secs = t.elapsed().as_secs_f64();
    let (a, b) = (elf_notes_and_memory(&zout)?, elf_notes_and_memory(&elf)?);
    ensure!(a.0 == b.0, "zgetdump's notes differ from pvdump's");
    ensure!(a.1 == b.1, "zgetdump's memory {} differs from pvdump's {}", a.1, b.1);
    std::fs::remove_file(&zout)?;
    Ok((
        (),
        format!("-i shows the guest's utsname (PV, ELF, kdump); -k ({secs:.0} s): notes and memory = pvdump's"),
    ))
}

/// The PT_NOTE bytes and the SHA-256 of the memory (PT_LOADs in order, zero tails included)
/// of an ELF vmcore.
fn elf_notes_and_memory(path: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    let input = pvdump_core::Input::map(path)?;
    let core = pvdump_format::ElfCore::parse(input.bytes())?;
    let data = input.bytes();
    let mut notes = Vec::new();
    for seg in core.note_segments() {
        let at = seg.file_offset as usize;
        notes.extend_from_slice(data.get(at..at + seg.size as usize).context("notes")?);
    }
    let mut h = Sha256::new();
    let zeros = [0u8; 4096];
    for l in core.loads() {
        let at = l.file_offset as usize;
        h.update(data.get(at..at + l.filesz as usize).context("memory")?);
        let mut tail = l.memsz - l.filesz;
        while tail > 0 {
            let n = tail.min(4096);
            h.update(&zeros[..n as usize]);
            tail -= n;
        }
    }
    Ok((notes, hex::encode(h.finalize())))
}
