//! Drafts: what the user typed in a thread and has not sent. They are kept
//! sealed with the vault's drafts key in the profile store, so that they
//! survive a lock, a crash and a restart; in memory only while unlocked.

use std::collections::HashMap;

use bevy::prelude::*;
use hush_core::ThreadId;
use hush_core::crypto::AeadKey;
use hush_store::{Store, StoreError};
use zeroize::Zeroizing;

use crate::ChatSystems;
use crate::profile::{ProfileStore, StoreFailed};
use crate::vault::Vault;

pub(crate) fn plugin(app: &mut App) {
    app.init_resource::<Drafts>()
        .add_message::<SetDraft>()
        .add_systems(
            Update,
            (
                // What was typed before a lock is kept before the keys go.
                save_drafts.before(ChatSystems::Vault),
                follow_vault.in_set(ChatSystems::Contacts),
            ),
        );
}

/// The drafts of the unlocked vault, a resource. Empty while locked.
#[derive(Resource, Default)]
pub struct Drafts {
    texts: HashMap<ThreadId, Zeroizing<String>>,
    loaded: bool,
}

impl Drafts {
    /// Whether the store's drafts are in (the UI waits for them).
    pub fn loaded(&self) -> bool {
        self.loaded
    }

    /// A thread's draft ("" when there is none).
    pub fn get(&self, thread: ThreadId) -> &str {
        self.texts.get(&thread).map_or("", |t| t.as_str())
    }
}

/// The text typed in a thread changed (`""`: sent or erased).
#[derive(Message, Clone)]
pub struct SetDraft {
    pub thread: ThreadId,
    pub text: Zeroizing<String>,
}

/// Seals and keeps one draft; a blank one is removed.
pub fn save(
    store: &dyn Store,
    key: &AeadKey,
    thread: ThreadId,
    text: &str,
) -> Result<(), StoreError> {
    if text.trim().is_empty() {
        store.put_draft(thread, None)
    } else {
        store.put_draft(thread, Some(&key.seal(text.as_bytes())))
    }
}

/// Every draft the store holds that opens with `key`, and how many did not.
pub fn load(
    store: &dyn Store,
    key: &AeadKey,
) -> Result<(HashMap<ThreadId, Zeroizing<String>>, usize), StoreError> {
    let mut out = HashMap::new();
    let mut unreadable = 0;
    for (thread, sealed) in store.drafts()? {
        match key
            .open(&sealed.ciphertext, &sealed.iv)
            .ok()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
        {
            Some(text) => {
                out.insert(thread, Zeroizing::new(text));
            }
            None => unreadable += 1,
        }
    }
    Ok((out, unreadable))
}

fn save_drafts(
    mut set: MessageReader<SetDraft>,
    vault: Res<Vault>,
    store: Res<ProfileStore>,
    mut drafts: ResMut<Drafts>,
    mut failed: MessageWriter<StoreFailed>,
) {
    let Some(keys) = vault.keys().filter(|_| drafts.loaded) else {
        set.clear();
        return;
    };
    // The last text of each thread in this frame is the one kept.
    let mut latest: HashMap<ThreadId, &SetDraft> = HashMap::new();
    for d in set.read() {
        latest.insert(d.thread, d);
    }
    for (thread, d) in latest {
        if drafts.get(thread) == d.text.as_str() {
            continue;
        }
        if let Err(e) = save(&*store.0, &keys.drafts, thread, &d.text) {
            failed.write(StoreFailed::new("keep a draft", &e));
        }
        drafts.texts.insert(thread, d.text.clone());
    }
}

/// Loads the drafts once unlocked; forgets them (from memory) once locked.
fn follow_vault(
    vault: Res<Vault>,
    store: Res<ProfileStore>,
    mut drafts: ResMut<Drafts>,
    mut failed: MessageWriter<StoreFailed>,
) {
    match vault.keys().filter(|_| vault.is_unlocked()) {
        Some(keys) if !drafts.loaded => {
            drafts.loaded = true;
            match load(&*store.0, &keys.drafts) {
                Ok((texts, unreadable)) => {
                    if unreadable > 0 {
                        tracing::warn!("{unreadable} drafts could not be opened; left as they are");
                    }
                    drafts.texts = texts;
                }
                Err(e) => {
                    failed.write(StoreFailed::new("read drafts", &e));
                }
            }
        }
        None if drafts.loaded => *drafts = Drafts::default(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use hush_core::crypto::VaultKey;
    use hush_store::MemoryStore;

    use super::*;

    fn key(b: u8) -> AeadKey {
        VaultKey::from_bytes([b; 32]).drafts_key()
    }

    fn tid(n: u8) -> ThreadId {
        ThreadId::parse(&format!("{n:08x}-0000-0000-0000-000000000000")).unwrap()
    }

    #[test]
    fn a_draft_is_kept_sealed_and_comes_back() {
        let store = MemoryStore::new();
        save(&store, &key(1), tid(1), "hello 你好 🙂").unwrap();
        save(&store, &key(1), tid(2), "second").unwrap();
        let stored = store.drafts().unwrap();
        assert_eq!(stored.len(), 2);
        for (_, s) in &stored {
            assert!(!s.ciphertext.contains("hello") && !s.ciphertext.contains("second"));
        }
        let (back, unreadable) = load(&store, &key(1)).unwrap();
        assert_eq!(unreadable, 0);
        assert_eq!(back[&tid(1)].as_str(), "hello 你好 🙂");
        assert_eq!(back[&tid(2)].as_str(), "second");
    }

    #[test]
    fn a_blank_draft_is_removed() {
        let store = MemoryStore::new();
        save(&store, &key(1), tid(1), "typed").unwrap();
        save(&store, &key(1), tid(1), "  \n").unwrap();
        assert!(store.drafts().unwrap().is_empty());
    }

    #[test]
    fn another_vaults_drafts_are_counted_not_shown() {
        let store = MemoryStore::new();
        save(&store, &key(1), tid(1), "mine").unwrap();
        let (back, unreadable) = load(&store, &key(2)).unwrap();
        assert!(back.is_empty());
        assert_eq!(unreadable, 1);
    }
}
