//! `cargo xtask dist`: the release artefacts for every supported target, reproducibly; and
//! `cargo xtask cross-test`: the test suite of a foreign target under qemu user-mode
//! emulation. Both use the cross settings of .cargo/cross.toml (linkers, runners), which
//! [`TARGETS`] mirrors (a unit test keeps the two in step).
//!
//! `dist`, for each target: builds `pvdump` (release, `--locked`, debug info stripped, source
//! and registry paths remapped), checks the ELF file (architecture; the musl builds have no
//! interpreter and no shared libraries), checks that it decrypts every fixture and reference
//! dump to exactly the bytes the native build writes (ELF and kdump with every compressor,
//! `info --json`; foreign binaries under qemu-user), checks that the arm64 builds execute the
//! ARMv8 AES instructions, and packs target/dist/pvdump-VERSION-TARGET.tar.gz (binary, man
//! page, bash/zsh/fish completions from the native binary's `pvdump man` and `pvdump
//! completions`, README.md, LICENSE-MIT, LICENSE-APACHE) with fixed mtimes (the last
//! commit's time, or SOURCE_DATE_EPOCH), owner 0:0, fixed modes and order, plus SHA256SUMS.
//! The procedure is documented in docs/release.md.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// A target pvdump is built and tested for.
#[derive(Debug)]
pub struct Target {
    /// The Rust target triple.
    pub triple: &'static str,
    /// ELF `e_machine` of its binaries.
    machine: u16,
    /// Whether the binary must be statically linked (no interpreter, no shared libraries).
    pub statically_linked: bool,
    /// The emulator that runs its binaries on an x86_64 host (empty: runs natively).
    pub runner: &'static [&'static str],
    /// Programs the build or the checks need, each with the Debian package that has it.
    tools: &'static [(&'static str, &'static str)],
    /// Files the build needs (C library headers), each with the Debian package that has it.
    files: &'static [(&'static str, &'static str)],
    /// Built by `cargo xtask dist` without `--target`.
    pub release: bool,
}

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_S390: u16 = 22;

const QEMU_AARCH64: (&str, &str) = ("qemu-aarch64-static", "qemu-user-static");
const GCC_AARCH64: (&str, &str) = ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu");
const LIBC_AARCH64: (&str, &str) = ("/usr/aarch64-linux-gnu/include/stdlib.h", "libc6-dev-arm64-cross");

/// The host every command here runs on: dist and cross-test build on x86_64 Linux.
pub const HOST: &str = "x86_64-unknown-linux-gnu";

/// Every target, release targets first. Keep in step with .cargo/cross.toml.
pub const TARGETS: &[Target] = &[
    Target {
        triple: HOST,
        machine: EM_X86_64,
        statically_linked: false,
        runner: &[],
        tools: &[],
        files: &[],
        release: true,
    },
    Target {
        triple: "x86_64-unknown-linux-musl",
        machine: EM_X86_64,
        statically_linked: true,
        runner: &[],
        tools: &[("musl-gcc", "musl-tools")],
        files: &[],
        release: true,
    },
    Target {
        triple: "aarch64-unknown-linux-gnu",
        machine: EM_AARCH64,
        statically_linked: false,
        runner: &["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"],
        tools: &[GCC_AARCH64, QEMU_AARCH64],
        files: &[LIBC_AARCH64],
        release: true,
    },
    Target {
        triple: "aarch64-unknown-linux-musl",
        machine: EM_AARCH64,
        statically_linked: true,
        runner: &["qemu-aarch64-static"],
        tools: &[GCC_AARCH64, QEMU_AARCH64],
        files: &[LIBC_AARCH64],
        release: true,
    },
    Target {
        triple: "s390x-unknown-linux-gnu",
        machine: EM_S390,
        statically_linked: false,
        runner: &["qemu-s390x-static", "-L", "/usr/s390x-linux-gnu"],
        tools: &[
            ("s390x-linux-gnu-gcc", "gcc-s390x-linux-gnu"),
            ("qemu-s390x-static", "qemu-user-static"),
        ],
        files: &[("/usr/s390x-linux-gnu/include/stdlib.h", "libc6-dev-s390x-cross")],
        release: false,
    },
];

/// Workspace packages whose tests cannot run under user-mode emulation (FUSE needs the
/// kernel's /dev/fuse and root); `cross-test` leaves them out.
const NOT_EMULATED: &[&str] = &["pvdump-mount"];

/// Library tests that re-execute their own test binary as another user: a foreign binary
/// cannot be executed directly (no binfmt_misc registration is assumed), so they are left
/// out under emulation. They run natively in `cargo test --workspace`.
const REEXEC_TESTS: &[&str] = &[
    "output::tests::the_whole_module_works_unprivileged",
    "output::tests::a_read_only_directory_is_an_io_error_naming_the_path",
];

