//! `pvdump mount`: reading the whole mounted vmcore.elf with `cat` and `dd bs=1M`, against
//! `pvdump decrypt -o - > /dev/null` in the same rounds; the server's peak RssAnon and CPU.

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
