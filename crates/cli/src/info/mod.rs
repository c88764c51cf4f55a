//! `pvdump info`: what a dump is and holds, for any kind pvdump reads or writes.

mod report;
mod text;
mod time;

use pvdump_core::DumpKind;

use crate::args::InfoArgs;
use crate::exit::Failure;
use crate::input::{open_dump, read_key};

pub fn run(args: &InfoArgs) -> Result<(), Failure> {
    let cck = args.key.key.as_deref().map(|k| read_key(k, false)).transpose()?;
    let dump = open_dump(&args.dump, cck.as_ref())?;
    let key_given = cck.is_some();
    drop(cck);
    if key_given && dump.kind() != DumpKind::EncryptedPv {
        eprintln!(
            "pvdump: warning: {} is not encrypted ({}): --key is not used",
            args.dump.display(),
            dump.kind().describe()
        );
    }
    crate::input::warn_irregularities(&dump, &args.dump);
    let file = args.dump.display().to_string();
    let r = report::Report::new(&dump, &file)?;
    let out = if args.json {
        // Plain structs of strings and numbers: serialising them cannot fail.
        let mut s = serde_json::to_string_pretty(&r).unwrap_or_default();
        s.push('\n');
        s
    } else {
        text::render(&r)
    };
    crate::print_stdout(out.as_bytes())
}
