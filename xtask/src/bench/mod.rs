//! `cargo xtask bench`: end-to-end throughput of the release `pvdump` binary against `cp`,
//! on a cached synthetic dump, with peak anonymous memory and CPU use; then pvdump side by
//! side with `openssl speed`, `pigz`, `zstd` and `lzop` on synthetic content and on a real
//! guest's memory (xtask/src/bench_refs.rs), and the issue-12 targets met or not; written
//! to docs/performance.md. Never run in CI.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pvdump_synth::{Content, SynthSpec};

use crate::bench_refs;

const MIB: u64 = 1 << 20;

pub struct Options {
    pub size_mib: u64,
    pub real: Option<PathBuf>,
    pub no_real: bool,
    pub runs: usize,
    pub out_dirs: Vec<PathBuf>,
    pub rss_sizes: Vec<u64>,
    pub write_doc: bool,
    /// Only the modes of part 1 whose name contains this (a quick look at one comparison);
    /// the report is then not written to docs/performance.md.
    pub only: Option<String>,
}

pub(crate) struct Sample {
    pub(crate) wall: f64,
    pub(crate) cpu: f64,
    pub(crate) rss_anon_kib: u64,
}

/// Runs a command to completion, sampling RssAnon every 2 ms, and returns wall time, CPU
/// seconds (user + system, from wait4) and peak RssAnon.
pub(crate) fn measure(mut cmd: Command) -> anyhow::Result<Sample> {
    let start = Instant::now();
    let child = cmd.spawn().context("spawning benchmark command")?;
    let pid = child.id() as libc::pid_t;
    let status_path = format!("/proc/{pid}/status");
    let mut peak = 0u64;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let rss = std::fs::read_to_string(&status_path).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("RssAnon:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        });
        peak = peak.max(rss.unwrap_or(0));
        // SAFETY: plain wait4 on our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if r < 0 {
            bail!("wait4 failed: {}", std::io::Error::last_os_error());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = start.elapsed().as_secs_f64();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("benchmark command failed with status {status:#x}: {cmd:?}");
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    std::mem::forget(child);
    Ok(Sample {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        rss_anon_kib: peak,
    })
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The benchmark dump of `mib` MiB (20% zero pages, 5% shared, kernel-like content),
/// generated once and cached under target/bench.
fn dump(ws: &Path, mib: u64) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = ws.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("pv-{mib}m.elf"));
    let key = dir.join(format!("pv-{mib}m.cck"));
    let mut spec = SynthSpec::simple(0xbe4c_0000 + mib, mib, 8);
    spec.zero_permille = 200;
    spec.shared_permille = 50;
    spec.content = Content::Compressible;
    if !path.exists() || !key.exists() {
        eprintln!("generating {} ({mib} MiB, simulated Ultravisor)...", path.display());
        let tmp = path.with_extension("tmp");
        let mut w = std::io::BufWriter::with_capacity(4 * MIB as usize, File::create(&tmp)?);
        spec.write_dump(&mut w)?;
        w.flush()?;
        drop(w);
        std::fs::rename(&tmp, &path)?;
        std::fs::write(&key, spec.cck())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    }
    // Bring the input into the page cache.
    std::io::copy(&mut File::open(&path)?, &mut std::io::sink())?;
    Ok((path, key))
}

