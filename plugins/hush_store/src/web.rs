//! The web backend: IndexedDB, one database per profile.
//!
//! IndexedDB only answers asynchronously, so the store keeps a full copy in
//! memory (loaded once by [`WebStore::open`]) that answers every read, and
//! writes through to IndexedDB behind it: each change is queued and flushed
//! in one transaction per turn of the browser's event loop, in order.
//! Values are the same JSON records as on native — sealed blobs and
//! ciphertext, never plaintext.
//!
//! Several tabs may open one profile. Each keeps its own copy in memory, so
//! each tells the others what it wrote: after a transaction commits, its
//! changes go out on the profile's `BroadcastChannel`, and every other open
//! store of the profile queues them as [`RemoteChange`]s. The app takes them
//! ([`WebStore::take_remote`]) and decides what they mean for its world; it
//! puts them in this copy with [`WebStore::absorb`], which writes nothing.

use std::cell::RefCell;
use std::collections::HashMap;

use futures_channel::oneshot;
use hush_core::ThreadId;
use hush_core::crypto::Sealed;
use uuid::Uuid;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::JsValue;
use web_sys::{
    BroadcastChannel, IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransactionMode, MessageEvent,
};

use crate::{
    MemoryStore, MessageKey, OutboxEntry, ProfileMeta, Result, Store, StoreError, StoredMessage,
    ThreadRecord,
};

const KV: &str = "kv";

enum Op {
    Put(String, String),
    Delete(String),
}

#[derive(Default)]
struct Pending {
    ops: Vec<Op>,
    flushing: bool,
    /// Why the last write failed (a full quota), until one succeeds. The
    /// ops it carried are kept, in order, and tried again.
    failure: Option<String>,
}

/// How long a failed write waits before it is tried again.
const RETRY_MS: u32 = 3_000;

/// A change another tab made to the profile, after it reached IndexedDB.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteChange {
    Profile(ProfileMeta),
    Contact(Uuid, Sealed),
    ContactRemoved(Uuid),
    Thread(ThreadRecord),
    /// The thread, its messages, draft and position were deleted.
    ThreadForgotten(ThreadId),
    /// New messages, in the order they were stored.
    Messages(Vec<StoredMessage>),
    Outbox(OutboxEntry),
    OutboxRemoved(u64),
    Delivered(ThreadId, MessageKey),
    Draft(ThreadId, Option<Sealed>),
}

/// What one open store has been told by the others, and whom to wake.
#[derive(Default)]
struct Inbox {
    changes: Vec<RemoteChange>,
    on_change: Option<std::rc::Rc<dyn Fn()>>,
}

/// The open stores of this page: each has its own IndexedDB connection,
/// write queue and channel (browser objects are not `Send`, so they live
/// here, keyed by the store's instance number).
struct Open {
    /// The database's name, to open it again after the browser closed it.
    name: String,
    db: IdbDatabase,
    channel: Option<BroadcastChannel>,
}

thread_local! {
    static OPEN: RefCell<HashMap<u32, Open>> = RefCell::new(HashMap::new());
    static PENDING: RefCell<HashMap<u32, Pending>> = RefCell::new(HashMap::new());
    static INBOX: RefCell<HashMap<u32, Inbox>> = RefCell::new(HashMap::new());
    static NEXT_ID: std::cell::Cell<u32> = const { std::cell::Cell::new(1) };
}

fn js_err(e: JsValue) -> StoreError {
    StoreError::io(format!("IndexedDB: {e:?}"))
}

/// Awaits an IndexedDB request.
async fn done(req: &IdbRequest) -> std::result::Result<JsValue, JsValue> {
    let (tx, rx) = oneshot::channel::<std::result::Result<(), ()>>();
    let tx = std::rc::Rc::new(RefCell::new(Some(tx)));
    let (t1, t2) = (tx.clone(), tx);
    let ok = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        if let Some(t) = t1.borrow_mut().take() {
            let _ = t.send(Ok(()));
        }
    });
    let err = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        if let Some(t) = t2.borrow_mut().take() {
            let _ = t.send(Err(()));
        }
    });
    req.set_onsuccess(Some(ok.as_ref().unchecked_ref()));
    req.set_onerror(Some(err.as_ref().unchecked_ref()));
    let r = rx.await;
    req.set_onsuccess(None);
    req.set_onerror(None);
    match r {
        Ok(Ok(())) => req.result(),
        _ => Err(req.error().map(JsValue::from).unwrap_or(JsValue::NULL)),
    }
}

