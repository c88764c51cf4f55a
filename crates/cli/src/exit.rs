//! Exit codes: the one table (rendered into every --help page, docs/errors.md and README)
//! and the mapping from library errors to it.

use std::fmt;

use pvdump_core::{Error, ErrorKind};

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// Success.
    Success = 0,
    /// Usage error, unusable key, or an output path that cannot be used.
    Usage = 2,
    /// The key does not match this dump.
    WrongKey = 3,
    /// The dump is invalid, corrupted or not a PV dump.
    BadDump = 4,
    /// I/O error: unreadable input, unwritable or full output.
    Io = 5,
    /// Interrupted by SIGINT/SIGTERM/SIGHUP (128 + SIGINT).
    Interrupted = 130,
    /// The reader of the output stream went away (`| head`): stopped quietly, with the status
    /// a shell reports for a process killed by SIGPIPE (128 + 13).
    BrokenPipe = 141,
}

impl Code {
    /// Every code, in table order.
    pub const ALL: [Code; 7] = [
        Code::Success,
        Code::Usage,
        Code::WrongKey,
        Code::BadDump,
        Code::Io,
        Code::Interrupted,
        Code::BrokenPipe,
    ];

    /// What the code means, as the table says it.
    pub fn meaning(self) -> &'static str {
        match self {
            Code::Success => "success",
            Code::Usage => {
                "usage error, unusable key, output exists (without --force), or OUT cannot be used: an input, a terminal, a directory, block device, socket or symbolic link"
            }
            Code::WrongKey => "the key does not match this dump",
            Code::BadDump => "the dump is invalid, truncated, corrupted, or not the kind of dump the command needs",
            Code::Io => {
                "I/O error: the dump cannot be opened or read, the output cannot be created or written (full disk), or the mount failed"
            }
            Code::Interrupted => "interrupted (SIGINT, SIGTERM or SIGHUP); no output file is left behind",
            Code::BrokenPipe => {
                "the output stream was closed by its reader (e.g. piped into head): pvdump stopped quietly, with the status a shell gives a process killed by SIGPIPE (128 + 13)"
            }
        }
    }
}

/// The table for --help pages.
pub fn help_table() -> String {
    let mut s = String::from("Exit codes:\n");
    for c in Code::ALL {
        s.push_str(&format!("  {:<4} {}\n", c as u8, c.meaning()));
    }
    s.pop();
    s
}

/// The table as Markdown (README, docs/errors.md; a test keeps them in step).
#[cfg(test)]
pub fn markdown_table() -> String {
    let mut s = String::from("| code | meaning |\n|---|---|\n");
    for c in Code::ALL {
        s.push_str(&format!("| {} | {} |\n", c as u8, c.meaning()));
    }
    s
}

/// An error with the exit code it deserves.
pub struct Failure {
    /// The exit code.
    pub code: Code,
    /// The message and its causes.
    pub error: anyhow::Error,
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:#}", self.code, self.error)
    }
}

impl Failure {
    /// A failure with this code.
    pub fn new(code: Code, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code,
            error: error.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(msg: impl fmt::Display) -> Self {
        Failure::new(Code::Usage, anyhow::anyhow!("{msg}"))
    }

    /// An I/O error (exit 5) with context.
    pub fn io(context: impl fmt::Display, e: std::io::Error) -> Self {
        Failure::new(Code::Io, anyhow::Error::new(e).context(context.to_string()))
    }

    /// Adds context in front of the message, keeping the code.
    pub fn context(self, ctx: impl fmt::Display + Send + Sync + 'static) -> Self {
        Failure {
            code: self.code,
            error: self.error.context(ctx),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match e.kind() {
            ErrorKind::Usage => Code::Usage,
            ErrorKind::WrongKey => Code::WrongKey,
            ErrorKind::BadDump => Code::BadDump,
            ErrorKind::Io => Code::Io,
            ErrorKind::Cancelled => Code::Interrupted,
        };
        Failure::new(code, e)
    }
}

impl From<pvdump_core::FormatError> for Failure {
    fn from(e: pvdump_core::FormatError) -> Self {
        Failure::from(Error::from(e))
    }
}

impl From<pvdump_vmcore::OutputError> for Failure {
    /// The output path cannot be used: the user's to fix (exit 2) unless a system call
    /// failed (exit 5).
    fn from(e: pvdump_vmcore::OutputError) -> Self {
        use pvdump_vmcore::OutputErrorKind as K;
        let code = match e.kind() {
            K::Exists | K::IsInput | K::Refused => Code::Usage,
            _ => Code::Io,
        };
        Failure::new(code, e)
    }
}

impl From<pvdump_core::WriteError> for Failure {
    fn from(e: pvdump_core::WriteError) -> Self {
        Failure::from(Error::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_carry_the_exit_code_table() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let table = markdown_table();
        for doc in ["README.md", "docs/errors.md"] {
            let text = std::fs::read_to_string(root.join(doc)).unwrap();
            assert!(
                text.contains(&table),
                "{doc} must contain the exit-code table generated from crates/cli/src/exit.rs:\n{table}"
            );
        }
    }

    #[test]
    fn help_table_lists_every_code() {
        let t = help_table();
        assert!(t.starts_with("Exit codes:\n  0    success\n  2    usage error"));
        assert_eq!(t.lines().count(), 1 + Code::ALL.len());
    }
}