/// The CLI's integration tests run under emulation: end-to-end decryption of the bundled
/// and the reference dumps, and the error paths. Left out: tests that need root and FUSE
/// mounts, signals and thread counts of the (emulated) child, or host readers (gdb-multiarch,
/// libkdumpfile, makedumpfile: they check the output format, which is the same bytes as the
/// native build's; `dist` checks that byte for byte).
const CLI_EMULATED_TESTS: &[&str] = &["fixtures", "reference", "errors"];

/// Finds a target by triple.
pub fn target(triple: &str) -> anyhow::Result<&'static Target> {
    TARGETS.iter().find(|t| t.triple == triple).with_context(|| {
        let known: Vec<&str> = TARGETS.iter().map(|t| t.triple).collect();
        format!("unknown target {triple}; supported: {}", known.join(", "))
    })
}

fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Output of a command that must succeed, as text.
fn capture(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", out.status);
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn run_status(cmd: &mut Command) -> anyhow::Result<()> {
    let st = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(())
}

/// Checks that everything `t` needs is installed; the error names what to install.
pub fn check_prerequisites(t: &Target) -> anyhow::Result<()> {
    let host = capture(Command::new("rustc").arg("-vV"))?;
    if !host.lines().any(|l| l == format!("host: {HOST}")) {
        bail!("cross builds and their checks are set up for an {HOST} host; this rustc's host is not");
    }
    let mut missing = Vec::new();
    let libdir = capture(Command::new("rustc").args(["--print", "target-libdir", "--target", t.triple]))?;
    let has_std = std::fs::read_dir(libdir.trim())
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
        })
        .unwrap_or(false);
    if !has_std {
        missing.push(format!(
            "the Rust standard library for {0} (`rustup target add {0}`)",
            t.triple
        ));
    }
    for (tool, package) in t.tools {
        if !on_path(tool) {
            missing.push(format!("{tool} (Debian package {package})"));
        }
    }
    for (file, package) in t.files {
        if !Path::new(file).is_file() {
            missing.push(format!("{file} (Debian package {package})"));
        }
    }
    if !missing.is_empty() {
        bail!(
            "target {} cannot be built or tested here; missing:\n  {}\n(docs/release.md lists every target's packages)",
            t.triple,
            missing.join("\n  ")
        );
    }
    Ok(())
}

/// What `cargo metadata` says about the workspace.
struct Meta {
    version: String,
    target_dir: PathBuf,
    /// Workspace packages with a library target.
    libraries: Vec<String>,
    /// Workspace package names by manifest path.
    manifests: BTreeMap<PathBuf, String>,
}

fn metadata(ws: &Path) -> anyhow::Result<Meta> {
    let text = capture(
        Command::new("cargo")
            .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
            .current_dir(ws),
    )?;
    let j: serde_json::Value = serde_json::from_str(&text)?;
    let packages = j["packages"].as_array().context("cargo metadata: no packages")?;
    let version = packages
        .iter()
        .find(|p| p["name"] == "pvdump")
        .and_then(|p| p["version"].as_str())
        .context("cargo metadata: no pvdump package")?
        .to_string();
    let target_dir = PathBuf::from(
        j["target_directory"]
            .as_str()
            .context("cargo metadata: no target_directory")?,
    );
    let mut libraries: Vec<String> = packages
        .iter()
        .filter(|p| {
            p["targets"].as_array().is_some_and(|ts| {
                ts.iter()
                    .any(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "lib")))
            })
        })
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    libraries.sort();
    let manifests = packages
        .iter()
        .filter_map(|p| {
            Some((
                PathBuf::from(p["manifest_path"].as_str()?),
                p["name"].as_str()?.to_string(),
            ))
        })
        .collect();
    Ok(Meta {
        version,
        target_dir,
        libraries,
        manifests,
    })
}

fn cross_config(ws: &Path) -> PathBuf {
    ws.join(".cargo/cross.toml")
}

/// A test executable built for a foreign target.
struct TestExe {
    package: String,
    /// "lib", "bin" or "test".
    kind: String,
    name: String,
    path: PathBuf,
    /// The package folder: cargo runs tests there.
    dir: PathBuf,
}

/// Builds every test of `packages` for `t` in one cargo invocation (one feature resolution,
/// so nothing is built twice) and lists the executables.
fn build_tests(ws: &Path, meta: &Meta, t: &Target, packages: &[&str]) -> anyhow::Result<Vec<TestExe>> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(ws)
        .args([
            "test",
            "--locked",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--target", t.triple, "--config"])
        .arg(cross_config(ws));
    for p in packages {
        cmd.args(["-p", p]);
    }
    let text = capture(&mut cmd)?;
    let mut exes = Vec::new();
    for line in text.lines() {
        let Ok(j) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if j["reason"] != "compiler-artifact" || j["profile"]["test"] != true {
            continue;
        }
        let Some(path) = j["executable"].as_str() else {
            continue;
        };
        let manifest = PathBuf::from(j["manifest_path"].as_str().context("artifact without manifest_path")?);
        let package = meta
            .manifests
            .get(&manifest)
            .with_context(|| format!("{} is not a workspace package", manifest.display()))?
            .clone();
        exes.push(TestExe {
            package,
            kind: j["target"]["kind"][0].as_str().unwrap_or_default().to_string(),
            name: j["target"]["name"].as_str().unwrap_or_default().to_string(),
            path: PathBuf::from(path),
            dir: manifest
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| ws.to_path_buf()),
        });
    }
    exes.sort_by(|a, b| (&a.package, &a.kind, &a.name).cmp(&(&b.package, &b.kind, &b.name)));
    Ok(exes)
}

