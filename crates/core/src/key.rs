//! Reading the customer communication key (CCK): from a regular file, a FIFO, a pipe
//! (`/dev/fd/N`, as bash's process substitution `<(gpg -d cck.gpg)` gives it) or standard
//! input, read once, never more than [`MAX_KEY_FILE`] + 1 bytes, into buffers that are wiped.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, IsTerminal, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pvdump_crypto::{Cck, KeyFileError};
use zeroize::Zeroizing;

/// Largest key input accepted, in bytes. A regular file larger than this is refused by its
/// size without being read; from a pipe or device at most one byte more is read.
pub const MAX_KEY_FILE: u64 = 4096;

/// Where the key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Standard input (`--key -`), read to its end: a pipe, a FIFO, a socket, a regular file
    /// or a character device that ends (a terminal is refused).
    Stdin,
    /// A path: a regular file, a FIFO, `/dev/fd/N` of a pipe, or a character device that
    /// ends (a terminal is refused).
    Path(PathBuf),
}

impl KeySource {
    /// The source a command-line argument names: `-` is standard input, anything else a path.
    pub fn from_arg(arg: &Path) -> KeySource {
        if arg.as_os_str() == "-" {
            KeySource::Stdin
        } else {
            KeySource::Path(arg.to_path_buf())
        }
    }

    /// The file the key will be read from, without reading or opening it (a FIFO would block
    /// the open): the path's metadata following symbolic links, or standard input's. For
    /// protecting the key from being overwritten by the output.
    pub fn metadata(&self) -> io::Result<Metadata> {
        match self {
            KeySource::Stdin => stdin_file()?.metadata(),
            KeySource::Path(p) => std::fs::metadata(p),
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Stdin => f.write_str("key on standard input"),
            KeySource::Path(p) => write!(f, "key file {}", p.display()),
        }
    }
}

/// Why a key cannot be read or used. No variant ever carries key bytes: messages describe
/// the length and form of what was read, never its contents.
///
/// For [`KeyError::Io`] the operating-system error is the [`source`](std::error::Error::source),
/// not part of the `Display` text, so a chain printer (`{:#}` in anyhow) shows it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key cannot be opened or read.
    #[error("{key}: {action}")]
    Io {
        /// Where the key was to come from.
        key: KeySource,
        /// What failed: "cannot open it", "cannot read it", ...
        action: &'static str,
        /// The operating-system error.
        #[source]
        source: io::Error,
    },
    /// The key path is a directory.
    #[error("{key}: is a directory, not a key file")]
    Directory {
        /// Where the key was to come from.
        key: KeySource,
    },
    /// The key path is a kind of file a key cannot be read from (a block device, a socket).
    #[error("{key}: is {kind}; give a regular file, a FIFO or a pipe holding 32 raw bytes or 64 hex digits")]
    Unsupported {
        /// Where the key was to come from.
        key: KeySource,
        /// "a block device", "a socket", ...
        kind: &'static str,
    },
    /// The key would be read from a terminal, where it would be typed in and echoed.
    #[error(
        "{key}: is a terminal; pvdump does not read a key typed in (it would be shown on the screen): give a key file or pipe the key in"
    )]
    Terminal {
        /// Where the key was to come from.
        key: KeySource,
    },
    /// The key input is far too large to be a key.
    #[error(
        "{key}: holds {}; expected 32 raw bytes or 64 hex digits",
        match len { Some(n) => format!("{n} bytes"), None => format!("more than {MAX_KEY_FILE} bytes") }
    )]
    TooLarge {
        /// Where the key was to come from.
        key: KeySource,
        /// Its size when known (a regular file); `None` for a pipe or device that gave more
        /// than [`MAX_KEY_FILE`] bytes.
        len: Option<u64>,
    },
    /// What was read is not a key.
    #[error("{key}: {reason}")]
    Contents {
        /// Where the key came from.
        key: KeySource,
        /// What is wrong with the contents (length and form only).
        reason: KeyFileError,
    },
}

