//! Threads: one entity per contact (shared with its `Subscription`), with the
//! decrypted log, sync state and unread count. On every connection the
//! client asks which threads exist on the server; a missing one is created
//! (with its sealed metadata) before its first message.

use bevy::prelude::*;
use hush_core::ThreadId;
use hush_core::crypto::{AeadKey, Sealed};
use hush_core::http::{MAX_THREAD_QUERY, ThreadRow};
use hush_core::payload::ThreadMetadata;
use hush_core::policy::thread_sync::ThreadSyncMachine;
use hush_net::{
    ApiAppExt, ApiClient, ApiReply, ApiRequest, Connection, Session, SubscriptionIntent,
    Subscriptions,
};
use hush_store::ThreadRecord;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

use crate::contacts::{Blocked, ContactEvent, Contacts};
use crate::model::{ChatMessage, LocalEcho};
use crate::profile::{ProfileStore, StoreFailed};
use crate::vault::{Vault, VaultEvent};
use crate::{ChatSystems, now_ms};

pub(crate) fn plugin(app: &mut App) {
    app.init_resource::<Threads>()
        .add_api_replies::<ThreadCall>()
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
                .in_set(ChatSystems::Threads),
        );
}

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

/// The thread's loaded messages in server order (its newest pages, see
/// `history.rs`), and our unacknowledged ones.
#[derive(Component, Default, Debug)]
pub struct ThreadLog {
    pub messages: Vec<Arc<ChatMessage>>,
    pub pending: Vec<LocalEcho>,
    /// Older messages are in the store, not loaded ([`LoadOlder`](crate::history::LoadOlder)).
    pub older: bool,
    /// Bumped on every change, so views know when to look again.
    pub revision: u64,
}

impl ThreadLog {
    /// Inserts in (server time, id) order; returns `false` if the message is
    /// shown already (fetched again after the store rolled back, see
    /// [`Store::rollbacks`](hush_store::Store::rollbacks)). One older than
    /// the loaded pages is left to the store, where paging back finds it.
    pub fn insert(&mut self, m: Arc<ChatMessage>) -> bool {
        if self.older
            && self
                .messages
                .first()
                .is_some_and(|f| m.sort_key() < f.sort_key())
        {
            return true;
        }
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
            return false;
        }
        self.revision += 1;
        self.messages.insert(at, m);
        true
    }

    /// Puts the page before the oldest loaded message in front of it.
    pub(crate) fn prepend(&mut self, page: Vec<ChatMessage>, older: bool) {
        self.older = older;
        self.revision += 1;
        self.messages.splice(0..0, page.into_iter().map(Arc::new));
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

/// What is persisted of the thread, and how far it is synced: the pure
/// [`ThreadSyncMachine`] (catch-up runs, the cursor, the thread's existence
/// on the server and when the outbox may send), which every chat system
/// asks instead of keeping rules of its own.
#[derive(Component, Debug)]
pub struct ThreadSync {
    pub id: ThreadId,
    pub peer: Uuid,
    pub machine: ThreadSyncMachine,
    /// The server's sealed metadata, for a thread found as a request.
    pub metadata: Option<Sealed>,
    /// The user ignored it as a request.
    pub ignored: bool,
}

impl ThreadSync {
    fn new(record: ThreadRecord) -> Self {
        ThreadSync {
            id: record.id,
            peer: record.peer,
            machine: ThreadSyncMachine::new(record.cursor, record.on_server),
            metadata: record.metadata,
            ignored: record.ignored,
        }
    }

    /// The record to store.
    pub fn record(&self) -> ThreadRecord {
        ThreadRecord {
            id: self.id,
            peer: self.peer,
            cursor: self.machine.cursor().map(str::to_owned),
            on_server: self.machine.on_server(),
            metadata: self.metadata.clone(),
            ignored: self.ignored,
        }
    }

    /// Caught up on connection `generation`.
    pub fn is_caught_up(&self, generation: u64) -> bool {
        self.machine.is_caught_up(generation)
    }

    /// Stores the record after the machine changed it.
    pub(crate) fn save(&self, store: &ProfileStore, failed: &mut MessageWriter<StoreFailed>) {
        if let Err(e) = store.put_thread(&self.record()) {
            failed.write(StoreFailed::new("save thread", &e));
        }
    }
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

    /// Takes a thread out of the world: its plaintext leaves memory with
    /// the components, and its subscription is released.
    pub(crate) fn drop_thread(
        &mut self,
        commands: &mut Commands,
        t: ThreadId,
        release: &mut MessageWriter<SubscriptionIntent>,
    ) {
        let Some(e) = self.by_id.remove(&t) else {
            return;
        };
        self.by_peer.retain(|_, id| *id != t);
        commands.entity(e).remove::<(
            Thread,
            ThreadKey,
            ThreadLog,
            ThreadSync,
            Unread,
            Focused,
            Request,
            crate::search::SearchIndex,
        )>();
        release.write(SubscriptionIntent::Release(t));
    }
}

/// A thread whose peer is not a contact: someone who wrote first (found on
/// an [ext] `thread_list` relay, see `requests.rs`).
#[derive(Component, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Request {
    /// The user chose Ignore: hidden and never notified, but kept (an
    /// Accept later still works).
    pub ignored: bool,
}

