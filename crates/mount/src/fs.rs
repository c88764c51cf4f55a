//! [`DumpFs`]: the FUSE filesystem, one directory holding `vmcore.elf`.

use std::ffi::OsStr;
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig,
    LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, ReplyStatfs, Request,
};
use pvdump_core::{Dump, ElfImage, PageSource};

use crate::error::MountError;
use crate::read::{BufferPool, Span, fill};
use crate::{FILE_NAME, MAX_READ, SESSION_THREADS};

const ROOT: INodeNo = INodeNo(1);
const FILE: INodeNo = INodeNo(2);

/// Nothing in the filesystem ever changes: the kernel may cache names and attributes long.
const TTL: Duration = Duration::from_secs(24 * 3600);

type Elf<'a> = ElfImage<'a, dyn PageSource + 'a>;

self_cell::self_cell!(
    /// The dump and the random-access ELF image that borrows it.
    struct Image {
        owner: Dump,
        #[covariant]
        dependent: Elf,
    }
);

/// The filesystem: a read-only directory (0500) holding [`FILE_NAME`] (0400), owned by the
/// user who mounts it, whose bytes are the dump's ELF vmcore decrypted on demand.
pub struct DumpFs {
    image: Image,
    len: u64,
    uid: u32,
    gid: u32,
    time: SystemTime,
    pool: BufferPool,
    workers: rayon::ThreadPool,
}

impl std::fmt::Debug for DumpFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DumpFs")
            .field("dump", self.image.borrow_owner())
            .field("len", &self.len)
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

impl DumpFs {
    /// The filesystem for an opened dump (an unlocked PV dump, or any plain dump), decrypting
    /// on `threads` worker threads (default: one per core). The file belongs to the
    /// effective user and group of this process.
    pub fn new(dump: Dump, threads: Option<usize>) -> Result<DumpFs, MountError> {
        let image = Image::try_new(dump, |d| d.elf_image())?;
        let len = image.borrow_dependent().len();
        let workers = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.unwrap_or(0))
            .thread_name(|i| format!("pvdump-decrypt-{i}"))
            .build()?;
        // SAFETY: geteuid/getegid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        Ok(DumpFs {
            image,
            len,
            uid,
            gid,
            time: SystemTime::now(),
            pool: BufferPool::new(SESSION_THREADS),
            workers,
        })
    }

    /// Length of `vmcore.elf`.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether `vmcore.elf` is empty (never: it always has an ELF header).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The dump being served.
    pub fn dump(&self) -> &Dump {
        self.image.borrow_owner()
    }

    /// Reads `size` bytes at `offset` of `vmcore.elf` into a wiped-after-use buffer and
    /// hands them to `reply` (fewer at the end of the file, none past it).
    fn read_file<R>(&self, offset: u64, size: usize, reply: impl FnOnce(Result<&[u8], Errno>) -> R) -> R {
        let Some(span) = Span::new(offset, size.min(MAX_READ), self.len) else {
            return reply(Ok(&[]));
        };
        let mut buf = self.pool.lease(span.width());
        match fill(self.image.borrow_dependent(), span.start, &mut buf, &self.workers) {
            Ok(()) => reply(Ok(&buf[span.skip..span.skip + span.len])),
            Err(_) => reply(Err(Errno::EIO)),
        }
        // `buf` is wiped here, after the reply was written to the kernel.
    }

    fn attr(&self, ino: INodeNo) -> Option<FileAttr> {
        let (kind, perm, size, nlink) = match ino {
            ROOT => (FileType::Directory, 0o500, 0, 2),
            FILE => (FileType::RegularFile, 0o400, self.len, 1),
            _ => return None,
        };
        Some(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
            crtime: self.time,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: MAX_READ as u32,
            flags: 0,
        })
    }
}

