//! The vault's crypto, byte-compatible with the hush web client (PROTOCOL.md §3).
//!
//! Keys zeroize themselves on drop and print as `<redacted>` in `Debug`. The
//! words are handled as [`Zeroizing`] strings from the moment they are
//! normalised.

use std::fmt;

use aes_gcm::aead::{Aead, AeadInPlace};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::b64;
use crate::ids::ThreadId;

/// Bytes of an AES-GCM IV.
pub const IV_LEN: usize = 12;
/// Bytes of the GCM tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;
/// Bytes of the KDF salt the server hands out.
pub const SALT_LEN: usize = 32;

/// Argon2id parameters of the hush web client: 64 MiB, 3 passes, 2 lanes.
pub const ARGON2_MEMORY_KIB: u32 = 65_536;
pub const ARGON2_ITERATIONS: u32 = 3;
pub const ARGON2_PARALLELISM: u32 = 2;

/// Lowercase, split on any whitespace, join with one ASCII space.
pub fn normalize_words(words: &str) -> Zeroizing<String> {
    let lower = Zeroizing::new(words.to_lowercase());
    let mut out = Zeroizing::new(String::with_capacity(lower.len()));
    for w in lower.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// How many words the input has once normalised (for the unlock form).
pub fn word_count(words: &str) -> usize {
    words.split_whitespace().count()
}

/// `base64(SHA-256(normalized))`: what the server compares at `/api/auth`.
pub fn auth_hash(words: &str) -> String {
    let n = normalize_words(words);
    b64::encode(&Sha256::digest(n.as_bytes()))
}

/// What can go wrong deriving or using keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the KDF salt is not 32 bytes of base64")]
    BadSalt,
    #[error("key derivation failed")]
    Kdf,
}

/// Why a sealed blob could not be opened. None of these is fatal to anything:
/// the message is kept as undecryptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("ciphertext is not valid base64")]
    BadCiphertextEncoding,
    #[error("IV is not 12 bytes of base64")]
    BadIv,
    #[error("authentication failed (wrong key or tampered bytes)")]
    Tampered,
    #[error("plaintext is not the expected JSON: {0}")]
    BadPlaintext(String),
}

/// The 32-byte vault key every member derives from the words and the salt.
#[derive(Clone, ZeroizeOnDrop)]
pub struct VaultKey([u8; 32]);

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultKey(<redacted>)")
    }
}

impl VaultKey {
    /// Argon2id v0x13 of the normalised words (about a second and 64 MiB:
    /// call it off the main thread).
    pub fn derive(words: &str, kdf_salt_b64: &str) -> Result<Self, CryptoError> {
        let salt = b64::decode(kdf_salt_b64).map_err(|_| CryptoError::BadSalt)?;
        if salt.len() != SALT_LEN {
            return Err(CryptoError::BadSalt);
        }
        let params = Params::new(
            ARGON2_MEMORY_KIB,
            ARGON2_ITERATIONS,
            ARGON2_PARALLELISM,
            Some(32),
        )
        .map_err(|_| CryptoError::Kdf)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let normalized = normalize_words(words);
        let mut out = [0u8; 32];
        argon
            .hash_password_into(normalized.as_bytes(), &salt, &mut out)
            .map_err(|_| CryptoError::Kdf)?;
        let key = VaultKey(out);
        zeroize::Zeroize::zeroize(&mut out);
        Ok(key)
    }