/// `cargo xtask cross-test TARGET [--libs-only]`: the library crates' tests (unit,
/// integration, doc) and the CLI's end-to-end tests built for TARGET and run under its
/// emulator. Fails if any test fails or no test ran.
pub fn cross_test(ws: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut triple = None;
    let mut libs_only = false;
    for a in args {
        match a.as_str() {
            "--libs-only" => libs_only = true,
            s if !s.starts_with('-') && triple.is_none() => triple = Some(s.to_string()),
            s => bail!("cross-test: unexpected argument {s}"),
        }
    }
    let t = target(triple.as_deref().context("cross-test: which target?")?)?;
    check_prerequisites(t)?;
    let meta = metadata(ws)?;
    let libs: Vec<&str> = meta
        .libraries
        .iter()
        .map(String::as_str)
        .filter(|l| !NOT_EMULATED.contains(l))
        .collect();
    if libs.is_empty() {
        bail!("cross-test: the workspace has no library packages");
    }
    let mut packages = libs.clone();
    if !libs_only {
        packages.push("pvdump");
    }
    let start = Instant::now();
    eprintln!("cross-test {}: building the tests of {}", t.triple, packages.join(", "));
    let exes = build_tests(ws, &meta, t, &packages)?;
    eprintln!(
        "cross-test {}: built in {:.0} s",
        t.triple,
        start.elapsed().as_secs_f64()
    );

    let selected: Vec<&TestExe> = exes
        .iter()
        .filter(|e| {
            libs.contains(&e.package.as_str())
                || (e.package == "pvdump"
                    && (e.kind == "bin" || (e.kind == "test" && CLI_EMULATED_TESTS.contains(&e.name.as_str()))))
        })
        .collect();
    for want in libs.iter().copied().chain((!libs_only).then_some("pvdump")) {
        if !selected.iter().any(|e| e.package == want) {
            bail!("cross-test: no test executable of {want} was built");
        }
    }
    if !libs_only {
        for name in CLI_EMULATED_TESTS {
            if !selected.iter().any(|e| e.package == "pvdump" && e.name == *name) {
                bail!("cross-test: pvdump has no integration test {name}");
            }
        }
    }
    let run_start = Instant::now();
    let mut failed = Vec::new();
    for e in &selected {
        let mut cmd = runner(t, &e.path);
        cmd.current_dir(&e.dir)
            .env("CARGO_MANIFEST_DIR", &e.dir)
            .env("PVDUMP_TEST_RUNNER", t.runner.join(" "));
        if e.package != "pvdump" {
            for s in REEXEC_TESTS {
                cmd.args(["--skip", s]);
            }
        }
        eprintln!("     Running {} {} {} ({})", e.package, e.kind, e.name, t.triple);
        let st = cmd.status().with_context(|| format!("running {cmd:?}"))?;
        if !st.success() {
            failed.push(format!("{} {} {}", e.package, e.kind, e.name));
        }
    }
    eprintln!("cross-test {}: doc tests of the libraries", t.triple);
    let mut doc = Command::new("cargo");
    doc.current_dir(ws)
        .args(["test", "--locked", "--doc", "--target", t.triple, "--config"])
        .arg(cross_config(ws));
    for p in &packages {
        doc.args(["-p", p]);
    }
    if !doc.status()?.success() {
        failed.push("doc tests".to_string());
    }
    if !failed.is_empty() {
        bail!("cross-test {}: failed: {}", t.triple, failed.join(", "));
    }
    eprintln!(
        "cross-test {}: {} test executables and the doc tests passed under {} (build {:.0} s, run {:.0} s)",
        t.triple,
        selected.len(),
        t.runner.first().copied().unwrap_or("no emulator"),
        run_start.duration_since(start).as_secs_f64(),
        run_start.elapsed().as_secs_f64()
    );
    Ok(())
}

struct DistOptions {
    targets: Vec<&'static Target>,
    out: Option<PathBuf>,
    verify: bool,
}

fn parse(args: &[String]) -> anyhow::Result<DistOptions> {
    let mut targets = Vec::new();
    let mut out = None;
    let mut verify = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--target" => targets.push(target(it.next().context("--target needs a triple")?)?),
            "--out" => out = Some(PathBuf::from(it.next().context("--out needs a folder")?)),
            "--no-verify" => verify = false,
            s => bail!("dist: unexpected argument {s}"),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().filter(|t| t.release).collect();
    }
    // The host build comes first: it is the reference for the others and writes the man
    // page and completions.
    let host = target(HOST)?;
    targets.retain(|t| t.triple != HOST);
    targets.insert(0, host);
    Ok(DistOptions { targets, out, verify })
}