/// A key that was read, with what the caller may want to warn about.
#[derive(Debug)]
pub struct KeyFile {
    /// The key.
    pub cck: Cck,
    /// The permission bits of a regular key file that group or others may read or write
    /// (`None` for private files, pipes, FIFOs and devices).
    pub shared_mode: Option<u32>,
}

/// "a FIFO", "a character device", ... for messages about files that are not regular.
pub fn file_kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads and parses a key file: 32 raw bytes, or 64 hex digits with an optional newline.
/// The same as [`read_key`] with [`KeySource::Path`].
pub fn read_key_file(path: &Path) -> Result<KeyFile, KeyError> {
    read_key(&KeySource::Path(path.to_path_buf()))
}

/// Reads the key once from `source` and parses it: 32 raw bytes, or 64 hex digits with an
/// optional newline.
///
/// - A regular file larger than [`MAX_KEY_FILE`] is refused by its size, unread.
/// - A FIFO, a pipe (`/dev/fd/N`), standard input or a character device is read to its end,
///   but never more than [`MAX_KEY_FILE`] + 1 bytes: more is refused ([`KeyError::TooLarge`]),
///   so `/dev/zero` ends at once. Opening a FIFO waits for its writer.
/// - A terminal is refused (a key typed in would be echoed), as are directories, block
///   devices and sockets.
///
/// Every buffer that held key material is wiped before it is freed.
pub fn read_key(source: &KeySource) -> Result<KeyFile, KeyError> {
    let io = |action: &'static str| {
        move |e: io::Error| KeyError::Io {
            key: source.clone(),
            action,
            source: e,
        }
    };
    let file = match source {
        KeySource::Stdin => stdin_file().map_err(io("cannot use standard input"))?,
        KeySource::Path(path) => {
            // A look before opening, for what open(2) handles badly: a socket fails with a
            // puzzling ENXIO, and a regular file's size can be checked without reading it.
            let meta = std::fs::metadata(path).map_err(io("cannot open it"))?;
            check_kind(source, &meta)?;
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOCTTY)
                .open(path)
                .map_err(io("cannot open it"))?
        }
    };
    // What was opened decides (the path may have changed since the look).
    let meta = file.metadata().map_err(io("cannot inspect it"))?;
    check_kind(source, &meta)?;
    if file.is_terminal() {
        return Err(KeyError::Terminal { key: source.clone() });
    }
    let (buf, len) = read_bounded(&file).map_err(io("cannot read it"))?;
    if len > MAX_KEY_FILE as usize {
        return Err(KeyError::TooLarge {
            key: source.clone(),
            len: meta.is_file().then(|| meta.len().max(len as u64)),
        });
    }
    let cck = Cck::from_key_file(&buf[..len]).map_err(|reason| KeyError::Contents {
        key: source.clone(),
        reason,
    })?;
    let mode = meta.permissions().mode();
    Ok(KeyFile {
        cck,
        shared_mode: (meta.is_file() && mode & 0o077 != 0).then_some(mode & 0o777),
    })
}

/// Refuses what a key cannot be read from; a regular file too large by its size.
fn check_kind(source: &KeySource, meta: &Metadata) -> Result<(), KeyError> {
    let t = meta.file_type();
    if t.is_dir() {
        return Err(KeyError::Directory { key: source.clone() });
    }
    if t.is_file() {
        if meta.len() > MAX_KEY_FILE {
            return Err(KeyError::TooLarge {
                key: source.clone(),
                len: Some(meta.len()),
            });
        }
        return Ok(());
    }
    // A socket can be read as standard input (inetd, socket activation); a path to one
    // cannot be opened.
    if t.is_fifo() || t.is_char_device() || (t.is_socket() && *source == KeySource::Stdin) {
        return Ok(());
    }
    Err(KeyError::Unsupported {
        key: source.clone(),
        kind: file_kind(meta),
    })
}

