//! The plaintexts that travel sealed (PROTOCOL.md §3). Field order is the
//! wire's key order, so `serde_json` writes what `JSON.stringify` writes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 50;

/// A chat message, sealed with the thread key. `sender_id` and `sender_name`
/// are claims made inside the vault, not proof of who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePayload {
    pub sender_id: Uuid,
    pub sender_name: String,
    pub content: String,
    /// Sender's clock, milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// How many bytes of decoded ciphertext a message with this text takes
/// (its JSON payload plus the 16-byte GCM tag), without building it when
/// the text is far below `max`. Compare with a server's limit before sending.
pub fn sealed_message_len(sender_name: &str, content: &str) -> usize {
    let payload = MessagePayload {
        sender_id: Uuid::nil(),
        sender_name: sender_name.to_owned(),
        content: content.to_owned(),
        // Thirteen digits, as every timestamp until the year 2286.
        timestamp: 1_000_000_000_000,
    };
    serde_json::to_vec(&payload).map_or(usize::MAX, |v| v.len()) + crate::crypto::TAG_LEN
}

/// Whether a message with this text fits a limit of `max` bytes of decoded
/// ciphertext. Cheap for texts far below it (JSON escapes at most 6×).
pub fn message_fits(sender_name: &str, content: &str, max: usize) -> bool {
    let bound = (sender_name.len() + content.len()) * 6 + 256;
    bound <= max || sealed_message_len(sender_name, content) <= max
}

/// Who created a thread, inside [`ThreadMetadata`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedBy {
    pub user_id: Uuid,
    pub display_name: String,
}

/// The body of `POST /api/threads`, sealed with the vault-wide identity key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadMetadata {
    /// The two user ids, sorted.
    pub participants: [Uuid; 2],
    pub created_by: CreatedBy,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

impl ThreadMetadata {
    pub fn new(me: Uuid, my_name: &str, peer: Uuid, now_ms: i64) -> Self {
        let (a, b) = (me.to_string(), peer.to_string());
        let participants = if a <= b { [me, peer] } else { [peer, me] };
        ThreadMetadata {
            participants,
            created_by: CreatedBy {
                user_id: me,
                display_name: my_name.to_owned(),
            },
            created_at: now_ms,
        }
    }

    /// The other member of this thread when `me` is one of its two, and the
    /// thread id is the one its participants give; `None` otherwise (someone
    /// else's thread, a thread with oneself, or metadata that does not
    /// match the thread it came with).
    pub fn peer_of(&self, me: Uuid, thread: crate::ThreadId) -> Option<Uuid> {
        let [a, b] = self.participants;
        let peer = match (a == me, b == me) {
            (true, false) => b,
            (false, true) => a,
            _ => return None,
        };
        (crate::ThreadId::for_pair(&me, &peer) == thread).then_some(peer)
    }
}

/// A profile's own identity, sealed with the identity key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalIdentity {
    pub user_id: Uuid,
    pub display_name: String,
}

/// A contact, sealed with the contacts key (camelCase keys, as the web client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRecord {
    #[serde(rename = "displayName")]
    pub display_name: String,
    /// Milliseconds since the Unix epoch.
    #[serde(rename = "addedAt")]
    pub added_at: i64,
}

/// Why a display name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than {MAX_DISPLAY_NAME_CHARS} characters")]
    TooLong,
    #[error("the name contains control characters")]
    Control,
}

