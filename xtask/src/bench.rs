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

    let mount_table = mount::run(&bin, &input, &key, o.runs)?;

    let report = format!(
        "Machine: {}\nInput: {} ({} bytes, 20% zero pages, 5% shared, kernel-like content), in the page cache. Median of {} alternating runs.\n\n{}\n{}\n{}",
        machine(),
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

/// `pvdump mount`: reading the whole mounted vmcore.elf with `cat` and `dd bs=1M`, against
/// `pvdump decrypt -o - > /dev/null` in the same rounds; the server's peak RssAnon and CPU.
mod mount {
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use anyhow::{Context, bail};

    use super::{Sample, measure, median};

    /// Stops the server and removes the mount point, whatever happened.
    struct Served {
        dir: PathBuf,
        server: Child,
    }

    impl Drop for Served {
        fn drop(&mut self) {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(self.server.id() as libc::pid_t, libc::SIGTERM) };
            let t = Instant::now();
            while self.server.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.dir)
                .stderr(Stdio::null())
                .status();
            let _ = self.server.kill();
            let _ = self.server.wait();
            let _ = std::fs::remove_dir(&self.dir);
        }
    }

    fn rss_anon_kib(pid: u32) -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("RssAnon:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// User + system CPU seconds of a process so far.
    fn cpu_seconds(pid: u32) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split(' ').collect();
        // Fields 14 and 15 of stat(5), counted after the command name: indexes 11 and 12.
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
            .sum();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
        ticks as f64 / hz as f64
    }

    pub fn run(bin: &Path, input: &Path, key: &Path, runs: usize) -> anyhow::Result<String> {
        // SAFETY: trivial getter.
        if unsafe { libc::geteuid() } != 0 || !Path::new("/dev/fuse").exists() {
            eprintln!("pvdump mount: not measured (needs root and /dev/fuse)");
            return Ok("pvdump mount: not measured (needs root and /dev/fuse).\n".into());
        }
        let dir = std::env::temp_dir().join(format!("pvdump-bench-mnt-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let server = Command::new(bin)
            .args(["mount", "--foreground", "-q", "--key"])
            .arg(key)
            .arg(input)
            .arg(&dir)
            .spawn()
            .context("starting pvdump mount")?;
        let mut served = Served { dir, server };
        let file = served.dir.join("vmcore.elf");
        let t = Instant::now();
        while std::fs::metadata(&file).is_err() {
            if served.server.try_wait()?.is_some() {
                bail!("pvdump mount exited before {} was readable", file.display());
            }
            if t.elapsed() > Duration::from_secs(120) {
                bail!("{} did not become readable", file.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let len = std::fs::metadata(&file)?.len();
        let pid = served.server.id();
        let rss_mounted = rss_anon_kib(pid);
        let peak = Arc::new(AtomicU64::new(rss_mounted));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_anon_kib(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };

        let null = || std::fs::File::create("/dev/null").map(Stdio::from);
        let mut samples: [Vec<Sample>; 3] = Default::default();
        let mut server_cpu = 0.0;
        for run in 0..runs {
            let mut base = Command::new(bin);
            base.args(["decrypt", "-q", "--key"])
                .arg(key)
                .arg(input)
                .args(["-o", "-"])
                .stdout(null()?);
            let mut cat = Command::new("cat");
            cat.arg(&file).stdout(null()?);
            let mut dd = Command::new("dd");
            dd.arg(format!("if={}", file.display()))
                .args(["of=/dev/null", "bs=1M"])
                .stderr(Stdio::null());
            for (i, cmd) in [base, cat, dd].into_iter().enumerate() {
                let label = ["decrypt -o - > /dev/null", "mount: cat", "mount: dd bs=1M"][i];
                let before = cpu_seconds(pid);
                let s = measure(cmd)?;
                if i > 0 {
                    server_cpu += cpu_seconds(pid) - before;
                }
                eprintln!("run {}/{runs}: {label:<55} {:>7.3} s", run + 1, s.wall);
                samples[i].push(s);
            }
        }
        stop.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        drop(served);

        let wall = |i: usize| median(samples[i].iter().map(|s| s.wall).collect());
        let cpu = |i: usize| median(samples[i].iter().map(|s| s.cpu).collect());
        let base = wall(0);
        let mut t = String::from(
            "pvdump mount (1 MiB st_blksize, direct I/O), whole vmcore.elf read once per run:\n\n| reader | wall (median) | MB/s | vs decrypt -o - > /dev/null | reader CPU s |\n|---|---:|---:|---:|---:|\n",
        );
        for (i, name) in [
            "pvdump decrypt -o - > /dev/null (all cores)",
            "cat MNT/vmcore.elf > /dev/null",
            "dd if=MNT/vmcore.elf of=/dev/null bs=1M",
        ]
        .iter()
        .enumerate()
        {
            t.push_str(&format!(
                "| {name} | {:.3} s | {:.0} | {:.2}x | {:.2} |\n",
                wall(i),
                len as f64 / wall(i) / 1e6,
                wall(i) / base,
                cpu(i)
            ));
        }
        let gib_read = 2.0 * runs as f64 * len as f64 / f64::from(1u32 << 30);
        t.push_str(&format!(
            "\nServer: RssAnon {:.1} MiB once mounted, peak {:.1} MiB while serving; {:.2} CPU s per GiB served.\n",
            rss_mounted as f64 / 1024.0,
            peak.load(Ordering::Relaxed) as f64 / 1024.0,
            server_cpu / gib_read
        ));
        println!("{t}");
        Ok(t)
    }
}
