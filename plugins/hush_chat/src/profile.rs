//! The profile's store as a resource, and how storage failures surface.

use std::sync::Arc;

use bevy::prelude::*;
use hush_store::{Store, StoreError};

pub(crate) fn plugin(app: &mut App) {
    app.add_message::<StoreFailed>()
        .add_systems(Last, flush_store);
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
}

impl StoreFailed {
    pub fn new(what: &'static str, e: &StoreError) -> Self {
        tracing::error!("storage failed ({what}): {e}");
        StoreFailed {
            what,
            error: e.to_string(),
        }
    }
}