/// Awaits the end of a transaction: `complete`, or why it was aborted.
async fn committed(tx: &web_sys::IdbTransaction) -> std::result::Result<(), JsValue> {
    let (send, rx) = oneshot::channel::<bool>();
    let send = std::rc::Rc::new(RefCell::new(Some(send)));
    let (s1, s2) = (send.clone(), send);
    let ok = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        if let Some(t) = s1.borrow_mut().take() {
            let _ = t.send(true);
        }
    });
    let failed = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        if let Some(t) = s2.borrow_mut().take() {
            let _ = t.send(false);
        }
    });
    tx.set_oncomplete(Some(ok.as_ref().unchecked_ref()));
    tx.set_onabort(Some(failed.as_ref().unchecked_ref()));
    tx.set_onerror(Some(failed.as_ref().unchecked_ref()));
    let r = rx.await;
    tx.set_oncomplete(None);
    tx.set_onabort(None);
    tx.set_onerror(None);
    match r {
        Ok(true) => Ok(()),
        _ => Err(tx.error().map(JsValue::from).unwrap_or(JsValue::NULL)),
    }
}

async fn open_db(name: &str) -> Result<IdbDatabase> {
    let factory = web_sys::window()
        .ok_or_else(|| StoreError::io("no window"))?
        .indexed_db()
        .map_err(js_err)?
        .ok_or_else(|| StoreError::io("IndexedDB is not available"))?;
    let req: IdbOpenDbRequest = factory.open_with_u32(name, 1).map_err(js_err)?;
    let upgrade = Closure::<dyn FnMut(web_sys::IdbVersionChangeEvent)>::new(
        move |e: web_sys::IdbVersionChangeEvent| {
            let Some(req) = e
                .target()
                .and_then(|t| t.dyn_into::<IdbOpenDbRequest>().ok())
            else {
                return;
            };
            if let Ok(db) = req.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
                let _ = db.create_object_store(KV);
            }
        },
    );
    req.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let r = done(&req).await;
    req.set_onupgradeneeded(None);
    r.and_then(|v| v.dyn_into::<IdbDatabase>()).map_err(js_err)
}

/// Writes the queued changes of store `id` in order, one transaction at a
/// time, and tells the other tabs what each committed one held.
async fn flush(id: u32) {
    loop {
        let ops = PENDING.with(|p| std::mem::take(&mut p.borrow_mut().entry(id).or_default().ops));
        if ops.is_empty() {
            PENDING.with(|p| p.borrow_mut().entry(id).or_default().flushing = false);
            return;
        }
        let Some(db) = OPEN.with(|o| o.borrow().get(&id).map(|o| o.db.clone())) else {
            return;
        };
        let result: std::result::Result<(), JsValue> = async {
            let tx = db.transaction_with_str_and_mode(KV, IdbTransactionMode::Readwrite)?;
            let store = tx.object_store(KV)?;
            for op in &ops {
                match op {
                    Op::Put(k, v) => {
                        store.put_with_key(&JsValue::from_str(v), &JsValue::from_str(k))?
                    }
                    Op::Delete(k) => store.delete(&JsValue::from_str(k))?,
                };
            }
            // Only a committed transaction counts: a full quota aborts it
            // at commit, after every request succeeded.
            committed(&tx).await
        }
        .await;
        match result {
            Ok(()) => {
                let was = PENDING.with(|p| p.borrow_mut().entry(id).or_default().failure.take());
                if was.is_some() {
                    web_sys_log("hush: IndexedDB writes resumed; nothing was lost");
                }
                announce(id, &ops);
            }
            Err(e) => {
                let why = describe(&e);
                // A write that failed on a full disk can make the browser
                // close the connection: every later transaction is then
                // refused at once. Such a store is opened again below.
                let closed = error_name(&e) == "InvalidStateError";
                web_sys_log(&format!(
                    "hush: IndexedDB write failed ({why}); trying again"
                ));
                // Nothing is dropped: the ops go back in front of what came
                // since, and the whole batch is tried again later.
                PENDING.with(|p| {
                    let mut p = p.borrow_mut();
                    let q = p.entry(id).or_default();
                    let newer = std::mem::take(&mut q.ops);
                    q.ops = ops;
                    q.ops.extend(newer);
                    q.failure = Some(why);
                });
                gloo_timers::future::TimeoutFuture::new(RETRY_MS).await;
                if closed {
                    reopen(id).await;
                }
            }
        }
    }
}

