//! `cargo xtask cross-test TARGET`: the tests of a foreign target built once and run under
//! qemu user-mode emulation.

use super::*;

pub(super) fn cross_config(ws: &Path) -> PathBuf {
    ws.join(".cargo/cross.toml")
}

/// A test executable built for a foreign target.
pub(super) struct TestExe {
    package: String,
    /// "lib", "bin" or "test".
    kind: String,
    name: String,
    path: PathBuf,
    /// The package folder: cargo runs tests there.
    dir: PathBuf,
}

/// Builds every test of `packages` for `t` in one cargo invocation (one feature resolution,
/// so nothing is built twice) and lists the executables.
pub(super) fn build_tests(ws: &Path, meta: &Meta, t: &Target, packages: &[&str]) -> anyhow::Result<Vec<TestExe>> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(ws)
        .args([
            "test",
            "--locked",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--target", t.triple, "--config"])
        .arg(cross_config(ws));
    for p in packages {
        cmd.args(["-p", p]);
    }
    let text = capture(&mut cmd)?;
    let mut exes = Vec::new();
    for line in text.lines() {
        let Ok(j) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if j["reason"] != "compiler-artifact" || j["profile"]["test"] != true {
            continue;
        }
        let Some(path) = j["executable"].as_str() else {
            continue;
        };
        let manifest = PathBuf::from(j["manifest_path"].as_str().context("artifact without manifest_path")?);
        let package = meta
            .manifests
            .get(&manifest)
            .with_context(|| format!("{} is not a workspace package", manifest.display()))?
            .clone();
        exes.push(TestExe {
            package,
            kind: j["target"]["kind"][0].as_str().unwrap_or_default().to_string(),
            name: j["target"]["name"].as_str().unwrap_or_default().to_string(),
            path: PathBuf::from(path),
            dir: manifest
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| ws.to_path_buf()),
        });
    }
    exes.sort_by(|a, b| (&a.package, &a.kind, &a.name).cmp(&(&b.package, &b.kind, &b.name)));
    Ok(exes)
}

/// `cargo xtask cross-test TARGET [--libs-only]`: the library crates' tests (unit,
/// integration, doc) and the CLI's end-to-end tests built for TARGET and run under its
/// emulator. Fails if any test fails or no test ran.
pub fn cross_test(ws: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut triple = None;
    let mut libs_only = false;
    for a in args {
        match a.as_str() {
            "--libs-only" => libs_only = true,
            s if !s.starts_with('-') && triple.is_none() => triple = Some(s.to_string()),
            s => bail!("cross-test: unexpected argument {s}"),
        }
    }
    let t = target(triple.as_deref().context("cross-test: which target?")?)?;
    check_prerequisites(t)?;
    let meta = metadata(ws)?;
    let libs: Vec<&str> = meta
        .libraries
        .iter()
        .map(String::as_str)
        .filter(|l| !NOT_EMULATED.contains(l))
        .collect();
    if libs.is_empty() {
        bail!("cross-test: the workspace has no library packages");
    }
    let mut packages = libs.clone();
    if !libs_only {
        packages.push("pvdump");
    }
    let start = Instant::now();
    eprintln!("cross-test {}: building the tests of {}", t.triple, packages.join(", "));
    let exes = build_tests(ws, &meta, t, &packages)?;
    eprintln!(
        "cross-test {}: built in {:.0} s",
        t.triple,
        start.elapsed().as_secs_f64()
    );

    let selected: Vec<&TestExe> = exes
        .iter()
        .filter(|e| {
            libs.contains(&e.package.as_str())
                || (e.package == "pvdump"
                    && (e.kind == "bin" || (e.kind == "test" && CLI_EMULATED_TESTS.contains(&e.name.as_str()))))
        })
        .collect();
    for want in libs.iter().copied().chain((!libs_only).then_some("pvdump")) {
        if !selected.iter().any(|e| e.package == want) {
            bail!("cross-test: no test executable of {want} was built");
        }
    }
    if !libs_only {
        for name in CLI_EMULATED_TESTS {
            if !selected.iter().any(|e| e.package == "pvdump" && e.name == *name) {
                bail!("cross-test: pvdump has no integration test {name}");
            }
        }
    }
    let run_start = Instant::now();
    let mut failed = Vec::new();
    for e in &selected {
        let mut cmd = runner(t, &e.path);
        cmd.current_dir(&e.dir)
            .env("CARGO_MANIFEST_DIR", &e.dir)
            .env("PVDUMP_TEST_RUNNER", t.runner.join(" "));
        if e.package != "pvdump" {
            for s in REEXEC_TESTS {
                cmd.args(["--skip", s]);
            }
        }
        eprintln!("     Running {} {} {} ({})", e.package, e.kind, e.name, t.triple);
        let st = cmd.status().with_context(|| format!("running {cmd:?}"))?;
        if !st.success() {
            failed.push(format!("{} {} {}", e.package, e.kind, e.name));
        }
    }
    eprintln!("cross-test {}: doc tests of the libraries", t.triple);
    let mut doc = Command::new("cargo");
    doc.current_dir(ws)
        .args(["test", "--locked", "--doc", "--target", t.triple, "--config"])
        .arg(cross_config(ws));
    for p in &packages {
        doc.args(["-p", p]);
    }
    if !doc.status()?.success() {
        failed.push("doc tests".to_string());
    }
    if !failed.is_empty() {
        bail!("cross-test {}: failed: {}", t.triple, failed.join(", "));
    }
    eprintln!(
        "cross-test {}: {} test executables and the doc tests passed under {} (build {:.0} s, run {:.0} s)",
        t.triple,
        selected.len(),
        t.runner.first().copied().unwrap_or("no emulator"),
        run_start.duration_since(start).as_secs_f64(),
        run_start.elapsed().as_secs_f64()
    );
    Ok(())
}