/// Standard input as a file of its own (a duplicate of descriptor 0), so reading it bypasses
/// the standard library's buffer, which would keep a copy of the key.
fn stdin_file() -> io::Result<File> {
    io::stdin().as_fd().try_clone_to_owned().map(File::from)
}

/// Reads up to [`MAX_KEY_FILE`] + 1 bytes into one fixed, wiped-on-drop buffer (never
/// reallocated, so no copy of the key is left in freed memory); returns it and the number of
/// bytes read. More than [`MAX_KEY_FILE`] means the input is too large.
fn read_bounded(mut file: &File) -> io::Result<(Zeroizing<Vec<u8>>, usize)> {
    let mut buf = Zeroizing::new(vec![0u8; MAX_KEY_FILE as usize + 1]);
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((buf, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    /// A fresh folder for one test.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!("pvdump-core-key-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn key_bytes() -> [u8; 32] {
        std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(0x9b))
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    }

    fn path_source(p: &Path) -> KeySource {
        KeySource::Path(p.to_path_buf())
    }

    #[test]
    fn dash_is_standard_input() {
        assert_eq!(KeySource::from_arg(Path::new("-")), KeySource::Stdin);
        assert_eq!(
            KeySource::from_arg(Path::new("./-")),
            KeySource::Path(PathBuf::from("./-"))
        );
        assert_eq!(KeySource::Stdin.to_string(), "key on standard input");
        assert_eq!(path_source(Path::new("k.bin")).to_string(), "key file k.bin");
    }

    #[test]
    fn regular_files_raw_and_hex_and_the_mode_warning() {
        let s = Scratch::new("regular");
        let k = key_bytes();
        let raw = s.path("raw");
        std::fs::write(&raw, k).unwrap();
        mode(&raw, 0o600);
        let got = read_key_file(&raw).unwrap();
        assert_eq!(got.cck.expose(), &k);
        assert_eq!(got.shared_mode, None);
        mode(&raw, 0o640);
        assert_eq!(read_key_file(&raw).unwrap().shared_mode, Some(0o640));
        let hexfile = s.path("hex");
        std::fs::write(&hexfile, hex(&k).to_uppercase() + "\n").unwrap();
        mode(&hexfile, 0o600);
        assert_eq!(read_key_file(&hexfile).unwrap().cck.expose(), &k);
    }

    #[test]
    fn a_fifo_is_read_once_and_never_warned_about() {
        let s = Scratch::new("fifo");
        let fifo = s.path("cck.fifo");
        mkfifo(&fifo);
        mode(&fifo, 0o666);
        let k = key_bytes();
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(&fifo, hex(&k) + "\n").unwrap())
        };
        let got = read_key(&path_source(&fifo)).unwrap();
        writer.join().unwrap();
        assert_eq!(got.cck.expose(), &k);
        assert_eq!(got.shared_mode, None, "the mode warning is for regular files only");
    }

    /// A pipe as bash's process substitution hands it over: `/dev/fd/N` (and the same through
    /// `/proc/self/fd/N`).
    #[test]
    fn a_pipe_through_dev_fd() {
        let k = key_bytes();
        for prefix in ["/dev/fd", "/proc/self/fd"] {
            let (reader, mut writer) = io::pipe().unwrap();
            writer.write_all(&k).unwrap();
            drop(writer);
            let path = PathBuf::from(format!("{prefix}/{}", reader.as_raw_fd()));
            let got = read_key(&path_source(&path)).unwrap();
            assert_eq!(got.cck.expose(), &k, "{prefix}");
            assert_eq!(got.shared_mode, None);
        }
    }

    /// At most MAX_KEY_FILE + 1 bytes are taken from a pipe that holds more.
    #[test]
    fn a_long_pipe_is_refused_after_reading_at_most_one_byte_too_many() {
        let (mut reader, mut writer) = io::pipe().unwrap();
        let total = 10_000usize;
        writer.write_all(&vec![b'a'; total]).unwrap();
        drop(writer);
        let path = PathBuf::from(format!("/dev/fd/{}", reader.as_raw_fd()));
        let err = read_key(&path_source(&path)).unwrap_err();
        assert!(matches!(err, KeyError::TooLarge { len: None, .. }), "{err:?}");
        assert!(err.to_string().contains("more than 4096 bytes"), "{err}");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(total - rest.len(), MAX_KEY_FILE as usize + 1, "bytes consumed");
    }

    #[test]
    fn devices_end_or_are_refused() {
        let err = read_key(&path_source(Path::new("/dev/zero"))).unwrap_err();
        assert!(matches!(err, KeyError::TooLarge { len: None, .. }), "{err:?}");
        let err = read_key(&path_source(Path::new("/dev/null"))).unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::Contents {
                    reason: KeyFileError::Empty,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_terminal_is_refused() {
        // SAFETY: plain calls on a descriptor this test owns; ptsname's static buffer is
        // copied at once (tests in this module do not call it concurrently).
        let slave = unsafe {
            let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(master >= 0, "posix_openpt: {}", io::Error::last_os_error());
            assert_eq!(libc::grantpt(master), 0);
            assert_eq!(libc::unlockpt(master), 0);
            let name = libc::ptsname(master);
            assert!(!name.is_null());
            let path = PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
                std::ffi::CStr::from_ptr(name).to_bytes(),
            ));
            (master, path)
        };
        let err = read_key(&path_source(&slave.1)).unwrap_err();
        // SAFETY: closing the master opened above.
        unsafe { libc::close(slave.0) };
        assert!(matches!(err, KeyError::Terminal { .. }), "{err:?}");
        assert!(err.to_string().contains("is a terminal"), "{err}");
    }

    #[test]
    fn directories_sockets_and_large_files_are_refused_unread() {
        let s = Scratch::new("kinds");
        let err = read_key_file(&s.0).unwrap_err();
        assert!(matches!(err, KeyError::Directory { .. }), "{err:?}");
        let sock = s.path("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let err = read_key_file(&sock).unwrap_err();
        assert!(matches!(err, KeyError::Unsupported { kind: "a socket", .. }), "{err:?}");
        let big = s.path("big");
        std::fs::write(&big, vec![0u8; 1 << 20]).unwrap();
        let err = read_key_file(&big).unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::TooLarge {
                    len: Some(1_048_576),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("holds 1048576 bytes"), "{err}");
        let missing = s.path("missing");
        let err = read_key_file(&missing).unwrap_err();
        assert!(matches!(err, KeyError::Io { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("key file {}: cannot open it", missing.display())
        );
    }

    /// Malformed keys are described by length and form only: neither the bytes nor any run of
    /// 8 of their hex digits (either case) appears in a message.
    #[test]
    fn messages_never_contain_key_material() {
        let s = Scratch::new("secret");
        let k = key_bytes();
        let h = hex(&k);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("31 bytes", k[..31].to_vec()),
            ("33 bytes", [&k[..], &k[..1]].concat()),
            ("63 hex digits", h.as_bytes()[..63].to_vec()),
            ("64 hex digits and garbage", format!("{h}zz!").into_bytes()),
            ("65 hex digits", format!("{h}a\n").into_bytes()),
            ("hex with a space", format!("{} {}", &h[..32], &h[32..]).into_bytes()),
        ];
        for (name, bytes) in cases {
            let p = s.path("k");
            std::fs::write(&p, &bytes).unwrap();
            let err = read_key_file(&p).unwrap_err();
            let text = format!("{err} / {err:?}");
            assert!(matches!(err, KeyError::Contents { .. }), "{name}: {text}");
            let lower = h.clone();
            let upper = h.to_uppercase();
            for w in 0..=lower.len() - 8 {
                for hay in [&lower, &upper] {
                    assert!(!text.contains(&hay[w..w + 8]), "{name}: {text}");
                }
            }
            let decimal = k[..4].iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ");
            assert!(!text.contains(&decimal), "{name}: {text}");
        }
    }
}