/// The profile's channel between tabs.
fn channel_name(db: &str) -> String {
    format!("{db}-changes")
}

/// Tells the other tabs what a committed transaction held: `[key, value]`
/// pairs, `null` for a delete.
fn announce(id: u32, ops: &[Op]) {
    let wire: Vec<(&str, Option<&str>)> = ops
        .iter()
        .map(|op| match op {
            Op::Put(k, v) => (k.as_str(), Some(v.as_str())),
            Op::Delete(k) => (k.as_str(), None),
        })
        .collect();
    let Ok(text) = serde_json::to_string(&wire) else {
        return;
    };
    OPEN.with(|o| {
        if let Some(ch) = o.borrow().get(&id).and_then(|o| o.channel.as_ref()) {
            let _ = ch.post_message(&JsValue::from_str(&text));
        }
    });
}

/// What another tab announced, as changes (consecutive messages together).
fn decode_announcement(text: &str) -> Result<Vec<RemoteChange>> {
    let corrupt = |e: String| StoreError::Corrupt(format!("another tab's change: {e}"));
    let wire: Vec<(String, Option<String>)> =
        serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    let mut out: Vec<RemoteChange> = Vec::new();
    for (k, v) in wire {
        match (decode_record(&k, v.as_deref())?, out.last_mut()) {
            (Some(RemoteChange::Messages(m)), Some(RemoteChange::Messages(prev))) => prev.extend(m),
            (Some(c), _) => out.push(c),
            (None, _) => {}
        }
    }
    Ok(out)
}

/// One IndexedDB record (or its deletion, `None`) as a change.
fn decode_record(k: &str, v: Option<&str>) -> Result<Option<RemoteChange>> {
    let corrupt = |e: String| StoreError::Corrupt(format!("record {k}: {e}"));
    fn parse<T: serde::de::DeserializeOwned>(v: Option<&str>) -> std::result::Result<T, String> {
        serde_json::from_str(v.ok_or("no value")?).map_err(|e| e.to_string())
    }
    let thread = |id: &str| ThreadId::parse(id).map_err(|e| corrupt(e.to_string()));
    Ok(Some(if k == "profile" {
        RemoteChange::Profile(parse(v).map_err(corrupt)?)
    } else if let Some(id) = k.strip_prefix("c/") {
        let peer = Uuid::parse_str(id).map_err(|e| corrupt(e.to_string()))?;
        match v {
            Some(_) => RemoteChange::Contact(peer, parse(v).map_err(corrupt)?),
            None => RemoteChange::ContactRemoved(peer),
        }
    } else if let Some(id) = k.strip_prefix("t/") {
        match v {
            Some(_) => RemoteChange::Thread(parse(v).map_err(corrupt)?),
            None => RemoteChange::ThreadForgotten(thread(id)?),
        }
    } else if v.is_none() && (k.starts_with("m/") || k.starts_with("d/")) {
        // Part of a forgotten thread (announced with it).
        return Ok(None);
    } else if k.starts_with("m/") {
        RemoteChange::Messages(vec![parse(v).map_err(corrupt)?])
    } else if let Some(seq) = k.strip_prefix("o/") {
        match v {
            Some(_) => RemoteChange::Outbox(parse(v).map_err(corrupt)?),
            None => RemoteChange::OutboxRemoved(seq.parse().map_err(|_| corrupt("seq".into()))?),
        }
    } else if let Some(id) = k.strip_prefix("d/") {
        RemoteChange::Delivered(thread(id)?, parse(v).map_err(corrupt)?)
    } else if let Some(id) = k.strip_prefix("r/") {
        let draft = match v {
            Some(_) => Some(parse(v).map_err(corrupt)?),
            None => None,
        };
        RemoteChange::Draft(thread(id)?, draft)
    } else {
        return Ok(None);
    }))
}

