//! Payload decryption, both halves:
//! - any ciphertext and IV strings opened as a message: an error, never a
//!   panic, and the server-side shape check of the same blob never panics;
//! - any bytes as the *plaintext* inside a valid envelope (what a buggy or
//!   hostile peer holding the thread key could send): every payload type we
//!   decrypt is an error or a value, never a panic.
#![no_main]

use hush_core::crypto::AeadKey;
use hush_core::payload::{ContactRecord, LocalIdentity, MessagePayload, ThreadMetadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = AeadKey::from_bytes([7; 32]);
    let text = String::from_utf8_lossy(data);
    let (ct, iv) = text.split_once('\n').unwrap_or((&text, "AAECAwQFBgcICQoL"));
    let _ = key.open_json::<MessagePayload>(ct, iv);
    let _ = hush_core::wire::check_sealed(ct, iv, 64 * 1024);
    // The bytes as a plaintext: it must round-trip, and parse or be refused.
    let sealed = key.seal(data);
    assert_eq!(key.open(&sealed.ciphertext, &sealed.iv).unwrap().as_slice(), data);
    let (c, i) = (&sealed.ciphertext, &sealed.iv);
    if let Ok(m) = key.open_json::<MessagePayload>(c, i) {
        let _ = m.content.len();
    }
    let _ = key.open_json::<ThreadMetadata>(c, i);
    let _ = key.open_json::<LocalIdentity>(c, i);
    let _ = key.open_json::<ContactRecord>(c, i);
});
