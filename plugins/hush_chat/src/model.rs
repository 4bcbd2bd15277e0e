//! What the UI pages through: decrypted messages and local echoes.

use hush_core::crypto::AeadKey;
use hush_core::payload::MessagePayload;
use hush_core::wire::WireMessage;
use uuid::Uuid;

/// A message's status as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageStatus {
    /// Written to the outbox, waiting to go out.
    Queued,
    /// On the wire, not yet acknowledged.
    Sending,
    /// Stored by the server.
    Sent,
    /// Automatic retries are over; the user can retry or cancel.
    Failed(String),
    /// Kept with its server id, but it could not be decrypted.
    Undecryptable(String),
}

/// A stored message, decrypted (or marked undecryptable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The server's id.
    pub id: String,
    /// The server's time, verbatim.
    pub created_at: String,
    /// The server's time, µs since the epoch (sort key with `id`).
    pub micros: i64,
    pub sender_id: Option<Uuid>,
    pub sender_name: String,
    /// Empty when undecryptable.
    pub content: String,
    /// The sender's clock, ms since the epoch.
    pub timestamp_ms: i64,
    /// Sent by this identity (from this device or another).
    pub mine: bool,
    pub status: MessageStatus,
}

impl ChatMessage {
    /// Decrypts a stored message for the log (undecryptable ones are kept,
    /// marked so).
    pub fn decrypt(key: &AeadKey, m: &WireMessage, me: Uuid) -> ChatMessage {
        let micros = hush_store::message_micros(m);
        match key.open_json::<MessagePayload>(&m.ciphertext, &m.iv) {
            Ok(p) => ChatMessage {
                id: m.id.clone(),
                created_at: m.created_at.clone(),
                micros,
                sender_id: Some(p.sender_id),
                mine: p.sender_id == me,
                sender_name: p.sender_name,
                content: p.content,
                timestamp_ms: p.timestamp,
                status: MessageStatus::Sent,
            },
            Err(e) => ChatMessage {
                id: m.id.clone(),
                created_at: m.created_at.clone(),
                micros,
                sender_id: None,
                sender_name: String::new(),
                content: String::new(),
                timestamp_ms: micros.div_euclid(1000),
                mine: false,
                status: MessageStatus::Undecryptable(e.to_string()),
            },
        }
    }

    pub fn sort_key(&self) -> (i64, &str) {
        (self.micros, self.id.as_str())
    }
}

/// A message of ours the server has not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEcho {
    pub seq: u64,
    pub client_message_id: String,
    pub content: String,
    pub timestamp_ms: i64,
    pub status: MessageStatus,
}