/// Puts a record in the memory copy.
fn absorb_into(mem: &MemoryStore, change: &RemoteChange) -> Result<()> {
    match change {
        RemoteChange::Profile(p) => mem.set_profile(p),
        RemoteChange::Contact(peer, c) => mem.put_contact(*peer, c),
        RemoteChange::ContactRemoved(peer) => mem.remove_contact(*peer),
        RemoteChange::Thread(t) => mem.put_thread(t),
        RemoteChange::ThreadForgotten(t) => mem.forget_thread(*t),
        RemoteChange::Messages(m) => mem.store_messages(m, None, &[]).map(|_| ()),
        RemoteChange::Outbox(e) => mem.put_outbox(e),
        RemoteChange::OutboxRemoved(seq) => mem.remove_outbox(*seq),
        RemoteChange::Delivered(t, k) => mem.set_delivered(&[(*t, k.clone())]),
        RemoteChange::Draft(t, d) => mem.put_draft(*t, d.as_ref()),
    }
}

/// Listens on the profile's channel for store `id`.
fn listen(id: u32, db: &str) -> Option<BroadcastChannel> {
    let ch = BroadcastChannel::new(&channel_name(db)).ok()?;
    let cb = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        let Some(text) = e.data().as_string() else {
            return;
        };
        let changes = match decode_announcement(&text) {
            Ok(c) => c,
            Err(err) => {
                web_sys_log(&format!("hush: ignoring another tab's change: {err}"));
                return;
            }
        };
        let wake = INBOX.with(|i| {
            let mut i = i.borrow_mut();
            let inbox = i.entry(id).or_default();
            inbox.changes.extend(changes);
            inbox.on_change.clone()
        });
        if let Some(wake) = wake {
            wake();
        }
    });
    ch.set_onmessage(Some(cb.as_ref().unchecked_ref()));
    // Lives as long as the channel: both go when the store is dropped.
    cb.forget();
    Some(ch)
}

/// Opens store `id`'s database again, after the browser closed it. If that
/// fails too (the disk is still full), the next failed write tries again.
async fn reopen(id: u32) {
    let Some(name) = OPEN.with(|o| o.borrow().get(&id).map(|o| o.name.clone())) else {
        return;
    };
    match open_db(&name).await {
        Ok(db) => OPEN.with(|o| {
            if let Some(open) = o.borrow_mut().get_mut(&id) {
                open.db = db;
            }
        }),
        Err(e) => web_sys_log(&format!("hush: IndexedDB could not be opened again ({e})")),
    }
}

fn error_name(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default()
}

/// A failed write in words: a full quota says so.
fn describe(e: &JsValue) -> String {
    let name = error_name(e);
    if name == "QuotaExceededError" {
        "the browser's storage for this site is full".into()
    } else if name == "InvalidStateError" {
        "the browser closed this site's storage after a write failed (is the disk full?)".into()
    } else {
        let msg = js_sys::Reflect::get(e, &JsValue::from_str("message"))
            .ok()
            .and_then(|m| m.as_string())
            .unwrap_or_default();
        if msg.contains("NO_SPACE") {
            // Chromium: "IO error: …: FILE_ERROR_NO_SPACE".
            return "the disk is full".into();
        }
        format!("IndexedDB: {name} {msg}").trim().to_owned()
    }
}

fn web_sys_log(s: &str) {
    web_sys_console(s);
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn web_sys_console(s: &str);
}

/// A profile's store in the browser.
pub struct WebStore {
    /// This open store's number in the page (see [`OPEN`]).
    id: u32,
    mem: MemoryStore,
}

impl Drop for WebStore {
    fn drop(&mut self) {
        if let Some(open) = OPEN.with(|o| o.borrow_mut().remove(&self.id))
            && let Some(ch) = open.channel
        {
            ch.set_onmessage(None);
            ch.close();
        }
        INBOX.with(|i| i.borrow_mut().remove(&self.id));
    }
}

fn enc<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("records serialise")
}

