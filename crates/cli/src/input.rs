//! Reading the key and opening the dump, with the messages the binary adds.

use std::io::Write;
use std::path::Path;

use pvdump_core::{Cck, Dump, KeySource};

use crate::exit::Failure;

/// Reads the key `--key` names (a file, FIFO or pipe, or standard input for `-`); warns
/// (unless `quiet`) when a regular key file can be read or written by group or others.
pub fn read_key(arg: &Path, quiet: bool) -> Result<Cck, Failure> {
    let source = KeySource::from_arg(arg);
    let key = pvdump_core::read_key(&source).map_err(pvdump_core::Error::from)?;
    if let Some(mode) = key.shared_mode
        && !quiet
    {
        let _ = writeln!(
            std::io::stderr(),
            "pvdump: warning: {source} is readable or writable by group or others (mode {mode:o}); consider chmod 600",
        );
    }
    Ok(key.cck)
}

/// Opens a dump (unlocking it with `key` when it is encrypted); errors name the file.
pub fn open_dump(path: &Path, key: Option<&Cck>) -> Result<Dump, Failure> {
    Dump::open(path, key).map_err(|e| named(e, path))
}

/// Warns about every shape of the dump at `path` that QEMU never writes but pvdump (like
/// zgetdump) decrypts anyway: the output lacks what the warning names. Not silenced by `-q`.
pub fn warn_irregularities(dump: &Dump, path: &Path) {
    for i in dump.irregularities() {
        let _ = writeln!(std::io::stderr(), "pvdump: warning: {}: {i}", path.display());
    }
}

/// The failure for an error about the dump at `path`: messages about its contents start
/// with the path (messages about opening it already name it).
pub fn named(e: pvdump_core::Error, path: &Path) -> Failure {
    let about_contents = matches!(
        e,
        pvdump_core::Error::Format(_) | pvdump_core::Error::Open(_) | pvdump_core::Error::KeyRequired { .. }
    );
    let f = Failure::from(e);
    if about_contents {
        f.context(path.display().to_string())
    } else {
        f
    }
}
