//! Interoperability with liblzo2 through python3-lzo (Debian package `python3-lzo`):
//! (a) liblzo2's `lzo1x_decompress_safe` decodes every stream we write to the exact input;
//! (b) we decode liblzo2's LZO1X-1 and LZO1X-999 streams of the same inputs exactly.
//! Without python3-lzo the test fails under CI=true and skips loudly otherwise.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{PAGE, Rng, synthetic_pages};
use pvdump_lzo::{Compressor, decompress, worst_case_len};

const PYTHON: &str = "/usr/bin/python3";

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips loudly, or fails under CI=true.
fn skip(what: &str) {
    if on_ci() {
        panic!("CI=true but {what}");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {what} !!!!!!!!\n");
}

fn have_python_lzo() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import lzo"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Reads records `u32 LE length, bytes` from stdin: pairs (input, our stream). Checks that
/// liblzo2 decompresses each stream to its input, then writes, per input, liblzo2's
/// LZO1X-1 and LZO1X-999 streams as records to stdout. Exit 1 on the first mismatch.
const SCRIPT: &str = r#"
import sys, struct, lzo
data = sys.stdin.buffer.read()
out = sys.stdout.buffer
pos = 0
def rec():
    global pos
    (n,) = struct.unpack_from("<I", data, pos)
    pos += 4 + n
    return data[pos - n:pos]
count = 0
while pos < len(data):
    plain = rec()
    ours = rec()
    try:
        back = lzo.decompress(ours, False, len(plain))
    except lzo.error as e:
        sys.stderr.write("input %d (%d bytes): liblzo2 rejects our stream: %s\n" % (count, len(plain), e))
        sys.exit(1)
    if back != plain:
        sys.stderr.write("input %d (%d bytes): liblzo2 decodes our stream differently\n" % (count, len(plain)))
        sys.exit(1)
    for level in (1, 9):
        z = lzo.compress(plain, level, False)
        out.write(struct.pack("<I", len(z)))
        out.write(z)
    count += 1
sys.stderr.write("liblzo2 %s decoded %d streams exactly\n" % (lzo.LZO_VERSION_STRING, count))
"#;

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Rng(seed).fill(&mut v);
    v
}

/// Pages and odd inputs: every synthetic kind, real memory if present, sizes from 0 to
/// 100 000, zeros, patterns, random data, copies at every distance form.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = synthetic_pages(1024, 77)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            (
                format!("synthetic page {i} ({})", common::KINDS[i % common::KINDS.len()]),
                p,
            )
        })
        .collect();
    match common::real_pages(4096) {
        Some(pages) => {
            eprintln!(
                "adding {} non-zero pages of {}",
                pages.len(),
                common::real_elf().display()
            );
            v.extend(
                pages
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (format!("real page {i}"), p)),
            );
        }
        None => eprintln!(
            "note: {} absent; the synthetic pages stand in for real memory",
            common::real_elf().display()
        ),
    }
    for n in [0usize, 1, 2, 3, 4, 5, 17, 18, 19, 238, 239, 4095, 4096, 65536, 100_000] {
        v.push((format!("{n} zeros"), vec![0; n]));
        v.push((format!("{n} random"), random(n, n as u64)));
        let pat: Vec<u8> = b"pvdump-lzo ".iter().copied().cycle().take(n).collect();
        v.push((format!("{n} pattern"), pat));
    }
    for dist in [100usize, 2048, 2049, 3000, 16384, 16385, 40000, 49151, 49152] {
        let block = random(500, dist as u64);
        let mut d = block.clone();
        d.resize(dist, 0x55);
        d.extend_from_slice(&block);
        v.push((format!("copy from {dist} back"), d));
    }
    // All pages of the synthetic corpus as one 4 MiB input (long-distance matches, M4).
    v.push(("4 MiB of pages".into(), synthetic_pages(1024, 78).concat()));
    v
}

fn put(buf: &mut Vec<u8>, data: &[u8]) {
    buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
    buf.extend_from_slice(data);
}

fn take<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let n = u32::from_le_bytes(buf[*pos..*pos + 4].try_into().unwrap()) as usize;
    *pos += 4 + n;
    &buf[*pos - n..*pos]
}

#[test]
fn liblzo2_round_trips_both_ways() {
    if !have_python_lzo() {
        skip(&format!("{PYTHON} cannot import lzo (install python3-lzo)"));
        return;
    }
    let corpus = corpus();
    let mut c = Compressor::new();
    let mut input = Vec::new();
    let mut ours_total = 0usize;
    let mut page_ours = 0usize;
    for (_, data) in &corpus {
        let mut z = vec![0u8; worst_case_len(data.len())];
        let n = c.compress(data, &mut z).unwrap();
        put(&mut input, data);
        put(&mut input, &z[..n]);
        ours_total += n;
        if data.len() == PAGE {
            page_ours += n;
        }
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let script = dir.join("lzo_interop.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let mut child = Command::new(PYTHON)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprint!("{err}");
    assert!(out.status.success(), "python3-lzo: {err}");

    // (b) liblzo2's streams decode exactly with ours.
    let (mut pos, mut lzo1_total, mut lzo999_total, mut page_lzo1) = (0, 0, 0, 0);
    for (name, data) in &corpus {
        for level in [1, 9] {
            let z = take(&out.stdout, &mut pos);
            let mut back = vec![0u8; data.len()];
            assert_eq!(
                decompress(z, &mut back),
                Ok(data.len()),
                "{name}: liblzo2 LZO1X-{level} stream"
            );
            assert!(
                back == *data,
                "{name}: liblzo2 LZO1X-{level} stream decodes differently"
            );
            if level == 1 {
                lzo1_total += z.len();
                if data.len() == PAGE {
                    page_lzo1 += z.len();
                }
            } else {
                lzo999_total += z.len();
            }
        }
    }
    assert_eq!(pos, out.stdout.len(), "python3-lzo wrote more records than inputs");
    eprintln!(
        "{} inputs: ours {ours_total} bytes, liblzo2 LZO1X-1 {lzo1_total}, LZO1X-999 {lzo999_total}; \
         4 KiB pages: ours {page_ours}, LZO1X-1 {page_lzo1}",
        corpus.len()
    );
    // Ratio in LZO1X-1's ballpark on pages.
    assert!(
        page_ours * 100 <= page_lzo1 * 105,
        "pages: ours {page_ours} bytes vs LZO1X-1 {page_lzo1}"
    );
}
