//! The vault key derivation (Argon2id, 64 MiB, PROTOCOL.md §3) as a tiny wasm
//! module of its own, which `web/kdf-worker.js` runs in a Web Worker, so
//! that the page keeps drawing while the key is derived. It is the same
//! function as everywhere else (`hush_core::crypto::VaultKey::derive`).

use hush_core::crypto::VaultKey;

/// The 32 key bytes for `words` and the vault's base64 salt, or why not.
pub fn derive(words: &str, kdf_salt_b64: &str) -> Result<Vec<u8>, String> {
    VaultKey::derive(words, kdf_salt_b64)
        .map(|k| k.expose().to_vec())
        .map_err(|e| e.to_string())
}

#[cfg(target_arch = "wasm32")]
mod js {
    use wasm_bindgen::prelude::*;

    /// The worker's entry point.
    #[wasm_bindgen]
    pub fn derive_vault_key(words: &str, kdf_salt_b64: &str) -> Result<Vec<u8>, JsError> {
        super::derive(words, kdf_salt_b64).map_err(|e| JsError::new(&e))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn it_is_the_vault_key_of_the_protocol() {
        let salt = hush_core::b64::encode(&[7u8; 32]);
        let words =
            "abandon ability able about above absent absorb abstract absurd abuse access accident";
        let key = super::derive(words, &salt).unwrap();
        let direct = hush_core::crypto::VaultKey::derive(words, &salt).unwrap();
        assert_eq!(key.as_slice(), direct.expose());
        assert!(super::derive(words, "not base64!").is_err());
    }
}