    /// Wraps raw key bytes (tests, benchmarks, and keys restored in memory).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        VaultKey(bytes)
    }

    /// The raw bytes; never log or store them.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The AES key of the thread between `a` and `b`.
    pub fn thread_key(&self, a: &Uuid, b: &Uuid) -> AeadKey {
        let d = ThreadId::pair_digest(a, b);
        self.hkdf(&d, b"hush-thread")
    }

    /// The vault-wide key of local identities and thread metadata.
    pub fn identity_key(&self) -> AeadKey {
        self.hkdf(&Sha256::digest(b"hush-local-identity-v1"), b"hush-identity")
    }

    /// The vault-wide key of contact records.
    pub fn contacts_key(&self) -> AeadKey {
        self.hkdf(&Sha256::digest(b"hush-local-contacts-v1"), b"hush-contacts")
    }

    /// The vault-wide key of unsent drafts, a local record like contacts.
    pub fn drafts_key(&self) -> AeadKey {
        self.hkdf(&Sha256::digest(b"hush-local-drafts-v1"), b"hush-drafts")
    }

    fn hkdf(&self, salt: &[u8], info: &[u8]) -> AeadKey {
        let hk = Hkdf::<Sha256>::new(Some(salt), &self.0);
        let mut okm = Zeroizing::new([0u8; 32]);
        hk.expand(info, okm.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        AeadKey::from_bytes(*okm)
    }
}

/// An AES-256-GCM key with its expanded cipher, ready to seal and open.
#[derive(Clone)]
pub struct AeadKey {
    bytes: Zeroizing<[u8; 32]>,
    cipher: Aes256Gcm,
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

impl AeadKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let cipher = Aes256Gcm::new_from_slice(&bytes).expect("32-byte key");
        AeadKey {
            bytes: Zeroizing::new(bytes),
            cipher,
        }
    }

    /// The raw bytes; never log or store them.
    pub fn expose(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Encrypts under a fresh random IV.
    pub fn seal(&self, plaintext: &[u8]) -> Sealed {
        let mut iv = [0u8; IV_LEN];
        getrandom::getrandom(&mut iv).expect("the OS random source is available");
        self.seal_with_iv(plaintext, &iv)
    }

    /// Encrypts under the given IV. Only for test vectors: reusing an IV with
    /// the same key breaks AES-GCM.
    pub fn seal_with_iv(&self, plaintext: &[u8], iv: &[u8; IV_LEN]) -> Sealed {
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(iv), plaintext)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        Sealed {
            ciphertext: b64::encode(&ct),
            iv: b64::encode(iv),
        }
    }

    /// Decrypts the wire strings of a sealed blob.
    pub fn open(&self, ciphertext: &str, iv: &str) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let iv: [u8; IV_LEN] = b64::decode_array(iv).map_err(|_| OpenError::BadIv)?;
        let mut buf = b64::decode(ciphertext).map_err(|_| OpenError::BadCiphertextEncoding)?;
        // In place: the plaintext takes the ciphertext's buffer.
        self.cipher
            .decrypt_in_place(Nonce::from_slice(&iv), b"", &mut buf)
            .map_err(|_| OpenError::Tampered)?;
        Ok(Zeroizing::new(buf))
    }

    /// Decrypts and parses a JSON plaintext.
    pub fn open_json<T: for<'de> Deserialize<'de>>(
        &self,
        ciphertext: &str,
        iv: &str,
    ) -> Result<T, OpenError> {
        let pt = self.open(ciphertext, iv)?;
        serde_json::from_slice(&pt).map_err(|e| OpenError::BadPlaintext(e.to_string()))
    }

    /// Serialises to compact JSON (as `JSON.stringify`) and seals it.
    pub fn seal_json<T: Serialize>(&self, value: &T) -> Sealed {
        let pt = Zeroizing::new(serde_json::to_vec(value).expect("plain structs serialise"));
        self.seal(&pt)
    }
}

