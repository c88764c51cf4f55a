//! The fast batched XTS path must equal the independent `xts-mode` crate on random keys,
//! pages and tweaks, in both directions.

use aes::cipher::KeyInit;
use proptest::prelude::*;
use pvdump_crypto::{PageCipher, XtsKey};

fn page() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 4096)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn fast_xts_equals_xts_mode(key in prop::array::uniform32(any::<u8>()), key2 in prop::array::uniform32(any::<u8>()),
                                nonce in prop::array::uniform16(any::<u8>()), comp in prop::array::uniform16(any::<u8>()),
                                data in page()) {
        let mut k = [0u8; 64];
        k[..32].copy_from_slice(&key);
        k[32..].copy_from_slice(&key2);
        let xk = XtsKey::from_bytes(k);
        let fast = PageCipher::new(&xk, nonce);
        let reference = xts_mode::Xts128::new(aes::Aes256::new_from_slice(&key).unwrap(), aes::Aes256::new_from_slice(&key2).unwrap());
        let tweak = fast.tweak_for(&comp);
        prop_assert_eq!(tweak, std::array::from_fn::<u8, 16, _>(|i| comp[i] | nonce[i]));

        let plain: [u8; 4096] = data.try_into().unwrap();
        let mut a = plain;
        let mut b = plain;
        fast.encrypt_page(&comp, &mut a);
        reference.encrypt_sector(&mut b, tweak.into());
        prop_assert!(a == b, "encrypt differs");
        prop_assert!(a != plain);
        let mut c = [0u8; 4096];
        fast.decrypt_page_from(&comp, &a, &mut c);
        prop_assert!(c == plain, "decrypt_page_from differs");
        fast.decrypt_page(&comp, &mut a);
        reference.decrypt_sector(&mut b, tweak.into());
        prop_assert!(a == plain && b == plain, "decrypt differs");
    }
}
