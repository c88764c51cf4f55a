//! The side-by-side part of `cargo xtask bench` (issue 12): pvdump against the reference
//! tools on the same machine, in the same alternating rounds, on synthetic content and on
//! the memory of a real s390x Linux guest.
//!
//! - AES-256-XTS: `pvdump decrypt -o - > /dev/null` (all cores) against
//!   `openssl speed -evp aes-256-xts -bytes 4096 -multi CORES`.
//! - kdump compression: `pvdump decrypt --format kdump -c zlib|zstd|lzo` against
//!   `pigz -1 -p CORES`, `zstd -1 -T CORES` and `lzop -1` compressing the plaintext (the ELF
//!   vmcore pvdump decrypts from the same dump), every output written to the same directory.
//!
//! The real-kernel input is a plain ELF dump of a real guest (QEMU `dump-guest-memory`),
//! sealed once into a PV dump with the simulated Ultravisor (`cargo xtask synth
//! --content-from`) and cached under target/bench.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::bench::{Sample, measure, median};

/// One encrypted dump with its key and its decrypted plaintext (ELF vmcore).
pub struct Case {
    /// What the memory is ("synthetic", "real kernel").
    pub label: String,
    /// The encrypted PV dump.
    pub dump: PathBuf,
    /// Its customer key.
    pub key: PathBuf,
    /// Where the plaintext is (made by [`plaintext`]).
    pub plain: PathBuf,
}

