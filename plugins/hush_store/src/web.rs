//! The web backend: IndexedDB, one database per profile.
//!
//! IndexedDB only answers asynchronously, so the store keeps a full copy in
//! memory (loaded once by [`WebStore::open`]) that answers every read, and
//! writes through to IndexedDB behind it: each change is queued and flushed
//! in one transaction per turn of the browser's event loop, in order.
//! Values are the same JSON records as on native — sealed blobs and
//! ciphertext, never plaintext.

use std::cell::RefCell;
use std::collections::HashMap;

use futures_channel::oneshot;
use hush_core::ThreadId;
use hush_core::crypto::Sealed;
use uuid::Uuid;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::JsValue;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransactionMode};

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

thread_local! {
    /// Open databases by name (browser objects are not `Send`).
    static DBS: RefCell<HashMap<String, IdbDatabase>> = RefCell::new(HashMap::new());
    static PENDING: RefCell<HashMap<String, Pending>> = RefCell::new(HashMap::new());
}

fn js_err(e: JsValue) -> StoreError {
    StoreError::Io(format!("IndexedDB: {e:?}"))
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
        .ok_or_else(|| StoreError::Io("no window".into()))?
        .indexed_db()
        .map_err(js_err)?
        .ok_or_else(|| StoreError::Io("IndexedDB is not available".into()))?;
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

/// Writes the queued changes of `name` in order, one transaction at a time.
async fn flush(name: String) {
    loop {
        let ops = PENDING
            .with(|p| std::mem::take(&mut p.borrow_mut().entry(name.clone()).or_default().ops));
        if ops.is_empty() {
            PENDING.with(|p| p.borrow_mut().entry(name.clone()).or_default().flushing = false);
            return;
        }
        let Some(db) = DBS.with(|d| d.borrow().get(&name).cloned()) else {
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
                PENDING.with(|p| p.borrow_mut().entry(name.clone()).or_default().failure = None)
            }
            Err(e) => {
                let why = describe(&e);
                web_sys_log(&format!(
                    "hush: IndexedDB write failed ({why}); trying again"
                ));
                // Nothing is dropped: the ops go back in front of what came
                // since, and the whole batch is tried again later.
                PENDING.with(|p| {
                    let mut p = p.borrow_mut();
                    let q = p.entry(name.clone()).or_default();
                    let newer = std::mem::take(&mut q.ops);
                    q.ops = ops;
                    q.ops.extend(newer);
                    q.failure = Some(why);
                });
                gloo_timers::future::TimeoutFuture::new(RETRY_MS).await;
            }
        }
    }
}

/// A failed write in words: a full quota says so.
fn describe(e: &JsValue) -> String {
    let name = js_sys::Reflect::get(e, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    if name == "QuotaExceededError" {
        "the browser's storage for this site is full".into()
    } else {
        let msg = js_sys::Reflect::get(e, &JsValue::from_str("message"))
            .ok()
            .and_then(|m| m.as_string())
            .unwrap_or_default();
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
    name: String,
    mem: MemoryStore,
}

fn enc<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("records serialise")
}

impl WebStore {
    /// Opens the profile's database and loads it into memory.
    pub async fn open(profile: &str) -> Result<WebStore> {
        let name = format!("hush-profile-{profile}");
        let db = open_db(&name).await?;
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
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        for (k, v) in keys.iter().zip(values.iter()) {
            let (Some(k), Some(v)) = (k.as_string(), v.as_string()) else {
                continue;
            };
            if k == "profile" {
                mem.set_profile(&serde_json::from_str(&v).map_err(corrupt)?)?;
            } else if let Some(id) = k.strip_prefix("c/") {
                let peer = Uuid::parse_str(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                mem.put_contact(peer, &serde_json::from_str(&v).map_err(corrupt)?)?;
            } else if k.starts_with("t/") {
                mem.put_thread(&serde_json::from_str(&v).map_err(corrupt)?)?;
            } else if k.starts_with("m/") {
                messages.push(serde_json::from_str::<StoredMessage>(&v).map_err(corrupt)?);
            } else if k.starts_with("o/") {
                mem.put_outbox(&serde_json::from_str(&v).map_err(corrupt)?)?;
            } else if let Some(id) = k.strip_prefix("d/") {
                let t = ThreadId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                mem.set_delivered(&[(t, serde_json::from_str(&v).map_err(corrupt)?)])?;
            } else if let Some(id) = k.strip_prefix("r/") {
                let t = ThreadId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                mem.put_draft(t, Some(&serde_json::from_str(&v).map_err(corrupt)?))?;
            }
        }
        mem.store_messages(&messages, None, &[])?;
        DBS.with(|d| d.borrow_mut().insert(name.clone(), db));
        Ok(WebStore { name, mem })
    }

    /// Why writes are failing now (they are kept and tried again), if they are.
    pub fn write_failure(&self) -> Option<String> {
        PENDING.with(|p| p.borrow().get(&self.name).and_then(|q| q.failure.clone()))
    }

    /// Whether every change has reached IndexedDB.
    pub fn is_flushed(&self) -> bool {
        PENDING.with(|p| {
            p.borrow()
                .get(&self.name)
                .is_none_or(|q| q.ops.is_empty() && !q.flushing)
        })
    }

    fn queue(&self, ops: impl IntoIterator<Item = Op>) {
        let start = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let q = p.entry(self.name.clone()).or_default();
            q.ops.extend(ops);
            let start = !q.flushing && !q.ops.is_empty();
            if start {
                q.flushing = true;
            }
            start
        });
        if start {
            wasm_bindgen_futures::spawn_local(flush(self.name.clone()));
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

    fn store_messages(
        &self,
        msgs: &[StoredMessage],
        thread: Option<&ThreadRecord>,
        completed: &[u64],
    ) -> Result<Vec<bool>> {
        let news = self.mem.store_messages(msgs, thread, completed)?;
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

    fn latest_messages(&self, thread: ThreadId, limit: usize) -> Result<Vec<StoredMessage>> {
        self.mem.latest_messages(thread, limit)
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

    fn put_outbox(&self, e: &OutboxEntry) -> Result<()> {
        self.mem.put_outbox(e)?;
        self.queue([Op::Put(outbox_key(e.seq), enc(e))]);
        Ok(())
    }

    fn remove_outbox(&self, seq: u64) -> Result<()> {
        self.mem.remove_outbox(seq)?;
        self.queue([Op::Delete(outbox_key(seq))]);
        Ok(())
    }
}