/// Makes the entity of a thread with `peer_name`: its newest stored page
/// loaded, and subscribed whenever connected. `None` when the vault is
/// locked.
#[expect(clippy::too_many_arguments, reason = "what a thread entity is made of")]
pub(crate) fn spawn_thread(
    commands: &mut Commands,
    threads: &mut Threads,
    subs: &mut Subscriptions,
    vault: &Vault,
    store: &ProfileStore,
    record: ThreadRecord,
    peer_name: String,
    want: &mut MessageWriter<SubscriptionIntent>,
    failed: &mut MessageWriter<StoreFailed>,
) -> Option<Entity> {
    let me = vault.my_id()?;
    let key = vault.thread_key(&record.peer)?;
    let (t, peer) = (record.id, record.peer);
    let mut log = ThreadLog::default();
    match crate::history::page(store, t, &key, me, None) {
        Ok((msgs, older)) => log.prepend(msgs, older),
        Err(e) => {
            failed.write(StoreFailed::new("read messages", &e));
        }
    }
    let e = subs.entity_or_spawn(commands, t);
    commands.entity(e).insert((
        Thread {
            id: t,
            peer,
            peer_name,
        },
        ThreadKey(key),
        log,
        ThreadSync::new(record),
        Unread::default(),
    ));
    threads.by_id.insert(t, e);
    threads.by_peer.insert(peer, t);
    // Every thread is live whenever connected, not just the open one.
    want.write(SubscriptionIntent::Want(t));
    Some(e)
}

/// Create this thread on the server if it is not there yet.
#[derive(Message, Debug, Clone, Copy)]
pub struct EnsureThread(pub ThreadId);

