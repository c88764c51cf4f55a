//! Secrets are wiped when dropped and never printed (issue 5).

use std::mem::{MaybeUninit, size_of};

use pvdump_crypto::{Cck, CompletionSecrets, DumpKey, XtsKey};

/// Drops a value in place and returns the bytes its storage holds afterwards.
fn bytes_after_drop<T>(value: T) -> Vec<u8> {
    let mut slot = MaybeUninit::<T>::uninit();
    slot.write(value);
    // SAFETY: the slot was just initialised and is dropped exactly once; afterwards only its
    // raw bytes are read (they are plain memory the destructor wrote).
    unsafe {
        std::ptr::drop_in_place(slot.as_mut_ptr());
        std::slice::from_raw_parts(slot.as_ptr().cast::<u8>(), size_of::<T>()).to_vec()
    }
}

fn bytes_of<T>(value: &T) -> Vec<u8> {
    // SAFETY: reading the raw bytes of a live value for comparison.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()).to_vec() }
}

#[test]
fn cck_is_zeroized_on_drop() {
    let key = Cck::from_bytes([0xa5; 32]);
    assert_eq!(bytes_of(&key), vec![0xa5; 32], "the key lives inline");
    assert_eq!(bytes_after_drop(key), vec![0u8; 32]);
}

#[test]
fn dump_key_is_zeroized_on_drop() {
    let key = DumpKey::derive(&Cck::from_bytes([7; 32]), &[9; 64]);
    let live = bytes_of(&key);
    assert_eq!(live, key.expose().to_vec());
    assert!(live.iter().any(|&b| b != 0));
    assert_eq!(bytes_after_drop(key), vec![0u8; 32]);
}

#[test]
fn xts_key_is_zeroized_on_drop() {
    let key = XtsKey::from_bytes([0x3c; 64]);
    assert_eq!(bytes_of(&key), vec![0x3c; 64]);
    assert_eq!(bytes_after_drop(key), vec![0u8; 64]);
}

#[test]
fn completion_secrets_are_zeroized_on_drop() {
    let s = CompletionSecrets {
        nonce: [0x11; 16],
        xts_key: XtsKey::from_bytes([0x22; 64]),
    };
    let live = bytes_of(&s);
    assert_eq!(live.iter().filter(|&&b| b == 0x11).count(), 16);
    assert_eq!(live.iter().filter(|&&b| b == 0x22).count(), 64);
    let after = bytes_after_drop(s);
    assert!(after.iter().all(|&b| b == 0), "{after:02x?}");
}

#[test]
fn debug_output_hides_secrets() {
    let cck = Cck::from_bytes([0xab; 32]);
    let dk = DumpKey::derive(&cck, &[1; 64]);
    let xts = XtsKey::from_bytes([0xcd; 64]);
    let s = CompletionSecrets {
        nonce: [0xef; 16],
        xts_key: xts.clone(),
    };
    let dk_hex: String = dk.expose().iter().map(|b| format!("{b:02x}")).collect();
    for (text, secret) in [
        (format!("{cck:?} {cck:#?}"), "abab"),
        (format!("{dk:?} {dk:#?}"), &dk_hex[..8]),
        (format!("{xts:?} {xts:#?}"), "cdcd"),
        (format!("{s:?} {s:#?}"), "efef"),
    ] {
        assert!(!text.to_lowercase().contains(secret), "{text}");
        assert!(
            !text.contains("171") && !text.contains("205") && !text.contains("239"),
            "{text}"
        );
    }
    assert_eq!(format!("{cck:?}"), "Cck(<32 secret bytes>)");
}
