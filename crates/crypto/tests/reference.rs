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

#[test]
fn fast_xts_matches_xts_mode_on_reference_pages() {
    use aes::cipher::KeyInit;
    for dir in reference_dirs() {
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let key = XtsKey::from_bytes(hex32::<64>(&m["secrets"]["xts_key"]));
        let nonce = hex32::<16>(&m["secrets"]["tweak_nonce"]);
        let fast = PageCipher::new(&key, nonce);
        let slow = xts_mode::Xts128::new(
            aes::Aes256::new_from_slice(&key.expose()[..32]).unwrap(),
            aes::Aes256::new_from_slice(&key.expose()[32..]).unwrap(),
        );
        let data = std::fs::read(dir.join("pvdump.elf")).unwrap();
        let dump = PvDump::parse(&data).unwrap();
        let load = dump.loads()[0];
        let mut checked = 0;
        for pfn in 0..load.filesz / 4096 {
            if let pvdump_format::PageState::Encrypted { component } = dump.page_state(pfn).unwrap() {
                let src = dump.page_bytes(&load, pfn).unwrap();
                let mut a: [u8; 4096] = src.try_into().unwrap();
                let mut b = a;
                fast.decrypt_page(&component, &mut a);
                slow.decrypt_sector(&mut b, fast.tweak_for(&component).into());
                assert_eq!(a, b, "page {pfn:#x} of {}", dir.display());
                checked += 1;
                if checked == 32 {
                    break;
                }
            }
        }
        assert!(checked > 0);
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