impl WebStore {
    /// Opens the profile's database and loads it into memory.
    pub async fn open(profile: &str) -> Result<WebStore> {
        let name = format!("hush-profile-{profile}");
        let db = open_db(&name).await?;
        let id = NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        });
        // Listening starts before the load, so a change another tab commits
        // meanwhile is not missed (if the load has it too, it comes twice,
        // and every change is a put or delete by key: twice is once).
        let channel = listen(id, &name);
        let tx = db
            .transaction_with_str_and_mode(KV, IdbTransactionMode::Readonly)
            .map_err(js_err)?;
        let store = tx.object_store(KV).map_err(js_err)?;
        let keys = done(&store.get_all_keys().map_err(js_err)?)
            .await
            .map_err(js_err)?;
        let values = done(&store.get_all().map_err(js_err)?)
            .await
            .map_err(js_err)?;
        let keys: js_sys::Array = keys.dyn_into().map_err(js_err)?;
        let values: js_sys::Array = values.dyn_into().map_err(js_err)?;
        let mem = MemoryStore::new();
        let mut messages = Vec::new();
        for (k, v) in keys.iter().zip(values.iter()) {
            let (Some(k), Some(v)) = (k.as_string(), v.as_string()) else {
                continue;
            };
            match decode_record(&k, Some(&v))? {
                Some(RemoteChange::Messages(m)) => messages.extend(m),
                Some(c) => absorb_into(&mem, &c)?,
                None => {}
            }
        }
        mem.store_messages(&messages, None, &[])?;
        OPEN.with(|o| {
            o.borrow_mut().insert(
                id,
                Open {
                    name: name.clone(),
                    db,
                    channel,
                },
            )
        });
        Ok(WebStore { id, mem })
    }

    /// What other tabs wrote since the last call, oldest first.
    pub fn take_remote(&self) -> Vec<RemoteChange> {
        INBOX.with(|i| {
            i.borrow_mut()
                .get_mut(&self.id)
                .map(|inbox| std::mem::take(&mut inbox.changes))
                .unwrap_or_default()
        })
    }

    /// Calls `f` when another tab's change arrives (to wake the app).
    pub fn on_remote(&self, f: impl Fn() + 'static) {
        INBOX.with(|i| {
            i.borrow_mut().entry(self.id).or_default().on_change = Some(std::rc::Rc::new(f))
        });
    }

    /// Puts another tab's change in this copy. It is in IndexedDB already,
    /// so nothing is written (or announced again).
    pub fn absorb(&self, change: &RemoteChange) -> Result<()> {
        absorb_into(&self.mem, change)
    }

    /// Why writes are failing now (they are kept and tried again), if they are.
    pub fn write_failure(&self) -> Option<String> {
        PENDING.with(|p| p.borrow().get(&self.id).and_then(|q| q.failure.clone()))
    }

    /// Whether every change has reached IndexedDB.
    pub fn is_flushed(&self) -> bool {
        PENDING.with(|p| {
            p.borrow()
                .get(&self.id)
                .is_none_or(|q| q.ops.is_empty() && !q.flushing)
        })
    }

    fn queue(&self, ops: impl IntoIterator<Item = Op>) {
        let start = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let q = p.entry(self.id).or_default();
            q.ops.extend(ops);
            let start = !q.flushing && !q.ops.is_empty();
            if start {
                q.flushing = true;
            }
            start
        });
        if start {
            wasm_bindgen_futures::spawn_local(flush(self.id));
        }
    }
}

fn message_key_str(m: &StoredMessage) -> String {
    format!("m/{}/{}", m.thread_id, m.id)
}

fn outbox_key(seq: u64) -> String {
    format!("o/{seq:020}")
}

impl Store for WebStore {
    fn profile(&self) -> Result<ProfileMeta> {
        self.mem.profile()
    }

    fn set_profile(&self, p: &ProfileMeta) -> Result<()> {
        self.mem.set_profile(p)?;
        self.queue([Op::Put("profile".into(), enc(p))]);
        Ok(())
    }

    fn contacts(&self) -> Result<Vec<(Uuid, Sealed)>> {
        self.mem.contacts()
    }

