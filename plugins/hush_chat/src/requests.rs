//! Message requests: threads that someone who is not a contact started with
//! us. Only the two members of a pair can compute its thread id, so on the
//! base protocol such a thread is never seen. On an [ext] `thread_list`
//! relay the client lists the threads created since its cursor whenever it
//! connects, and hears of new ones by `thread_created`. It opens each one's
//! metadata with the identity key: one that names us and a peer who is not a
//! contact (nor blocked) becomes a thread entity marked [`Request`], whose
//! messages arrive like any other's. Accepting adds the peer as a contact;
//! ignoring hides it; blocking hides every thread with the peer for good.

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use hush_core::ThreadId;
use hush_core::http::{ThreadRow, features};
use hush_core::payload::ThreadMetadata;
use hush_core::wire::ServerFrame;
use hush_net::{
    ApiAppExt, ApiClient, ApiReply, ApiRequest, Connection, FrameReceived, Session,
    SubscriptionIntent, Subscriptions,
};
use hush_store::ThreadRecord;
use uuid::Uuid;

use crate::ChatSystems;
use crate::contacts::{Blocked, ContactEvent, Contacts};
use crate::profile::{ProfileStore, StoreFailed};
use crate::threads::{Request, Thread, ThreadSync, Threads, spawn_thread};
use crate::vault::{Vault, VaultEvent};

pub(crate) fn plugin(app: &mut App) {
    app.init_resource::<Discovery>()
        .add_api_replies::<ListPage>()
        .add_message::<IgnoreRequest>()
        .add_systems(
            Update,
            (
                spawn_stored_requests,
                list_threads_on_connect,
                take_listed_and_created_threads,
                follow_contacts,
                ignore_requests,
            )
                .chain()
                .in_set(ChatSystems::Threads),
        );
}

/// Hide a request without blocking its sender (kept; Accept still works).
#[derive(Message, Debug, Clone, Copy)]
pub struct IgnoreRequest(pub ThreadId);

/// How far the server's thread list is read on this connection.
#[derive(Resource, Default, Debug)]
pub struct Discovery {
    /// The connection generation the list was asked for on.
    listed_on: Option<u64>,
    /// The server cannot list threads: requests from unknown people cannot
    /// be shown (what the UI says). `None` until connected once.
    pub unsupported: Option<bool>,
    /// The connection generation whose listing has reached the end (or
    /// failed, and is tried on the next connection).
    pub listed: Option<u64>,
}

/// A page of `GET /api/threads` asked for.
struct ListPage {
    generation: u64,
    limit: usize,
}

/// What making a request's thread entity takes.
#[derive(SystemParam)]
struct Spawner<'w, 's> {
    commands: Commands<'w, 's>,
    threads: ResMut<'w, Threads>,
    subs: ResMut<'w, Subscriptions>,
    vault: Res<'w, Vault>,
    store: Res<'w, ProfileStore>,
    contacts: Res<'w, Contacts>,
    blocked: Res<'w, Blocked>,
    want: MessageWriter<'w, SubscriptionIntent>,
    failed: MessageWriter<'w, StoreFailed>,
}

impl Spawner<'_, '_> {
    /// The thread entity of a request from `record`'s peer, shown as `name`.
    fn spawn(&mut self, record: ThreadRecord, name: String) {
        let ignored = record.ignored;
        if let Some(e) = spawn_thread(
            &mut self.commands,
            &mut self.threads,
            &mut self.subs,
            &self.vault,
            &self.store,
            record,
            name,
            &mut self.want,
            &mut self.failed,
        ) {
            self.commands.entity(e).insert(Request { ignored });
        }
    }

    fn stored_threads(&mut self) -> Option<Vec<ThreadRecord>> {
        match self.store.threads() {
            Ok(r) => Some(r),
            Err(e) => {
                self.failed.write(StoreFailed::new("read threads", &e));
                None
            }
        }
    }
}

