//! What `dist` checks of every binary: static linkage, byte-identical outputs against the
//! native build, the ARMv8 AES path on arm64.

use super::*;

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
pub(super) fn check_linkage(t: &Target, bin: &Path) -> anyhow::Result<()> {
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
pub(super) fn runner(t: &Target, bin: &Path) -> Command {
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
pub(super) fn dump_dirs(ws: &Path) -> anyhow::Result<Vec<PathBuf>> {
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
pub(super) enum Shape {
    Info,
    Elf,
    Kdump(&'static str),
}

pub(super) const SHAPES: &[Shape] = &[
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
pub(super) fn shape_digest(mut cmd: Command, dir: &Path, shape: Shape, scratch: &Path) -> anyhow::Result<String> {
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
pub(super) fn digests(
    t: &Target,
    bin: &Path,
    dumps: &[PathBuf],
    scratch: &Path,
) -> anyhow::Result<BTreeMap<String, String>> {
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
pub(super) fn check_armv8_aes(t: &Target, bin: &Path, dump: &Path, scratch: &Path) -> anyhow::Result<()> {
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
pub(super) fn native_output(native: &Path, args: &[&str]) -> anyhow::Result<Vec<u8>> {
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