/// Seconds since the epoch for every timestamp in the archives: SOURCE_DATE_EPOCH, else the
/// committer time of HEAD.
fn source_date_epoch(ws: &Path) -> anyhow::Result<u64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v.trim().parse().context("SOURCE_DATE_EPOCH is not a number");
    }
    let out = capture(Command::new("git").args(["log", "-1", "--format=%ct"]).current_dir(ws))
        .context("no SOURCE_DATE_EPOCH and no git history to take the time of the last commit from")?;
    out.trim().parse().context("git log printed no commit time")
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
}

/// Builds the release binary for `t` and returns its path.
fn build(ws: &Path, meta: &Meta, t: &Target, epoch: u64) -> anyhow::Result<PathBuf> {
    let ws_s = ws.display().to_string();
    let home_s = cargo_home().display().to_string();
    let target_s = meta.target_dir.display().to_string();
    // The build must not depend on where the source, the registry or the target folder are:
    // their paths end up in panic locations and C debug info otherwise.
    let mut remaps = vec![
        (home_s.clone(), "/cargo".to_string()),
        (ws_s.clone(), "/pvdump".to_string()),
    ];
    if !meta.target_dir.starts_with(ws) {
        remaps.push((target_s.clone(), "/pvdump/target".to_string()));
    }
    let rustflags: Vec<String> = remaps
        .iter()
        .map(|(from, to)| format!("\"--remap-path-prefix={from}={to}\""))
        .collect();
    let cflags: Vec<String> = remaps
        .iter()
        .map(|(from, to)| format!("-ffile-prefix-map={from}={to}"))
        .collect();
    let env_key = t.triple.replace('-', "_");
    let mut cmd = Command::new("cargo");
    cmd.current_dir(ws)
        .args(["build", "--release", "--locked", "-p", "pvdump", "--target", t.triple])
        .arg("--config")
        .arg(cross_config(ws))
        // Joined with the target's rustflags from cross.toml, if any.
        .arg("--config")
        .arg(format!("target.{}.rustflags=[{}]", t.triple, rustflags.join(",")))
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .env(format!("CFLAGS_{env_key}"), cflags.join(" "))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    eprintln!("dist: building {}", t.triple);
    let start = Instant::now();
    run_status(&mut cmd)?;
    eprintln!("dist: built {} in {:.0} s", t.triple, start.elapsed().as_secs_f64());
    let bin = meta.target_dir.join(t.triple).join("release/pvdump");
    if !bin.is_file() {
        bail!("{}: cargo succeeded but {} is missing", t.triple, bin.display());
    }
    Ok(bin)
}

/// How an ELF executable is linked.
#[derive(Debug, PartialEq, Eq)]
pub struct Linkage {
    /// ELF `e_machine`.
    pub machine: u16,
    /// The program interpreter (PT_INTERP), if any.
    pub interpreter: Option<String>,
    /// DT_NEEDED entries.
    pub needed: Vec<String>,
}

/// Reads the linkage of an ELF executable.
pub fn linkage(bytes: &[u8]) -> anyhow::Result<Linkage> {
    let elf = goblin::elf::Elf::parse(bytes).context("not a parsable ELF file")?;
    Ok(Linkage {
        machine: elf.header.e_machine,
        interpreter: elf.interpreter.map(str::to_string),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
    })
}

/// Checks the binary's architecture and, for the static targets, that it needs no
/// interpreter and no shared library.
fn check_linkage(t: &Target, bin: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(bin).with_context(|| bin.display().to_string())?;
    let l = linkage(&bytes).with_context(|| bin.display().to_string())?;
    if l.machine != t.machine {
        bail!(
            "{}: e_machine {} where {} was expected",
            bin.display(),
            l.machine,
            t.machine
        );
    }
    if t.statically_linked && (l.interpreter.is_some() || !l.needed.is_empty()) {
        bail!(
            "{}: not statically linked: interpreter {:?}, shared libraries {:?}",
            bin.display(),
            l.interpreter,
            l.needed
        );
    }
    let file = Command::new("file")
        .arg("-b")
        .arg(bin)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "(file(1) not installed)".to_string());
    eprintln!(
        "dist: {}: {} bytes; {}; shared libraries: {}; file: {file}",
        t.triple,
        bytes.len(),
        if t.statically_linked {
            "statically linked (no PT_INTERP, no DT_NEEDED)"
        } else {
            "dynamically linked"
        },
        if l.needed.is_empty() {
            "none".to_string()
        } else {
            l.needed.join(" ")
        }
    );
    Ok(())
}

