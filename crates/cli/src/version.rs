//! `pvdump --version`: `-V` prints "pvdump 0.1.0"; `--version` adds what the binary was built
//! from (commit, target, features; recorded by build.rs) and what it uses at run time (the
//! AES implementation the CPU allows, the kdump compressors).

use std::sync::LazyLock;

/// The text after "pvdump " for `--version`.
pub static LONG: LazyLock<String> = LazyLock::new(long_version);

fn or_none(s: &str, none: &str) -> String {
    if s.is_empty() { none.to_string() } else { s.to_string() }
}

fn long_version() -> String {
    format!(
        "{}\ncommit: {}\ntarget: {}\nfeatures: {}\nAES-XTS: {}\ncompressors: zlib (zlib-rs), zstd (libzstd via zstd-sys), snappy (snap), lzo (pvdump-lzo, LZO1X-1)",
        env!("CARGO_PKG_VERSION"),
        or_none(env!("PVDUMP_GIT_COMMIT"), "unknown (not built from a git checkout)"),
        or_none(env!("PVDUMP_TARGET"), "unknown"),
        or_none(env!("PVDUMP_FEATURES"), "none"),
        aes_backend(),
    )
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The AES-XTS page kernel pvdump uses on this CPU (picked at run time by pvdump-crypto),
/// with the CPU features behind the choice.
#[cfg(target_arch = "x86_64")]
fn aes_backend() -> String {
    let best = pvdump_crypto::Backend::best();
    let aes = std::arch::is_x86_feature_detected!("aes");
    format!(
        "{best}{} (CPU: AES-NI {}, PCLMULQDQ {}, VAES {}, VPCLMULQDQ {}, AVX2 {})",
        if best == pvdump_crypto::Backend::Portable && !aes {
            ": constant-time software AES"
        } else {
            ""
        },
        yes_no(aes),
        yes_no(std::arch::is_x86_feature_detected!("pclmulqdq")),
        yes_no(std::arch::is_x86_feature_detected!("vaes")),
        yes_no(std::arch::is_x86_feature_detected!("vpclmulqdq")),
        yes_no(std::arch::is_x86_feature_detected!("avx2")),
    )
}

/// The AES-XTS page kernel pvdump uses on this CPU: the `aes` crate, which uses the ARMv8
/// Cryptography Extensions when the CPU reports them (AT_HWCAP, checked at run time).
#[cfg(target_arch = "aarch64")]
fn aes_backend() -> String {
    let aes = std::arch::is_aarch64_feature_detected!("aes");
    format!(
        "{}: {} (CPU: AES {}, PMULL {})",
        pvdump_crypto::Backend::best(),
        if aes {
            "ARMv8 crypto extensions"
        } else {
            "constant-time software AES (no ARMv8 AES)"
        },
        yes_no(aes),
        yes_no(std::arch::is_aarch64_feature_detected!("pmull")),
    )
}

/// The AES-XTS page kernel pvdump uses: the `aes` crate's constant-time software AES (no
/// hardware AES backend for this architecture).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn aes_backend() -> String {
    format!("{}: constant-time software AES", pvdump_crypto::Backend::best())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_version_starts_with_the_short_one_and_names_the_build() {
        let v = LONG.as_str();
        let lines: Vec<&str> = v.lines().collect();
        assert_eq!(lines[0], env!("CARGO_PKG_VERSION"));
        for (i, key) in ["commit: ", "target: ", "features: ", "AES-XTS: ", "compressors: "]
            .iter()
            .enumerate()
        {
            assert!(lines[i + 1].starts_with(key), "line {}: {v}", i + 1);
            assert!(lines[i + 1].len() > key.len(), "empty {key}: {v}");
        }
        assert!(v.contains(std::env::consts::ARCH), "target names the architecture: {v}");
    }
}
