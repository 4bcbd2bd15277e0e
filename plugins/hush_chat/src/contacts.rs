//! Contacts: added by UUID (validated, lowercased; not yourself; no
//! duplicates) with a display name; stored sealed with the contacts key.

use bevy::prelude::*;
use hush_core::ThreadId;
use hush_core::crypto::Sealed;
use hush_core::ids::parse_user_uuid;
use hush_core::payload::{ContactRecord, NameError, validate_display_name};
use uuid::Uuid;

use crate::ChatSystems;
use crate::now_ms;
use crate::profile::{ProfileStore, StoreFailed};
use crate::shared::StoredElsewhere;
use crate::vault::{Vault, VaultEvent};

pub(crate) fn plugin(app: &mut App) {
    app.init_resource::<Contacts>()
        .add_message::<AddContact>()
        .add_message::<ContactEvent>()
        .add_systems(
            Update,
            (load_contacts, add_contacts, take_contacts_from_elsewhere)
                .chain()
                .in_set(ChatSystems::Contacts),
        );
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub user_id: Uuid,
    pub display_name: String,
    /// Milliseconds since the epoch.
    pub added_at: i64,
    pub thread_id: ThreadId,
}

/// The unlocked profile's contacts, a resource.
#[derive(Resource, Default, Debug)]
pub struct Contacts {
    pub list: Vec<Contact>,
}

impl Contacts {
    pub fn get(&self, user: &Uuid) -> Option<&Contact> {
        self.list.iter().find(|c| c.user_id == *user)
    }
}

/// Add a contact from what a person typed.
#[derive(Message, Debug, Clone)]
pub struct AddContact {
    pub user_id: String,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")]
    BadUuid,
    #[error("that is your own UUID")]
    Yourself,
    #[error("already a contact")]
    Duplicate,
    #[error("{0}")]
    BadName(NameError),
    #[error("the vault is locked")]
    Locked,
    #[error("storage failed: {0}")]
    Storage(String),
}

#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub enum ContactEvent {
    /// A contact is known (`new`: just added, else loaded at unlock).
    Added {
        contact: Contact,
        new: bool,
    },
    Rejected {
        input: String,
        error: ContactError,
    },
}

/// Validates a new contact against the vault and the current list.
pub fn check_contact(
    contacts: &Contacts,
    me: Option<Uuid>,
    user_id: &str,
    name: &str,
) -> Result<(Uuid, String), ContactError> {
    let id = parse_user_uuid(user_id).map_err(|_| ContactError::BadUuid)?;
    if Some(id) == me {
        return Err(ContactError::Yourself);
    }
    if contacts.get(&id).is_some() {
        return Err(ContactError::Duplicate);
    }
    let name = validate_display_name(name).map_err(ContactError::BadName)?;
    Ok((id, name))
}

fn load_contacts(
    mut contacts: ResMut<Contacts>,
    vault: Res<Vault>,
    store: Res<ProfileStore>,
    mut vault_events: MessageReader<VaultEvent>,
    mut out: MessageWriter<ContactEvent>,
    mut failed: MessageWriter<StoreFailed>,
) {
    for e in vault_events.read() {
        match e {
            VaultEvent::Unlocked => {
                contacts.list.clear();
                let Some(me) = vault.my_id() else {
                    continue;
                };
                let stored = match store.contacts() {
                    Ok(s) => s,
                    Err(e) => {
                        failed.write(StoreFailed::new("read contacts", &e));
                        continue;
                    }
                };
                for (user_id, sealed) in stored {
                    if let Some(c) = open_contact(&vault, me, user_id, &sealed) {
                        contacts.list.push(c.clone());
                        out.write(ContactEvent::Added {
                            contact: c,
                            new: false,
                        });
                    }
                }
            }
            VaultEvent::Locked => contacts.list.clear(),
            _ => {}
        }
    }
}

/// A stored contact, decrypted (a warning, and `None`, if it does not).
fn open_contact(vault: &Vault, me: Uuid, user_id: Uuid, sealed: &Sealed) -> Option<Contact> {
    let keys = vault.keys()?;
    match keys
        .contacts
        .open_json::<ContactRecord>(&sealed.ciphertext, &sealed.iv)
    {
        Ok(r) => Some(Contact {
            user_id,
            display_name: r.display_name,
            added_at: r.added_at,
            thread_id: ThreadId::for_pair(&me, &user_id),
        }),
        Err(e) => {
            tracing::warn!(%user_id, "skipping a contact that does not decrypt: {e}");
            None
        }
    }
}

/// A contact another tab added shows here too.
fn take_contacts_from_elsewhere(
    mut contacts: ResMut<Contacts>,
    vault: Res<Vault>,
    store: Res<ProfileStore>,
    mut elsewhere: MessageReader<StoredElsewhere>,
    mut out: MessageWriter<ContactEvent>,
    mut failed: MessageWriter<StoreFailed>,
) {
    let Some(me) = vault.my_id().filter(|_| vault.is_unlocked()) else {
        elsewhere.clear();
        return;
    };
    for e in elsewhere.read() {
        let StoredElsewhere::Contact(id) = e else {
            continue;
        };
        if contacts.get(id).is_some() {
            continue;
        }
        let sealed = match store.contacts() {
            Ok(all) => all.into_iter().find(|(u, _)| u == id).map(|(_, s)| s),
            Err(err) => {
                failed.write(StoreFailed::new("read contacts", &err));
                continue;
            }
        };
        if let Some(c) = sealed.and_then(|s| open_contact(&vault, me, *id, &s)) {
            contacts.list.push(c.clone());
            out.write(ContactEvent::Added {
                contact: c,
                new: false,
            });
        }
    }
}

fn add_contacts(
    mut contacts: ResMut<Contacts>,
    vault: Res<Vault>,
    store: Res<ProfileStore>,
    mut intents: MessageReader<AddContact>,
    mut out: MessageWriter<ContactEvent>,
) {
    for AddContact {
        user_id,
        display_name,
    } in intents.read()
    {
        let reject = |error| ContactEvent::Rejected {
            input: user_id.clone(),
            error,
        };
        let (Some(keys), Some(me)) = (vault.keys().filter(|_| vault.is_unlocked()), vault.my_id())
        else {
            out.write(reject(ContactError::Locked));
            continue;
        };
        let (id, name) = match check_contact(&contacts, Some(me), user_id, display_name) {
            Ok(v) => v,
            Err(e) => {
                out.write(reject(e));
                continue;
            }
        };
        let record = ContactRecord {
            display_name: name.clone(),
            added_at: now_ms(),
        };
        let sealed = keys.contacts.seal_json(&record);
        if let Err(e) = store.put_contact(id, &sealed) {
            out.write(reject(ContactError::Storage(e.to_string())));
            continue;
        }
        let c = Contact {
            user_id: id,
            display_name: name,
            added_at: record.added_at,
            thread_id: ThreadId::for_pair(&me, &id),
        };
        contacts.list.push(c.clone());
        out.write(ContactEvent::Added {
            contact: c,
            new: true,
        });
    }
}