/// What a thread request was for.
enum ThreadCall {
    /// Which of these threads the server has.
    Query,
    /// Create this thread.
    Create(ThreadId),
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

/// Thread entities for contacts as they are added (or unblocked), and the
/// changes to them: a new name, a removal, a block.
#[expect(clippy::too_many_arguments, reason = "a system's parameters")]
fn spawn_threads(
    mut commands: Commands,
    mut threads: ResMut<Threads>,
    mut subs: ResMut<Subscriptions>,
    vault: Res<Vault>,
    store: Res<ProfileStore>,
    contacts: Res<Contacts>,
    blocked: Res<Blocked>,
    mut events: MessageReader<ContactEvent>,
    mut names: Query<&mut Thread>,
    mut want: MessageWriter<SubscriptionIntent>,
    mut failed: MessageWriter<StoreFailed>,
) {
    let mut added = Vec::new();
    for e in events.read() {
        match e {
            ContactEvent::Added { contact, .. } => added.push(contact.clone()),
            ContactEvent::Blocked {
                user_id,
                blocked: false,
            } => added.extend(contacts.get(user_id).cloned()),
            ContactEvent::Blocked {
                user_id,
                blocked: true,
            } => {
                if let Some(t) = threads.of_peer(user_id) {
                    threads.drop_thread(&mut commands, t, &mut want);
                }
            }
            ContactEvent::Removed { contact, .. } => {
                threads.drop_thread(&mut commands, contact.thread_id, &mut want);
            }
            ContactEvent::Renamed { contact } => {
                if let Some(e) = threads.entity(contact.thread_id)
                    && let Ok(mut thread) = names.get_mut(e)
                {
                    thread.peer_name = contact.display_name.clone();
                }
            }
            ContactEvent::Rejected { .. } => {}
        }
    }
    added.retain(|c| !threads.by_id.contains_key(&c.thread_id) && !blocked.0.contains(&c.user_id));
    if added.is_empty() {
        return;
    }
    let stored = stored_threads(&store, &mut failed).unwrap_or_default();
    for c in added {
        let record = match stored.get(&c.thread_id) {
            Some(r) => r.clone(),
            None => {
                let r = ThreadRecord::new(c.thread_id, c.user_id);
                if let Err(e) = store.put_thread(&r) {
                    failed.write(StoreFailed::new("save thread", &e));
                }
                r
            }
        };
        spawn_thread(
            &mut commands,
            &mut threads,
            &mut subs,
            &vault,
            &store,
            record,
            c.display_name.clone(),
            &mut want,
            &mut failed,
        );
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
        let record = stored
            .get(&sync.id)
            .map(|r| (r.cursor.clone(), r.on_server));
        sync.machine.refetch_from_store(record, time.elapsed());
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
    let all: Vec<ThreadId> = threads.ids().collect();
    for t in all {
        threads.drop_thread(&mut commands, t, &mut release);
    }
    threads.queried_on = None;
}

fn query_threads_on_connect(
    mut threads: ResMut<Threads>,
    conn: Res<Connection>,
    vault: Res<Vault>,
    session: Res<Session>,
    api: ApiClient<ThreadCall>,
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
        api.request(
            ApiRequest::post("/api/threads/query", body).with_token(Some(token)),
            ThreadCall::Query,
        );
    }
}

fn ensure_threads(
    threads: Res<Threads>,
    vault: Res<Vault>,
    session: Res<Session>,
    api: ApiClient<ThreadCall>,
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
        if !sync.machine.should_create(now) {
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
        sync.machine.create_started();
        api.request(
            ApiRequest::post("/api/threads", body).with_token(Some(token)),
            ThreadCall::Create(*t),
        );
    }
}

fn handle_thread_replies(
    threads: Res<Threads>,
    mut replies: MessageReader<ApiReply<ThreadCall>>,
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
            if sync.machine.exists_on_server() {
                sync.save(&store, failed);
            }
        };
    for ApiReply { tag, result } in replies.read() {
        match (tag, result) {
            (ThreadCall::Query, Ok(resp)) if resp.is_success() => {
                match serde_json::from_str::<Vec<ThreadRow>>(&resp.body) {
                    Ok(rows) => rows.iter().for_each(|r| mark(r.id, &mut q, &mut failed)),
                    Err(e) => tracing::warn!("unreadable thread query answer: {e}"),
                }
            }
            (ThreadCall::Query, other) => {
                tracing::warn!(
                    "thread query failed: {:?}",
                    other.as_ref().map(|r| r.status)
                )
            }
            (ThreadCall::Create(t), Ok(resp)) if resp.status == 201 || resp.is_success() => {
                mark(*t, &mut q, &mut failed);
            }
            (ThreadCall::Create(t), other) => {
                tracing::warn!(%t, "creating the thread failed: {:?}", other.as_ref().map(|r| r.status));
                if let Some(e) = threads.entity(*t)
                    && let Ok(mut sync) = q.get_mut(e)
                {
                    sync.machine.create_failed(now);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hush_net::scripted::reply;
    use serde_json::json;

    use crate::testing::*;

    #[test]
    fn the_first_send_creates_a_missing_thread_once_with_sealed_metadata() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.subscribed(t);
        h.send(PEER, "hello");
        h.steps(3);
        let creates: Vec<_> = h
            .net
            .pending()
            .into_iter()
            .filter(|p| p == "Post /api/threads")
            .collect();
        assert_eq!(creates.len(), 1, "one create at a time");
        let mut body = None;
        h.answer(|r| {
            (r.path == "/api/threads").then(|| {
                body = r.body.clone();
                reply(201, thread_row(t))
            })
        });
        let body: serde_json::Value = serde_json::from_str(&body.unwrap()).unwrap();
        assert_eq!(body["id"], json!(t));
        assert!(
            body["ciphertext"]
                .as_str()
                .is_some_and(|c| !c.contains("Ann"))
        );
        assert!(h.sync(t).machine.on_server());
        assert!(h.store.threads().unwrap()[0].on_server, "stored");
    }

    #[test]
    fn a_failed_create_is_tried_again_after_a_pause() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.write(super::EnsureThread(t));
        h.steps(2);
        h.answer(|r| (r.path == "/api/threads").then(|| reply(500, json!({}))));
        h.write(super::EnsureThread(t));
        h.steps(2);
        assert!(
            h.net.pending().is_empty()
                || !h.net.pending().contains(&"Post /api/threads".to_owned())
        );
        h.advance(Duration::from_secs(6));
        h.write(super::EnsureThread(t));
        h.steps(2);
        assert!(h.net.pending().contains(&"Post /api/threads".to_owned()));
    }

    #[test]
    fn threads_the_server_lists_on_connect_are_not_created_again() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.reconnect();
        let n = h.answer(|r| {
            (r.path == "/api/threads/query").then(|| reply(200, json!([thread_row(t)])))
        });
        assert_eq!(n, 1, "the query on connect names the thread");
        assert!(h.sync(t).machine.on_server());
        h.write(super::EnsureThread(t));
        h.steps(2);
        assert!(!h.net.pending().contains(&"Post /api/threads".to_owned()));
    }

    /// A `subscribe` swallowed by the network (the socket lives on) is sent
    /// again, so the thread's catch-up and sends do not wait for a reconnect.
    #[test]
    fn an_unanswered_subscribe_is_sent_again_until_answered() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.steps(2);
        let count = |h: &mut Harness| {
            h.sent_of("subscribe")
                .iter()
                .filter(|f| f["thread_id"] == serde_json::json!(t))
                .count()
        };
        assert_eq!(count(&mut h), 1);
        h.advance(Duration::from_secs(5));
        assert_eq!(count(&mut h), 0, "not before the timeout");
        h.advance(Duration::from_secs(6));
        assert_eq!(count(&mut h), 1, "sent again after 10 s");
        h.net
            .frame(hush_core::wire::ServerFrame::Subscribed { thread_id: t });
        h.steps(2);
        h.advance(Duration::from_secs(30));
        assert_eq!(count(&mut h), 0, "answered: no more");
    }

    #[test]
    fn a_lock_takes_the_threads_plaintext_out_of_the_world() {
        let mut h = Harness::unlocked("Ann");
        let t = h.ready_thread(PEER, vec![]);
        let m = h.sealed_from(PEER, t, "m1", &at(1), "secret");
        h.net.frame(hush_core::wire::ServerFrame::Message(m));
        h.steps(2);
        h.write(crate::LockIntent);
        h.steps(3);
        let mut q = h.app.world_mut().query::<&super::ThreadLog>();
        assert_eq!(q.iter(h.app.world()).count(), 0);
        assert!(h.world().resource::<super::Threads>().entity(t).is_none());
    }
}