/// At unlock: the requests found on earlier runs.
fn spawn_stored_requests(
    mut s: Spawner,
    mut vault_events: MessageReader<VaultEvent>,
    mut contact_events: MessageReader<ContactEvent>,
) {
    let unlocked = vault_events.read().any(|e| *e == VaultEvent::Unlocked);
    // Someone unblocked who is no contact: their request comes back.
    let unblocked: Vec<Uuid> = contact_events
        .read()
        .filter_map(|e| match e {
            ContactEvent::Blocked {
                user_id,
                blocked: false,
            } => Some(*user_id),
            _ => None,
        })
        .collect();
    if !unlocked && unblocked.is_empty() {
        return;
    }
    let Some(me) = s.vault.my_id().filter(|_| s.vault.is_unlocked()) else {
        return;
    };
    let Some(records) = s.stored_threads() else {
        return;
    };
    for r in records {
        if r.metadata.is_none() || !(unlocked || unblocked.contains(&r.peer)) {
            continue;
        }
        if let Some(name) = requester(&s, me, &r) {
            s.spawn(r, name);
        }
    }
}

/// The name a request from this record's peer shows, if it is one now: its
/// metadata opens, names us, and the peer is neither a contact nor blocked
/// nor shown already.
fn requester(s: &Spawner, me: Uuid, r: &ThreadRecord) -> Option<String> {
    let sealed = r.metadata.as_ref()?;
    let meta: ThreadMetadata = s
        .vault
        .keys()?
        .identity
        .open_json(&sealed.ciphertext, &sealed.iv)
        .ok()?;
    let peer = meta.peer_of(me, r.id)?;
    if peer != r.peer
        || s.contacts.get(&peer).is_some()
        || s.blocked.0.contains(&peer)
        || s.threads.entity(r.id).is_some()
    {
        return None;
    }
    Some(requester_name(&meta, peer))
}

/// The creator's name when the peer created the thread, else a short id.
fn requester_name(meta: &ThreadMetadata, peer: Uuid) -> String {
    if meta.created_by.user_id == peer {
        meta.created_by.display_name.clone()
    } else {
        peer.to_string().chars().take(8).collect()
    }
}

/// Once per connection: the threads created since the cursor, a page at a
/// time, when the relay can list them.
fn list_threads_on_connect(
    mut discovery: ResMut<Discovery>,
    conn: Res<Connection>,
    vault: Res<Vault>,
    session: Res<Session>,
    store: Res<ProfileStore>,
    api: ApiClient<ListPage>,
) {
    if !vault.is_unlocked() {
        // Listed again after the next unlock.
        discovery.listed_on = None;
        return;
    }
    let generation = conn.generation();
    if !conn.is_connected() || discovery.listed_on == Some(generation) {
        return;
    }
    let Some(token) = session.token() else { return };
    discovery.listed_on = Some(generation);
    let supported = conn.server_has(features::THREAD_LIST);
    discovery.unsupported = Some(!supported);
    if !supported {
        return;
    }
    let after = store.profile().ok().and_then(|p| p.threads_after);
    request_page(&api, token, generation, conn.max_page(), after.as_deref());
}

fn request_page(
    api: &ApiClient<ListPage>,
    token: &str,
    generation: u64,
    limit: usize,
    after: Option<&str>,
) {
    let mut path = format!("/api/threads?limit={limit}");
    if let Some(a) = after {
        path.push_str("&after=");
        path.push_str(&hush_core::http::url_encode(a));
    }
    api.request(
        ApiRequest::get(path).with_token(Some(token)),
        ListPage { generation, limit },
    );
}

