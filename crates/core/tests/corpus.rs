//! The corruption corpus through the library: every damaged dump of `mutants` is opened
//! with the right key. Each must fail with the error class the binary maps to the expected
//! exit code, and a message naming the structure and its file offset; opened without a key
//! (what `info` does) or written, nothing may panic.

mod mutants;

use pvdump_core::{Cck, Dump, ErrorKind, Format, Output, WriteOptions};

/// The message as the binary prints it: the error and its causes.
fn message(e: &pvdump_core::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn kind_for(code: i32) -> ErrorKind {
    match code {
        2 => ErrorKind::Usage,
        3 => ErrorKind::WrongKey,
        4 => ErrorKind::BadDump,
        c => panic!("no error class for exit code {c}"),
    }
}

#[test]
fn every_damaged_dump_is_refused_with_its_structure_and_offset() {
    let (base, cck) = mutants::base();
    let layout = mutants::Layout::of(&base);
    let key = Cck::from_bytes(cck);
    let cases = mutants::mutants(&layout);
    assert!(cases.len() >= 80, "only {} mutants", cases.len());
    let mut failures = Vec::new();
    for (i, m) in cases.iter().enumerate() {
        let bytes = m.apply(&layout, &base);
        let mut problems = Vec::new();
        match Dump::encrypted_from_bytes(bytes.clone(), &key) {
            Ok(_) => problems.push("opened without an error".to_string()),
            Err(e) => {
                if e.kind() != kind_for(m.code) {
                    problems.push(format!("error class {:?}, expected {:?}", e.kind(), kind_for(m.code)));
                }
                let msg = message(&e);
                for want in &m.expect {
                    if !msg.contains(want.as_str()) {
                        problems.push(format!("message lacks {want:?}: {msg}"));
                    }
                }
            }
        }
        // Without the key (what `info` does) the same bytes must not panic, and whatever
        // opens must also write.
        if let Ok(d) = Dump::from_bytes(bytes, None)
            && !d.is_locked()
        {
            let mut sink = std::io::sink();
            let _ = d.write(Format::Elf, &mut Output::Stream(&mut sink), &WriteOptions::default());
        }
        if !problems.is_empty() {
            failures.push(format!("[{i}] {}: {}", m.name, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} mutants failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_undamaged_base_opens_and_writes() {
    let (base, cck) = mutants::base();
    let dump = Dump::from_bytes(base, Some(&Cck::from_bytes(cck))).unwrap();
    assert_eq!(dump.cpus().unwrap().len(), 2);
    let mut out = Vec::new();
    let w = dump
        .write(Format::Elf, &mut Output::Stream(&mut out), &WriteOptions::default())
        .unwrap();
    assert_eq!(w.memory, 1 << 20);
    assert_eq!(out.len() as u64, w.bytes);
}