/// A sealed blob as it travels: base64 of `ciphertext ‖ tag` and of the IV.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sealed {
    pub ciphertext: String,
    pub iv: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::canonical_uuid;

    const WORDS: &str =
        "  Abandon  ABILITY able about\nabove absent absorb abstract absurd abuse access accident ";
    const SALT: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const A: &str = "11111111-1111-4111-8111-111111111111";
    const B: &str = "22222222-2222-4222-8222-222222222222";
    const PLAINTEXT: &str = r#"{"sender_id":"11111111-1111-4111-8111-111111111111","sender_name":"Alice","content":"hi","timestamp":1700000000000}"#;
    const CIPHERTEXT: &str = "jXwWbXTMkIOq9h8iWJ8PYkSZDo4aV0Drdurd9MsieiRDBubeRvo5RY7tn1DBthI2nn5PgB9n0pTNkgjN9Zc5ZzVmpI4vEu8DzRcRUUTa9esZu8aJ+KP5urvk6W33U4yaBSXJQ9t3TwOp0vxfllDp+d6X43fTp2mr0HYnwvPdntVvycU=";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn vector_key() -> VaultKey {
        // The KDF is the slow part; derive once per test that needs it.
        VaultKey::derive(WORDS, SALT).unwrap()
    }

    #[test]
    fn normalisation_and_auth_hash_match_vectors() {
        assert_eq!(
            normalize_words(WORDS).as_str(),
            "abandon ability able about above absent absorb abstract absurd abuse access accident"
        );
        assert_eq!(
            auth_hash(WORDS),
            "aMarProiDacMD8ASul8bYQeotaJKSntzVJhNbnqiE3s="
        );
        assert_eq!(word_count(WORDS), 12);
        assert_eq!(normalize_words(" \t\n").as_str(), "");
    }

    #[test]
    fn all_key_vectors_match() {
        let vk = vector_key();
        assert_eq!(
            hex(vk.expose()),
            "799dcf1ea1df4fd132b9dcff9bed7feeb3f06908c162a8ca1014ba34953a9c58"
        );
        let (a, b) = (canonical_uuid(A).unwrap(), canonical_uuid(B).unwrap());
        assert_eq!(
            hex(vk.thread_key(&a, &b).expose()),
            "926ff78837f895bbfb0d757b47f170f797c6a9605891ff15d931578ef67df807"
        );
        assert_eq!(
            hex(vk.thread_key(&b, &a).expose()),
            hex(vk.thread_key(&a, &b).expose())
        );
        assert_eq!(
            hex(vk.identity_key().expose()),
            "111b7139198b8c94ac3531c6f9bd07259c6acb8fc4c750c6dea63a0c71bb2347"
        );
        assert_eq!(
            hex(vk.contacts_key().expose()),
            "726c30ae35a8582b33adda5c7e6e04e36a6a008c06fe18570d24e0e72ec5c94d"
        );
    }

    fn vector_thread_key() -> AeadKey {
        let bytes: [u8; 32] =
            hex_literal::hex!("926ff78837f895bbfb0d757b47f170f797c6a9605891ff15d931578ef67df807");
        AeadKey::from_bytes(bytes)
    }

    #[test]
    fn message_vector_seals_and_opens() {
        let k = vector_thread_key();
        let iv: [u8; 12] = core::array::from_fn(|i| i as u8);
        let sealed = k.seal_with_iv(PLAINTEXT.as_bytes(), &iv);
        assert_eq!(sealed.iv, "AAECAwQFBgcICQoL");
        assert_eq!(sealed.ciphertext, CIPHERTEXT);
        assert_eq!(
            k.open(CIPHERTEXT, "AAECAwQFBgcICQoL").unwrap().as_slice(),
            PLAINTEXT.as_bytes()
        );
    }

    #[test]
    fn opening_bad_blobs_gives_typed_errors() {
        let k = vector_thread_key();
        let iv = "AAECAwQFBgcICQoL";
        assert_eq!(k.open("!!!", iv), Err(OpenError::BadCiphertextEncoding));
        assert_eq!(
            k.open(CIPHERTEXT, "AAECAwQFBgcICQ=="),
            Err(OpenError::BadIv)
        );
        assert_eq!(k.open(CIPHERTEXT, "not base64"), Err(OpenError::BadIv));
        // Flip one bit of the tag.
        let mut raw = b64::decode(CIPHERTEXT).unwrap();
        *raw.last_mut().unwrap() ^= 1;
        assert_eq!(k.open(&b64::encode(&raw), iv), Err(OpenError::Tampered));
        // A too-short ciphertext (shorter than the tag) is an auth failure, not a panic.
        assert_eq!(k.open("AAAA", iv), Err(OpenError::Tampered));
        // Wrong key.
        let other = AeadKey::from_bytes([7; 32]);
        assert_eq!(other.open(CIPHERTEXT, iv), Err(OpenError::Tampered));
    }

    #[test]
    fn fresh_ivs_differ_and_round_trip() {
        let k = AeadKey::from_bytes([9; 32]);
        let a = k.seal(b"same");
        let b = k.seal(b"same");
        assert_ne!(a.iv, b.iv);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(k.open(&a.ciphertext, &a.iv).unwrap().as_slice(), b"same");
    }

    #[test]
    fn keys_never_print() {
        let k = AeadKey::from_bytes([0xab; 32]);
        let vk = VaultKey::from_bytes([0xab; 32]);
        for s in [format!("{k:?}"), format!("{vk:?}")] {
            assert!(s.contains("redacted"));
            assert!(!s.to_lowercase().contains("ab, ab") && !s.contains("171"));
        }
    }

    #[test]
    fn words_with_odd_whitespace_and_unicode_normalise_like_the_web_client() {
        // Tabs, newlines, no-break and ideographic spaces all separate words;
        // case folds per Unicode.
        let odd = "\tAbandon\u{00a0}ABILITY\r\nable\u{3000}about above absent absorb abstract absurd abuse access accident\u{2003}";
        assert_eq!(
            auth_hash(odd),
            "aMarProiDacMD8ASul8bYQeotaJKSntzVJhNbnqiE3s="
        );
        assert_eq!(normalize_words("ÄBANDON  Ωmega").as_str(), "äbandon ωmega");
        assert_eq!(word_count(" \u{00a0} "), 0);
    }

    #[test]
    fn payloads_that_are_not_the_expected_json_are_typed_errors() {
        let k = AeadKey::from_bytes([1; 32]);
        for pt in [
            &b"not json"[..],
            br#"{"sender_id":"x","sender_name":"a","content":"c","timestamp":1}"#,
            br#"{"sender_name":"a","content":"c","timestamp":1}"#,
            br#"{"sender_id":"11111111-1111-4111-8111-111111111111","sender_name":"a","content":"c","timestamp":"soon"}"#,
            &[0xff, 0xfe, 0xfd][..],
            b"",
        ] {
            let s = k.seal(pt);
            let r = k.open_json::<crate::payload::MessagePayload>(&s.ciphertext, &s.iv);
            assert!(matches!(r, Err(OpenError::BadPlaintext(_))), "{:?}", String::from_utf8_lossy(pt));
        }
        // Truncated ciphertexts and IVs of every length are refused cleanly.
        let good = k.seal(b"{}");
        let raw = b64::decode(&good.ciphertext).unwrap();
        for cut in 0..raw.len() {
            assert!(k.open(&b64::encode(&raw[..cut]), &good.iv).is_err());
        }
        for n in (0..32).filter(|n| *n != IV_LEN) {
            let iv = b64::encode(&vec![0u8; n]);
            assert_eq!(
                k.open(&good.ciphertext, &iv),
                Err(OpenError::BadIv),
                "iv of {n} bytes"
            );
        }
    }

    #[test]
    fn bad_salt_is_refused_before_the_kdf() {
        assert_eq!(
            VaultKey::derive(WORDS, "AAAA").unwrap_err(),
            CryptoError::BadSalt
        );
        assert_eq!(
            VaultKey::derive(WORDS, "***").unwrap_err(),
            CryptoError::BadSalt
        );
    }
}