/// Listed pages and `thread_created` frames: each row that is a request
/// becomes one. The cursor moves over listed pages only (a frame may come
/// before older rows are listed).
fn take_listed_and_created_threads(
    mut s: Spawner,
    conn: Res<Connection>,
    session: Res<Session>,
    api: ApiClient<ListPage>,
    mut replies: MessageReader<ApiReply<ListPage>>,
    mut discovery: ResMut<Discovery>,
    mut frames: MessageReader<FrameReceived>,
) {
    let mut rows: Vec<ThreadRow> = Vec::new();
    let mut cursor = None;
    for ApiReply { tag, result } in replies.read() {
        let page = match result {
            Ok(resp) if resp.is_success() => {
                match serde_json::from_str::<Vec<ThreadRow>>(&resp.body) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!("unreadable thread list: {e}");
                        continue;
                    }
                }
            }
            other => {
                tracing::warn!(
                    "listing threads failed: {:?}",
                    other.as_ref().map(|r| r.status)
                );
                discovery.listed = Some(tag.generation);
                continue;
            }
        };
        let mut more = false;
        if let Some(last) = page.last() {
            cursor = Some(last.created_at.clone());
            if page.len() >= tag.limit
                && tag.generation == conn.generation()
                && let Some(token) = session.token()
            {
                request_page(
                    &api,
                    token,
                    tag.generation,
                    tag.limit,
                    Some(&last.created_at),
                );
                more = true;
            }
        }
        if !more {
            discovery.listed = Some(tag.generation);
        }
        rows.extend(page);
    }
    for FrameReceived(f) in frames.read() {
        if let ServerFrame::ThreadCreated(row) = f {
            rows.push(row.clone());
        }
    }
    let Some(me) = s.vault.my_id().filter(|_| s.vault.is_unlocked()) else {
        return;
    };
    if !rows.is_empty() {
        let Some(stored) = s.stored_threads() else {
            return;
        };
        for row in rows {
            if s.threads.entity(row.id).is_some() {
                continue; // shown already: a contact's, or a request
            }
            let metadata = hush_core::crypto::Sealed {
                ciphertext: row.ciphertext,
                iv: row.iv,
            };
            let Some(meta) = s.vault.keys().and_then(|k| {
                k.identity
                    .open_json::<ThreadMetadata>(&metadata.ciphertext, &metadata.iv)
                    .ok()
            }) else {
                continue; // not of this vault, or damaged
            };
            let Some(peer) = meta.peer_of(me, row.id) else {
                continue; // someone else's thread
            };
            if s.contacts.get(&peer).is_some() {
                continue;
            }
            let record = ThreadRecord {
                on_server: true,
                metadata: Some(metadata),
                ..stored
                    .iter()
                    .find(|r| r.id == row.id)
                    .cloned()
                    .unwrap_or_else(|| ThreadRecord::new(row.id, peer))
            };
            // Kept also for a blocked sender: an unblock brings it back.
            if let Err(e) = s.store.put_thread(&record) {
                s.failed.write(StoreFailed::new("save thread", &e));
                continue;
            }
            if s.blocked.0.contains(&peer) {
                continue;
            }
            s.spawn(record, requester_name(&meta, peer));
        }
    }
    if let Some(c) = cursor {
        let saved = s.store.profile().and_then(|mut p| {
            p.threads_after = Some(c);
            s.store.set_profile(&p)
        });
        if let Err(e) = saved {
            s.failed
                .write(StoreFailed::new("keep the thread list position", &e));
        }
    }
}

/// A request whose sender became a contact (Accept) is an ordinary thread
/// under the contact's name. (A blocked sender's thread leaves the world
/// with `threads.rs`'s.)
fn follow_contacts(
    mut commands: Commands,
    threads: Res<Threads>,
    mut events: MessageReader<ContactEvent>,
    mut q: Query<(&mut Thread, &mut ThreadSync), With<Request>>,
    store: Res<ProfileStore>,
    mut failed: MessageWriter<StoreFailed>,
) {
    for e in events.read() {
        let ContactEvent::Added { contact, .. } = e else {
            continue;
        };
        let Some(entity) = threads.entity(contact.thread_id) else {
            continue;
        };
        let Ok((mut thread, mut sync)) = q.get_mut(entity) else {
            continue;
        };
        thread.peer_name = contact.display_name.clone();
        if sync.ignored {
            sync.ignored = false;
            sync.save(&store, &mut failed);
        }
        commands.entity(entity).remove::<Request>();
    }
}

fn ignore_requests(
    threads: Res<Threads>,
    store: Res<ProfileStore>,
    mut intents: MessageReader<IgnoreRequest>,
    mut q: Query<(&mut Request, &mut ThreadSync)>,
    mut failed: MessageWriter<StoreFailed>,
) {
    for IgnoreRequest(t) in intents.read() {
        let Some(e) = threads.entity(*t) else {
            continue;
        };
        let Ok((mut request, mut sync)) = q.get_mut(e) else {
            continue;
        };
        request.ignored = true;
        sync.ignored = true;
        sync.save(&store, &mut failed);
    }
}