    fn put_contact(&self, peer: Uuid, record: &Sealed) -> Result<()> {
        self.mem.put_contact(peer, record)?;
        self.queue([Op::Put(format!("c/{peer}"), enc(record))]);
        Ok(())
    }

    fn remove_contact(&self, peer: Uuid) -> Result<()> {
        self.mem.remove_contact(peer)?;
        self.queue([Op::Delete(format!("c/{peer}"))]);
        Ok(())
    }

    fn forget_thread(&self, thread: ThreadId) -> Result<()> {
        let gone = self.mem.messages(thread, None, usize::MAX)?;
        self.mem.forget_thread(thread)?;
        let mut ops = vec![
            Op::Delete(format!("t/{thread}")),
            Op::Delete(format!("r/{thread}")),
            Op::Delete(format!("d/{thread}")),
        ];
        ops.extend(gone.iter().map(|m| Op::Delete(message_key_str(m))));
        self.queue(ops);
        Ok(())
    }

    fn threads(&self) -> Result<Vec<ThreadRecord>> {
        self.mem.threads()
    }

    fn delivered(&self) -> Result<Vec<(ThreadId, crate::MessageKey)>> {
        self.mem.delivered()
    }

    fn set_delivered(&self, positions: &[(ThreadId, crate::MessageKey)]) -> Result<()> {
        self.mem.set_delivered(positions)?;
        self.queue(
            positions
                .iter()
                .map(|(t, k)| Op::Put(format!("d/{t}"), enc(k))),
        );
        Ok(())
    }

    fn drafts(&self) -> Result<Vec<(ThreadId, Sealed)>> {
        self.mem.drafts()
    }

    fn put_draft(&self, thread: ThreadId, draft: Option<&Sealed>) -> Result<()> {
        self.mem.put_draft(thread, draft)?;
        let key = format!("r/{thread}");
        self.queue([match draft {
            Some(d) => Op::Put(key, enc(d)),
            None => Op::Delete(key),
        }]);
        Ok(())
    }

    fn put_thread(&self, t: &ThreadRecord) -> Result<()> {
        self.mem.put_thread(t)?;
        self.queue([Op::Put(format!("t/{}", t.id), enc(t))]);
        Ok(())
    }

    fn store_message_refs(
        &self,
        msgs: &[&StoredMessage],
        thread: Option<&ThreadRecord>,
        completed: &[u64],
    ) -> Result<Vec<bool>> {
        let news = self.mem.store_message_refs(msgs, thread, completed)?;
        let mut ops: Vec<Op> = msgs
            .iter()
            .zip(&news)
            .filter(|(_, new)| **new)
            .map(|(m, _)| Op::Put(message_key_str(m), enc(m)))
            .collect();
        if let Some(t) = thread {
            ops.push(Op::Put(format!("t/{}", t.id), enc(t)));
        }
        ops.extend(completed.iter().map(|s| Op::Delete(outbox_key(*s))));
        self.queue(ops);
        Ok(news)
    }

    fn messages(
        &self,
        thread: ThreadId,
        after: Option<&MessageKey>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        self.mem.messages(thread, after, limit)
    }

    fn messages_before(
        &self,
        thread: ThreadId,
        before: Option<&MessageKey>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        self.mem.messages_before(thread, before, limit)
    }

    fn message_count(&self, thread: ThreadId) -> Result<u64> {
        self.mem.message_count(thread)
    }

    fn has_message(&self, thread: ThreadId, id: &str) -> Result<bool> {
        self.mem.has_message(thread, id)
    }

    fn message_with_iv(&self, thread: ThreadId, iv: &str) -> Result<Option<String>> {
        self.mem.message_with_iv(thread, iv)
    }

    fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        self.mem.outbox()
    }

    fn put_outboxes(&self, entries: &[OutboxEntry]) -> Result<()> {
        self.mem.put_outboxes(entries)?;
        self.queue(entries.iter().map(|e| Op::Put(outbox_key(e.seq), enc(e))));
        Ok(())
    }

    fn remove_outbox(&self, seq: u64) -> Result<()> {
        self.mem.remove_outbox(seq)?;
        self.queue([Op::Delete(outbox_key(seq))]);
        Ok(())
    }
}
