//! Standard base64 with padding (`+/=`), the only encoding on the hush wire.
//!
//! Decoding is strict: URL-safe characters, missing padding, whitespace and
//! non-canonical trailing bits are all refused, so two byte strings are equal
//! exactly when their wire strings are.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Why a wire string is not valid base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid base64 encoding")]
pub struct B64Error;

pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn decode(s: &str) -> Result<Vec<u8>, B64Error> {
    STANDARD.decode(s).map_err(|_| B64Error)
}

/// Decodes into a fixed-size array; the length must match exactly.
pub fn decode_array<const N: usize>(s: &str) -> Result<[u8; N], B64Error> {
    let mut out = [0u8; N];
    // A correct encoding of N bytes is exactly this long; checking first keeps
    // an oversized input from being decoded at all.
    if s.len() != N.div_ceil(3) * 4 {
        return Err(B64Error);
    }
    // Straight into the array: an IV per message, no allocation.
    match STANDARD.decode_slice(s, &mut out) {
        Ok(n) if n == N => Ok(out),
        _ => Err(B64Error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads() {
        assert_eq!(encode(b"hi"), "aGk=");
        assert_eq!(decode("aGk=").unwrap(), b"hi");
        assert_eq!(decode("").unwrap(), b"");
    }

    #[test]
    fn refuses_sloppy_encodings() {
        for bad in ["aGk", "aG k=", "aGk=\n", "-_-_", "aGl=", "a===", "%%%%"] {
            assert_eq!(decode(bad), Err(B64Error), "{bad:?}");
        }
    }

    #[test]
    fn fixed_length_is_exact() {
        assert_eq!(
            decode_array::<12>("AAECAwQFBgcICQoL").unwrap(),
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
        );
        assert!(decode_array::<12>("AAECAwQFBgcICQ==").is_err()); // 10 bytes
        assert!(decode_array::<12>("AAECAwQFBgcICQoLDA==").is_err()); // 13 bytes
    }
}
