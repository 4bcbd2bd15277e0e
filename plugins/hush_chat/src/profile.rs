//! The profile's store as a resource, and how storage failures surface.

use std::sync::Arc;

use bevy::prelude::*;
use hush_store::{Store, StoreError};

pub(crate) fn plugin(app: &mut App) {
    app.add_message::<StoreFailed>()
        .add_message::<SetPrefs>()
        .init_resource::<Prefs>()
        .add_systems(Startup, load_prefs)
        .add_systems(Update, save_prefs.in_set(crate::ChatSystems::Vault))
        .add_systems(Last, flush_store);
}

/// The user's settings, a resource (kept in the profile, readable while
/// locked: they are not secret).
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq, Eq, Deref)]
pub struct Prefs(pub hush_store::Prefs);

/// The user changed the settings.
#[derive(Message, Debug, Clone, Copy)]
pub struct SetPrefs(pub hush_store::Prefs);

fn load_prefs(
    store: Res<ProfileStore>,
    mut prefs: ResMut<Prefs>,
    mut failed: MessageWriter<StoreFailed>,
) {
    match store.profile() {
        Ok(p) => prefs.0 = p.prefs,
        Err(e) => {
            failed.write(StoreFailed::new("read the settings", &e));
        }
    }
}

fn save_prefs(
    mut set: MessageReader<SetPrefs>,
    store: Res<ProfileStore>,
    mut prefs: ResMut<Prefs>,
    mut failed: MessageWriter<StoreFailed>,
) {
    let Some(SetPrefs(new)) = set.read().last().copied() else {
        return;
    };
    if prefs.0 == new {
        return;
    }
    // In effect at once; kept for the next start when the store takes it.
    prefs.0 = new;
    let saved = store.profile().and_then(|mut p| {
        p.prefs = new;
        store.set_profile(&p)
    });
    if let Err(e) = saved {
        failed.write(StoreFailed::new("keep the settings", &e));
    }
}

/// Relaxed commits (received messages) become durable within a second.
fn flush_store(
    store: Option<Res<ProfileStore>>,
    mut failed: MessageWriter<StoreFailed>,
    mut next: ResMut<hush_net::NextUpdate>,
) {
    let Some(store) = store else { return };
    if let Err(e) = store.flush_due() {
        failed.write(StoreFailed::new("flush the store", &e));
    }
    if let Some(wait) = store.flush_wait() {
        next.within(wait);
    }
}

/// The open profile's storage.
#[derive(Resource, Clone)]
pub struct ProfileStore(pub Arc<dyn Store>);

impl std::ops::Deref for ProfileStore {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// A write or read failed (disk full, I/O error). Nothing was lost: what
/// could not be stored is not acknowledged, and is fetched or sent again.
#[derive(Message, Debug, Clone)]
pub struct StoreFailed {
    pub what: &'static str,
    pub error: String,
    /// The change is kept in memory and written again later (the browser's
    /// store, which writes behind): nothing is lost unless the app closes.
    pub retrying: bool,
}

impl StoreFailed {
    pub fn new(what: &'static str, e: &StoreError) -> Self {
        tracing::error!("storage failed ({what}): {e}");
        StoreFailed {
            what,
            error: e.to_string(),
            retrying: false,
        }
    }

    /// Writes behind the app are failing and being tried again.
    pub fn retrying(what: &'static str, error: String) -> Self {
        tracing::error!("storage failed ({what}): {error}; trying again");
        StoreFailed {
            what,
            error,
            retrying: true,
        }
    }
}