/// Where to look for a plain dump of a real guest: `--real`, `$PVDUMP_REAL_ELF`, the
/// real-kernel task's cache (`$PVDUMP_REAL_KERNEL_CACHE` or target/real-kernel, bookworm
/// then trixie), then the shared cache of this project's machines.
pub fn find_real(ws: &Path, explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("--real {}: no such file", p.display()))
        };
    }
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os("PVDUMP_REAL_ELF") {
        tried.push(PathBuf::from(p));
    }
    let cache = std::env::var_os("PVDUMP_REAL_KERNEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target/real-kernel"));
    for suite in ["bookworm", "trixie"] {
        tried.push(cache.join(suite).join("dump/real-256m-2cpu.elf"));
    }
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(format!(
            "no plain dump of a real guest found (looked at {}); make one with `cargo xtask real-kernel --suite bookworm` \
             (or ../shared/tools/real_s390x_dump.sh) or pass --real PLAIN.elf",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Seals the real plain dump `plain` into a PV dump under `dir` (cached by the plain
/// dump's size and modification time).
pub fn seal_real(dir: &Path, plain: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let meta = std::fs::metadata(plain).with_context(|| plain.display().to_string())?;
    let stamp = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let stem = plain
        .file_stem()
        .map_or("real".into(), |s| s.to_string_lossy().into_owned());
    let dump = dir.join(format!("sealed-{stem}-{}-{stamp}.elf", meta.len()));
    let key = dump.with_extension("cck");
    if !dump.is_file() || !key.is_file() {
        eprintln!(
            "sealing {} into {} (simulated Ultravisor)...",
            plain.display(),
            dump.display()
        );
        let tmp = dump.with_extension("tmp");
        crate::synth::seal_file(plain, &tmp, &key, &pvdump_synth::SealOptions::default())?;
        std::fs::rename(&tmp, &dump)?;
    }
    Ok((dump, key))
}

/// Decrypts `dump` once into its ELF plaintext next to it (kept while the dump is older),
/// and reads both into the page cache.
pub fn plaintext(bin: &Path, dump: &Path, key: &Path) -> anyhow::Result<PathBuf> {
    let plain = dump.with_extension("plain.elf");
    let fresh = match (std::fs::metadata(dump), std::fs::metadata(&plain)) {
        (Ok(d), Ok(p)) => match (d.modified(), p.modified()) {
            (Ok(d), Ok(p)) => p >= d,
            _ => false,
        },
        _ => false,
    };
    if !fresh {
        let status = Command::new(bin)
            .args(["decrypt", "-q", "--force", "--key"])
            .arg(key)
            .arg(dump)
            .arg("-o")
            .arg(&plain)
            .status()?;
        if !status.success() {
            bail!("decrypting {} failed", dump.display());
        }
    }
    for p in [dump, &plain] {
        std::io::copy(&mut File::open(p)?, &mut std::io::sink())?;
    }
    Ok(plain)
}

/// AES-256-XTS on 4 KiB blocks in all processes together, in bytes per second, from
/// `openssl speed` (its last line: `AES-256-XTS  <N>k`, thousands of bytes per second).
fn openssl_xts(cores: usize) -> anyhow::Result<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", "2", "-bytes", "4096", "-multi", &cores.to_string()])
        .args(["-evp", "aes-256-xts"])
        .stderr(Stdio::null())
        .output()
        .context("running openssl speed (apt-get install openssl)")?;
    if !out.status.success() {
        bail!("openssl speed failed");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?;
            let v = w.next()?;
            (name.eq_ignore_ascii_case("aes-256-xts") && w.next().is_none())
                .then(|| v.strip_suffix('k')?.parse::<f64>().ok())
                .flatten()
        })
        .next()
        .map(|k| k * 1000.0)
        .with_context(|| format!("no AES-256-XTS line in openssl speed's output:\n{text}"))
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One line of the side-by-side table: pvdump and the reference doing the same work.
struct Pair {
    what: &'static str,
    ours: Box<dyn Fn() -> anyhow::Result<Command>>,
    theirs: Box<dyn Fn() -> anyhow::Result<Command>>,
    /// Output files (ours, theirs), removed after every run and measured for the size.
    outs: Option<(PathBuf, PathBuf)>,
    reference: String,
}

/// A verdict line for the summary.
pub struct Target {
    /// What the target is.
    pub what: String,
    /// The measured value, in words.
    pub measured: String,
    /// Whether it is met.
    pub met: bool,
}

/// Runs the side-by-side comparisons on `case` and returns the markdown table and the
/// targets it decides.
pub fn compare(
    bin: &Path,
    case: &Case,
    out_dir: &Path,
    runs: usize,
    cores: usize,
) -> anyhow::Result<(String, Vec<Target>)> {
    std::fs::create_dir_all(out_dir)?;
    for tool in ["openssl", "pigz", "zstd", "lzop"] {
        if !on_path(tool) {
            bail!("{tool} is not installed (apt-get install openssl pigz zstd lzop)");
        }
    }
    let dump_len = std::fs::metadata(&case.dump)?.len();
    let plain_len = std::fs::metadata(&case.plain)?.len();
    let null = || -> anyhow::Result<Stdio> { Ok(Stdio::from(File::create("/dev/null")?)) };
    let mut pairs: Vec<Pair> = Vec::new();
    let (b, k, d) = (bin.to_path_buf(), case.key.clone(), case.dump.clone());
    pairs.push(Pair {
        what: "AES-256-XTS: decrypt -o - > /dev/null",
        ours: Box::new(move || {
            let mut c = Command::new(&b);
            c.args(["decrypt", "-q", "--key"])
                .arg(&k)
                .arg(&d)
                .args(["-o", "-"])
                .stdout(null()?);
            Ok(c)
        }),
        theirs: Box::new(|| Ok(Command::new("true"))),
        outs: None,
        reference: format!("openssl speed -evp aes-256-xts -bytes 4096 -multi {cores}"),
    });
    let tools: [(&'static str, &'static str, Vec<String>); 3] = [
        (
            "kdump zlib",
            "zlib",
            vec!["pigz".into(), "-1".into(), "-p".into(), cores.to_string()],
        ),
        (
            "kdump zstd",
            "zstd",
            vec!["zstd".into(), "-q".into(), "-1".into(), format!("-T{cores}")],
        ),
        ("kdump lzo", "lzo", vec!["lzop".into(), "-1".into()]),
    ];
    for (what, comp, tool) in tools {
        let ours_out = out_dir.join(format!("bench.{comp}.kdump"));
        let theirs_out = out_dir.join(format!("bench.{comp}.{}", tool[0]));
        let (b, k, d, o) = (bin.to_path_buf(), case.key.clone(), case.dump.clone(), ours_out.clone());
        let (p, t, to) = (case.plain.clone(), tool.clone(), theirs_out.clone());
        pairs.push(Pair {
            what,
            ours: Box::new(move || {
                let mut c = Command::new(&b);
                c.args(["decrypt", "-q", "--format", "kdump", "-c", comp, "--key"])
                    .arg(&k)
                    .arg(&d)
                    .arg("-o")
                    .arg(&o);
                Ok(c)
            }),
            theirs: Box::new(move || {
                let mut c = Command::new(&t[0]);
                c.args(&t[1..])
                    .arg("-c")
                    .arg(&p)
                    .stdout(Stdio::from(File::create(&to)?));
                Ok(c)
            }),
            outs: Some((ours_out, theirs_out)),
            reference: format!("{} -c PLAIN > FILE", tool.join(" ")),
        });
    }

    let mut ours: Vec<Vec<Sample>> = (0..pairs.len()).map(|_| Vec::new()).collect();
    let mut theirs: Vec<Vec<f64>> = (0..pairs.len()).map(|_| Vec::new()).collect();
    let mut theirs_cpu: Vec<Vec<f64>> = (0..pairs.len()).map(|_| Vec::new()).collect();
    let mut sizes: Vec<(u64, u64)> = vec![(0, 0); pairs.len()];
    for run in 0..runs {
        for (i, p) in pairs.iter().enumerate() {
            let s = measure((p.ours)()?)?;
            let (t, tc) = if i == 0 {
                // Bytes per second in all processes; stored as the seconds the dump's size
                // takes on all cores (CPU: that times the cores).
                let t = dump_len as f64 / openssl_xts(cores)?;
                (t, t * cores as f64)
            } else {
                let r = measure((p.theirs)()?)?;
                (r.wall, r.cpu)
            };
            if let Some((a, b)) = &p.outs {
                sizes[i] = (
                    std::fs::metadata(a).map_or(0, |m| m.len()),
                    std::fs::metadata(b).map_or(0, |m| m.len()),
                );
                let _ = std::fs::remove_file(a);
                let _ = std::fs::remove_file(b);
            }
            eprintln!(
                "run {}/{runs} [{}]: {:<40} pvdump {:>7.3} s, reference {:>7.3} s",
                run + 1,
                case.label,
                p.what,
                s.wall,
                t
            );
            ours[i].push(s);
            theirs[i].push(t);
            theirs_cpu[i].push(tc);
        }
    }

    let mut table = format!(
        "{}: {} ({} bytes; plaintext {} bytes), {cores} cores, median of {runs} alternating runs.\n\n\
         | work | pvdump | reference | pvdump wall | reference wall | speed, pvdump / reference | CPU s, pvdump / reference | output size, pvdump / reference | pvdump peak RssAnon |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|\n",
        case.label,
        case.dump.display(),
        dump_len,
        plain_len
    );
    let mut targets = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        let w = median(ours[i].iter().map(|s| s.wall).collect());
        let r = median(theirs[i].clone());
        let rss = ours[i].iter().map(|s| s.rss_anon_kib).max().unwrap_or(0);
        let cpu = format!(
            "{:.2} / {:.2}",
            median(ours[i].iter().map(|s| s.cpu).collect()),
            median(theirs_cpu[i].clone())
        );
        let speed = r / w;
        let size = if p.outs.is_some() {
            format!(
                "{:.1} / {:.1} MiB",
                sizes[i].0 as f64 / 1048576.0,
                sizes[i].1 as f64 / 1048576.0
            )
        } else {
            "-".into()
        };
        let (ours_cmd, ref_wall) = if i == 0 {
            (
                "decrypt -o - > /dev/null".to_string(),
                format!("{:.2} GB/s ({:.3} s for the dump)", dump_len as f64 / r / 1e9, r),
            )
        } else {
            (
                format!("decrypt --format kdump -c {}", p.what.trim_start_matches("kdump ")),
                format!("{r:.3} s"),
            )
        };
        table.push_str(&format!(
            "| {} | `{ours_cmd}` | `{}` | {w:.3} s ({:.2} GB/s) | {ref_wall} | {:.0}% | {cpu} | {size} | {:.1} MiB |\n",
            p.what,
            p.reference,
            dump_len as f64 / w / 1e9,
            100.0 * speed,
            rss as f64 / 1024.0
        ));
        let (what, need) = if i == 0 {
            (format!("{}: XTS decrypt >= 60% of openssl multi-core", case.label), 0.6)
        } else {
            (
                format!(
                    "{}: {} at least as fast as {}",
                    case.label,
                    p.what,
                    p.reference.split(" -c").next().unwrap_or("")
                ),
                1.0,
            )
        };
        targets.push(Target {
            what,
            measured: format!("{:.0}%", 100.0 * speed),
            met: speed >= need,
        });
    }
    let peak = ours.iter().flatten().map(|s| s.rss_anon_kib).max().unwrap_or(0);
    targets.push(Target {
        what: format!("{}: pvdump anonymous memory <= 256 MiB", case.label),
        measured: format!("{:.1} MiB", peak as f64 / 1024.0),
        met: peak <= 256 * 1024,
    });
    table.push_str(
        "\nSpeed is the reference's wall time over pvdump's (100% = as fast); for XTS it is pvdump's \
         bytes of dump per second over openssl's AES-256-XTS bytes per second in all processes. \
         pvdump also decrypts (and checks) every page; the reference tools compress the plaintext \
         ELF vmcore pvdump wrote from the same dump. CPU is user + system seconds \
         (openssl: its run time for the dump's bytes times the cores), the fairer comparison \
         when the machine is shared.\n",
    );
    Ok((table, targets))
}