#[cfg(test)]
mod tests {
    use hush_core::ThreadId;
    use hush_core::http::features;
    use hush_core::payload::ThreadMetadata;
    use hush_core::wire::ServerFrame;
    use hush_net::scripted::reply;
    use serde_json::{Value, json};
    use uuid::Uuid;

    use super::{Discovery, IgnoreRequest};
    use crate::contacts::{Block, Contacts};
    use crate::testing::*;
    use crate::threads::{Request, Thread, Threads};
    use crate::{AddContact, MessageReceived};

    const STRANGER: Uuid = Uuid::from_u128(0x5757);

    /// A thread row as the relay lists it: `from` started it with `to`.
    fn row(h: &Harness, from: Uuid, name: &str, to: Uuid, at: &str) -> Value {
        let sealed = h
            .vault()
            .keys()
            .unwrap()
            .identity
            .seal_json(&ThreadMetadata::new(from, name, to, 1));
        json!({
            "id": ThreadId::for_pair(&from, &to),
            "ciphertext": sealed.ciphertext,
            "iv": sealed.iv,
            "created_at": at,
        })
    }

    /// Answers the waiting thread list with `rows`; the paths asked for.
    fn list(h: &mut Harness, rows: Value) -> Vec<String> {
        let mut asked = Vec::new();
        h.answer(|r| {
            r.path.starts_with("/api/threads?").then(|| {
                asked.push(r.path.clone());
                reply(200, rows.clone())
            })
        });
        asked
    }

    fn request_of(h: &Harness, t: ThreadId) -> Option<(Request, String)> {
        let e = h.world().resource::<Threads>().entity(t)?;
        let request = *h.world().get::<Request>(e)?;
        let name = h.world().get::<Thread>(e)?.peer_name.clone();
        Some((request, name))
    }

    #[test]
    fn a_thread_a_stranger_started_becomes_a_request_with_its_messages() {
        let mut h = Harness::unlocked("Ann");
        let me = h.me();
        let t = ThreadId::for_pair(&STRANGER, &me);
        let rows = json!([
            row(&h, STRANGER, "Zed", me, "2026-01-01T00:00:01Z"),
            // Someone else's thread: not ours to show.
            row(
                &h,
                STRANGER,
                "Zed",
                Uuid::from_u128(9),
                "2026-01-01T00:00:02Z"
            ),
        ]);
        assert_eq!(list(&mut h, rows), ["/api/threads?limit=200"]);
        assert_eq!(
            request_of(&h, t),
            Some((Request { ignored: false }, "Zed".into()))
        );
        assert_eq!(h.world().resource::<Threads>().ids().count(), 1);
        // Its messages arrive like a contact's.
        h.subscribed(t);
        let first = h.sealed_from(STRANGER, t, "m1", &at(3), "hi, it's Zed");
        h.answer_history(200, json!([first]));
        assert_eq!(h.log(t).messages.len(), 1);
        assert_eq!(h.log(t).messages[0].content, "hi, it's Zed");
        // The cursor is kept: the next connection lists after it.
        assert_eq!(
            h.store.profile().unwrap().threads_after.as_deref(),
            Some("2026-01-01T00:00:02Z")
        );
        h.reconnect();
        let asked = list(&mut h, json!([]));
        assert_eq!(
            asked,
            ["/api/threads?limit=200&after=2026-01-01T00%3A00%3A02Z"]
        );
        // A restart shows it again, from the store.
        let h2 = h.reopened();
        assert_eq!(
            request_of(&h2, t),
            Some((Request { ignored: false }, "Zed".into()))
        );
    }

    #[test]
    fn a_thread_created_frame_is_a_request_at_once_and_a_full_page_asks_for_the_next() {
        let mut h = Harness::unlocked("Ann");
        let me = h.me();
        let page: Vec<Value> = (0..200)
            .map(|i| {
                row(
                    &h,
                    Uuid::from_u128(1000 + i),
                    "Someone",
                    Uuid::from_u128(2000 + i),
                    &at(i as u32),
                )
            })
            .collect();
        list(&mut h, json!(page));
        assert_eq!(
            h.net.pending(),
            [format!(
                "Get /api/threads?limit=200&after={}",
                hush_core::http::url_encode(&at(199))
            )]
        );
        let r = row(&h, STRANGER, "Zed", me, &at(300));
        h.net.frame(ServerFrame::ThreadCreated(
            serde_json::from_value(r).unwrap(),
        ));
        h.steps(2);
        let t = ThreadId::for_pair(&me, &STRANGER);
        assert_eq!(request_of(&h, t).unwrap().1, "Zed");
        assert!(
            h.sent_of("subscribe")
                .iter()
                .any(|f| f["thread_id"] == json!(t))
        );
    }

