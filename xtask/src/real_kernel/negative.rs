//! The negative self-test: mutations of a copy of the ELF output that the checks must catch.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, ensure};
use pvdump_core::Dump;

use super::checks::{Facts, check_memory_of, check_registers_of, check_vmcoreinfo_of};
use super::readers::drgn_json;
use super::{Case, Env};

/// File offsets, inside the ELF output, of CPU 0's PRSTATUS PSW address, of the
/// VMCOREINFO note's name and of a byte of a non-zero memory page.
fn elf_spots(path: &Path) -> anyhow::Result<(u64, u64, u64)> {
    let input = pvdump_core::Input::map(path)?;
    let core = pvdump_format::ElfCore::parse(input.bytes())?;
    let mut psw = None;
    let mut vmci = None;
    for n in core.notes() {
        let n = n?;
        if n.name == b"CORE" && n.n_type == pvdump_format::consts::NT_PRSTATUS && psw.is_none() {
            // s390x elf_prstatus: pr_reg (psw mask, psw address, ...) starts at 112.
            psw = Some(n.desc_offset + 112 + 8);
        }
        if n.name == b"VMCOREINFO" {
            vmci = Some(n.offset + 12);
        }
    }
    let load = core.loads().first().context("no PT_LOAD")?;
    let data = input.bytes();
    // A byte in the middle of the first page (after the lowcore) that is not zero.
    let mem = (load.file_offset + 0x10000..load.file_offset + load.filesz)
        .step_by(4096)
        .map(|p| p + 2048)
        .find(|&p| data[p as usize] != 0)
        .context("no non-zero memory")?;
    Ok((psw.context("no PRSTATUS")?, vmci.context("no VMCOREINFO note")?, mem))
}

fn patch(path: &Path, offset: u64, f: impl FnOnce(&mut [u8])) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    let mut old = vec![0u8; 16];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut old)?;
    let mut new = old.clone();
    f(&mut new);
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(&new)?;
    Ok(old)
}

fn restore(path: &Path, offset: u64, old: &[u8]) -> anyhow::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(old)?;
    Ok(())
}

/// In a copy of the ELF output: a flipped memory byte, a changed PSW and a dropped
/// VMCOREINFO note must each make the checks fail (and the PSW drgn's stack traces change).
pub(super) fn negative_self_test(
    env: &Env,
    case: &Case,
    original: &Facts,
    drgn: Option<(&Path, &Path)>,
    drgn_original: Option<&str>,
) -> anyhow::Result<((), String)> {
    let copy = case.work("negative.elf");
    std::fs::copy(case.work("out.elf"), &copy)?;
    let want_vmci = std::fs::read(&case.vmcoreinfo_file)?;
    let (psw, vmci, mem) = elf_spots(&copy)?;
    let open = || -> anyhow::Result<[(&'static str, Dump); 1]> { Ok([("copy", Dump::open(&copy, None)?)]) };
    // The unmodified copy passes: the failures below are the mutations' doing.
    check_memory_of(&open()?, original)?;
    check_registers_of(&open()?, original)?;
    check_vmcoreinfo_of(&open()?, &want_vmci)?;
    let mut notes = Vec::new();

    let old = patch(&copy, mem, |b| b[0] ^= 0x01)?;
    let e = check_memory_of(&open()?, original)
        .err()
        .context("a flipped memory byte went unnoticed")?;
    notes.push(format!("memory byte at {mem:#x}: {}", first_line(&e)));
    restore(&copy, mem, &old)?;

    let old = patch(&copy, psw, |b| {
        let v = u64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8])).wrapping_add(0x200);
        b[..8].copy_from_slice(&v.to_be_bytes());
    })?;
    let e = check_registers_of(&open()?, original)
        .err()
        .context("a changed PSW went unnoticed")?;
    notes.push(format!("PSW: {}", first_line(&e)));
    if let (Some((py, vmlinux)), Some(want)) = (drgn, drgn_original) {
        // drgn unwinds the running tasks from the PSW: their stacks must change.
        match drgn_json(env, py, vmlinux, &copy, None, &case.marker) {
            Ok(got) => {
                ensure!(got != want, "drgn's output did not change with CPU 0's PSW");
                notes.push("drgn: stacks change".into());
            }
            Err(e) => notes.push(format!("drgn: fails ({})", first_line(&e))),
        }
    }
    restore(&copy, psw, &old)?;

    let old = patch(&copy, vmci, |b| b[9] = b'X')?; // "VMCOREINFX": no longer the note
    let e = check_vmcoreinfo_of(&open()?, &want_vmci)
        .err()
        .context("a dropped VMCOREINFO note went unnoticed")?;
    notes.push(format!("VMCOREINFO note: {}", first_line(&e)));
    restore(&copy, vmci, &old)?;

    check_memory_of(&open()?, original)?;
    std::fs::remove_file(&copy)?;
    Ok(((), notes.join("; ")))
}

fn first_line(e: &anyhow::Error) -> String {
    let s = format!("{e:#}");
    let line = s.lines().next().unwrap_or("");
    match line.char_indices().nth(70) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_owned(),
    }
}
