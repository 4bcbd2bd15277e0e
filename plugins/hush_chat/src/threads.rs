//! Threads: one entity per contact (shared with its `Subscription`), with the
//! decrypted log, sync state and unread count. On every connection the
//! client asks which threads exist on the server; a missing one is created
//! (with its sealed metadata) before its first message.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bevy::prelude::*;
use crossbeam_channel::{Receiver, Sender};
use hush_core::ThreadId;
use hush_core::crypto::AeadKey;
use hush_core::http::{MAX_THREAD_QUERY, ThreadRow};
use hush_core::payload::ThreadMetadata;
use hush_core::policy::catchup::CatchupCursor;
use hush_net::{
    Api, ApiRequest, ApiResult, Connection, HushSystems, Session, SubscriptionIntent, Subscriptions,
};
use hush_store::ThreadRecord;
use uuid::Uuid;

use crate::contacts::{ContactEvent, ContactSystems};
use crate::model::{ChatMessage, LocalEcho};
use crate::profile::{ProfileStore, StoreFailed};
use crate::vault::{Vault, VaultEvent};
use crate::{now_ms, receive};

pub(crate) fn plugin(app: &mut App) {
    let (tx, rx) = crossbeam_channel::unbounded();
    app.init_resource::<Threads>()
        .insert_resource(ThreadReplies { tx, rx })
        .add_message::<EnsureThread>()
        .add_systems(
            Update,
            (
                spawn_threads,
                clear_on_lock,
                query_threads_on_connect,
                ensure_threads,
                handle_thread_replies,
                clear_unread_of_focused,
                resync_after_rollback,
            )
                .chain()
                .in_set(HushSystems::Chat)
                .in_set(ThreadSystems)
                .after(ContactSystems),
        );
}

#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThreadSystems;

/// Who the thread is with.
#[derive(Component, Debug, Clone)]
pub struct Thread {
    pub id: ThreadId,
    pub peer: Uuid,
    pub peer_name: String,
}

/// The thread's AES key (derived once per unlock).
#[derive(Component, Clone)]
pub struct ThreadKey(pub AeadKey);

/// The thread's messages in server order, and our unacknowledged ones.
#[derive(Component, Default, Debug)]
pub struct ThreadLog {
    pub messages: Vec<ChatMessage>,
    pub pending: Vec<LocalEcho>,
    /// Bumped on every change, so views know when to look again.
    pub revision: u64,
}

impl ThreadLog {
    /// Inserts in (server time, id) order; returns the index, or `None` if
    /// the message is shown already (fetched again after the store rolled
    /// back, see [`Store::rollbacks`](hush_store::Store::rollbacks)).
    pub fn insert(&mut self, m: ChatMessage) -> Option<usize> {
        let at = match self.messages.last() {
            Some(last) if last.sort_key() < m.sort_key() => self.messages.len(),
            None => 0,
            _ => self
                .messages
                .partition_point(|x| x.sort_key() < m.sort_key()),
        };
        if self
            .messages
            .get(at)
            .is_some_and(|x| x.sort_key() == m.sort_key())
        {
            return None;
        }
        self.revision += 1;
        self.messages.insert(at, m);
        Some(at)
    }

    /// Milliseconds of the newest activity (sender clock), for ordering threads.
    pub fn last_activity_ms(&self) -> i64 {
        let last = self.messages.last().map_or(0, |m| m.timestamp_ms);
        let pend = self
            .pending
            .iter()
            .map(|p| p.timestamp_ms)
            .max()
            .unwrap_or(0);
        last.max(pend)
    }
}

/// Catch-up progress of a thread on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchState {
    Idle,
    InFlight,
    Waiting { until: Duration },
}

/// What is persisted of the thread, and how far it is synced.
#[derive(Component, Debug)]
pub struct ThreadSync {
    pub record: ThreadRecord,
    /// The connection generation the thread was caught up on.
    pub caught_up_on: Option<u64>,
    pub fetch: FetchState,
    /// The current catch-up run (pages of an abandoned run are not trusted
    /// to be contiguous with the stored cursor).
    pub run: u64,
    /// The generation the current run belongs to.
    pub run_gen: Option<u64>,
    /// Where the current run's next page starts.
    pub fetch_cursor: CatchupCursor,
    pub creating: bool,
    /// Earliest virtual time to try creating the thread again.
    pub create_after: Duration,
}

/// Messages not yet read in a thread that is not focused.
#[derive(Component, Default, Debug)]
pub struct Unread(pub u32);

/// Marks the thread the user is looking at (set by the UI).
#[derive(Component, Debug, Default)]
pub struct Focused;

/// The index of thread entities, a resource.
#[derive(Resource, Default, Debug)]
pub struct Threads {
    by_id: HashMap<ThreadId, Entity>,
    by_peer: HashMap<Uuid, ThreadId>,
    queried_on: Option<u64>,
}

impl Threads {
    pub fn entity(&self, t: ThreadId) -> Option<Entity> {
        self.by_id.get(&t).copied()
    }

    pub fn of_peer(&self, peer: &Uuid) -> Option<ThreadId> {
        self.by_peer.get(peer).copied()
    }