    #[test]
    fn accepting_makes_the_sender_a_contact_and_ignoring_hides_it() {
        let mut h = Harness::unlocked("Ann");
        let me = h.me();
        let t = ThreadId::for_pair(&me, &STRANGER);
        let rows = json!([row(&h, STRANGER, "Zed", me, &at(1))]);
        list(&mut h, rows);
        h.write(IgnoreRequest(t));
        h.steps(2);
        assert_eq!(request_of(&h, t).unwrap().0, Request { ignored: true });
        assert!(
            h.store
                .threads()
                .unwrap()
                .iter()
                .any(|r| r.id == t && r.ignored)
        );
        // Accept: a contact under the name chosen, no longer a request.
        h.write(AddContact {
            user_id: STRANGER.to_string(),
            display_name: "Zed Z".into(),
        });
        h.steps(3);
        assert_eq!(request_of(&h, t), None);
        let e = h.world().resource::<Threads>().entity(t).unwrap();
        assert_eq!(h.world().get::<Thread>(e).unwrap().peer_name, "Zed Z");
        assert!(h.world().resource::<Contacts>().get(&STRANGER).is_some());
        assert!(!h.store.threads().unwrap().iter().any(|r| r.ignored));
        // A contact's thread listed again is not a request.
        h.reconnect();
        let rows = json!([row(&h, STRANGER, "Zed", me, &at(1))]);
        list(&mut h, rows);
        assert_eq!(request_of(&h, t), None);
    }

    #[test]
    fn a_blocked_sender_is_hidden_and_not_shown_again_until_unblocked() {
        let mut h = Harness::unlocked("Ann");
        let me = h.me();
        let t = ThreadId::for_pair(&me, &STRANGER);
        let rows = json!([row(&h, STRANGER, "Zed", me, &at(1))]);
        list(&mut h, rows);
        h.subscribed(t);
        h.write(Block {
            user_id: STRANGER,
            blocked: true,
        });
        h.steps(3);
        assert!(h.world().resource::<Threads>().entity(t).is_none());
        assert!(
            h.sent_of("unsubscribe")
                .iter()
                .any(|f| f["thread_id"] == json!(t))
        );
        // Its next message is not shown nor announced.
        let m = h.sealed_from(STRANGER, t, "m2", &at(5), "let me in");
        h.net.frame(ServerFrame::Message(m));
        h.steps(2);
        let received: Vec<_> = h
            .app
            .world_mut()
            .resource_mut::<bevy::ecs::message::Messages<MessageReceived>>()
            .drain()
            .collect();
        assert!(received.is_empty(), "{received:?}");
        // Not after a restart, nor when listed again.
        let mut h2 = h.reopened();
        assert!(h2.world().resource::<Threads>().entity(t).is_none());
        h2.connect(features::ALL);
        let rows = json!([row(&h2, STRANGER, "Zed", me, &at(1))]);
        list(&mut h2, rows);
        assert!(h2.world().resource::<Threads>().entity(t).is_none());
        // Unblocked: the request is back.
        h2.write(Block {
            user_id: STRANGER,
            blocked: false,
        });
        h2.steps(3);
        assert_eq!(request_of(&h2, t).unwrap().1, "Zed");
    }

    #[test]
    fn a_stock_server_is_not_asked_and_the_client_knows_it_cannot_show_requests() {
        let h = Harness::unlocked_on("Ann", &[]);
        assert!(
            !h.net.pending().iter().any(|p| p.contains("/api/threads?")),
            "{:?}",
            h.net.pending()
        );
        assert_eq!(h.world().resource::<Discovery>().unsupported, Some(true));
        let h = Harness::unlocked("Ann");
        assert_eq!(h.world().resource::<Discovery>().unsupported, Some(false));
    }
}
