//! Output safety and secret hygiene of the binary (issue 5): SIGINT during a decrypt leaves
//! nothing and exits 130, a full disk exits 5, the key file permission warning, and no
//! secret in `info --json` or in any message. (More in safety.rs.)

mod common;
use common::{listing, scratch};

use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pvdump_crypto::{Cck, DumpKey, open_completion};
use pvdump_format::PvDump;
use pvdump_synth::SynthSpec;

const BIN: &str = env!("CARGO_BIN_EXE_pvdump");

/// Writes a dump and its key (mode 0600) into `dir`.
fn write_fixture(dir: &Path, spec: &SynthSpec) -> (PathBuf, PathBuf) {
    let dump = dir.join("dump.elf");
    let key = dir.join("cck.bin");
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&dump).unwrap());
    spec.write_dump(&mut w).unwrap();
    w.flush().unwrap();
    std::fs::write(&key, spec.cck()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dump, key)
}

#[test]
fn sigint_leaves_nothing_and_exits_130() {
    let dir = scratch("sigint");
    // Returns once the writers are running.
    let (child, _dump, out, before) = start_big_decrypt(&dir, 0x5167);
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let result = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted") || stderr.contains("cancelled"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists());
    assert_eq!(listing(&dir), before, "something was left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts a decrypt of a 256 MiB dump to a file and returns once it is writing the output
/// (which has no name yet: the folder listing must not change meanwhile).
fn start_big_decrypt(dir: &Path, seed: u64) -> (std::process::Child, PathBuf, PathBuf, Vec<String>) {
    let mut spec = SynthSpec::simple(seed, 256, 1);
    spec.zero_permille = 0;
    spec.shared_permille = 0;
    let (dump, key) = write_fixture(dir, &spec);
    let out = dir.join("out.elf");
    let before = listing(dir);
    let mut child = Command::new(BIN)
        .args(["decrypt", "--threads", "1", "--key"])
        .arg(&key)
        .arg(&dump)
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let unnamed = common::tmpfile_supported(dir);
    common::wait_until_writing(&mut child, || {
        if unnamed {
            assert_eq!(listing(dir), before, "a name appeared before the output was complete");
        }
    });
    (child, dump, out, before)
}

#[test]
fn dump_truncated_while_mapped_exits_5_without_output() {
    let dir = scratch("sigbus");
    let (child, dump, out, before) = start_big_decrypt(&dir, 0x51b5);
    // Another process shrinks the input under pvdump's map: the next page read faults.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&dump)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let result = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("the dump file changed while it was being read"),
        "{stderr}"
    );
    assert!(!out.exists());
    assert_eq!(listing(&dir), before, "the temporary file was left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn full_disk_on_standard_output_exits_5() {
    let dir = scratch("devfull");
    let (dump, key) = write_fixture(&dir, &SynthSpec::simple(0xf011, 1, 1));
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let result = Command::new(BIN)
        .args(["decrypt", "--key"])
        .arg(&key)
        .arg(&dump)
        .args(["-o", "-"])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(5), "{stderr}");
    assert_eq!(stderr.matches("No space left on device").count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(listing(&dir), ["cck.bin", "dump.elf"]);
}

#[test]
fn output_file_that_cannot_grow_exits_5_without_a_partial_file() {
    use std::os::unix::process::CommandExt;
    let dir = scratch("fsize");
    let (dump, key) = write_fixture(&dir, &SynthSpec::simple(0xf512e, 2, 1));
    let out = dir.join("out.elf");
    let mut cmd = Command::new(BIN);
    cmd.args(["decrypt", "--key"]).arg(&key).arg(&dump).arg("-o").arg(&out);
    // A file size limit of 512 KiB stands in for a full disk: writes past it fail with EFBIG
    // (SIGXFSZ is ignored so the write returns the error instead of killing the process).
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 512 << 10,
                rlim_max: 512 << 10,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let before = listing(&dir);
    let result = cmd.stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("the output") && stderr.contains("File too large"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("File too large").count(),
        1,
        "cause printed twice: {stderr}"
    );
    assert!(!out.exists());
    assert_eq!(listing(&dir), before, "a partial temporary file was left behind");
}

#[test]
fn key_file_readable_by_others_is_warned_about() {
    let dir = scratch("keymode");
    let (dump, key) = write_fixture(&dir, &SynthSpec::simple(0x6e7, 1, 1));
    let run = |out: &str, quiet: bool| {
        Command::new(BIN)
            .arg("decrypt")
            .args(quiet.then_some("--quiet"))
            .arg("--key")
            .arg(&key)
            .arg(&dump)
            .arg("-o")
            .arg(dir.join(out))
            .output()
            .unwrap()
    };
    let private = run("a.elf", false);
    assert_eq!(private.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&private.stderr).contains("warning"));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let shared = run("b.elf", false);
    assert_eq!(shared.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&shared.stderr);
    assert!(
        stderr.contains("pvdump: warning: key file") && stderr.contains("(mode 644)") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    // --quiet silences the warning (and everything else but errors).
    let quiet = run("c.elf", true);
    assert_eq!(quiet.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn no_secret_in_info_json_or_messages() {
    let dir = scratch("nosecret");
    let spec = SynthSpec::simple(0x5ec2, 1, 2);
    let (dump_path, key) = write_fixture(&dir, &spec);
    let bytes = std::fs::read(&dump_path).unwrap();
    let dump = PvDump::parse(&bytes).unwrap();
    let compl = dump.completion().unwrap();
    let cck = Cck::from_bytes(spec.cck());
    let dk = DumpKey::derive(&cck, &compl.fields.seed);
    let secrets = open_completion(&dk, &compl).unwrap();
    let forbidden: Vec<(String, String)> = [
        ("CCK", cck.expose().to_vec()),
        ("dump key", dk.expose().to_vec()),
        ("XTS key 1", secrets.xts_key.expose()[..32].to_vec()),
        ("XTS key 2", secrets.xts_key.expose()[32..].to_vec()),
        ("nonce", secrets.nonce.to_vec()),
    ]
    .into_iter()
    .flat_map(|(name, k)| {
        let dec = k[..6].iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",");
        let dec_sp = k[..6].iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ");
        [
            (name.to_string(), hex(&k[..8])),
            (name.to_string(), hex(&k[..8]).to_uppercase()),
            (name.to_string(), dec),
            (name.to_string(), dec_sp),
        ]
    })
    .collect();
    let mut outputs = Vec::new();
    for args in [
        vec!["info", "--json", "--key"],
        vec!["info", "--key"],
        vec!["decrypt", "-o", "-", "--key"],
    ] {
        let o = Command::new(BIN)
            .args(&args)
            .arg(&key)
            .arg(&dump_path)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = if args[0] == "info" {
            String::from_utf8_lossy(&o.stdout).into_owned()
        } else {
            String::new() // the vmcore itself is plaintext memory, not key material
        };
        outputs.push((args.join(" "), text + &String::from_utf8_lossy(&o.stderr)));
    }
    let json: serde_json::Value = serde_json::from_str(
        outputs[0]
            .1
            .lines()
            .filter(|l| !l.starts_with("pvdump:"))
            .collect::<String>()
            .as_str(),
    )
    .expect("info --json prints JSON");
    assert_eq!(json["cpu_count"], 2, "{json}");
    for (cmd, text) in &outputs {
        for (name, pattern) in &forbidden {
            assert!(
                !text.contains(pattern.as_str()),
                "`pvdump {cmd}` prints the {name}: {text}"
            );
        }
    }
}
