//! The reference dumps in ../shared/fixtures/reference (produced independently of pvdump and
//! cross-checked with zgetdump): key derivation, GCM and XTS must reproduce their manifests.

use std::path::PathBuf;

use pvdump_crypto::{Cck, DumpKey, OpenedDump, PageCipher, XtsKey, open_completion};
use pvdump_format::{PageSource, PvDump};

fn reference_dirs() -> Vec<PathBuf> {
    let root = std::env::var_os("PVDUMP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = root.join("fixtures/reference");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but the reference fixtures are missing at {}", dir.display());
        }
        eprintln!(
            "\n!!!!! SKIPPED: reference fixtures not found at {} (set PVDUMP_SHARED) !!!!!\n",
            dir.display()
        );
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("pvdump.elf").exists())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no reference dumps under {}", dir.display());
    v
}

fn hex32<const N: usize>(v: &serde_json::Value) -> [u8; N] {
    hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

#[test]
fn hkdf_gcm_match_manifest_secrets() {
    for dir in reference_dirs() {
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let s = &m["secrets"];
        let data = std::fs::read(dir.join("pvdump.elf")).unwrap();
        let dump = PvDump::parse(&data).unwrap();
        let compl = dump.completion().unwrap();
        assert_eq!(compl.fields.seed, hex32::<64>(&s["hkdf_seed"]), "{}", dir.display());
        assert_eq!(compl.fields.iv, hex32::<12>(&s["compl_iv"]));
        let cck = Cck::from_key_file(&std::fs::read(dir.join("cck.bin")).unwrap()).unwrap();
        assert_eq!(cck.expose(), &hex32::<32>(&s["cck"]));
        let key = DumpKey::derive(&cck, &compl.fields.seed);
        assert_eq!(
            key.expose(),
            &hex32::<32>(&s["dump_key"]),
            "dump key of {}",
            dir.display()
        );
        let secrets = open_completion(&key, &compl).unwrap();
        assert_eq!(secrets.nonce, hex32::<16>(&s["tweak_nonce"]));
        assert_eq!(secrets.xts_key.expose(), &hex32::<64>(&s["xts_key"]));
    }
}

/// Every XTS backend this CPU has, in both directions, on the reference dumps' pages:
/// decrypting gives both `xts-mode`'s result and the manifest's expected memory, and
/// encrypting that memory gives back the dump's ciphertext.
#[test]
fn every_xts_backend_matches_reference_pages() {
    use aes::cipher::KeyInit;
    use pvdump_crypto::Backend;
    let backends: Vec<Backend> = Backend::ALL.into_iter().filter(|b| b.is_available()).collect();
    for dir in reference_dirs() {
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let key = XtsKey::from_bytes(hex32::<64>(&m["secrets"]["xts_key"]));
        let nonce = hex32::<16>(&m["secrets"]["tweak_nonce"]);
        let slow = xts_mode::Xts128::new(
            aes::Aes256::new_from_slice(&key.expose()[..32]).unwrap(),
            aes::Aes256::new_from_slice(&key.expose()[32..]).unwrap(),
        );
        let data = std::fs::read(dir.join("pvdump.elf")).unwrap();
        let expected = std::fs::read(dir.join("expected_mem.bin")).unwrap();
        let dump = PvDump::parse(&data).unwrap();
        let load = dump.loads()[0];
        assert_eq!(load.paddr, 0, "the first PT_LOAD of {} starts at 0", dir.display());
        for &backend in &backends {
            let fast = PageCipher::with_backend(&key, nonce, backend).unwrap();
            let mut checked = 0;
            for pfn in 0..load.filesz / 4096 {
                let pvdump_format::PageState::Encrypted { component } = dump.page_state(pfn).unwrap() else {
                    continue;
                };
                let src: &[u8; 4096] = dump.page_bytes(&load, pfn).unwrap().try_into().unwrap();
                let plain: &[u8; 4096] = expected[pfn as usize * 4096..][..4096].try_into().unwrap();
                let mut a = *src;
                let mut b = *src;
                fast.decrypt_page(&component, &mut a);
                slow.decrypt_sector(&mut b, fast.tweak_for(&component).into());
                assert_eq!(a, b, "{backend}: page {pfn:#x} of {}", dir.display());
                assert_eq!(&a, plain, "{backend}: page {pfn:#x} of {}", dir.display());
                let mut c = [0u8; 4096];
                fast.decrypt_page_from(&component, src, &mut c);
                assert_eq!(&c, plain, "{backend}: decrypt_page_from, page {pfn:#x}");
                fast.encrypt_page(&component, &mut c);
                assert_eq!(&c, src, "{backend}: encrypt_page, page {pfn:#x}");
                checked += 1;
                if checked == 32 {
                    break;
                }
            }
            assert!(checked > 0);
        }
    }
}

#[test]
fn opened_dump_reproduces_expected_memory() {
    for dir in reference_dirs() {
        let data = std::fs::read(dir.join("pvdump.elf")).unwrap();
        let expected = std::fs::read(dir.join("expected_mem.bin")).unwrap();
        let dump = PvDump::parse(&data).unwrap();
        let cck = Cck::from_key_file(&std::fs::read(dir.join("cck.bin")).unwrap()).unwrap();
        let opened = OpenedDump::open(dump.clone(), &cck).unwrap();
        let mut mem = vec![0u8; expected.len()];
        let mut zero = vec![false; expected.len() / 4096];
        opened.read_pages(0, &mut mem, &mut zero).unwrap();
        assert!(mem == expected, "memory of {} differs", dir.display());
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let pages = &m["memory"]["pages"];
        let c = opened.page_counts();
        assert_eq!(c.encrypted, pages["encrypted"].as_u64().unwrap());
        assert_eq!(c.zero, pages["zero"].as_u64().unwrap());
        assert_eq!(c.shared, pages["shared"].as_u64().unwrap());
        assert_eq!(c.mapped_flag, pages["mapped_flag"].as_u64().unwrap());
        match m["vmcoreinfo"]["text"].as_str() {
            Some(text) => assert_eq!(opened.vmcoreinfo().unwrap().unwrap().text, text.as_bytes()),
            None => assert_eq!(opened.vmcoreinfo().unwrap(), None),
        }
    }
}
