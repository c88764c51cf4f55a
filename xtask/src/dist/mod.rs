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

mod archive;
mod checks;
mod cross_test;
#[cfg(test)]
mod tests;

pub use archive::*;
pub use checks::*;
pub use cross_test::*;

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
