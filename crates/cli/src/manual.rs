//! `pvdump completions SHELL` and `pvdump man`: both generated from the clap definition in
//! args.rs, so they cannot drift from the parser.
//!
//! The man page is one page, pvdump(1), with every subcommand's synopsis, description and
//! options (rendered by clap_mangen), then the examples, the exit-code table of exit.rs and
//! pointers to the tools that read the output.

use clap::CommandFactory;
use roff::{Roff, bold, roman};

use crate::args::Cli;

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pvdump", &mut out);
    out
}

/// Renders one part of a page with clap_mangen, without roff's preamble (the page has it
/// once) and without the part's own `.SH` line when `drop_heading` is set.
fn part(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>, drop_heading: bool) -> String {
    let mut buf = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = render(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let preamble = Roff::new().render();
    let text = text.strip_prefix(&preamble).unwrap_or(&text);
    if drop_heading && text.starts_with(".SH") {
        text.split_once('\n').map_or("", |(_, rest)| rest).to_string()
    } else {
        text.to_string()
    }
}

/// Text lines as roff: each line a line of its own (for examples and tables: `.nf`).
fn verbatim(roff: &mut Roff, text: &str) {
    roff.control("nf", []);
    for line in text.lines() {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
}

/// The man page pvdump(1) in roff.
pub fn man_page() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone())
        .title("PVDUMP")
        .section("1")
        .manual("User Commands")
        .source(format!("pvdump {}", env!("CARGO_PKG_VERSION")));
    let mut page = Roff::new().render();
    page += &part(|w| man.render_title(w), false);
    page += &part(|w| man.render_name_section(w), false);
    page += &part(|w| man.render_synopsis_section(w), false);
    page += &part(|w| man.render_description_section(w), false);
    page += &part(|w| man.render_options_section(w), false);

    let mut commands = Roff::new();
    commands.control("SH", ["COMMANDS"]);
    page += &part(|w| commands.to_writer(w), false);
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = sub.get_bin_name().unwrap_or(sub.get_name()).to_string();
        let sub_man = clap_mangen::Man::new(sub.clone());
        let mut head = Roff::new();
        head.control("SS", [name.as_str()]);
        page += &part(|w| head.to_writer(w), false);
        page += &part(|w| sub_man.render_synopsis_section(w), true);
        let mut pp = Roff::new();
        pp.control("PP", []);
        page += &part(|w| pp.to_writer(w), false);
        page += &part(|w| sub_man.render_description_section(w), true);
        if sub.get_arguments().any(|a| !a.is_hide_set() && !a.is_positional()) {
            page += &part(|w| sub_man.render_options_section(w), true);
        }
    }

    let mut tail = Roff::new();
    tail.control("SH", ["EXAMPLES"]);
    let examples = crate::args::EXAMPLES;
    let (list, note) = examples.split_once("\n\n").unwrap_or((examples, ""));
    let list = list.strip_prefix("Examples:\n").unwrap_or(list);
    verbatim(&mut tail, &list.lines().map(str::trim).collect::<Vec<_>>().join("\n"));
    if !note.trim().is_empty() {
        tail.control("PP", []);
        tail.text([roman(note.trim().replace('\n', " "))]);
    }
    tail.control("SH", ["EXIT STATUS"]);
    for c in crate::exit::Code::ALL {
        tail.control("TP", []);
        tail.text([bold((c as u8).to_string())]);
        tail.text([roman(c.meaning())]);
    }
    tail.control("SH", ["SEE ALSO"]);
    tail.text([roman(
        "crash(8), makedumpfile(8), gdb(1), drgn(1), zgetdump(1), readelf(1). \
         The project README lists what each of them can do with the output on an x86_64 \
         workstation; docs/errors.md explains every error message and docs/json.md the \
         output of info --json.",
    )]);
    tail.control("SH", ["VERSION"]);
    tail.text([roman(format!("pvdump {}", env!("CARGO_PKG_VERSION")))]);
    page += &part(|w| tail.to_writer(w), false);
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_page_has_every_command_option_and_exit_code() {
        let page = man_page();
        assert!(page.starts_with(&Roff::new().render()));
        assert_eq!(page.matches(&Roff::new().render()).count(), 1, "one preamble");
        assert!(page.contains(".TH PVDUMP 1"), "{page}");
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "COMMANDS",
            "EXAMPLES",
            "\"EXIT STATUS\"",
            "\"SEE ALSO\"",
        ] {
            assert!(page.contains(&format!(".SH {section}\n")), "no section {section}");
        }
        for sub in ["decrypt", "info", "convert", "completions", "man"] {
            assert!(page.contains(&format!(".SS \"pvdump {sub}\"\n")), "no command {sub}");
        }
        // Options of the subcommands, with their long help.
        for opt in [
            "\\-\\-key",
            "\\-\\-format",
            "\\-\\-compress",
            "\\-\\-force",
            "\\-\\-json",
            "\\-\\-threads",
        ] {
            assert!(page.contains(opt), "no option {opt}");
        }
        for c in crate::exit::Code::ALL {
            assert!(
                page.contains(&format!(".TP\n\\fB{}\\fR\n", c as u8)),
                "exit code {}",
                c as u8
            );
        }
        assert!(page.contains("pvdump decrypt \\-\\-key cck.bin guest.elf \\-o vmcore"));
    }

    #[test]
    fn completions_know_the_subcommands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let text = String::from_utf8(completions(shell)).unwrap();
            for word in ["decrypt", "info", "convert", "completions", "compress", "zstd"] {
                assert!(text.contains(word), "{shell}: no {word}");
            }
        }
    }
}
