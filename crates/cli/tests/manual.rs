//! `pvdump completions SHELL` and `pvdump man`: the scripts parse in their shells (and bash's
//! completes), the man page renders with groff without a warning, `--version` has its two
//! forms.

mod common;

use std::path::Path;
use std::process::Command;

use common::{TempDir, pvdump, skip, stderr};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn generate(args: &[&str]) -> Vec<u8> {
    let o = pvdump().args(args).output().unwrap();
    assert!(o.status.success(), "pvdump {args:?}: {}", stderr(&o));
    assert_eq!(stderr(&o), "");
    assert!(!o.stdout.is_empty());
    o.stdout
}

fn syntax_check(shell: &str, args: &[&str], script: &Path) {
    let o = Command::new(shell).args(args).arg(script).output().unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{shell} {args:?} rejects the completion script: {}",
        stderr(&o)
    );
}

#[test]
fn bash_completion_parses_and_completes() {
    let tmp = TempDir::new("bash-completion");
    let script = tmp.path("pvdump.bash");
    std::fs::write(&script, generate(&["completions", "bash"])).unwrap();
    syntax_check("bash", &["-n"], &script);
    // Ask the completion function itself, as bash would after `pvdump de<TAB>` and
    // `pvdump decrypt --compress <TAB>`.
    let complete = |words: &str, cword: usize| -> String {
        let prog = format!(
            "source '{}'; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; \
             _pvdump pvdump \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let o = Command::new("bash").args(["--norc", "-c", &prog]).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(complete("pvdump de", 1), "decrypt");
    let words: Vec<String> = complete("pvdump decrypt --compress ''", 3)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(words, ["zlib", "zstd", "lzo", "snappy", "none"]);
    assert!(complete("pvdump info --", 2).split_whitespace().any(|w| w == "--json"));
}

#[test]
fn zsh_and_fish_completions_parse() {
    let tmp = TempDir::new("shell-completion");
    for (shell, args) in [("zsh", &["-n"][..]), ("fish", &["--no-execute"][..])] {
        let script = tmp.path(&format!("pvdump.{shell}"));
        std::fs::write(&script, generate(&["completions", shell])).unwrap();
        if !have(shell) {
            skip(&format!(
                "{shell} is not installed (apt-get install {shell}): its completion script is not checked"
            ));
            continue;
        }
        syntax_check(shell, args, &script);
    }
}

#[test]
fn man_page_renders_without_warnings() {
    let page = generate(&["man"]);
    let text = String::from_utf8(page.clone()).unwrap();
    assert!(text.contains(".TH PVDUMP 1"));
    if !have("groff") {
        return skip("groff is not installed (apt-get install groff-base): the man page is not rendered");
    }
    let tmp = TempDir::new("man");
    let file = tmp.path("pvdump.1");
    std::fs::write(&file, &page).unwrap();
    let o = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-rLL=100n"])
        .arg(&file)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    assert!(o.status.success(), "groff failed: {}", stderr(&o));
    assert_eq!(stderr(&o), "", "groff warns about the man page");
    // Strip the overstrike bold/underline sequences of the terminal output.
    let raw = String::from_utf8_lossy(&o.stdout);
    let mut shown = String::new();
    for c in raw.chars() {
        if c == '\u{8}' {
            shown.pop();
        } else {
            shown.push(c);
        }
    }
    for needle in [
        "PVDUMP(1)",
        "EXIT STATUS",
        "the key does not match this dump",
        "pvdump decrypt --key cck.bin guest.elf -o vmcore",
        "pvdump info",
        "--compress",
        "SEE ALSO",
    ] {
        assert!(shown.contains(needle), "rendered man page lacks {needle:?}:\n{shown}");
    }
    // Every exit code of the table is there, in the EXIT STATUS section.
    let status = &shown[shown.find("EXIT STATUS").unwrap()..];
    for code in ["0", "2", "3", "4", "5", "130"] {
        assert!(
            status.lines().any(|l| l.split_whitespace().next() == Some(code)),
            "exit code {code} missing:\n{status}"
        );
    }
}

#[test]
fn version_short_and_long() {
    let o = pvdump().arg("-V").output().unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("pvdump {}\n", env!("CARGO_PKG_VERSION"))
    );
    let o = pvdump().arg("--version").output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("pvdump {}", env!("CARGO_PKG_VERSION")), "{text}");
    for key in ["commit: ", "target: ", "AES-XTS: ", "compressors: zlib"] {
        assert!(lines.iter().any(|l| l.starts_with(key)), "no {key:?}: {text}");
    }
    let target = lines.iter().find_map(|l| l.strip_prefix("target: ")).unwrap();
    assert!(target.starts_with(std::env::consts::ARCH), "{text}");
    // In a git checkout the commit is the one built (tests run from the checkout).
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Ok(h) = head
        && h.status.success()
    {
        let commit = lines.iter().find_map(|l| l.strip_prefix("commit: ")).unwrap();
        assert_eq!(commit, String::from_utf8_lossy(&h.stdout).trim(), "{text}");
    }
}