impl Filesystem for DumpFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // max_write also sets max_pages, which bounds every read request to MAX_READ.
        let _ = config.set_max_write(MAX_READ as u32);
        // Lets MAP_SHARED work on the direct-I/O file where the kernel supports it (6.6+);
        // MAP_PRIVATE works either way.
        let _ = config.add_capabilities(InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP);
        Ok(())
    }

    fn destroy(&mut self) {
        self.pool.clear();
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.attr(FILE) {
            Some(attr) if parent == ROOT && name == FILE_NAME => reply.entry(&TTL, &attr, Generation(0)),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if ino != FILE {
            return reply.error(if ino == ROOT { Errno::EISDIR } else { Errno::ENOENT });
        }
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY || flags.0 & libc::O_TRUNC != 0 {
            return reply.error(Errno::EROFS);
        }
        // Direct I/O: every read comes here, and decrypted pages stay out of the page cache.
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        if ino != FILE {
            return reply.error(Errno::EISDIR);
        }
        self.read_file(offset, size as usize, |r| match r {
            Ok(data) => reply.data(data),
            Err(e) => reply.error(e),
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino == ROOT {
            reply.opened(FileHandle(0), FopenFlags::empty());
        } else {
            reply.error(Errno::ENOTDIR);
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        if ino != ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let entries = [
            (ROOT, FileType::Directory, "."),
            (ROOT, FileType::Directory, ".."),
            (FILE, FileType::RegularFile, FILE_NAME),
        ];
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(*ino, i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let bsize = MAX_READ as u32;
        reply.statfs(self.len.div_ceil(u64::from(bsize)), 0, 0, 2, 0, bsize, 255, bsize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::PAGE;
    use pvdump_core::{Cck, Format, Output, WriteOptions};
    use pvdump_synth::SynthSpec;

    fn dump(spec: &SynthSpec) -> Dump {
        let cck = Cck::from_key_file(&spec.cck()).unwrap();
        Dump::encrypted_from_bytes(spec.dump_bytes(), &cck).unwrap()
    }

    fn elf_bytes(d: &Dump) -> Vec<u8> {
        let mut v = Vec::new();
        d.write(Format::Elf, &mut Output::Stream(&mut v), &WriteOptions::default())
            .unwrap();
        v
    }

    fn read(fs: &DumpFs, offset: u64, size: usize) -> Result<Vec<u8>, Errno> {
        fs.read_file(offset, size, |r| r.map(<[u8]>::to_vec))
    }

    #[test]
    fn every_read_matches_the_elf_writer() {
        let mut spec = SynthSpec::simple(0x6d6f_756e, 3, 2);
        spec.zero_permille = 200;
        spec.shared_permille = 100;
        let fs = DumpFs::new(dump(&spec), Some(2)).unwrap();
        let want = elf_bytes(fs.dump());
        assert_eq!(fs.len(), want.len() as u64);
        let head = want.len() - 3 * (1 << 20);
        let page = PAGE as usize;
        let mut cases = vec![
            (0, 64),
            (0, want.len()),
            (1, 4095),
            (head - 100, 300),
            (head - 1, 2),
            (head, page),
            (head + page - 1, 2),
            (head + 5 * page + 17, 3 * page),
            (head + 7, MAX_READ),
            (want.len() - 10, 100),
            (want.len() - page, page),
        ];
        // Around every page boundary of the first 64 pages, and a sweep of sizes.
        for p in 0..64 {
            cases.push((head + p * page - 3, 6));
        }
        for (i, size) in [1, 511, 4096, 65536, 262143, 262144, 300000, 1 << 20]
            .into_iter()
            .enumerate()
        {
            cases.push((head + i * 4093, size));
        }
        for (off, size) in cases {
            let got = read(&fs, off as u64, size).unwrap();
            let end = (off + size.min(MAX_READ)).min(want.len());
            assert_eq!(got.len(), end - off, "length at {off}+{size}");
            assert!(got == want[off..end], "bytes at {off}+{size}");
        }
        // Past the end: nothing.
        assert!(read(&fs, want.len() as u64, 10).unwrap().is_empty());
        assert!(read(&fs, u64::MAX - 5, 10).unwrap().is_empty());
        // The pool holds no plaintext after the replies.
        let pooled = fs.pool.pooled();
        assert!(!pooled.is_empty() && pooled.len() <= SESSION_THREADS);
        assert!(
            pooled
                .iter()
                .all(|b| b.len() <= MAX_READ + 2 * page && b.iter().all(|&x| x == 0))
        );
    }

    #[test]
    fn two_blocks_and_attributes() {
        let mut spec = SynthSpec::simple(7, 1, 1);
        spec.blocks = vec![
            pvdump_core::MemoryBlock {
                paddr: 0,
                size: 1 << 20,
            },
            pvdump_core::MemoryBlock {
                paddr: 4 << 20,
                size: 512 << 10,
            },
        ];
        let fs = DumpFs::new(dump(&spec), None).unwrap();
        let want = elf_bytes(fs.dump());
        let got = read(&fs, 0, want.len()).unwrap();
        assert!(got == want[..MAX_READ.min(want.len())]);
        let mut all = Vec::new();
        while all.len() < want.len() {
            all.extend(read(&fs, all.len() as u64, MAX_READ).unwrap());
        }
        assert!(all == want);
        let dir = fs.attr(ROOT).unwrap();
        let file = fs.attr(FILE).unwrap();
        assert_eq!((dir.kind, dir.perm), (FileType::Directory, 0o500));
        assert_eq!(
            (file.kind, file.perm, file.size),
            (FileType::RegularFile, 0o400, want.len() as u64)
        );
        assert_eq!(file.blksize as usize, MAX_READ);
        // SAFETY: trivial getter.
        assert_eq!(file.uid, unsafe { libc::geteuid() });
        assert!(fs.attr(INodeNo(3)).is_none());
    }

    #[test]
    fn a_locked_dump_cannot_be_served() {
        let spec = SynthSpec::simple(9, 1, 1);
        let locked = Dump::from_bytes(spec.dump_bytes(), None).unwrap();
        let e = DumpFs::new(locked, None).unwrap_err();
        assert!(
            matches!(e, MountError::Dump(pvdump_core::Error::KeyRequired { .. })),
            "{e}"
        );
    }
}
