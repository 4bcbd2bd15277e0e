//! hush messaging as Bevy plugins: unlock the vault, keep an identity, add
//! contacts, send and receive end-to-end encrypted messages in real time,
//! survive being offline, and never lose or duplicate a message.
//!
//! Everything here runs headless over `hush_net`'s connection. Threads are
//! entities (shared with their `Subscription`); the outbox is persistent and
//! documented in `hush_core::policy::outbox`.

pub mod autolock;
pub mod catchup;
pub mod contacts;
pub mod drafts;
#[cfg(not(target_arch = "wasm32"))]
pub mod headless;
pub mod history;
pub mod model;
pub mod outbox;
pub mod pacing;
pub mod profile;
pub mod receive;
pub mod requests;
pub mod search;
pub mod shared;
pub mod status;
pub mod threads;
pub mod vault;

#[cfg(test)]
mod testing;

use std::sync::Arc;

use bevy::app::PluginGroupBuilder;
use bevy::prelude::*;
use hush_net::{HushNetPlugin, NetConfig, NetSystems};
use hush_store::Store;

pub use autolock::{Attended, UserActive};
pub use catchup::LastCatchup;
pub use contacts::{
    AddContact, Block, Blocked, ContactEvent, Contacts, RemoveContact, RenameContact,
};
pub use drafts::{Drafts, SetDraft};
pub use history::{LoadOlder, LoadThrough};
pub use model::{ChatMessage, LocalEcho, MessageStatus};
pub use outbox::{Outbox, OutboxEvent, OutboxIntent, SendIntent};
pub use profile::{Prefs, ProfileStore, SetPrefs, StoreFailed};
pub use receive::MessageReceived;
pub use requests::{Discovery, IgnoreRequest};
pub use search::{Find, FindInThread};
pub use shared::{OutboxRole, StoredElsewhere};
pub use threads::{Focused, Request, Thread, ThreadLog, ThreadSync, Threads, Unread};
pub use vault::{
    CreateIdentity, LockIntent, UnlockError, UnlockIntent, Vault, VaultEvent, VaultState,
};

/// The whole client below the UI: the connection ([`HushNetPlugin`]) and
/// messaging ([`HushChatPlugin`]) over a profile's store. The window, the
/// browser build and the headless client all start from this group.
pub struct HushClientPlugins {
    pub config: NetConfig,
    pub store: Arc<dyn Store>,
}

impl PluginGroup for HushClientPlugins {
    fn build(self) -> PluginGroupBuilder {
        PluginGroupBuilder::start::<Self>()
            .add(HushNetPlugin {
                config: self.config,
            })
            .add(HushChatPlugin { store: self.store })
    }
}

/// The messaging plugins, over a profile's store. Needs `HushNetPlugin`.
pub struct HushChatPlugin {
    pub store: Arc<dyn Store>,
}

impl Plugin for HushChatPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(ProfileStore(self.store.clone()))
            .configure_sets(
                Update,
                (
                    ChatSystems::Vault,
                    ChatSystems::Contacts,
                    ChatSystems::Threads,
                    ChatSystems::Catchup,
                    ChatSystems::Receive,
                    ChatSystems::Outbox,
                    ChatSystems::Present,
                )
                    .chain()
                    .after(NetSystems::Subscriptions),
            )
            .add_plugins((
                profile::plugin,
                shared::plugin,
                vault::plugin,
                autolock::plugin,
                contacts::plugin,
                drafts::plugin,
                threads::plugin,
                history::plugin,
                catchup::plugin,
                receive::plugin,
                requests::plugin,
                search::plugin,
                outbox::plugin,
                pacing::plugin,
            ));
    }
}

/// The order of the messaging systems in `Update`, set in one place (after
/// the connection's [`NetSystems`]). Each module's systems run in one phase.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatSystems {
    /// Unlock, identity, lock; preferences saved. (Drafts are saved before
    /// it, so what was typed survives a lock.)
    Vault,
    /// Contacts loaded, added, taken from another tab; drafts follow the vault.
    Contacts,
    /// Thread entities for contacts and for message requests (threads
    /// found on the server, `requests.rs`); which threads the server has;
    /// creating missing ones; replies drained.
    Threads,
    /// History pages asked for and their replies drained.
    Catchup,
    /// Live messages, acks and pages stored, decrypted, shown.
    Receive,
    /// The outbox: queued, sent, refused, retried, echoed.
    Outbox,
    /// After everything that changes the chat state, for those who read it.
    Present,
}

/// Milliseconds since the Unix epoch, on the wall clock (also in a browser).
pub fn now_ms() -> i64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