fn fs_type(dir: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0) >> 20)
        })
        .unwrap_or(0);
    format!(
        "{cpu}, {cores} cores, {mem} GiB RAM, AES-NI {}, VAES {}; {} {}",
        if has("aes") { "yes" } else { "no" },
        if has("vaes") { "yes" } else { "no" },
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

struct Mode {
    name: String,
    dest: Option<PathBuf>,
    /// Before each run (untimed), `dest` is made a copy of the input: the command replaces
    /// an existing file of the same size (`cp` over it, `pvdump --force`).
    existing: bool,
    cmd: Box<dyn Fn() -> Command>,
}

/// `cp INPUT DEST`.
fn cp_mode(name: String, input: &Path, dest: PathBuf, existing: bool) -> Mode {
    let (i, d) = (input.to_path_buf(), dest.clone());
    Mode {
        name,
        dest: Some(dest),
        existing,
        cmd: Box::new(move || {
            let mut c = Command::new("cp");
            c.arg(&i).arg(&d);
            c
        }),
    }
}

/// `pvdump decrypt -q ARGS --key KEY INPUT -o DEST`.
fn decrypt_mode(
    name: String,
    bin: &Path,
    key: &Path,
    input: &Path,
    dest: PathBuf,
    args: &[&'static str],
    existing: bool,
) -> Mode {
    let (b, k, i, d, args) = (
        bin.to_path_buf(),
        key.to_path_buf(),
        input.to_path_buf(),
        dest.clone(),
        args.to_vec(),
    );
    Mode {
        name,
        dest: Some(dest),
        existing,
        cmd: Box::new(move || {
            let mut c = Command::new(&b);
            c.args(["decrypt", "-q"])
                .args(&args)
                .arg("--key")
                .arg(&k)
                .arg(&i)
                .arg("-o")
                .arg(&d);
            c
        }),
    }
}

pub fn run(ws: &Path, o: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let status = Command::new("cargo")
        .args(["build", "--release", "-q", "-p", "pvdump"])
        .current_dir(ws)
        .status()?;
    if !status.success() {
        bail!("cargo build --release -p pvdump failed");
    }
    let bin = ws.join("target/release/pvdump");
    let (input, key) = dump(ws, o.size_mib)?;
    let size = std::fs::metadata(&input)?.len();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);

    let mut modes: Vec<Mode> = Vec::new();
    let kdump = kdump_supported(&bin);
    for dir in &o.out_dirs {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let label = format!("{} ({})", dir.display(), fs_type(dir));
        modes.push(cp_mode(format!("cp → {label}"), &input, dir.join("cp.out"), false));
        let elf = dir.join("out.elf");
        modes.push(decrypt_mode(
            format!("decrypt ELF → {label}"),
            &bin,
            &key,
            &input,
            elf,
            &[],
            false,
        ));
        for comp in ["zstd", "zlib"].into_iter().filter(|_| kdump) {
            let out = dir.join(format!("out.{comp}.kdump"));
            let args = ["--format", "kdump", "--compress", comp];
            modes.push(decrypt_mode(
                format!("decrypt kdump {comp} → {label}"),
                &bin,
                &key,
                &input,
                out,
                &args,
                false,
            ));
        }
    }
    // Replacing an existing file of the same size: `cp` truncates it and writes into it,
    // `pvdump --force` writes a new private file and swaps it with the old one.
    for dir in &o.out_dirs {
        let label = format!("{} ({})", dir.display(), fs_type(dir));
        let dest = dir.join("existing.out");
        modes.push(cp_mode(
            format!("cp over an existing file → {label}"),
            &input,
            dest.clone(),
            true,
        ));
        // The atomic way to replace a file with cp, for comparison: like pvdump, it needs
        // memory for the new file while the old one still exists. Its name must not start
        // with "cp": modes named so are the references the ratios below divide by.
        let (i, d) = (input.clone(), dest.clone());
        modes.push(Mode {
            name: format!("atomic cp (cp to a new file, mv over an existing file) → {label}"),
            dest: Some(dest.clone()),
            existing: true,
            cmd: Box::new(move || {
                let mut c = Command::new("sh");
                c.args(["-c", "cp \"$1\" \"$2.new\" && mv \"$2.new\" \"$2\"", "sh"])
                    .arg(&i)
                    .arg(&d);
                c
            }),
        });
        let name = format!("decrypt ELF --force over an existing file → {label}");
        modes.push(decrypt_mode(name, &bin, &key, &input, dest, &["--force"], true));
    }
    for threads in [1, cores] {
        let (i5, k5, b5) = (input.clone(), key.clone(), bin.clone());
        modes.push(Mode {
            name: format!("decrypt -o - > /dev/null, {threads} thread(s)"),
            dest: None,
            existing: false,
            cmd: Box::new(move || {
                let mut c = Command::new(&b5);
                c.args(["decrypt", "-q", "--threads", &threads.to_string(), "--key"])
                    .arg(&k5)
                    .arg(&i5)
                    .args(["-o", "-"])
                    .stdout(Stdio::from(File::create("/dev/null").expect("/dev/null")));
                c
            }),
        });
    }

    if let Some(only) = &o.only {
        modes.retain(|m| m.name.contains(only.as_str()));
    }
    let mut samples: Vec<Vec<Sample>> = (0..modes.len()).map(|_| Vec::new()).collect();
    for run in 0..o.runs {
        for (m, s) in modes.iter().zip(samples.iter_mut()) {
            if let Some(d) = &m.dest {
                let _ = std::fs::remove_file(d);
                if m.existing {
                    std::fs::copy(&input, d).with_context(|| format!("preparing {}", d.display()))?;
                }
            }
            // Untimed: the existing file and whatever earlier runs left dirty reach the disk
            // first, so no run pays for another's writeback.
            // SAFETY: sync(2) takes no arguments and cannot fail.
            unsafe { libc::sync() };
            let sample = measure((m.cmd)())?;
            eprintln!("run {}/{}: {:<55} {:>7.3} s", run + 1, o.runs, m.name, sample.wall);
            s.push(sample);
            if let Some(d) = &m.dest {
                let _ = std::fs::remove_file(d);
            }
        }
    }

    let mut table = String::new();
    table.push_str(
        "| mode | wall (median) | MB/s of input | vs cp | peak RssAnon | CPU |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let cp_wall: Vec<f64> = modes
        .iter()
        .zip(&samples)
        .filter(|(m, _)| m.name.starts_with("cp"))
        .map(|(_, s)| median(s.iter().map(|x| x.wall).collect()))
        .collect();
    let mut cp_iter = 0usize;
    let mut cp_ref = cp_wall.first().copied().unwrap_or(f64::NAN);
    let mut targets: Vec<bench_refs::Target> = Vec::new();
    for (m, s) in modes.iter().zip(&samples) {
        let wall = median(s.iter().map(|x| x.wall).collect());
        let cpu = median(s.iter().map(|x| x.cpu).collect());
        let rss = s.iter().map(|x| x.rss_anon_kib).max().unwrap_or(0);
        if m.name.starts_with("cp") {
            cp_ref = cp_wall.get(cp_iter).copied().unwrap_or(cp_ref);
            cp_iter += 1;
        }
        let ratio = if m.dest.is_some() {
            format!("{:.2}x", wall / cp_ref)
        } else {
            "-".into()
        };
        if let Some(label) = m.name.strip_prefix("decrypt ELF --force over an existing file → ") {
            targets.push(bench_refs::Target {
                what: format!("ELF --force over an existing file no slower than cp over it: {label}"),
                measured: format!("{:.2}x", wall / cp_ref),
                met: wall / cp_ref <= 1.0,
            });
        }
        if let Some(label) = m.name.strip_prefix("decrypt ELF → ") {
            let limit = if label.ends_with("(tmpfs)") { 1.0 } else { 1.1 };
            targets.push(bench_refs::Target {
                what: format!("ELF to a file within {limit:.1}x cp: {label}"),
                measured: format!("{:.2}x", wall / cp_ref),
                met: wall / cp_ref <= limit,
            });
        }
        if rss > 256 * 1024 {
            targets.push(bench_refs::Target {
                what: format!("anonymous memory <= 256 MiB: {}", m.name),
                measured: format!("{:.1} MiB", rss as f64 / 1024.0),
                met: false,
            });
        }
        table.push_str(&format!(
            "| {} | {:.3} s | {:.0} | {} | {:.1} MiB | {:.0}% |\n",
            m.name,
            wall,
            size as f64 / wall / 1e6,
            ratio,
            rss as f64 / 1024.0,
            100.0 * cpu / wall
        ));
    }

    if o.only.is_some() {
        println!("{table}");
        return Ok(());
    }
    let mut rss_table = if o.rss_sizes.is_empty() {
        String::new()
    } else {
        String::from("| dump size | peak RssAnon, decrypt ELF to file |\n|---:|---:|\n")
    };
    for &mib in &o.rss_sizes {
        let (inp, k) = dump(ws, mib)?;
        let dest = o
            .out_dirs
            .first()
            .cloned()
            .unwrap_or_else(std::env::temp_dir)
            .join("rss.elf");
        let _ = std::fs::remove_file(&dest);
        let mut c = Command::new(&bin);
        c.args(["decrypt", "-q", "--key"])
            .arg(&k)
            .arg(&inp)
            .arg("-o")
            .arg(&dest);
        let s = measure(c)?;
        let _ = std::fs::remove_file(&dest);
        rss_table.push_str(&format!("| {mib} MiB | {:.1} MiB |\n", s.rss_anon_kib as f64 / 1024.0));
    }

    let mount_table = mount::run(&bin, &input, &key, o.runs)?;

    // Side by side with the reference tools, on synthetic and on real kernel memory.
    let out_dir = o.out_dirs.first().cloned().unwrap_or_else(std::env::temp_dir);
    let bench_dir = ws.join("target/bench");
    let mut cases = vec![bench_refs::Case {
        label: "synthetic".into(),
        plain: bench_refs::plaintext(&bin, &input, &key)?,
        dump: input.clone(),
        key: key.clone(),
    }];
    let real_note;
    if o.no_real {
        real_note = "Real kernel memory: not measured (--no-real).\n".into();
    } else {
        match bench_refs::find_real(ws, o.real.as_deref()) {
            Ok(plain) => {
                let (dump, key) = bench_refs::seal_real(&bench_dir, &plain)?;
                real_note = format!(
                    "Real kernel memory: {} sealed into {}.\n",
                    plain.display(),
                    dump.display()
                );
                cases.push(bench_refs::Case {
                    label: "real kernel".into(),
                    plain: bench_refs::plaintext(&bin, &dump, &key)?,
                    dump,
                    key,
                });
            }
            Err(why) => {
                eprintln!("\n!!!!! real kernel memory not measured: {why} !!!!!\n");
                real_note = format!("Real kernel memory: NOT measured: {why}.\n");
            }
        }
    }
    let mut side = String::new();
    for case in &cases {
        let (t, mut v) = bench_refs::compare(&bin, case, &out_dir, o.runs, cores)?;
        side.push_str(&t);
        side.push('\n');
        targets.append(&mut v);
    }
    let mut verdict = String::from("| issue-12 target | measured | met |\n|---|---:|---|\n");
    for t in &targets {
        verdict.push_str(&format!(
            "| {} | {} | {} |\n",
            t.what,
            t.measured,
            if t.met { "yes" } else { "**no**" }
        ));
    }

    let args: Vec<String> = std::env::args().skip(2).collect();
    let report = format!(
        "Command: `cargo xtask bench{}{}`\nMachine: {}\nLoad average before the run: {} (after: {})\nTotal time: {:.0} s\n\n\
         Input: {} ({} bytes, 20% zero pages, 5% shared, kernel-like content), in the page cache. Median of {} alternating runs.\n\n{}\n{}\n{}\n\
         ### Side by side with the reference tools\n\n{real_note}\n{side}\n### Issue-12 targets\n\n{verdict}",
        if args.is_empty() { "" } else { " " },
        args.join(" "),
        machine(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        started.elapsed().as_secs_f64(),
        input.display(),
        size,
        o.runs,
        table,
        rss_table,
        mount_table
    );
    println!("{report}");
    if o.write_doc {
        let doc = ws.join("docs/performance.md");
        let old = std::fs::read_to_string(&doc).unwrap_or_default();
        let marker = "<!-- bench:begin -->";
        let end = "<!-- bench:end -->";
        let new_block = format!("{marker}\n{report}\n{end}");
        let text = match (old.find(marker), old.find(end)) {
            (Some(a), Some(b)) => format!("{}{}{}", &old[..a], new_block, &old[b + end.len()..]),
            _ => format!("{old}\n{new_block}\n"),
        };
        std::fs::write(&doc, text)?;
        eprintln!("updated {}", doc.display());
    }
    Ok(())
}

fn kdump_supported(bin: &Path) -> bool {
    Command::new(bin)
        .args(["decrypt", "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("kdump"))
        .unwrap_or(false)
}

/// `cargo xtask bench --help`.
pub const HELP: &str = "usage: cargo xtask bench [--size MIB] [--runs N] [--out DIR]... [--rss-sizes 1024,4096]
                         [--real PLAIN.elf | --no-real] [--no-doc] [--only TEXT]

Benchmarks the release pvdump (built first) on this machine and writes the report between
the bench markers of docs/performance.md (unless --no-doc; --only TEXT runs just the
modes of part 1 whose name contains TEXT and prints their table). Never run in CI; about 3 minutes
on a 2-core machine at the defaults. Measures, in alternating rounds (median of --runs, 3):

  1. cp against decrypt to an ELF file and to kdump (zstd, zlib), per --out directory
     (default /dev/shm/pvdump-bench and target/bench/out); cp over an existing copy of the
     input against decrypt --force over it (the copy is made before each run, untimed),
     with `cp` to a new file then `mv` over the existing one (atomic, as pvdump replaces)
     for comparison; and decrypt -o - > /dev/null on
     1 and all threads, on a synthetic dump of --size MiB (default 256; 20% zero pages, 5%
     shared, kernel-like content), cached under target/bench;
  2. peak RssAnon of decrypt for each --rss-sizes dump size;
  3. pvdump mount read back with cat and dd (root and /dev/fuse only);
  4. side by side with the reference tools, on the synthetic dump and on real kernel
     memory: decrypt -o - > /dev/null against `openssl speed -evp aes-256-xts -bytes 4096
     -multi CORES`; kdump -c zlib / zstd / lzo against `pigz -1 -p CORES`, `zstd -1
     -T CORES` and `lzop -1` of the same plaintext (the ELF pvdump decrypts), all outputs
     in the first --out directory;
  5. a table of the issue-12 targets, met or not.

Real kernel memory: a plain ELF dump of a real s390x guest, sealed once into a PV dump
(as `cargo xtask synth --content-from` does) and cached under target/bench. Found at
--real, else $PVDUMP_REAL_ELF, else the real-kernel cache
($PVDUMP_REAL_KERNEL_CACHE or target/real-kernel)/{bookworm,trixie}/dump/real-256m-2cpu.elf
(`cargo xtask real-kernel --suite bookworm` makes it). When none exists the bench says so
loudly and the report says NOT measured; --no-real skips it.

Needs: openssl, pigz, zstd, lzop (apt-get install openssl pigz zstd lzop).";

pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        size_mib: 256,
        runs: 3,
        real: None,
        no_real: false,
        out_dirs: Vec::new(),
        rss_sizes: Vec::new(),
        write_doc: true,
        only: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--size" => o.size_mib = val()?.parse()?,
            "--runs" => o.runs = val()?.parse()?,
            "--out" => o.out_dirs.push(PathBuf::from(val()?)),
            "--rss-sizes" => {
                o.rss_sizes = val()?.split(',').map(|s| s.trim().parse()).collect::<Result<_, _>>()?;
            }
            "--no-doc" => o.write_doc = false,
            "--real" => o.real = Some(PathBuf::from(val()?)),
            "--no-real" => o.no_real = true,
            "--only" => {
                o.only = Some(val()?);
                o.write_doc = false;
            }
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown option {other}\n{HELP}"),
        }
    }
    if o.out_dirs.is_empty() {
        o.out_dirs.push(PathBuf::from("/dev/shm/pvdump-bench"));
        o.out_dirs.push(crate::workspace().join("target/bench/out"));
    }
    if o.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(o)
}

/// `pvdump mount`: reading the whole mounted vmcore.elf with `cat` and `dd bs=1M`, against
/// `pvdump decrypt -o - > /dev/null` in the same rounds; the server's peak RssAnon and CPU.
mod mount;
