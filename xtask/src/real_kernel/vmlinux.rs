//! The kernel's debug vmlinux, downloaded through the tool's private s390x apt
//! configuration and checked by its GNU build-id against VMCOREINFO.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail, ensure};

use super::{Case, output, vmcoreinfo_value};

/// The GNU build-id of an ELF file (its NT_GNU_BUILD_ID note), read without mapping it.
fn build_id(path: &Path) -> anyhow::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let mut eh = [0u8; 64];
    f.read_exact(&mut eh)?;
    ensure!(
        &eh[..4] == b"\x7fELF" && eh[4] == 2,
        "{}: not a 64-bit ELF file",
        path.display()
    );
    let be = eh[5] == 2;
    let u16_at = |b: &[u8], o: usize| {
        let a = [b[o], b[o + 1]];
        if be {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    };
    let u32_at = |b: &[u8], o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let u64_at = |b: &[u8], o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        if be {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        }
    };
    let (phoff, phentsize, phnum) = (u64_at(&eh, 0x20), u16_at(&eh, 0x36), u16_at(&eh, 0x38));
    ensure!(
        phentsize == 56 && phnum < 256,
        "{}: odd program headers",
        path.display()
    );
    let mut ph = vec![0u8; 56 * usize::from(phnum)];
    f.seek(SeekFrom::Start(phoff))?;
    f.read_exact(&mut ph)?;
    for p in ph.chunks_exact(56) {
        if u32_at(p, 0) != 4 {
            continue;
        }
        let (off, size) = (u64_at(p, 8), u64_at(p, 32));
        ensure!(size < 1 << 20, "{}: PT_NOTE of {size} bytes", path.display());
        let mut notes = vec![0u8; size as usize];
        f.seek(SeekFrom::Start(off))?;
        f.read_exact(&mut notes)?;
        let mut pos = 0usize;
        while pos + 12 <= notes.len() {
            let namesz = u32_at(&notes, pos) as usize;
            let descsz = u32_at(&notes, pos + 4) as usize;
            let ntype = u32_at(&notes, pos + 8);
            let name = pos + 12;
            let desc = name + namesz.next_multiple_of(4);
            let end = desc + descsz.next_multiple_of(4);
            if end > notes.len() + 3 || desc + descsz > notes.len() {
                break;
            }
            if ntype == 3 && notes.get(name..name + namesz) == Some(b"GNU\0".as_slice()) {
                return Ok(hex::encode(&notes[desc..desc + descsz]));
            }
            pos = end;
        }
    }
    bail!("{}: no GNU build-id note", path.display())
}

pub(super) fn obtain_vmlinux(case: &Case) -> anyhow::Result<(PathBuf, String)> {
    let want = vmcoreinfo_value(case, "BUILD-ID")?.to_lowercase();
    let out = case.dir.join(format!("vmlinux-{}", case.kver));
    if out.is_file() && build_id(&out).is_ok_and(|b| b == want) {
        return Ok((out, format!("cached, build-id {want}")));
    }
    // The tool's private s390x apt configuration for this suite (its lists included).
    let ka = case.dump_dir.join(format!("apt-{}", case.suite));
    ensure!(
        ka.join("sources.list").is_file(),
        "{} has no sources.list",
        ka.display()
    );
    let d = |p: &str| ka.join(p).display().to_string();
    let apt_opts: Vec<String> = [
        format!("Dir::Etc::sourcelist={}", d("sources.list")),
        "Dir::Etc::sourceparts=-".into(),
        format!("Dir::Etc::preferencesparts={}", d("prefs.d")),
        format!("Dir::Etc::preferences={}", d("prefs")),
        format!("Dir::State={}", ka.join("state").display()),
        format!("Dir::State::lists={}", d("lists")),
        format!("Dir::State::status={}", d("status")),
        format!("Dir::Cache={}", d("cache")),
        format!("Dir::Cache::archives={}", d("archives")),
        "Dir::Cache::pkgcache=".into(),
        "Dir::Cache::srcpkgcache=".into(),
        "APT::Architecture=s390x".into(),
        "APT::Architectures=s390x".into(),
        "Debug::NoLocking=1".into(),
        "Acquire::Retries=3".into(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_owned(), o])
    .collect();
    let debs = case.dir.join("debs");
    std::fs::create_dir_all(&debs)?;
    let pkg = format!("linux-image-{}-dbg:s390x={}", case.kver, case.kdeb_version);
    let download = || {
        output(
            Command::new("apt-get")
                .args(&apt_opts)
                .args(["download", "-q", &pkg])
                .current_dir(&debs),
        )
    };
    if download().is_err() {
        output(Command::new("apt-get").args(&apt_opts).args(["update", "-q"]))?;
        download()?;
    }
    let deb = std::fs::read_dir(&debs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .starts_with(&format!("linux-image-{}-dbg_", case.kver))
            })
        })
        .context("apt-get download left no .deb")?;
    let size = std::fs::metadata(&deb)?.len();
    let tmp = out.with_extension("tmp");
    // tar stops after the one member (--occurrence); dpkg-deb then dies of SIGPIPE, so its
    // status says nothing: the build-id below decides.
    let script = format!(
        "dpkg-deb --fsys-tarfile \"$1\" | tar -x --occurrence=1 -O ./usr/lib/debug/boot/vmlinux-{} > \"$2\"",
        case.kver
    );
    let _ = Command::new("sh")
        .args(["-c", &script, "sh"])
        .arg(&deb)
        .arg(&tmp)
        .stderr(Stdio::null())
        .status()?;
    let got = build_id(&tmp)?;
    ensure!(
        got == want,
        "{}: build-id {got}, VMCOREINFO BUILD-ID {want}",
        deb.display()
    );
    std::fs::rename(&tmp, &out)?;
    std::fs::remove_file(&deb)?;
    Ok((out, format!("downloaded {} MB, build-id {want}", size / 1_000_000)))
}
