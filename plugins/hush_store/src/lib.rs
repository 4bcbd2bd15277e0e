//! Local storage of a profile: what it keeps and the [`Store`] trait, with a
//! redb backend (native), an IndexedDB one (web) and an in-memory one (tests).
//!
//! Nothing here is plaintext content or key material: the identity and
//! contacts and drafts are sealed with vault keys, messages are kept as received
//! (ciphertext), and the outbox holds already-encrypted blobs. What is plain:
//! ids (thread ids and server ids are known to the server anyway), the
//! contacts' UUIDs, timestamps, and the KDF salt (public).

#[cfg(not(target_arch = "wasm32"))]
mod iv_filter;
#[cfg(not(target_arch = "wasm32"))]
mod iv_index;
mod memory;
#[cfg(not(target_arch = "wasm32"))]
mod message_row;
#[cfg(not(target_arch = "wasm32"))]
mod redb_error;
#[cfg(not(target_arch = "wasm32"))]
mod redb_store;
mod same_message;
#[cfg(target_arch = "wasm32")]
mod web;

use hush_core::ThreadId;
use hush_core::crypto::Sealed;
use hush_core::wire::WireMessage;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use memory::MemoryStore;
#[cfg(not(target_arch = "wasm32"))]
pub use redb_store::{FLUSH_EVERY, RedbStore};
#[cfg(target_arch = "wasm32")]
pub use web::{RemoteChange, WebStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("this profile is open in another hush process")]
    Locked,
    /// The backend failed (its own error is the source).
    #[error("storage I/O failed: {source}")]
    Io {
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    #[error("the disk is full")]
    DiskFull,
}

impl StoreError {
    /// A backend failure: an error of the backend, or words saying what failed.
    pub fn io(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        StoreError::Io {
            source: source.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// What a profile keeps about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileMeta {
    /// The vault's KDF salt (base64), so a profile can unlock offline.
    pub kdf_salt: Option<String>,
    /// The local identity, sealed with the identity key.
    pub identity: Option<Sealed>,
    /// The server this profile last used.
    pub server: Option<String>,
    /// The user's settings (not secret).
    #[serde(default)]
    pub prefs: Prefs,
    /// [ext] How far the server's thread list was read (the `created_at` of
    /// the last thread seen), verbatim: message requests are looked for
    /// after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads_after: Option<String>,
    /// People whose threads are hidden and never notify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<Uuid>,
}

/// What the user chose in the window's settings. The default is what a
/// new profile gets: notifications on, with the message text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefs {
    /// No desktop notifications at all.
    #[serde(default)]
    pub notifications_off: bool,
    /// Notifications name the sender but do not show the text.
    #[serde(default)]
    pub notification_text_hidden: bool,
    /// Lock the vault after this many minutes without input in the window
    /// (`None`: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_lock_minutes: Option<u32>,
}

/// What the client knows of one thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRecord {
    pub id: ThreadId,
    pub peer: Uuid,
    /// The server's `created_at` of the newest message stored with nothing
    /// missing before it (the catch-up cursor), verbatim.
    pub cursor: Option<String>,
    /// The thread is known to exist on the server.
    pub on_server: bool,
    /// The thread's metadata as the server keeps it (sealed with the
    /// identity key), when the thread was found on the server rather than
    /// made for a contact: a message request while its peer is no contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Sealed>,
    /// The user ignored the request: hidden, never notified, kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignored: bool,
}

impl ThreadRecord {
    /// A thread not yet known to the server, with no history.
    pub fn new(id: ThreadId, peer: Uuid) -> Self {
        ThreadRecord {
            id,
            peer,
            cursor: None,
            on_server: false,
            metadata: None,
            ignored: false,
        }
    }
}

/// A message as received from the server (ciphertext, never plaintext).
pub type StoredMessage = WireMessage;

/// The state of an outbox entry that survives a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxState {
    /// Waiting to go (or going) out.
    Queued,
    /// Automatic retries are over: the user retries or cancels.
    Failed(String),
}

/// A message written but not yet acknowledged by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Order of writing; sends keep this order per thread.
    pub seq: u64,
    pub thread_id: ThreadId,
    /// [ext] correlation, kept across retries; fresh UUID per logical message.
    pub client_message_id: String,
    /// The encrypted message: the same blob is resent (its IV identifies it).
    pub sealed: Sealed,
    pub attempts: u32,
    pub state: OutboxState,
    /// Milliseconds since the epoch, when the user sent it.
    pub created_ms: i64,
}

/// A page position in a thread: messages sort by server time, then id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageKey {
    pub micros: i64,
    pub id: String,
}

/// The sort key of a stored message (unparsable times sort first).
pub fn message_key(m: &StoredMessage) -> MessageKey {
    MessageKey {
        micros: message_micros(m),
        id: m.id.clone(),
    }
}

/// The time part of [`message_key`], without copying the id.
pub fn message_micros(m: &StoredMessage) -> i64 {
    hush_core::time::parse_iso_micros(&m.created_at).unwrap_or(i64::MIN)
}

