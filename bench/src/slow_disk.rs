//! The slow-disk mode (`HUSH_BENCH_FSYNC_MS=N`): a store wrapper that sleeps
//! N ms for every durable commit, as a laptop's slow disk or a network
//! filesystem makes fsync cost. Relaxed writes (received messages, drafts)
//! do not sleep; their flush, once a second, does.
//!
//! `HUSH_BENCH_FSYNC_PER_ENTRY=1` charges one fsync per outbox entry instead
//! of one per commit: the cost of the client before sends were group
//! committed (one durable `put_outbox` per message), as a same-run baseline.

use std::sync::Arc;
use std::time::Duration;

use hush_core::ThreadId;
use hush_core::crypto::Sealed;
use hush_store::{
    MessageKey, OutboxEntry, ProfileMeta, Result, Store, StoredMessage, ThreadRecord,
};
use uuid::Uuid;

pub struct SlowDisk {
    pub inner: Arc<dyn Store>,
    pub fsync: Duration,
    pub per_entry: bool,
}

impl SlowDisk {
    /// The wrapper the environment asks for, or the store as it is.
    pub fn from_env(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        match Self::fsync_from_env() {
            Some(fsync) => Arc::new(SlowDisk {
                inner,
                fsync,
                per_entry: std::env::var("HUSH_BENCH_FSYNC_PER_ENTRY").as_deref() == Ok("1"),
            }),
            None => inner,
        }
    }

    /// The fsync time `HUSH_BENCH_FSYNC_MS` asks for, if any.
    pub fn fsync_from_env() -> Option<Duration> {
        std::env::var("HUSH_BENCH_FSYNC_MS")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|ms| *ms > 0.0)
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
    }

    fn fsync(&self, times: usize) {
        std::thread::sleep(self.fsync * times as u32);
    }
}

impl Store for SlowDisk {
    fn profile(&self) -> Result<ProfileMeta> {
        self.inner.profile()
    }
    fn set_profile(&self, p: &ProfileMeta) -> Result<()> {
        self.fsync(1);
        self.inner.set_profile(p)
    }
    fn contacts(&self) -> Result<Vec<(Uuid, Sealed)>> {
        self.inner.contacts()
    }
    fn put_contact(&self, peer: Uuid, record: &Sealed) -> Result<()> {
        self.fsync(1);
        self.inner.put_contact(peer, record)
    }
    fn remove_contact(&self, peer: Uuid) -> Result<()> {
        self.fsync(1);
        self.inner.remove_contact(peer)
    }
    fn forget_thread(&self, thread: ThreadId) -> Result<()> {
        self.fsync(1);
        self.inner.forget_thread(thread)
    }
    fn threads(&self) -> Result<Vec<ThreadRecord>> {
        self.inner.threads()
    }
    fn put_thread(&self, t: &ThreadRecord) -> Result<()> {
        self.fsync(1);
        self.inner.put_thread(t)
    }
    fn store_message_refs(
        &self,
        msgs: &[&StoredMessage],
        thread: Option<&ThreadRecord>,
        completed: &[u64],
    ) -> Result<Vec<bool>> {
        self.inner.store_message_refs(msgs, thread, completed)
    }
    fn messages(
        &self,
        thread: ThreadId,
        after: Option<&MessageKey>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        self.inner.messages(thread, after, limit)
    }
    fn messages_before(
        &self,
        thread: ThreadId,
        before: Option<&MessageKey>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        self.inner.messages_before(thread, before, limit)
    }
    fn message_count(&self, thread: ThreadId) -> Result<u64> {
        self.inner.message_count(thread)
    }
    fn has_message(&self, thread: ThreadId, id: &str) -> Result<bool> {
        self.inner.has_message(thread, id)
    }
    fn message_with_iv(&self, thread: ThreadId, iv: &str) -> Result<Option<String>> {
        self.inner.message_with_iv(thread, iv)
    }
    fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        self.inner.outbox()
    }
    fn put_outboxes(&self, entries: &[OutboxEntry]) -> Result<()> {
        self.fsync(if self.per_entry { entries.len() } else { 1 });
        self.inner.put_outboxes(entries)
    }
    fn remove_outbox(&self, seq: u64) -> Result<()> {
        self.fsync(1);
        self.inner.remove_outbox(seq)
    }
    fn delivered(&self) -> Result<Vec<(ThreadId, MessageKey)>> {
        self.inner.delivered()
    }
    fn set_delivered(&self, positions: &[(ThreadId, MessageKey)]) -> Result<()> {
        self.fsync(1);
        self.inner.set_delivered(positions)
    }
    fn drafts(&self) -> Result<Vec<(ThreadId, Sealed)>> {
        self.inner.drafts()
    }
    fn put_draft(&self, thread: ThreadId, draft: Option<&Sealed>) -> Result<()> {
        self.inner.put_draft(thread, draft)
    }
    fn flush_due(&self) -> Result<()> {
        if self.inner.flush_wait() == Some(Duration::ZERO) {
            self.fsync(1);
        }
        self.inner.flush_due()
    }
    fn flush_wait(&self) -> Option<Duration> {
        self.inner.flush_wait()
    }
    fn flush(&self) -> Result<()> {
        if self.inner.flush_wait().is_some() {
            self.fsync(1);
        }
        self.inner.flush()
    }
    fn rollbacks(&self) -> u64 {
        self.inner.rollbacks()
    }
}
