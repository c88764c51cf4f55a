//! Mounting, serving and unmounting: [`mount`] returns a running [`Server`].

use std::ffi::CString;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use fuser::{Config, MountOption, SessionACL, SessionUnmounter};

use crate::error::{MountError, mount_hint};
use crate::fs::DumpFs;
use crate::{FILE_NAME, SESSION_THREADS};

/// Mounts `fs` at `mountpoint` (an existing directory) and starts serving it: owner-only,
/// `ro,nosuid,nodev,noexec,noatime,default_permissions`, source `pvdump`, type `fuse`.
///
/// The session loop runs on its own threads before this returns, so the caller may use the
/// mount point at once (touching it while nobody serves the mount would hang).
pub fn mount(fs: DumpFs, mountpoint: &Path) -> Result<Server, MountError> {
    let meta = std::fs::metadata(mountpoint).map_err(|source| MountError::MountPoint {
        path: mountpoint.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(MountError::NotADirectory {
            path: mountpoint.to_path_buf(),
        });
    }
    let path = std::fs::canonicalize(mountpoint).map_err(|source| MountError::MountPoint {
        path: mountpoint.to_path_buf(),
        source,
    })?;
    let mut config = Config::default();
    // No allow_other: the kernel refuses every other user, root included.
    config.acl = SessionACL::Owner;
    config.n_threads = Some(SESSION_THREADS);
    config.clone_fd = true;
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::NoExec,
        MountOption::NoAtime,
        MountOption::DefaultPermissions,
        MountOption::FSName("pvdump".into()),
    ];
    let mut session = fuser::Session::new(fs, &path, &config).map_err(|source| MountError::Mount {
        path: path.clone(),
        hint: mount_hint(&source),
        source,
    })?;
    let unmounter = Unmounter {
        inner: Arc::new(Mutex::new(session.unmount_callable())),
        path: path.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("pvdump-fuse".into())
        .spawn(move || session.run());
    let thread = match thread {
        Ok(t) => t,
        Err(source) => {
            // The session was dropped with the closure, which unmounted it.
            return Err(MountError::Session { path, source });
        }
    };
    Ok(Server {
        path,
        unmounter,
        thread: Some(thread),
    })
}

/// A mounted, running filesystem. Dropping it without [`Server::wait`] unmounts it (lazily
/// if a reader still holds the file) and waits for the session to end.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    unmounter: Unmounter,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    /// The mount point (canonical).
    pub fn mountpoint(&self) -> &Path {
        &self.path
    }

    /// The served file, `MOUNTPOINT/vmcore.elf`.
    pub fn file(&self) -> PathBuf {
        self.path.join(FILE_NAME)
    }

    /// A handle that unmounts from any thread (a signal handler thread, say).
    pub fn unmounter(&self) -> Unmounter {
        self.unmounter.clone()
    }

    /// Opens the served file through the mount and checks that it starts with the ELF magic:
    /// the mount is usable by others once this returns.
    pub fn check_readable(&self) -> Result<(), MountError> {
        let path = self.file();
        let err = |source| MountError::NotReadable {
            path: path.clone(),
            source,
        };
        let mut magic = [0u8; 4];
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .map_err(err)?;
        if &magic != b"\x7fELF" {
            return Err(err(io::Error::new(io::ErrorKind::InvalidData, "no ELF header")));
        }
        Ok(())
    }

    /// Waits until the filesystem is unmounted (by [`Unmounter::unmount`], `umount`,
    /// `fusermount3 -u`, or the last reader closing a lazily detached mount) and the
    /// session has ended; the reply buffers are wiped and the dump is closed by then.
    pub fn wait(mut self) -> Result<(), MountError> {
        self.join()
    }

    fn join(&mut self) -> Result<(), MountError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let result = thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the FUSE session thread panicked")));
        match result {
            // The kernel aborts the connection when the last reader of a lazily detached
            // mount closes it: that is the normal end of a busy unmount.
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(()),
            r => r.map_err(|source| MountError::Session {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.unmounter.unmount();
            let _ = self.join();
        }
    }
}

/// How an unmount went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmounted {
    /// The filesystem is gone (or was already gone).
    Clean,
    /// A reader held the file: the mount was detached from the directory tree at once and
    /// keeps serving the open file until the last reader closes it.
    Detached,
}

/// Unmounts a [`Server`]'s filesystem from any thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Unmounter {
    inner: Arc<Mutex<SessionUnmounter>>,
    path: PathBuf,
}

impl Unmounter {
    /// Unmounts; when the filesystem is busy, detaches it lazily ([`Unmounted::Detached`]).
    /// Unmounting twice, or after an external `umount`, is harmless.
    pub fn unmount(&self) -> Result<Unmounted, MountError> {
        let r = self.inner.lock().unwrap_or_else(PoisonError::into_inner).unmount();
        match r {
            Ok(()) => Ok(Unmounted::Clean),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                detach(&self.path).map_err(|source| MountError::Unmount {
                    path: self.path.clone(),
                    source,
                })?;
                Ok(Unmounted::Detached)
            }
            Err(source) => Err(MountError::Unmount {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// The mount point.
    pub fn mountpoint(&self) -> &Path {
        &self.path
    }
}

/// Detaches the mount at `path` lazily (`umount2(MNT_DETACH)`): it disappears from the
/// directory tree at once; open files keep working until closed.
pub fn detach(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a plain syscall on a NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