    pub fn ids(&self) -> impl Iterator<Item = ThreadId> + '_ {
        self.by_id.keys().copied()
    }
}

/// Create this thread on the server if it is not there yet.
#[derive(Message, Debug, Clone, Copy)]
pub struct EnsureThread(pub ThreadId);

enum Reply {
    Query(ApiResult),
    Create(ThreadId, ApiResult),
}

#[derive(Resource)]
struct ThreadReplies {
    tx: Sender<Reply>,
    rx: Receiver<Reply>,
}

impl ThreadSync {
    /// Forgets how far the thread was caught up: the stored cursor is the
    /// truth again (a write failed or was rolled back). A page in flight is
    /// abandoned (its run is over, so it cannot mark the thread caught up),
    /// and catch-up starts over from the stored cursor after a pause, as a
    /// full disk stays full for a while.
    pub fn refetch_from_store(&mut self, now: Duration) {
        self.caught_up_on = None;
        self.run += 1;
        self.run_gen = None;
        self.fetch = FetchState::Waiting {
            until: now + crate::catchup::RETRY,
        };
    }
}

/// The thread records in the store, by id.
fn stored_threads(
    store: &ProfileStore,
    failed: &mut MessageWriter<StoreFailed>,
) -> Option<HashMap<ThreadId, ThreadRecord>> {
    match store.threads() {
        Ok(v) => Some(v.into_iter().map(|r| (r.id, r)).collect()),
        Err(e) => {
            failed.write(StoreFailed::new("read threads", &e));
            None
        }
    }
}

#[expect(clippy::too_many_arguments, reason = "a system's parameters")]
fn spawn_threads(
    mut commands: Commands,
    mut threads: ResMut<Threads>,
    mut subs: ResMut<Subscriptions>,
    vault: Res<Vault>,
    store: Res<ProfileStore>,
    mut contacts: MessageReader<ContactEvent>,
    mut want: MessageWriter<SubscriptionIntent>,
    mut failed: MessageWriter<StoreFailed>,
) {
    let added: Vec<_> = contacts
        .read()
        .filter_map(|e| match e {
            ContactEvent::Added { contact, .. } => Some(contact.clone()),
            _ => None,
        })
        .collect();
    if added.is_empty() {
        return;
    }
    let Some(me) = vault.my_id() else { return };
    let stored = stored_threads(&store, &mut failed).unwrap_or_default();
    for c in added {
        let t = c.thread_id;
        if threads.by_id.contains_key(&t) {
            continue;
        }
        let Some(key) = vault.thread_key(&c.user_id) else {
            continue;
        };
        let record = match stored.get(&t) {
            Some(r) => r.clone(),
            None => {
                let r = ThreadRecord {
                    id: t,
                    peer: c.user_id,
                    cursor: None,
                    on_server: false,
                };
                if let Err(e) = store.put_thread(&r) {
                    failed.write(StoreFailed::new("save thread", &e));
                }
                r
            }
        };
        let mut log = ThreadLog::default();
        match store.messages(t, None, usize::MAX) {
            Ok(msgs) => {
                log.messages = msgs.iter().map(|m| receive::decode(&key, m, me)).collect();
                log.revision = 1;
            }
            Err(e) => {
                failed.write(StoreFailed::new("read messages", &e));
            }
        }
        let e = subs.entity_or_spawn(&mut commands, t);
        commands.entity(e).insert((
            Thread {
                id: t,
                peer: c.user_id,
                peer_name: c.display_name.clone(),
            },
            ThreadKey(key),
            log,
            ThreadSync {
                fetch_cursor: CatchupCursor::from_raw(record.cursor.as_deref()),
                record,
                caught_up_on: None,
                fetch: FetchState::Idle,
                run: 0,
                run_gen: None,
                creating: false,
                create_after: Duration::ZERO,
            },
            Unread::default(),
        ));
        threads.by_id.insert(t, e);
        threads.by_peer.insert(c.user_id, t);
        // Every thread is live whenever connected, not just the open one.
        want.write(SubscriptionIntent::Want(t));
    }
}

/// After the store rolled back relaxed commits (a write failed, see
/// `Store::rollbacks`), every thread's cursor is read again from the store
/// and catch-up starts over from it. What is fetched again and is still shown
/// is not shown twice (`ThreadLog::insert`).
fn resync_after_rollback(
    store: Res<ProfileStore>,
    time: Res<Time>,
    mut seen: Local<u64>,
    mut q: Query<&mut ThreadSync>,
    mut failed: MessageWriter<StoreFailed>,
) {
    let rollbacks = store.rollbacks();
    if rollbacks == *seen {
        return;
    }
    let Some(stored) = stored_threads(&store, &mut failed) else {
        return;
    };
    *seen = rollbacks;
    for mut sync in &mut q {
        if let Some(r) = stored.get(&sync.record.id) {
            sync.record = r.clone();
        }
        sync.refetch_from_store(time.elapsed());
    }
}

