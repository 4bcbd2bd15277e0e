//! hush messaging as Bevy plugins: unlock the vault, keep an identity, add
//! contacts, send and receive end-to-end encrypted messages in real time,
//! survive being offline, and never lose or duplicate a message.
//!
//! Everything here runs headless over `hush_net`'s connection. Threads are
//! entities (shared with their `Subscription`); the outbox is persistent and
//! documented in `hush_core::policy::outbox`.

pub mod catchup;
pub mod contacts;
pub mod drafts;
#[cfg(not(target_arch = "wasm32"))]
pub mod headless;
pub mod model;
pub mod outbox;
pub mod profile;
pub mod receive;
pub mod shared;
pub mod threads;
pub mod vault;

use std::sync::Arc;

use bevy::prelude::*;
use hush_store::Store;

pub use contacts::{AddContact, ContactEvent, Contacts};
pub use drafts::{Drafts, SetDraft};
pub use model::{ChatMessage, LocalEcho, MessageStatus};
pub use outbox::{Outbox, OutboxEvent, OutboxIntent, SendIntent};
pub use profile::{Prefs, ProfileStore, SetPrefs, StoreFailed};
pub use receive::MessageReceived;
pub use shared::{OutboxRole, StoredElsewhere};
pub use threads::{Focused, Thread, ThreadLog, ThreadSync, Threads, Unread};
pub use vault::{
    CreateIdentity, LockIntent, UnlockError, UnlockIntent, Vault, VaultEvent, VaultState,
};

/// The messaging plugins, over a profile's store. Needs `HushNetPlugin`.
pub struct HushChatPlugin {
    pub store: Arc<dyn Store>,
}

impl Plugin for HushChatPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(ProfileStore(self.store.clone()))
            .add_plugins((
                profile::plugin,
                shared::plugin,
                vault::plugin,
                contacts::plugin,
                drafts::plugin,
                threads::plugin,
                catchup::plugin,
                receive::plugin,
                outbox::plugin,
            ));
    }
}

/// Milliseconds since the Unix epoch, on the wall clock (also in a browser).
pub fn now_ms() -> i64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
