//! `cargo xtask bench`: end-to-end throughput of the release `pvdump` binary against `cp`,
//! on a cached synthetic dump, with peak anonymous memory and CPU use, written to
//! docs/performance.md.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pvdump_synth::{Content, SynthSpec};

const MIB: u64 = 1 << 20;

pub struct Options {
    pub size_mib: u64,
    pub runs: usize,
    pub out_dirs: Vec<PathBuf>,
    pub rss_sizes: Vec<u64>,
    pub write_doc: bool,
}

struct Sample {
    wall: f64,
    cpu: f64,
    rss_anon_kib: u64,
}

/// Runs a command to completion, sampling RssAnon every 2 ms, and returns wall time, CPU
/// seconds (user + system, from wait4) and peak RssAnon.
fn measure(mut cmd: Command) -> anyhow::Result<Sample> {
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

fn median(mut v: Vec<f64>) -> f64 {
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
    cmd: Box<dyn Fn() -> Command>,
}

pub fn run(ws: &Path, o: &Options) -> anyhow::Result<()> {
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
    for dir in &o.out_dirs {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let label = format!("{} ({})", dir.display(), fs_type(dir));
        let (inp, k, b) = (input.clone(), key.clone(), bin.clone());
        let cp_dest = dir.join("cp.out");
        let d = cp_dest.clone();
        let i2 = inp.clone();
        modes.push(Mode {
            name: format!("cp → {label}"),
            dest: Some(cp_dest),
            cmd: Box::new(move || {
                let mut c = Command::new("cp");
                c.arg(&i2).arg(&d);
                c
            }),
        });
        let elf = dir.join("out.elf");
        let (d, i3, k3, b3) = (elf.clone(), inp.clone(), k.clone(), b.clone());
        modes.push(Mode {
            name: format!("decrypt ELF → {label}"),
            dest: Some(elf),
            cmd: Box::new(move || {
                let mut c = Command::new(&b3);
                c.args(["decrypt", "-q", "--key"]).arg(&k3).arg(&i3).arg("-o").arg(&d);
                c
            }),
        });
        for comp in ["zstd", "zlib"] {
            let out = dir.join(format!("out.{comp}.kdump"));
            let (d, i4, k4, b4) = (out.clone(), inp.clone(), k.clone(), b.clone());
            if kdump_supported(&bin) {
                modes.push(Mode {
                    name: format!("decrypt kdump {comp} → {label}"),
                    dest: Some(out),
                    cmd: Box::new(move || {
                        let mut c = Command::new(&b4);
                        c.args(["decrypt", "-q", "--format", "kdump", "--compress", comp, "--key"])
                            .arg(&k4)
                            .arg(&i4)
                            .arg("-o")
                            .arg(&d);
                        c
                    }),
                });
            }
        }
    }
    for threads in [1, cores] {
        let (i5, k5, b5) = (input.clone(), key.clone(), bin.clone());
        modes.push(Mode {
            name: format!("decrypt -o - > /dev/null, {threads} thread(s)"),
            dest: None,
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

    let mut samples: Vec<Vec<Sample>> = (0..modes.len()).map(|_| Vec::new()).collect();
    for run in 0..o.runs {
        for (m, s) in modes.iter().zip(samples.iter_mut()) {
            if let Some(d) = &m.dest {
                let _ = std::fs::remove_file(d);
            }
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

    let mut rss_table = String::from("| dump size | peak RssAnon, decrypt ELF to file |\n|---:|---:|\n");
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

    let report = format!(
        "Machine: {}\nInput: {} ({} bytes, 20% zero pages, 5% shared, kernel-like content), in the page cache. Median of {} alternating runs.\n\n{}\n{}",
        machine(),
        input.display(),
        size,
        o.runs,
        table,
        rss_table
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

pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        size_mib: 1024,
        runs: 5,
        out_dirs: Vec::new(),
        rss_sizes: Vec::new(),
        write_doc: true,
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
            other => bail!(
                "unknown option {other}; usage: cargo xtask bench [--size MIB] [--runs N] [--out DIR]... [--rss-sizes 1024,4096] [--no-doc]"
            ),
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