/// A command that runs `bin` on this host (through the target's emulator if foreign).
fn runner(t: &Target, bin: &Path) -> Command {
    match t.runner.split_first() {
        Some((emulator, args)) => {
            let mut c = Command::new(emulator);
            c.args(args).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// Dump folders (pvdump.elf + cck.bin) for the decryption checks: fixtures/ and the reference
/// dumps in ../shared (or $PVDUMP_SHARED), which must be there under CI=true.
fn dump_dirs(ws: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let shared = std::env::var_os("PVDUMP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("../shared"));
    let mut all = Vec::new();
    for (root, required) in [
        (ws.join("fixtures"), true),
        (
            shared.join("fixtures/reference"),
            std::env::var("CI").is_ok_and(|v| v == "true"),
        ),
    ] {
        let mut v: Vec<PathBuf> = match std::fs::read_dir(&root) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.join("pvdump.elf").is_file() && p.join("cck.bin").is_file())
                .collect(),
            Err(e) if required => bail!("{}: {e}", root.display()),
            Err(_) => {
                eprintln!("dist: {} not found; checking the bundled fixtures only", root.display());
                Vec::new()
            }
        };
        if required && v.is_empty() {
            bail!("{} holds no dumps", root.display());
        }
        v.sort();
        all.extend(v);
    }
    Ok(all)
}

/// One way of running pvdump on a dump whose result is compared across targets.
#[derive(Clone, Copy)]
enum Shape {
    Info,
    Elf,
    Kdump(&'static str),
}

const SHAPES: &[Shape] = &[
    Shape::Info,
    Shape::Elf,
    Shape::Kdump("zlib"),
    Shape::Kdump("zstd"),
    Shape::Kdump("lzo"),
    Shape::Kdump("snappy"),
    Shape::Kdump("none"),
];

impl Shape {
    fn name(self) -> String {
        match self {
            Shape::Info => "info --json".to_string(),
            Shape::Elf => "elf".to_string(),
            Shape::Kdump(c) => format!("kdump {c}"),
        }
    }
}

/// Runs one shape and returns the SHA-256 of its result (standard output for info, the
/// output file otherwise).
fn shape_digest(mut cmd: Command, dir: &Path, shape: Shape, scratch: &Path) -> anyhow::Result<String> {
    let key = dir.join("cck.bin");
    let dump = dir.join("pvdump.elf");
    let out = scratch.join("out");
    let _ = std::fs::remove_file(&out);
    match shape {
        Shape::Info => cmd.args([OsStr::new("info"), OsStr::new("--json"), OsStr::new("--key")]),
        Shape::Elf => cmd.args(["decrypt", "-q", "--format", "elf", "--key"]),
        Shape::Kdump(c) => cmd.args(["decrypt", "-q", "--format", "kdump", "--compress", c, "--key"]),
    };
    cmd.arg(&key).arg(&dump);
    if !matches!(shape, Shape::Info) {
        cmd.arg("-o").arg(&out);
    }
    let o = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !o.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    let bytes = match shape {
        Shape::Info => o.stdout,
        _ => std::fs::read(&out).with_context(|| out.display().to_string())?,
    };
    let _ = std::fs::remove_file(&out);
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Every (dump, shape) digest of one binary.
fn digests(t: &Target, bin: &Path, dumps: &[PathBuf], scratch: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for dir in dumps {
        for &shape in SHAPES {
            let d = shape_digest(runner(t, bin), dir, shape, scratch)
                .with_context(|| format!("{}: {} of {}", t.triple, shape.name(), dir.display()))?;
            m.insert(format!("{} {}", dir.display(), shape.name()), d);
        }
    }
    Ok(m)
}

/// Checks that an arm64 build executes ARMv8 AES instructions when it decrypts (the `aes`
/// crate detects the crypto extensions at run time; qemu's CPU model has them): qemu's log
/// of the translated guest code must contain `aesd`.
fn check_armv8_aes(t: &Target, bin: &Path, dump: &Path, scratch: &Path) -> anyhow::Result<()> {
    let log = scratch.join("qemu-in_asm.log");
    let out = scratch.join("aes-check.elf");
    let _ = std::fs::remove_file(&out);
    let (emulator, args) = t.runner.split_first().context("an arm64 target runs under qemu")?;
    let st = Command::new(emulator)
        .args(["-d", "in_asm", "-D"])
        .arg(&log)
        .args(args)
        .arg(bin)
        .args(["decrypt", "-q", "--threads", "1", "--key"])
        .arg(dump.join("cck.bin"))
        .arg(dump.join("pvdump.elf"))
        .arg("-o")
        .arg(&out)
        .stdin(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("{}: decrypt under qemu -d in_asm failed: {st}", t.triple);
    }
    let text = std::fs::read(&log)?;
    let count = |needle: &[u8]| text.windows(needle.len()).filter(|w| w == &needle).count();
    let (aesd, aesimc) = (count(b"aesd "), count(b"aesimc "));
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&out);
    if aesd == 0 {
        bail!(
            "{}: no ARMv8 AES instruction (aesd) was executed while decrypting: the aes crate fell back to software AES",
            t.triple
        );
    }
    eprintln!(
        "dist: {}: ARMv8 crypto extensions in use (qemu translated {aesd} aesd and {aesimc} aesimc instructions while decrypting)",
        t.triple
    );
    Ok(())
}

/// The output of `native ARGS`, which must succeed; the error says where the subcommand
/// comes from if the binary does not know it.
fn native_output(native: &Path, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let o = Command::new(native)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} {}", native.display(), args.join(" ")))?;
    if !o.status.success() || o.stdout.is_empty() {
        bail!(
            "`pvdump {}` failed ({}): {}\n(dist needs the `man` and `completions` subcommands of issue 14)",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(o.stdout)
}

/// A file or folder in a release archive.
pub struct Entry {
    /// Path inside the archive; a folder ends with '/'.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Contents (empty for a folder).
    pub data: Vec<u8>,
}

fn octal(field: &mut [u8], value: u64) -> anyhow::Result<()> {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    if s.len() > digits {
        bail!("{value} does not fit a {digits}-digit tar field");
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// A POSIX ustar archive of `entries`, in the given order, every entry owned by 0:0 and
/// dated `mtime`: the same bytes for the same input, whatever tar is installed.
pub fn ustar(entries: &[Entry], mtime: u64) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for e in entries {
        let dir = e.path.ends_with('/');
        if e.path.len() > 100 || e.path.is_empty() || !e.path.is_ascii() {
            bail!("tar: unsupported name {:?}", e.path);
        }
        if dir && !e.data.is_empty() {
            bail!("tar: folder {} with contents", e.path);
        }
        let mut h = [0u8; 512];
        h[..e.path.len()].copy_from_slice(e.path.as_bytes());
        octal(&mut h[100..108], u64::from(e.mode))?;
        octal(&mut h[108..116], 0)?;
        octal(&mut h[116..124], 0)?;
        octal(&mut h[124..136], e.data.len() as u64)?;
        octal(&mut h[136..148], mtime)?;
        h[156] = if dir { b'5' } else { b'0' };
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        octal(&mut h[329..337], 0)?;
        octal(&mut h[337..345], 0)?;
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        octal(&mut h[148..155], sum)?;
        h[155] = b' ';
        out.extend_from_slice(&h);
        out.extend_from_slice(&e.data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    Ok(out)
}

/// gzip of `data` with no name and no timestamp in its header.
pub fn gzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

/// `cargo xtask dist [--target TRIPLE]... [--out DIR] [--no-verify]`.
pub fn dist(ws: &Path, args: &[String]) -> anyhow::Result<()> {
    let opts = parse(args)?;
    let start = Instant::now();
    for t in &opts.targets {
        check_prerequisites(t)?;
    }
    let meta = metadata(ws)?;
    let epoch = source_date_epoch(ws)?;
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(ws)
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    if dirty {
        eprintln!("dist: warning: the work tree has uncommitted changes; a release is built from a clean commit");
    }
    let mut bins = Vec::new();
    for t in &opts.targets {
        let bin = build(ws, &meta, t, epoch)?;
        check_linkage(t, &bin)?;
        bins.push(bin);
    }
    let native = bins[0].clone();
    let scratch = meta.target_dir.join("dist-check");
    std::fs::create_dir_all(&scratch)?;

    if opts.verify {
        let dumps = dump_dirs(ws)?;
        let t0 = Instant::now();
        let reference = digests(opts.targets[0], &native, &dumps, &scratch)?;
        eprintln!(
            "dist: {}: {} outputs ({} dumps x {} shapes) in {:.1} s",
            HOST,
            reference.len(),
            dumps.len(),
            SHAPES.len(),
            t0.elapsed().as_secs_f64()
        );
        for (t, bin) in opts.targets.iter().zip(&bins).skip(1) {
            let t0 = Instant::now();
            let got = digests(t, bin, &dumps, &scratch)?;
            let differ: Vec<&String> = reference.keys().filter(|k| got.get(*k) != reference.get(*k)).collect();
            if !differ.is_empty() {
                bail!(
                    "{}: output differs from the native build's for:\n  {}",
                    t.triple,
                    differ.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  ")
                );
            }
            eprintln!(
                "dist: {}: all {} outputs equal the native build's ({:.1} s{})",
                t.triple,
                got.len(),
                t0.elapsed().as_secs_f64(),
                if t.runner.is_empty() { "" } else { ", under qemu-user" }
            );
            if t.machine == EM_AARCH64 {
                check_armv8_aes(t, bin, &dumps[0], &scratch)?;
            }
        }
    }

    let man = native_output(&native, &["man"])?;
    let completions = [
        ("pvdump.bash", native_output(&native, &["completions", "bash"])?),
        ("_pvdump", native_output(&native, &["completions", "zsh"])?),
        ("pvdump.fish", native_output(&native, &["completions", "fish"])?),
    ];
    let docs: Vec<(&str, Vec<u8>)> = ["README.md", "LICENSE-MIT", "LICENSE-APACHE"]
        .iter()
        .map(|f| Ok((*f, std::fs::read(ws.join(f)).with_context(|| format!("reading {f}"))?)))
        .collect::<anyhow::Result<_>>()?;

    let out_dir = opts.out.clone().unwrap_or_else(|| meta.target_dir.join("dist"));
    std::fs::create_dir_all(&out_dir)?;
    // Only this version's archives and their checksums: nothing stale is listed.
    for e in std::fs::read_dir(&out_dir)? {
        let p = e?.path();
        let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if name == "SHA256SUMS" || (name.starts_with("pvdump-") && name.ends_with(".tar.gz")) {
            std::fs::remove_file(&p)?;
        }
    }
    let mut sums = String::new();
    for (t, bin) in opts.targets.iter().zip(&bins) {
        let top = format!("pvdump-{}-{}", meta.version, t.triple);
        let mut entries = vec![
            Entry {
                path: format!("{top}/"),
                mode: 0o755,
                data: Vec::new(),
            },
            Entry {
                path: format!("{top}/pvdump"),
                mode: 0o755,
                data: std::fs::read(bin)?,
            },
            Entry {
                path: format!("{top}/pvdump.1"),
                mode: 0o644,
                data: man.clone(),
            },
            Entry {
                path: format!("{top}/completions/"),
                mode: 0o755,
                data: Vec::new(),
            },
        ];
        for (name, data) in &completions {
            entries.push(Entry {
                path: format!("{top}/completions/{name}"),
                mode: 0o644,
                data: data.clone(),
            });
        }
        for (name, data) in &docs {
            entries.push(Entry {
                path: format!("{top}/{name}"),
                mode: 0o644,
                data: data.clone(),
            });
        }
        let archive = gzip(&ustar(&entries, epoch)?)?;
        let name = format!("{top}.tar.gz");
        std::fs::write(out_dir.join(&name), &archive)?;
        sums.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(&archive))));
    }
    std::fs::write(out_dir.join("SHA256SUMS"), &sums)?;
    println!("{sums}");
    eprintln!(
        "dist: {} archives and SHA256SUMS in {} ({:.0} s; SOURCE_DATE_EPOCH={epoch})",
        opts.targets.len(),
        out_dir.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn targets_mirror_the_cross_config() {
        let cfg = std::fs::read_to_string(ws().join(".cargo/cross.toml")).unwrap();
        for t in TARGETS.iter().filter(|t| t.triple != HOST) {
            if t.runner.is_empty() {
                continue;
            }
            let section = cfg
                .split(&format!("[target.{}]", t.triple))
                .nth(1)
                .unwrap_or_else(|| panic!("no [target.{}] in cross.toml", t.triple));
            let section = section.split("\n[").next().unwrap();
            let runner: Vec<String> = t.runner.iter().map(|w| format!("\"{w}\"")).collect();
            assert!(
                section.contains(&runner.join(", ")),
                "{}: runner {:?} not in cross.toml",
                t.triple,
                t.runner
            );
            assert!(
                section.contains(&format!("PVDUMP_TEST_RUNNER={}", t.runner.join(" "))),
                "{}: the tests' runner differs",
                t.triple
            );
            let gcc = t.tools.iter().find(|(tool, _)| tool.ends_with("-gcc")).unwrap().0;
            assert!(section.contains(&format!("linker = \"{gcc}\"")), "{}: linker", t.triple);
        }
    }

    #[test]
    fn every_release_target_is_checked_and_arm64_is_among_them() {
        let release: Vec<&str> = TARGETS.iter().filter(|t| t.release).map(|t| t.triple).collect();
        assert_eq!(
            release,
            [
                HOST,
                "x86_64-unknown-linux-musl",
                "aarch64-unknown-linux-gnu",
                "aarch64-unknown-linux-musl"
            ]
        );
        assert!(
            TARGETS
                .iter()
                .filter(|t| t.triple.contains("musl"))
                .all(|t| t.statically_linked)
        );
        assert!(target("riscv64gc-unknown-linux-gnu").is_err());
    }

    #[test]
    fn this_test_binary_is_dynamically_linked_against_glibc() {
        let me = std::fs::read("/proc/self/exe").unwrap();
        let l = linkage(&me).unwrap();
        assert_eq!(l.machine, EM_X86_64);
        assert!(
            l.interpreter.as_deref().is_some_and(|i| i.contains("ld-linux")),
            "{l:?}"
        );
        assert!(l.needed.iter().any(|n| n.starts_with("libc.so")), "{l:?}");
    }

    /// A minimal static aarch64 executable: ELF header and one PT_LOAD.
    fn tiny_static_elf() -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // 64-bit
        b[5] = 1; // little-endian
        b[6] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        b[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[24..32].copy_from_slice(&0x400078u64.to_le_bytes()); // entry
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        b[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        b[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
        let ph = &mut b[64..];
        ph[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        ph[4..8].copy_from_slice(&5u32.to_le_bytes()); // R+X
        ph[16..24].copy_from_slice(&0x400000u64.to_le_bytes());
        ph[24..32].copy_from_slice(&0x400000u64.to_le_bytes());
        ph[32..40].copy_from_slice(&120u64.to_le_bytes());
        ph[40..48].copy_from_slice(&120u64.to_le_bytes());
        ph[48..56].copy_from_slice(&0x1000u64.to_le_bytes());
        b
    }

    #[test]
    fn a_static_executable_has_no_interpreter_and_no_libraries() {
        let l = linkage(&tiny_static_elf()).unwrap();
        assert_eq!(
            l,
            Linkage {
                machine: EM_AARCH64,
                interpreter: None,
                needed: Vec::new()
            }
        );
        let t = target("aarch64-unknown-linux-musl").unwrap();
        let dir = std::env::temp_dir().join(format!("xtask-dist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("static");
        std::fs::write(&f, tiny_static_elf()).unwrap();
        check_linkage(t, &f).unwrap();
        // The same file is the wrong architecture for x86_64, and a dynamic binary is refused
        // for a static target.
        assert!(check_linkage(target("x86_64-unknown-linux-musl").unwrap(), &f).is_err());
        let me = std::fs::read("/proc/self/exe").unwrap();
        std::fs::write(&f, me).unwrap();
        let err = check_linkage(target("x86_64-unknown-linux-musl").unwrap(), &f).unwrap_err();
        assert!(err.to_string().contains("not statically linked"), "{err}");
        check_linkage(target(HOST).unwrap(), &f).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn sample_entries() -> Vec<Entry> {
        vec![
            Entry {
                path: "pvdump-0.1.0-x/".into(),
                mode: 0o755,
                data: Vec::new(),
            },
            Entry {
                path: "pvdump-0.1.0-x/pvdump".into(),
                mode: 0o755,
                data: b"#!/bin/sh\necho hi\n".to_vec(),
            },
            Entry {
                path: "pvdump-0.1.0-x/README.md".into(),
                mode: 0o644,
                data: vec![b'r'; 1000],
            },
        ]
    }

    #[test]
    fn archives_are_byte_identical_and_tar_reads_them() {
        let a = gzip(&ustar(&sample_entries(), 1_700_000_000).unwrap()).unwrap();
        let b = gzip(&ustar(&sample_entries(), 1_700_000_000).unwrap()).unwrap();
        assert_eq!(a, b);
        let c = gzip(&ustar(&sample_entries(), 1_700_000_001).unwrap()).unwrap();
        assert_ne!(a, c, "the mtime is in the archive");
        let raw = ustar(&sample_entries(), 1_700_000_000).unwrap();
        assert_eq!(raw.len() % 512, 0);
        // 3 headers, 1 + 2 data blocks, 2 end blocks.
        assert_eq!(raw.len(), 512 * (3 + 3 + 2));

        if !on_path("tar") {
            panic!("tar is not installed");
        }
        let dir = std::env::temp_dir().join(format!("xtask-tar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.tar.gz");
        std::fs::write(&f, &a).unwrap();
        let listing = capture(
            Command::new("tar")
                .args(["--numeric-owner", "--full-time", "--utc", "-tvzf"])
                .arg(&f),
        )
        .unwrap();
        let lines: Vec<Vec<&str>> = listing.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines.len(), 3, "{listing}");
        assert_eq!(lines[0][0], "drwxr-xr-x");
        assert_eq!(lines[1][0], "-rwxr-xr-x");
        assert_eq!(lines[2][0], "-rw-r--r--");
        for l in &lines {
            assert_eq!(l[1], "0/0", "{listing}");
            assert_eq!(l[3], "2023-11-14", "{listing}");
            assert_eq!(l[4], "22:13:20", "{listing}");
        }
        assert_eq!(lines[1][2], "18");
        assert_eq!(lines[2][5], "pvdump-0.1.0-x/README.md");
        run_status(Command::new("tar").arg("-xzf").arg(&f).arg("-C").arg(&dir)).unwrap();
        assert_eq!(
            std::fs::read(dir.join("pvdump-0.1.0-x/pvdump")).unwrap(),
            b"#!/bin/sh\necho hi\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tar_refuses_what_it_cannot_represent() {
        let long = Entry {
            path: "x".repeat(101),
            mode: 0o644,
            data: Vec::new(),
        };
        assert!(ustar(&[long], 0).is_err());
        let mut field = [0u8; 8];
        assert!(octal(&mut field, 0o7777777).is_ok());
        assert!(octal(&mut field, 0o10000000).is_err());
    }

    #[test]
    fn parse_puts_the_host_first_and_defaults_to_the_release_targets() {
        let o = parse(&[]).unwrap();
        let t: Vec<&str> = o.targets.iter().map(|t| t.triple).collect();
        assert_eq!(t[0], HOST);
        assert_eq!(t.len(), 4);
        let o = parse(&[
            "--target".into(),
            "s390x-unknown-linux-gnu".into(),
            "--no-verify".into(),
        ])
        .unwrap();
        let t: Vec<&str> = o.targets.iter().map(|t| t.triple).collect();
        assert_eq!(t, [HOST, "s390x-unknown-linux-gnu"]);
        assert!(!o.verify);
        assert!(parse(&["--target".into()]).is_err());
        assert!(parse(&["--bogus".into()]).is_err());
    }
}
