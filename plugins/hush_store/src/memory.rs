//! The in-memory backend: the same behaviour as redb, gone when dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use hush_core::ThreadId;
use hush_core::crypto::Sealed;
use uuid::Uuid;

use crate::same_message::{Arrival, IvIndex, MessageIndex, arrival};
use crate::{
    MessageKey, OutboxEntry, ProfileMeta, Result, Store, StoredMessage, ThreadRecord, message_key,
};

#[derive(Default)]
struct Inner {
    profile: ProfileMeta,
    contacts: BTreeMap<Uuid, Sealed>,
    threads: BTreeMap<ThreadId, ThreadRecord>,
    messages: HashMap<ThreadId, BTreeMap<MessageKey, StoredMessage>>,
    ids: HashMap<(ThreadId, String), MessageKey>,
    ivs: HashMap<(ThreadId, String), MessageKey>,
    outbox: BTreeMap<u64, OutboxEntry>,
    delivered: BTreeMap<ThreadId, MessageKey>,
    drafts: BTreeMap<ThreadId, Sealed>,
}

impl MessageIndex for Inner {
    fn has_id(&self, thread: ThreadId, at: &MessageKey) -> Result<bool> {
        Ok(self.ids.contains_key(&(thread, at.id.clone())))
    }
}

impl IvIndex for Inner {
    fn first_with_iv(&self, thread: ThreadId, iv: &str) -> Result<Option<MessageKey>> {
        Ok(self.ivs.get(&(thread, iv.to_owned())).cloned())
    }

    fn message(&self, thread: ThreadId, at: &MessageKey) -> Result<Option<StoredMessage>> {
        Ok(self.messages.get(&thread).and_then(|t| t.get(at)).cloned())
    }
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Writes of the outbox so far: each is one durable commit on disk.
    outbox_writes: std::sync::atomic::AtomicU64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times the outbox was written (`put_outboxes` calls): what a
    /// real backend pays one durable commit for each.
    pub fn outbox_writes(&self) -> u64 {
        self.outbox_writes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
    fn profile(&self) -> Result<ProfileMeta> {
        Ok(self.lock().profile.clone())
    }

    fn set_profile(&self, p: &ProfileMeta) -> Result<()> {
        self.lock().profile = p.clone();
        Ok(())
    }

    fn contacts(&self) -> Result<Vec<(Uuid, Sealed)>> {
        Ok(self
            .lock()
            .contacts
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect())
    }

    fn put_contact(&self, peer: Uuid, record: &Sealed) -> Result<()> {
        self.lock().contacts.insert(peer, record.clone());
        Ok(())
    }

    fn remove_contact(&self, peer: Uuid) -> Result<()> {
        self.lock().contacts.remove(&peer);
        Ok(())
    }

    fn forget_thread(&self, thread: ThreadId) -> Result<()> {
        let mut inner = self.lock();
        inner.threads.remove(&thread);
        inner.messages.remove(&thread);
        inner.ids.retain(|(t, _), _| *t != thread);
        inner.ivs.retain(|(t, _), _| *t != thread);
        inner.delivered.remove(&thread);
        inner.drafts.remove(&thread);
        Ok(())
    }

    fn threads(&self) -> Result<Vec<ThreadRecord>> {
        Ok(self.lock().threads.values().cloned().collect())
    }

    fn put_thread(&self, t: &ThreadRecord) -> Result<()> {
        self.lock().threads.insert(t.id, t.clone());
        Ok(())
    }

    fn delivered(&self) -> Result<Vec<(ThreadId, MessageKey)>> {
        Ok(self
            .lock()
            .delivered
            .iter()
            .map(|(t, k)| (*t, k.clone()))
            .collect())
    }

    fn set_delivered(&self, positions: &[(ThreadId, MessageKey)]) -> Result<()> {
        let mut inner = self.lock();
        for (t, k) in positions {
            inner.delivered.insert(*t, k.clone());
        }
        Ok(())
    }

    fn drafts(&self) -> Result<Vec<(ThreadId, Sealed)>> {
        Ok(self
            .lock()
            .drafts
            .iter()
            .map(|(t, d)| (*t, d.clone()))
            .collect())
    }

    fn put_draft(&self, thread: ThreadId, draft: Option<&Sealed>) -> Result<()> {
        let mut inner = self.lock();
        match draft {
            Some(d) => inner.drafts.insert(thread, d.clone()),
            None => inner.drafts.remove(&thread),
        };
        Ok(())
    }

    fn store_message_refs(
        &self,
        msgs: &[&StoredMessage],
        thread: Option<&ThreadRecord>,
        completed: &[u64],
    ) -> Result<Vec<bool>> {
        let mut g = self.lock();
        let inner = &mut *g;
        let mut out = Vec::with_capacity(msgs.len());
        for m in msgs {
            let k = message_key(m);
            let Arrival::New { index_iv } = arrival(&*inner, m, &k)? else {
                out.push(false);
                continue;
            };
            inner.ids.insert((m.thread_id, m.id.clone()), k.clone());
            if index_iv {
                inner.ivs.insert((m.thread_id, m.iv.clone()), k.clone());
            }
            inner
                .messages
                .entry(m.thread_id)
                .or_default()
                .insert(k, (*m).clone());
            out.push(true);
        }
        if let Some(t) = thread {
            inner.threads.insert(t.id, t.clone());
        }
        for seq in completed {
            inner.outbox.remove(seq);
        }
        Ok(out)
    }

    fn messages(
        &self,
        thread: ThreadId,
        after: Option<&MessageKey>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let g = self.lock();
        let Some(map) = g.messages.get(&thread) else {
            return Ok(Vec::new());
        };
        let it: Box<dyn Iterator<Item = &StoredMessage>> = match after {
            Some(a) => Box::new(
                map.range((
                    std::ops::Bound::Excluded(a.clone()),
                    std::ops::Bound::Unbounded,
                ))
                .map(|(_, v)| v),
            ),
            None => Box::new(map.values()),
        };
        Ok(it.take(limit).cloned().collect())
    }

    fn messages_before(
        &self,
        thread: ThreadId,
        before: Option<&MessageKey>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let g = self.lock();
        let Some(map) = g.messages.get(&thread) else {
            return Ok(Vec::new());
        };
        let it: Box<dyn DoubleEndedIterator<Item = &StoredMessage>> = match before {
            Some(b) => Box::new(map.range(..b.clone()).map(|(_, v)| v)),
            None => Box::new(map.values()),
        };
        let mut v: Vec<StoredMessage> = it.rev().take(limit).cloned().collect();
        v.reverse();
        Ok(v)
    }

    fn message_count(&self, thread: ThreadId) -> Result<u64> {
        Ok(self
            .lock()
            .messages
            .get(&thread)
            .map_or(0, |m| m.len() as u64))
    }

    fn has_message(&self, thread: ThreadId, id: &str) -> Result<bool> {
        Ok(self.lock().ids.contains_key(&(thread, id.to_owned())))
    }

    fn message_with_iv(&self, thread: ThreadId, iv: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .ivs
            .get(&(thread, iv.to_owned()))
            .map(|k| k.id.clone()))
    }

    fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        Ok(self.lock().outbox.values().cloned().collect())
    }

    fn put_outboxes(&self, entries: &[OutboxEntry]) -> Result<()> {
        self.outbox_writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut inner = self.lock();
        for e in entries {
            inner.outbox.insert(e.seq, e.clone());
        }
        Ok(())
    }

    fn remove_outbox(&self, seq: u64) -> Result<()> {
        self.lock().outbox.remove(&seq);
        Ok(())
    }
}