/// A profile's storage. Writes are atomic per call.
pub trait Store: Send + Sync + 'static {
    fn profile(&self) -> Result<ProfileMeta>;
    fn set_profile(&self, p: &ProfileMeta) -> Result<()>;

    /// Contacts: peer UUID → sealed `ContactRecord`.
    fn contacts(&self) -> Result<Vec<(Uuid, Sealed)>>;
    fn put_contact(&self, peer: Uuid, record: &Sealed) -> Result<()>;
    /// Forgets a contact (its thread and messages stay; see `forget_thread`).
    fn remove_contact(&self, peer: Uuid) -> Result<()>;

    fn threads(&self) -> Result<Vec<ThreadRecord>>;
    fn put_thread(&self, t: &ThreadRecord) -> Result<()>;
    /// Deletes a thread's record, messages, draft and delivery position, in
    /// one durable write (its outbox entries are the outbox's to cancel).
    fn forget_thread(&self, thread: ThreadId) -> Result<()>;

    /// Stores the messages not stored yet and, in the same transaction, the
    /// thread record if given (its cursor) and the removal of the outbox
    /// entries in `completed`. Returns, per message, whether it was new
    /// (the rule is in `same_message.rs`).
    fn store_messages(
        &self,
        msgs: &[StoredMessage],
        thread: Option<&ThreadRecord>,
        completed: &[u64],
    ) -> Result<Vec<bool>> {
        let refs: Vec<&StoredMessage> = msgs.iter().collect();
        self.store_message_refs(&refs, thread, completed)
    }

    /// [`Store::store_messages`] for messages the caller holds elsewhere
    /// (the frames of an update), so that none is copied to make a slice.
    fn store_message_refs(
        &self,
        msgs: &[&StoredMessage],
        thread: Option<&ThreadRecord>,
        completed: &[u64],
    ) -> Result<Vec<bool>>;

    /// A thread's messages in order: those after `after` (exclusive), at most
    /// `limit`. `None` starts at the oldest.
    fn messages(
        &self,
        thread: ThreadId,
        after: Option<&MessageKey>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>>;

    /// A thread's messages before `before` (exclusive; `None`: the newest),
    /// at most `limit`, oldest first: how a view pages back through history
    /// without reading all of it.
    fn messages_before(
        &self,
        thread: ThreadId,
        before: Option<&MessageKey>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>>;

    fn message_count(&self, thread: ThreadId) -> Result<u64>;

    fn has_message(&self, thread: ThreadId, id: &str) -> Result<bool>;

    /// The server id of the thread's message with this IV, if stored (how a
    /// resend is recognised as delivered on a stock server).
    fn message_with_iv(&self, thread: ThreadId, iv: &str) -> Result<Option<String>>;

    /// The outbox in `seq` order.
    fn outbox(&self) -> Result<Vec<OutboxEntry>>;
    /// Keeps outbox entries, all in one durable write: every send accepted
    /// in one update costs one commit (one fsync), however many there are.
    fn put_outboxes(&self, entries: &[OutboxEntry]) -> Result<()>;
    /// Keeps one outbox entry, durably.
    fn put_outbox(&self, e: &OutboxEntry) -> Result<()> {
        self.put_outboxes(std::slice::from_ref(e))
    }
    fn remove_outbox(&self, seq: u64) -> Result<()>;

    /// Where the consumer of this profile's messages (`hush listen`) has got
    /// to in each thread: the last message it was handed.
    fn delivered(&self) -> Result<Vec<(ThreadId, MessageKey)>> {
        Err(StoreError::io("this store keeps no delivery positions"))
    }

    /// Records delivery positions, durably (with every relaxed commit before
    /// them): the messages up to a position were handed over.
    fn set_delivered(&self, positions: &[(ThreadId, MessageKey)]) -> Result<()> {
        let _ = positions;
        Err(StoreError::io("this store keeps no delivery positions"))
    }

    /// Unsent drafts, one per thread, sealed with the vault's drafts key.
    fn drafts(&self) -> Result<Vec<(ThreadId, Sealed)>>;
    /// Keeps a thread's draft (`None` removes it). Relaxed: durable within
    /// a flush interval, like received messages.
    fn put_draft(&self, thread: ThreadId, draft: Option<&Sealed>) -> Result<()>;

    /// Makes relaxed commits durable once they are old enough (see
    /// `RedbStore`); called every frame, cheap when there is nothing to do.
    fn flush_due(&self) -> Result<()> {
        Ok(())
    }

    /// How long until `flush_due` has relaxed commits to make durable, if it
    /// has any: an app that sleeps between updates wakes for it.
    fn flush_wait(&self) -> Option<std::time::Duration> {
        None
    }

    /// Makes every write so far durable now (what `flush_due` does in time).
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// How often the store was reopened after a failed write while relaxed
    /// commits were not durable yet: those (received messages and the cursor
    /// over them) may be gone. When this changes, a client reloads its thread
    /// cursors and catches up again.
    fn rollbacks(&self) -> u64 {
        0
    }
}

/// The shared behaviour test of every backend.
#[doc(hidden)]
pub mod conformance;
