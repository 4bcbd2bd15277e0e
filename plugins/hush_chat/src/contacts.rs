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
        .init_resource::<Blocked>()
        .add_message::<Block>()
        .add_message::<AddContact>()
        .add_message::<RenameContact>()
        .add_message::<RemoveContact>()
        .add_message::<ContactEvent>()
        .add_systems(
            Update,
            (
                load_contacts,
                add_contacts,
                rename_contacts,
                remove_contacts,
                block_people,
                take_contacts_from_elsewhere,
            )
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

/// The people this profile blocked (contacts or not): their threads are
/// hidden, their messages never shown nor notified. A resource, kept in the
/// profile.
#[derive(Resource, Default, Debug)]
pub struct Blocked(pub std::collections::HashSet<Uuid>);

/// Block (`blocked: true`) or unblock someone.
#[derive(Message, Debug, Clone, Copy)]
pub struct Block {
    pub user_id: Uuid,
    pub blocked: bool,
}

/// Add a contact from what a person typed.
#[derive(Message, Debug, Clone)]
pub struct AddContact {
    pub user_id: String,
    pub display_name: String,
}

/// Give a contact another display name.
#[derive(Message, Debug, Clone)]
pub struct RenameContact {
    pub user_id: Uuid,
    pub display_name: String,
}

/// Forget a contact. Their thread leaves the list; with `forget_history`
/// its stored messages, draft and queued messages go too, else they stay
/// for when the contact is added again.
#[derive(Message, Debug, Clone, Copy)]
pub struct RemoveContact {
    pub user_id: Uuid,
    pub forget_history: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")]
    BadUuid,
    #[error("that is your own UUID")]
    Yourself,
    #[error("already a contact")]
    Duplicate,
    #[error("not a contact")]
    Unknown,
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
    Renamed {
        contact: Contact,
    },
    Removed {
        contact: Contact,
        forget_history: bool,
    },
    /// Someone was blocked or unblocked (a contact or not).
    Blocked {
        user_id: Uuid,
        blocked: bool,
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
    mut blocked: ResMut<Blocked>,
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
                match store.profile() {
                    Ok(p) => blocked.0 = p.blocked.into_iter().collect(),
                    Err(e) => {
                        failed.write(StoreFailed::new("read the blocked list", &e));
                    }
                }
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
            VaultEvent::Locked => {
                contacts.list.clear();
                blocked.0.clear();
            }
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

fn rename_contacts(
    mut contacts: ResMut<Contacts>,
    vault: Res<Vault>,
    store: Res<ProfileStore>,
    mut intents: MessageReader<RenameContact>,
    mut out: MessageWriter<ContactEvent>,
) {
    for RenameContact {
        user_id,
        display_name,
    } in intents.read()
    {
        let reject = |error| ContactEvent::Rejected {
            input: user_id.to_string(),
            error,
        };
        let Some(keys) = vault.keys().filter(|_| vault.is_unlocked()) else {
            out.write(reject(ContactError::Locked));
            continue;
        };
        let name = match validate_display_name(display_name) {
            Ok(n) => n,
            Err(e) => {
                out.write(reject(ContactError::BadName(e)));
                continue;
            }
        };
        let Some(c) = contacts.list.iter_mut().find(|c| c.user_id == *user_id) else {
            out.write(reject(ContactError::Unknown));
            continue;
        };
        let record = ContactRecord {
            display_name: name.clone(),
            added_at: c.added_at,
        };
        if let Err(e) = store.put_contact(*user_id, &keys.contacts.seal_json(&record)) {
            out.write(reject(ContactError::Storage(e.to_string())));
            continue;
        }
        c.display_name = name;
        out.write(ContactEvent::Renamed { contact: c.clone() });
    }
}

fn remove_contacts(
    mut contacts: ResMut<Contacts>,
    vault: Res<Vault>,
    store: Res<ProfileStore>,
    outbox: Res<crate::Outbox>,
    mut intents: MessageReader<RemoveContact>,
    mut out: MessageWriter<ContactEvent>,
    mut cancel: MessageWriter<crate::OutboxIntent>,
) {
    for RemoveContact {
        user_id,
        forget_history,
    } in intents.read()
    {
        let reject = |error| ContactEvent::Rejected {
            input: user_id.to_string(),
            error,
        };
        if !vault.is_unlocked() {
            out.write(reject(ContactError::Locked));
            continue;
        }
        let Some(at) = contacts.list.iter().position(|c| c.user_id == *user_id) else {
            out.write(reject(ContactError::Unknown));
            continue;
        };
        let forgotten = if *forget_history {
            store.forget_thread(contacts.list[at].thread_id)
        } else {
            Ok(())
        }
        .and_then(|()| store.remove_contact(*user_id));
        if let Err(e) = forgotten {
            out.write(reject(ContactError::Storage(e.to_string())));
            continue;
        }
        let contact = contacts.list.remove(at);
        if *forget_history {
            // What was still to go to them goes with the history.
            for e in outbox.entries().filter(|e| e.thread == contact.thread_id) {
                cancel.write(crate::OutboxIntent::Cancel(e.seq));
            }
        }
        out.write(ContactEvent::Removed {
            contact,
            forget_history: *forget_history,
        });
    }
}

fn block_people(
    mut blocked: ResMut<Blocked>,
    vault: Res<Vault>,
    store: Res<ProfileStore>,
    mut intents: MessageReader<Block>,
    mut out: MessageWriter<ContactEvent>,
) {
    for Block {
        user_id,
        blocked: b,
    } in intents.read()
    {
        if !vault.is_unlocked() {
            out.write(ContactEvent::Rejected {
                input: user_id.to_string(),
                error: ContactError::Locked,
            });
            continue;
        }
        if blocked.0.contains(user_id) == *b {
            // Nothing to change; said all the same (a script waits for it).
            out.write(ContactEvent::Blocked {
                user_id: *user_id,
                blocked: *b,
            });
            continue;
        }
        let saved = store.profile().and_then(|mut p| {
            p.blocked.retain(|u| u != user_id);
            if *b {
                p.blocked.push(*user_id);
            }
            store.set_profile(&p)
        });
        if let Err(e) = saved {
            out.write(ContactEvent::Rejected {
                input: user_id.to_string(),
                error: ContactError::Storage(e.to_string()),
            });
            continue;
        }
        if *b {
            blocked.0.insert(*user_id);
        } else {
            blocked.0.remove(user_id);
        }
        out.write(ContactEvent::Blocked {
            user_id: *user_id,
            blocked: *b,
        });
    }
}

#[cfg(test)]
mod tests {
    use hush_core::wire::ServerFrame;
    use serde_json::json;

    use super::{ContactError, ContactEvent, Contacts, RemoveContact, RenameContact};
    use crate::testing::*;
    use crate::threads::{Thread, Threads};

    fn rejections(h: &mut Harness) -> Vec<ContactError> {
        h.app
            .world_mut()
            .resource_mut::<bevy::ecs::message::Messages<ContactEvent>>()
            .drain()
            .filter_map(|e| match e {
                ContactEvent::Rejected { error, .. } => Some(error),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_renamed_contact_keeps_the_new_name_in_its_thread_and_after_a_restart() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.write(RenameContact {
            user_id: PEER,
            display_name: "  Robert ".into(),
        });
        h.steps(2);
        let e = h.world().resource::<Threads>().entity(t).unwrap();
        assert_eq!(h.world().get::<Thread>(e).unwrap().peer_name, "Robert");
        let h2 = h.reopened();
        assert_eq!(
            h2.world()
                .resource::<Contacts>()
                .get(&PEER)
                .unwrap()
                .display_name,
            "Robert"
        );
        // A bad name or someone who is no contact is refused, and says so.
        h.write(RenameContact {
            user_id: PEER,
            display_name: "   ".into(),
        });
        h.write(RenameContact {
            user_id: uuid::Uuid::from_u128(77),
            display_name: "X".into(),
        });
        h.steps(2);
        let errs = rejections(&mut h);
        assert!(
            matches!(errs[..], [ContactError::BadName(_), ContactError::Unknown]),
            "{errs:?}"
        );
    }

    #[test]
    fn removing_a_contact_hides_the_thread_and_keeps_or_forgets_its_history() {
        let mut h = Harness::unlocked("Ann");
        let t = h.ready_thread(PEER, vec![]);
        let m = h.sealed_from(PEER, t, "m1", &at(1), "kept?");
        h.net.frame(ServerFrame::Message(m));
        h.steps(2);
        assert_eq!(h.store.message_count(t).unwrap(), 1);
        h.write(RemoveContact {
            user_id: PEER,
            forget_history: false,
        });
        h.steps(3);
        assert!(h.world().resource::<Threads>().entity(t).is_none());
        assert!(h.world().resource::<Contacts>().get(&PEER).is_none());
        assert!(
            h.sent_of("unsubscribe")
                .iter()
                .any(|f| f["thread_id"] == json!(t))
        );
        assert_eq!(h.store.message_count(t).unwrap(), 1, "history kept");
        assert!(h.store.contacts().unwrap().is_empty());
        // Added again: the history is back.
        h.add_contact(PEER, "Bob");
        assert_eq!(h.log(t).messages.len(), 1);
        h.write(crate::SendIntent {
            to: PEER,
            text: "unsent".into(),
        });
        h.steps(2);
        assert_eq!(h.outbox().entries().count(), 1);
        h.write(RemoveContact {
            user_id: PEER,
            forget_history: true,
        });
        h.steps(3);
        assert_eq!(h.store.message_count(t).unwrap(), 0, "history forgotten");
        assert_eq!(h.outbox().entries().count(), 0, "and what was queued");
        assert!(h.store.outbox().unwrap().is_empty());
        assert!(h.store.threads().unwrap().is_empty());
        h.write(RemoveContact {
            user_id: PEER,
            forget_history: true,
        });
        h.steps(2);
        assert_eq!(rejections(&mut h), [ContactError::Unknown]);
    }
}
