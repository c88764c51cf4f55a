//! The ordered ring (streams and files): output order, the window bound, and that every way of failing
//! (source, writer, cancel) ends the call without hanging, with any pool size.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use pvdump_format::FormatError;

use super::*;

const P: u64 = PAGE_SIZE;

/// Pages whose bytes identify them; optionally failing at one address, slow on some
/// chunks (so they complete out of order), and checking the window bound.
struct Mem {
    blocks: Vec<MemoryBlock>,
    fail_at: Option<u64>,
    /// Bytes written so far by `Sink`, and the bound to check: a chunk starting at
    /// output offset `o` may only be read while `o < written + window_bytes`.
    written: Option<(&'static AtomicU64, u64)>,
    reads: AtomicUsize,
}

fn byte(addr: u64) -> u8 {
    (addr / P).wrapping_mul(31) as u8 ^ (addr % 251) as u8
}

impl PageSource for Mem {
    fn blocks(&self) -> &[MemoryBlock] {
        &self.blocks
    }
    fn read_pages(&self, paddr: u64, out: &mut [u8], zero: &mut [bool]) -> Result<(), FormatError> {
        let n = self.reads.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = self.fail_at
            && (paddr..paddr + out.len() as u64).contains(&f)
        {
            return Err(FormatError::outside_memory(f));
        }
        if let Some((written, window_bytes)) = self.written {
            // One block at address 0: the output offset is the address.
            let w = written.load(Ordering::SeqCst);
            assert!(
                paddr < w + window_bytes,
                "chunk {paddr:#x} read while only {w:#x} written"
            );
        }
        if n % 3 == 1 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        for (i, b) in out.iter_mut().enumerate() {
            *b = byte(paddr + i as u64);
        }
        zero.fill(false);
        Ok(())
    }
}

fn mem(blocks: &[(u64, u64)]) -> Mem {
    Mem {
        blocks: blocks
            .iter()
            .map(|&(paddr, pages)| MemoryBlock { paddr, size: pages * P })
            .collect(),
        fail_at: None,
        written: None,
        reads: AtomicUsize::new(0),
    }
}

fn expected(m: &Mem) -> Vec<u8> {
    m.blocks.iter().flat_map(|b| (b.paddr..b.end()).map(byte)).collect()
}

/// A writer that counts, optionally fails after `fail_after` bytes.
struct Sink {
    data: Vec<u8>,
    fail_after: Option<usize>,
    written: Option<&'static AtomicU64>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.fail_after.is_some_and(|f| self.data.len() + buf.len() > f) {
            return Err(std::io::Error::other("disk full"));
        }
        self.data.extend_from_slice(buf);
        if let Some(w) = self.written {
            w.fetch_add(buf.len() as u64, Ordering::SeqCst);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sink() -> Sink {
    Sink {
        data: Vec::new(),
        fail_after: None,
        written: None,
    }
}

fn run(
    m: &Mem,
    sink: &mut Sink,
    chunk_pages: usize,
    window: usize,
    cancel: Option<&AtomicBool>,
) -> Result<(), WriteError> {
    let blocks: Vec<(MemoryBlock, u64)> = m.blocks.iter().map(|&b| (b, 0)).collect();
    let opts = WriteOptions {
        chunk_pages,
        window,
        min_hole_pages: None,
        progress: None,
        cancel,
    };
    pump(m, &blocks, &mut Output::Stream(sink), &opts)
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

#[test]
fn stream_is_in_order_for_any_pool_chunk_and_window() {
    let m = mem(&[(0, 7), (64 * P, 1), (100 * P, 23)]);
    let want = expected(&m);
    for threads in [1, 2, 4] {
        for (chunk, window) in [(1, 1), (3, 2), (2, 7), (64, 3)] {
            let mut s = sink();
            pool(threads).install(|| run(&m, &mut s, chunk, window, None)).unwrap();
            assert!(s.data == want, "threads {threads} chunk {chunk} window {window}");
        }
    }
    // From outside any pool (the global pool's threads help, this thread writes).
    let mut s = sink();
    run(&m, &mut s, 2, 3, None).unwrap();
    assert!(s.data == want);
    // No memory at all.
    let mut s = sink();
    run(&mem(&[]), &mut s, 2, 3, None).unwrap();
    assert!(s.data.is_empty());
}

#[test]
fn stream_reads_at_most_window_chunks_ahead_of_the_writer() {
    static WRITTEN: AtomicU64 = AtomicU64::new(0);
    let (chunk, window) = (2usize, 3usize);
    let mut m = mem(&[(0, 41)]);
    m.written = Some((&WRITTEN, (chunk * window) as u64 * P));
    let mut s = Sink {
        written: Some(&WRITTEN),
        ..sink()
    };
    pool(4).install(|| run(&m, &mut s, chunk, window, None)).unwrap();
    assert!(s.data == expected(&m));
    assert_eq!(m.reads.load(Ordering::Relaxed), 41usize.div_ceil(chunk));
}

#[test]
fn stream_source_error_ends_the_call() {
    for threads in [1, 3] {
        let mut m = mem(&[(0, 50)]);
        m.fail_at = Some(17 * P + 5);
        let mut s = sink();
        let r = pool(threads).install(|| run(&m, &mut s, 4, 3, None));
        assert!(matches!(r, Err(WriteError::Source(_))), "{r:?}");
        // Everything before the failing chunk (pages 16..20) may have been written, in
        // order; nothing after it.
        assert!(s.data.len() <= 16 * P as usize);
        assert!(s.data == expected(&m)[..s.data.len()]);
    }
}

#[test]
fn stream_writer_error_ends_the_call() {
    for threads in [1, 3] {
        let m = mem(&[(0, 50)]);
        let mut s = Sink {
            fail_after: Some(9 * P as usize),
            ..sink()
        };
        let r = pool(threads).install(|| run(&m, &mut s, 4, 3, None));
        match r {
            Err(WriteError::Io { context, source }) => {
                assert!(context.contains("0x8000"), "{context}");
                assert_eq!(source.to_string(), "disk full");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.data.len(), 8 * P as usize);
    }
}

#[test]
fn stream_cancel_ends_the_call() {
    let m = mem(&[(0, 50)]);
    let cancel = AtomicBool::new(true);
    let mut s = sink();
    let r = pool(2).install(|| run(&m, &mut s, 4, 3, Some(&cancel)));
    assert!(matches!(r, Err(WriteError::Cancelled)), "{r:?}");
    assert!(s.data.is_empty());
}

/// A panicking source must propagate its panic, not hang the writer or the helpers.
#[test]
fn stream_source_panic_propagates() {
    struct Boom;
    impl PageSource for Boom {
        fn blocks(&self) -> &[MemoryBlock] {
            const B: &[MemoryBlock] = &[MemoryBlock { paddr: 0, size: 40 * P }];
            B
        }
        fn read_pages(&self, paddr: u64, out: &mut [u8], _: &mut [bool]) -> Result<(), FormatError> {
            assert!(paddr != 12 * P, "boom");
            out.fill(1);
            Ok(())
        }
    }
    for threads in [1, 3] {
        let blocks = [(Boom.blocks()[0], 0)];
        let opts = WriteOptions {
            chunk_pages: 4,
            window: 2,
            min_hole_pages: None,
            progress: None,
            cancel: None,
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut s = sink();
            pool(threads).install(|| pump(&Boom, &blocks, &mut Output::Stream(&mut s), &opts))
        }));
        assert!(r.is_err(), "threads {threads}: the panic must propagate");
    }
}

/// Pages whose bytes identify them, except the zero pages: every third page, and pages 20
/// to 29 (so pages 18 and 20-30 are zero runs of 1 and 11 pages, the rest runs of 1). Zero
/// pages with odd numbers are flagged as known zero, the others are found by scanning.
struct Sparse(Vec<MemoryBlock>);

fn sparse_zero(pfn: u64) -> bool {
    pfn.is_multiple_of(3) || (20..30).contains(&pfn)
}

fn sparse_byte(addr: u64) -> u8 {
    if sparse_zero(addr / P) { 0 } else { byte(addr) | 1 }
}

impl PageSource for Sparse {
    fn blocks(&self) -> &[MemoryBlock] {
        &self.0
    }
    fn read_pages(&self, paddr: u64, out: &mut [u8], zero: &mut [bool]) -> Result<(), FormatError> {
        for (i, b) in out.iter_mut().enumerate() {
            *b = sparse_byte(paddr + i as u64);
        }
        for (i, z) in zero.iter_mut().enumerate() {
            let pfn = paddr / P + i as u64;
            *z = sparse_zero(pfn) && pfn % 2 == 1;
        }
        Ok(())
    }
}

/// Which pages of `file` are holes, by `SEEK_DATA`.
fn holes(file: &std::fs::File, pages: u64) -> Vec<bool> {
    use std::os::fd::AsRawFd;
    (0..pages)
        .map(|i| {
            let off = (i * P) as libc::off_t;
            // SAFETY: lseek on an open descriptor; no memory is passed.
            let data = unsafe { libc::lseek(file.as_raw_fd(), off, libc::SEEK_DATA) };
            // -1 (ENXIO): no data at or after `off`.
            data == -1 || data >= off + P as libc::off_t
        })
        .collect()
}

#[test]
fn a_file_gets_every_page_at_its_offset_and_long_zero_runs_stay_holes() {
    let src = Sparse(vec![
        MemoryBlock { paddr: 0, size: 40 * P },
        MemoryBlock {
            paddr: 96 * P,
            size: 17 * P,
        },
    ]);
    // Output offsets differ from the addresses: block 1 right after block 0, after a header.
    let blocks = [(src.0[0], 2 * P), (src.0[1], 42 * P)];
    let mut want = vec![0u8; (59 * P) as usize];
    for &(b, off) in &blocks {
        for a in b.paddr..b.end() {
            want[(off + a - b.paddr) as usize] = sparse_byte(a);
        }
    }
    let path = std::env::temp_dir().join(format!("pvdump-pump-file-{}", std::process::id()));
    for threads in [1, 2, 4] {
        for (chunk, window) in [(1, 1), (3, 2), (8, 5), (64, 2)] {
            for min_hole in [1, 4, 11, 12] {
                let file = std::fs::File::create(&path).unwrap();
                file.set_len(want.len() as u64).unwrap();
                let opts = WriteOptions {
                    chunk_pages: chunk,
                    window,
                    min_hole_pages: Some(min_hole),
                    progress: None,
                    cancel: None,
                };
                pool(threads)
                    .install(|| pump(&src, &blocks, &mut Output::File(&file), &opts))
                    .unwrap();
                let case = format!("threads {threads} chunk {chunk} window {window} min_hole {min_hole}");
                assert!(std::fs::read(&path).unwrap() == want, "{case}");
                // The header is a hole; so is every run of zero pages inside one chunk that
                // is at least `min_hole` long (min_hole 1: every zero page), and nothing else.
                let mut want_holes = vec![true; 59];
                for &(b, off) in &blocks {
                    let first = b.paddr / P;
                    for (c, pfns) in (first..first + b.size / P)
                        .collect::<Vec<_>>()
                        .chunks(chunk)
                        .enumerate()
                    {
                        let at = off / P + (c * chunk) as u64;
                        let mut i = 0;
                        while i < pfns.len() {
                            let run = pfns[i..].iter().take_while(|&&p| sparse_zero(p)).count().max(1);
                            let hole = sparse_zero(pfns[i]) && run >= min_hole;
                            for k in i..i + run {
                                want_holes[(at + k as u64) as usize] = hole;
                            }
                            i += run;
                        }
                    }
                }
                assert_eq!(holes(&file, 59), want_holes, "{case}");
            }
        }
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn is_zero_sees_any_byte_anywhere() {
    let mut page = vec![0u8; P as usize];
    assert!(is_zero(&page));
    for at in [0, 7, 255, 256, 2048, 4095] {
        page[at] = 0x80;
        assert!(!is_zero(&page), "byte {at}");
        page[at] = 0;
    }
    // Lengths that are not whole 256-byte blocks.
    assert!(is_zero(&[0u8; 300]));
    assert!(!is_zero(&[&[0u8; 299][..], &[1]].concat()));
    assert!(is_zero(&[]));
}