fn clear_on_lock(
    mut commands: Commands,
    mut threads: ResMut<Threads>,
    mut events: MessageReader<VaultEvent>,
    mut release: MessageWriter<SubscriptionIntent>,
) {
    if !events.read().any(|e| *e == VaultEvent::Locked) {
        return;
    }
    // Plaintext leaves memory with the components.
    for (t, e) in threads.by_id.drain() {
        commands
            .entity(e)
            .remove::<(Thread, ThreadKey, ThreadLog, ThreadSync, Unread, Focused)>();
        release.write(SubscriptionIntent::Release(t));
    }
    threads.by_peer.clear();
    threads.queried_on = None;
}

fn query_threads_on_connect(
    mut threads: ResMut<Threads>,
    conn: Res<Connection>,
    vault: Res<Vault>,
    session: Res<Session>,
    api: Res<Api>,
    replies: Res<ThreadReplies>,
) {
    let generation = conn.generation();
    if !conn.is_connected() || !vault.is_unlocked() || threads.queried_on == Some(generation) {
        return;
    }
    let Some(token) = session.token() else { return };
    threads.queried_on = Some(generation);
    let ids: Vec<ThreadId> = threads.by_id.keys().copied().collect();
    for chunk in ids.chunks(MAX_THREAD_QUERY) {
        let body = serde_json::json!({ "thread_ids": chunk }).to_string();
        let tx = replies.tx.clone();
        api.send(
            ApiRequest::post("/api/threads/query", body).with_token(Some(token)),
            move |r| {
                let _ = tx.send(Reply::Query(r));
            },
        );
    }
}

#[expect(clippy::too_many_arguments, reason = "a system's parameters")]
fn ensure_threads(
    threads: Res<Threads>,
    vault: Res<Vault>,
    session: Res<Session>,
    api: Res<Api>,
    replies: Res<ThreadReplies>,
    time: Res<Time>,
    mut wanted: MessageReader<EnsureThread>,
    mut q: Query<(&Thread, &mut ThreadSync)>,
) {
    let now = time.elapsed();
    let mut seen = HashSet::new();
    for EnsureThread(t) in wanted.read() {
        if !seen.insert(*t) {
            continue;
        }
        let Some(e) = threads.entity(*t) else {
            continue;
        };
        let Ok((thread, mut sync)) = q.get_mut(e) else {
            continue;
        };
        if sync.record.on_server || sync.creating || now < sync.create_after {
            continue;
        }
        let (Some(identity), Some(keys), Some(token)) =
            (&vault.identity, vault.keys(), session.token())
        else {
            continue;
        };
        let meta = ThreadMetadata::new(
            identity.user_id,
            &identity.display_name,
            thread.peer,
            now_ms(),
        );
        let sealed = keys.identity.seal_json(&meta);
        let body = serde_json::json!({ "id": t, "ciphertext": sealed.ciphertext, "iv": sealed.iv })
            .to_string();
        sync.creating = true;
        let (tx, t) = (replies.tx.clone(), *t);
        api.send(
            ApiRequest::post("/api/threads", body).with_token(Some(token)),
            move |r| {
                let _ = tx.send(Reply::Create(t, r));
            },
        );
    }
}

fn handle_thread_replies(
    threads: Res<Threads>,
    replies: Res<ThreadReplies>,
    store: Res<ProfileStore>,
    time: Res<Time>,
    mut q: Query<&mut ThreadSync>,
    mut failed: MessageWriter<StoreFailed>,
) {
    let now = time.elapsed();
    let mark =
        |t: ThreadId, q: &mut Query<&mut ThreadSync>, failed: &mut MessageWriter<StoreFailed>| {
            let Some(e) = threads.entity(t) else { return };
            let Ok(mut sync) = q.get_mut(e) else { return };
            sync.creating = false;
            if !sync.record.on_server {
                sync.record.on_server = true;
                if let Err(e) = store.put_thread(&sync.record) {
                    failed.write(StoreFailed::new("save thread", &e));
                }
            }
        };
    while let Ok(reply) = replies.rx.try_recv() {
        match reply {
            Reply::Query(Ok(resp)) if resp.is_success() => {
                match serde_json::from_str::<Vec<ThreadRow>>(&resp.body) {
                    Ok(rows) => rows.iter().for_each(|r| mark(r.id, &mut q, &mut failed)),
                    Err(e) => tracing::warn!("unreadable thread query answer: {e}"),
                }
            }
            Reply::Query(other) => {
                tracing::warn!("thread query failed: {:?}", other.map(|r| r.status))
            }
            Reply::Create(t, Ok(resp)) if resp.status == 201 || resp.is_success() => {
                mark(t, &mut q, &mut failed);
            }
            Reply::Create(t, other) => {
                tracing::warn!(%t, "creating the thread failed: {:?}", other.map(|r| r.status));
                if let Some(e) = threads.entity(t)
                    && let Ok(mut sync) = q.get_mut(e)
                {
                    sync.creating = false;
                    sync.create_after = now + Duration::from_secs(5);
                }
            }
        }
    }
}

fn clear_unread_of_focused(mut q: Query<&mut Unread, With<Focused>>) {
    for mut u in &mut q {
        if u.0 != 0 {
            u.0 = 0;
        }
    }
}