/// Trims a display name and checks it is 1–50 characters without controls.
pub fn validate_display_name(name: &str) -> Result<String, NameError> {
    let t = name.trim();
    if t.is_empty() {
        return Err(NameError::Empty);
    }
    if t.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    if t.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_is_a_request_only_for_its_members_and_only_with_its_own_id() {
        let (me, peer, third) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let t = crate::ThreadId::for_pair(&me, &peer);
        let meta = ThreadMetadata::new(peer, "Bob", me, 5);
        assert_eq!(meta.peer_of(me, t), Some(peer));
        assert_eq!(meta.peer_of(peer, t), Some(me), "either member");
        assert_eq!(meta.peer_of(third, t), None, "someone else's thread");
        let other = crate::ThreadId::for_pair(&me, &third);
        assert_eq!(meta.peer_of(me, other), None, "metadata of another thread");
        let alone = ThreadMetadata::new(me, "Me", me, 5);
        assert_eq!(alone.peer_of(me, crate::ThreadId::for_pair(&me, &me)), None);
    }

    #[test]
    fn the_sealed_length_is_what_sealing_makes() {
        let key = crate::crypto::AeadKey::from_bytes([7; 32]);
        for content in [
            "hi",
            "quote \" and \\ and \n\u{1}",
            "你好 🙂",
            &"x".repeat(40_000),
        ] {
            let p = MessagePayload {
                sender_id: Uuid::new_v4(),
                sender_name: "Zoë \"Z\"".into(),
                content: content.into(),
                timestamp: 1_764_000_000_000,
            };
            let sealed = key.seal_json(&p);
            let decoded = crate::b64::decode(&sealed.ciphertext).unwrap();
            assert_eq!(
                sealed_message_len(&p.sender_name, content),
                decoded.len(),
                "{content:?}"
            );
        }
    }

    #[test]
    fn a_text_fits_up_to_the_limit_and_not_a_byte_more() {
        let len = sealed_message_len("Al", &"a".repeat(1000));
        assert!(message_fits("Al", &"a".repeat(1000), len));
        assert!(!message_fits("Al", &"a".repeat(1001), len));
        // Control characters are escaped six to one: the bound still holds.
        let ctl = "\u{1}".repeat(1000);
        let len = sealed_message_len("Al", &ctl);
        assert!(len > 6000);
        assert!(message_fits("Al", &ctl, len) && !message_fits("Al", &ctl, len - 1));
    }

    #[test]
    fn message_payload_serialises_in_wire_key_order() {
        let p = MessagePayload {
            sender_id: Uuid::parse_str("11111111-1111-4111-8111-111111111111").unwrap(),
            sender_name: "Alice".into(),
            content: "hi".into(),
            timestamp: 1_700_000_000_000,
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"sender_id":"11111111-1111-4111-8111-111111111111","sender_name":"Alice","content":"hi","timestamp":1700000000000}"#
        );
    }

    #[test]
    fn metadata_sorts_participants_and_contacts_use_camel_case() {
        let a = Uuid::parse_str("22222222-2222-4222-8222-222222222222").unwrap();
        let b = Uuid::parse_str("11111111-1111-4111-8111-111111111111").unwrap();
        let m = ThreadMetadata::new(a, "Bo", b, 5);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"participants":["11111111-1111-4111-8111-111111111111","22222222-2222-4222-8222-222222222222"],"created_by":{"user_id":"22222222-2222-4222-8222-222222222222","display_name":"Bo"},"created_at":5}"#
        );
        let c = ContactRecord {
            display_name: "Bo".into(),
            added_at: 7,
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"displayName":"Bo","addedAt":7}"#
        );
    }

    #[test]
    fn display_names_are_validated() {
        assert_eq!(validate_display_name("  Ann "), Ok("Ann".into()));
        assert_eq!(validate_display_name("   "), Err(NameError::Empty));
        assert_eq!(validate_display_name(&"é".repeat(50)), Ok("é".repeat(50)));
        assert_eq!(
            validate_display_name(&"x".repeat(51)),
            Err(NameError::TooLong)
        );
        assert_eq!(validate_display_name("a\u{7}b"), Err(NameError::Control));
    }

    #[test]
    fn payloads_missing_fields_do_not_parse() {
        assert!(serde_json::from_str::<MessagePayload>(r#"{"sender_id":"11111111-1111-4111-8111-111111111111","content":"x","timestamp":1}"#).is_err());
        assert!(
            serde_json::from_str::<MessagePayload>(
                r#"{"sender_id":"x","sender_name":"a","content":"x","timestamp":1}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<MessagePayload>(r#"[1,2]"#).is_err());
    }
}
