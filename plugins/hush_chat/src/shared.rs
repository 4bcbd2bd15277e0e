//! Other clients on the same profile store: the tabs of one browser profile.
//! Each tab runs its own world over one shared IndexedDB. What one stores,
//! the others hear of (the app turns its store's remote changes into
//! [`StoredElsewhere`]) and take into their world: new messages show, new
//! contacts appear, and every tab shows the whole outbox.
//!
//! Only one of them puts the outbox on the wire, the one whose
//! [`OutboxRole`] is `Sends` (in a browser, the tab holding the profile's
//! Web Lock); the others add to the queue and show it. So a message is sent
//! once, whichever tab it was typed in, and a queued one survives any tab
//! closing: it is in the store. Outbox entries are numbered per client
//! ([`crate::outbox`]), so two tabs never write the same entry.
//!
//! A native profile has one client (its store is locked to one process) and
//! never hears any of this.

use bevy::prelude::*;
use hush_store::{OutboxEntry, StoredMessage};
use uuid::Uuid;

pub(crate) fn plugin(app: &mut App) {
    app.init_resource::<OutboxRole>()
        .add_message::<StoredElsewhere>();
}

/// Whether this client sends the profile's outbox.
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutboxRole {
    /// It sends (the only client, or the elected one).
    #[default]
    Sends,
    /// Another client sends; this one queues and shows.
    Watches,
}

/// Something another client on this profile stored. It is in this client's
/// store already; what it changes in the world is up to each module.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum StoredElsewhere {
    /// Messages, as the server sent them, in the order they were stored.
    Messages(Vec<StoredMessage>),
    /// A contact was added.
    Contact(Uuid),
    /// An outbox entry was written: a new message, a retry, a failure.
    Outbox(OutboxEntry),
    /// An outbox entry is gone: delivered or cancelled.
    OutboxRemoved(u64),
}
