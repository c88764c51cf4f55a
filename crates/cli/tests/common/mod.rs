//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pvdump_format::{CpuRegisters, ElfCore, cpus_from_notes};

/// The pvdump binary under test. When the tests run under user-mode emulation (a cross
/// target's runner in .cargo/cross.toml), `PVDUMP_TEST_RUNNER` names the emulator and its
/// arguments, since the foreign binary cannot be executed directly.
pub fn pvdump() -> Command {
    let bin = env!("CARGO_BIN_EXE_pvdump");
    let runner = std::env::var("PVDUMP_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(emulator) => {
            let mut c = Command::new(emulator);
            c.args(words).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

pub fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    pvdump().args(args).output().expect("running pvdump")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `pvdump decrypt -q` of a fixture folder (pvdump.elf + cck.bin) to `tmp/vmcore.elf`;
/// asserts success and returns the output path and the process output (for warnings).
pub fn decrypt_quietly(dir: &Path, tmp: &TempDir) -> (PathBuf, Output) {
    let out = tmp.path("vmcore.elf");
    let o = run(&[
        &"decrypt",
        &"-q",
        &"--key",
        &dir.join("cck.bin"),
        &dir.join("pvdump.elf"),
        &"-o",
        &out,
    ]);
    assert!(o.status.success(), "{}: {}", dir.display(), stderr(&o));
    (out, o)
}

pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips loudly, or fails under CI=true.
pub fn skip(what: &str) {
    if on_ci() {
        panic!("CI=true but {what}");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {what} !!!!!!!!\n");
}

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Reference dump folders under ../shared/fixtures/reference (or $PVDUMP_SHARED).
pub fn reference_dirs() -> Vec<PathBuf> {
    let root = std::env::var_os("PVDUMP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared"));
    dump_dirs(
        &root.join("fixtures/reference"),
        "the reference fixtures (../shared/fixtures/reference)",
    )
}

/// The project's own fixtures.
pub fn project_fixture_dirs() -> Vec<PathBuf> {
    let v = dump_dirs(&workspace().join("fixtures"), "the project fixtures (fixtures/)");
    assert!(!v.is_empty(), "fixtures/ holds no dumps; run `cargo xtask fixtures`");
    v
}

fn dump_dirs(dir: &Path, what: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        skip(&format!("{what} not found at {}", dir.display()));
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("pvdump.elf").is_file())
        .collect();
    v.sort();
    v
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn h(v: &serde_json::Value) -> u128 {
    let s = v.as_str().expect("hex string");
    u128::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex")
}

fn arr<const N: usize>(v: &serde_json::Value) -> [u128; N] {
    let a = v.as_array().expect("array");
    assert_eq!(a.len(), N);
    std::array::from_fn(|i| h(&a[i]))
}

/// One CPU of expected_cpus.json.
#[derive(Debug, Clone)]
pub struct ExpectedCpu {
    pub cpu_index: u64,
    pub qemu_cpu_id: u64,
    pub regs: CpuRegisters,
}

pub fn expected_cpus(dir: &Path) -> Vec<ExpectedCpu> {
    let j = json(&dir.join("expected_cpus.json"));
    j["cpus"]
        .as_array()
        .expect("cpus")
        .iter()
        .map(|c| {
            let mut r = CpuRegisters {
                gprs: arr::<16>(&c["gprs"]).map(|x| x as u64),
                psw: arr::<2>(&c["psw"]).map(|x| x as u64),
                prefix: h(&c["prefix"]) as u32,
                fpc: h(&c["fpc"]) as u32,
                todpreg: h(&c["todpreg"]) as u32,
                timer: h(&c["timer"]) as u64,
                todcmp: h(&c["todcmp"]) as u64,
                acrs: arr::<16>(&c["acrs"]).map(|x| x as u32),
                ctrs: arr::<16>(&c["ctrs"]).map(|x| x as u64),
                fprs: arr::<16>(&c["fprs"]).map(|x| x as u64),
                vxrs_low: arr::<16>(&c["vxrs_low"]).map(|x| x as u64),
                vxrs_high: arr::<16>(&c["vxrs_high"]).map(|x| x.to_be_bytes()),
                gs_cb: arr::<4>(&c["gs_cb"]).map(|x| x as u64),
                has_osii: false,
            };
            r.has_osii = c["has_osii"].as_bool().expect("has_osii");
            ExpectedCpu {
                cpu_index: c["cpu_index"].as_u64().unwrap(),
                qemu_cpu_id: c["qemu_cpu_id"].as_u64().unwrap(),
                regs: r,
            }
        })
        .collect()
}

/// A decoded plain vmcore.
pub struct Vmcore {
    pub bytes: Vec<u8>,
}

impl Vmcore {
    pub fn read(path: &Path) -> Vmcore {
        Vmcore {
            bytes: std::fs::read(path).unwrap(),
        }
    }

    pub fn core(&self) -> ElfCore<'_> {
        ElfCore::parse(&self.bytes).expect("output parses as an s390x ELF core")
    }

    /// Memory from guest address 0 up to the end of the last PT_LOAD (holes zero).
    pub fn memory(&self) -> Vec<u8> {
        let core = self.core();
        let end = core.loads().iter().map(|l| l.end()).max().unwrap_or(0);
        let mut m = vec![0u8; end as usize];
        for l in core.loads() {
            let src = &self.bytes[l.file_offset as usize..(l.file_offset + l.filesz) as usize];
            m[l.paddr as usize..(l.paddr + l.filesz) as usize].copy_from_slice(src);
        }
        m
    }

    pub fn cpus(&self) -> Vec<pvdump_format::NoteCpu> {
        cpus_from_notes(self.core().notes()).expect("output notes parse")
    }

    pub fn vmcoreinfo_note(&self) -> Option<Vec<u8>> {
        self.core()
            .notes()
            .map(|n| n.unwrap())
            .find(|n| n.name == b"VMCOREINFO")
            .map(|n| n.desc.to_vec())
    }
}

/// Compares decoded CPUs with the expectation, field by field for readable failures.
pub fn assert_cpus(got: &[pvdump_format::NoteCpu], want: &[CpuRegisters], ctx: &str) {
    assert_eq!(got.len(), want.len(), "{ctx}: CPU count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.pid, i as u32 + 1, "{ctx}: CPU {i} pr_pid");
        let mut w = w.clone();
        w.has_osii = false; // not representable in plain notes
        assert_eq!(g.regs, w, "{ctx}: CPU {i} registers");
        assert_eq!(
            g.note_types,
            vec![1, 2, 0x301, 0x302, 0x303, 0x304, 0x305, 0x309, 0x30a, 0x30b],
            "{ctx}: CPU {i} note order"
        );
    }
}

/// A fresh folder under the test target directory, kept after the run for inspection.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sorted file names in a folder (to prove nothing was left behind).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "pvdump-test-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// File names in the folder (to prove nothing was left behind).
    pub fn entries(&self) -> Vec<String> {
        listing(&self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The number of threads of a running process (from /proc/PID/status, which stays readable
/// although pvdump makes itself non-dumpable), or `None` once it is gone.
pub fn thread_count(pid: u32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Waits until a `pvdump decrypt --threads 1` child is writing its output: it then has three
/// threads (main, the signal watcher, one worker; the worker pool starts just before the
/// first page is written). Calls `meanwhile` on every poll (e.g. to check that the output
/// directory has not changed). Panics if the child exits first or after 60 s.
pub fn wait_until_writing(child: &mut std::process::Child, mut meanwhile: impl FnMut()) {
    let start = std::time::Instant::now();
    loop {
        meanwhile();
        if let Some(status) = child.try_wait().unwrap() {
            panic!("pvdump ended ({status}) before it was seen writing");
        }
        if thread_count(child.id()).is_some_and(|n| n >= 3) {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "pvdump was not seen writing within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// Whether the file system of `dir` supports `O_TMPFILE` (then pvdump's output has no name
/// at all until it is complete; elsewhere it is a named, registered 0600 temporary file).
pub fn tmpfile_supported(dir: &Path) -> bool {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path and the mode argument O_TMPFILE needs; the descriptor is
    // closed at once.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC, 0o600) };
    if fd >= 0 {
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(fd) };
    }
    fd >= 0
}
