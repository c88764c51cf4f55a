//! Records what `pvdump --version` reports about the build: the git commit (when the source
//! is a git checkout and git is installed; a tarball or a `cargo install` from a registry
//! has neither, and that is fine), the target triple and the enabled cargo features.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The commit checked out; uncommitted changes are not reflected (build scripts rerun
    // only when HEAD or the branch moves).
    // Only when this package is tracked by the repository (not merely unpacked inside some
    // other checkout).
    let tracked = git(&["ls-files", "--full-name", "Cargo.toml"]).is_some();
    let commit = if tracked {
        git(&["rev-parse", "--short=12", "HEAD"])
    } else {
        None
    };
    println!("cargo:rustc-env=PVDUMP_GIT_COMMIT={}", commit.as_deref().unwrap_or(""));
    // Rebuild when HEAD moves (a commit, a checkout). In a worktree HEAD lives in the
    // worktree's git dir and branch refs in the common dir; both paths come from git.
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            let p = PathBuf::from(p);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &r])
        && PathBuf::from(&p).exists()
    {
        println!("cargo:rerun-if-changed={p}");
    }
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=PVDUMP_TARGET={target}");
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| {
            k.strip_prefix("CARGO_FEATURE_")
                .map(|f| f.to_lowercase().replace('_', "-"))
        })
        .collect();
    features.sort();
    println!("cargo:rustc-env=PVDUMP_FEATURES={}", features.join(","));
}
