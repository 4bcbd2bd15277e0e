//! Identifiers: canonical UUID strings and the thread id of a pair of users.
//!
//! A stock server keys subscriptions by the raw string it was sent, so every id
//! that goes on the wire must be the canonical lowercase hyphenated form. Ids
//! that come *from the wire* are accepted only in that form; ids a person
//! typed are normalised first with [`parse_user_uuid`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Why a string is not an id we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not a UUID: {0:?}")]
    NotUuid(String),
    #[error("UUID is not in canonical lowercase hyphenated form: {0:?}")]
    NotCanonical(String),
}

/// Parses a UUID that must already be canonical (`xxxxxxxx-xxxx-…`, lowercase).
pub fn canonical_uuid(s: &str) -> Result<Uuid, IdError> {
    let u = Uuid::try_parse(s).map_err(|_| IdError::NotUuid(s.to_owned()))?;
    if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(IdError::NotCanonical(s.to_owned()));
    }
    Ok(u)
}

/// Parses a UUID a person typed or pasted: surrounding whitespace is ignored and
/// any letter case is accepted, but it must be the hyphenated 36-character form.
pub fn parse_user_uuid(s: &str) -> Result<Uuid, IdError> {
    let t = s.trim();
    if t.len() != 36 {
        return Err(IdError::NotUuid(s.to_owned()));
    }
    Uuid::try_parse(t).map_err(|_| IdError::NotUuid(s.to_owned()))
}

/// The id of the one thread between two users (PROTOCOL.md §3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadId(pub Uuid);

impl ThreadId {
    /// `SHA-256("A:B")` of the byte-sorted canonical ids: the thread id is its
    /// first 16 bytes, the thread key's HKDF salt is all 32.
    pub fn pair_digest(a: &Uuid, b: &Uuid) -> [u8; 32] {
        let (a, b) = (a.to_string(), b.to_string());
        let (x, y) = if a <= b { (a, b) } else { (b, a) };
        let mut h = Sha256::new();
        h.update(x.as_bytes());
        h.update(b":");
        h.update(y.as_bytes());
        h.finalize().into()
    }

    /// The thread of users `a` and `b` (order does not matter). No version bits
    /// are set: the id is raw digest bytes in UUID layout.
    pub fn for_pair(a: &Uuid, b: &Uuid) -> Self {
        let d = Self::pair_digest(a, b);
        let mut first = [0u8; 16];
        first.copy_from_slice(&d[..16]);
        ThreadId(Uuid::from_bytes(first))
    }

    /// Parses a canonical thread id as it appears on the wire.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        canonical_uuid(s).map(ThreadId)
    }
}

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Uuid's Display is the canonical lowercase hyphenated form.
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ThreadId({})", self.0)
    }
}

impl Serialize for ThreadId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ThreadId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ThreadId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for a `Uuid` field that must be canonical on the wire.
pub mod canonical {
    use super::*;

    pub fn serialize<S: Serializer>(u: &Uuid, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(u)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        canonical_uuid(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "11111111-1111-4111-8111-111111111111";
    const B: &str = "22222222-2222-4222-8222-222222222222";

    #[test]
    fn thread_id_matches_protocol_vector_in_both_orders() {
        let (a, b) = (canonical_uuid(A).unwrap(), canonical_uuid(B).unwrap());
        assert_eq!(
            hex(&ThreadId::pair_digest(&a, &b)),
            "90b3f6e0fe9888c051f30305c43f6b8ab04e99944980f8715cc9f6e6b7fe9503"
        );
        assert_eq!(
            ThreadId::for_pair(&a, &b).to_string(),
            "90b3f6e0-fe98-88c0-51f3-0305c43f6b8a"
        );
        assert_eq!(ThreadId::for_pair(&b, &a), ThreadId::for_pair(&a, &b));
    }

    #[test]
    fn wire_ids_must_be_canonical() {
        const T: &str = "90b3f6e0-fe98-88c0-51f3-0305c43f6b8a";
        assert!(canonical_uuid(T).is_ok());
        assert_eq!(
            canonical_uuid(&T.to_uppercase()),
            Err(IdError::NotCanonical(T.to_uppercase()))
        );
        assert!(matches!(
            canonical_uuid("11111111111141118111111111111111"),
            Err(IdError::NotCanonical(_))
        ));
        assert!(matches!(canonical_uuid("nope"), Err(IdError::NotUuid(_))));
        assert!(matches!(canonical_uuid(""), Err(IdError::NotUuid(_))));
        let err = serde_json::from_str::<ThreadId>(&format!("\"{}\"", T.to_uppercase()));
        assert!(err.is_err());
    }

    #[test]
    fn typed_ids_are_normalised() {
        let t = "90b3f6e0-fe98-88c0-51f3-0305c43f6b8a";
        let u = parse_user_uuid(&format!("  {}\n", t.to_uppercase())).unwrap();
        assert_eq!(u.to_string(), t);
        assert!(parse_user_uuid("{11111111-1111-4111-8111-111111111111}").is_err());
        assert!(parse_user_uuid("1111").is_err());
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
