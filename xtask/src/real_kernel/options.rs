//! The command line of `cargo xtask real-kernel`.

use std::path::PathBuf;

use anyhow::{Context, bail};

/// The Debian suites checked by default.
pub const SUITES: [&str; 2] = ["bookworm", "trixie"];

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Suites to check.
    pub suites: Vec<String>,
    /// Also run crash under qemu-user.
    pub crash: bool,
    /// Also run zgetdump 2.35 (the reference decryptor) under qemu-user.
    pub zgetdump: bool,
    /// Cache root.
    pub cache: Option<PathBuf>,
    /// Keep the sealed and decrypted files of passing suites.
    pub keep: bool,
}

pub const USAGE: &str = "real-kernel [--suite bookworm|trixie|all]... [--crash] [--zgetdump] [--cache DIR] [--keep]";

/// Parses the options after `real-kernel`.
pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        suites: Vec::new(),
        crash: false,
        zgetdump: false,
        cache: None,
        keep: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--suite" => match it.next().map(String::as_str) {
                Some("all") => o.suites.extend(SUITES.map(String::from)),
                Some(s) if SUITES.contains(&s) => o.suites.push(s.to_owned()),
                other => bail!("--suite takes bookworm, trixie or all, not {other:?}\nusage: cargo xtask {USAGE}"),
            },
            "--crash" => o.crash = true,
            "--zgetdump" => o.zgetdump = true,
            "--keep" => o.keep = true,
            "--cache" => o.cache = Some(PathBuf::from(it.next().context("--cache needs a directory")?)),
            other => bail!("unknown option {other}\nusage: cargo xtask {USAGE}"),
        }
    }
    if o.suites.is_empty() {
        o.suites = SUITES.map(String::from).to_vec();
    }
    o.suites.dedup();
    Ok(o)
}
