//! The redb backend: one file per profile, ACID, crash-safe.
//!
//! A profile is used by one process at a time: an exclusive lock on a
//! sibling `.lock` file is taken on open (redb itself allows several
//! processes), and a second process gets [`StoreError::Locked`].
//!
//! Durability: what only this device knows (the profile, contacts, a queued
//! message) is committed durably (fsync) before the call returns. What the
//! server also holds — received messages with their thread cursor, outbox
//! entries completed by an acknowledgement — is committed without fsync and
//! made durable at most [`FLUSH_EVERY`] later (and on drop). A crash can only
//! roll those back together: the cursor goes back with the messages, so
//! catch-up fetches them again, and a completed entry comes back to the outbox,
//! where catch-up or the relay's `client_message_id` check settles it without a
//! duplicate. This keeps a commit off the per-message path: an fsync'd commit
//! per message capped a chat at a few hundred messages a second.
//!
//! A failed write (a full disk) leaves redb refusing every later call until
//! the database is opened again; the store does that before its next use, and
//! redb's recovery brings the file back to its last durable commit. Relaxed
//! commits that were not durable yet may be gone then, so the store counts
//! such reopenings ([`Store::rollbacks`]) and the client reloads its cursors.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use hush_core::ThreadId;
use hush_core::crypto::Sealed;
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use uuid::Uuid;

use crate::iv_filter::{IV_FILTER, IvFilter};
use crate::iv_index::{self, IV_INDEX};
use crate::message_row;
use crate::redb_error::io_err;
use crate::same_message::{Arrival, IvIndex, arrival_of_unknown_id};
use crate::{
    MessageKey, OutboxEntry, ProfileMeta, Result, Store, StoreError, StoredMessage, ThreadRecord,
    message_micros,
};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CONTACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("contacts");
const THREADS: TableDefinition<&str, &[u8]> = TableDefinition::new("threads");
/// (thread id, server micros, server id) → the rest of the message (see
/// [`message_row`]; JSON in files written before it). Its key is also the
/// server-id check: a message's time and id give its row.
const MESSAGES: TableDefinition<(&str, i64, &str), &[u8]> = TableDefinition::new("messages");
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// Thread id → the `MessageKey` (JSON) a consumer was last handed.
const DELIVERED: TableDefinition<&str, &[u8]> = TableDefinition::new("delivered");
/// Thread id → the thread's sealed draft (JSON).
const DRAFTS: TableDefinition<&str, &[u8]> = TableDefinition::new("drafts");

/// Pending entries by index key: (the first message's time, as the index
/// keeps it, and the write that added it). foldhash, seeded per process:
/// SipHash was a tenth of the lookup.
type KeyedIvs = HashMap<(u128, u128), (i64, u64), foldhash::quality::RandomState>;

/// The IV index entries of messages committed (relaxed) but not yet written
/// to the index (`iv_keys`, see `iv_index.rs`).
///
/// An IV is random, so writing its entry with each message dirtied a fresh
/// B-tree leaf per message at every commit: two thirds of the receive path's
/// CPU. The entries wait here instead and go into the next durable commit
/// (at most [`FLUSH_EVERY`] later), many to a leaf. That commit is the only
/// one a crash keeps, and it carries every entry of the messages before it,
/// so the file never holds a message whose IV is unindexed. When the file
/// goes back to its last durable commit (a reopen after a failed write), the
/// messages these entries point at are gone too, and so are the entries.
///
/// The index's filter lives here too (loaded on first use): it changes
/// when these entries are written, under the same lock.
#[derive(Default)]
struct PendingIvs {
    by_key: KeyedIvs,
    /// The last write that added entries (see [`PendingIvs::begin_write`]).
    write: u64,
    /// The filter of the index as committed (and as being written).
    filter: Option<IvFilter>,
}

impl PendingIvs {
    fn get(&self, key: (u128, u128)) -> Option<i64> {
        self.by_key.get(&key).map(|(micros, _)| *micros)
    }

    fn len(&self) -> usize {
        self.by_key.len()
    }

    /// A number for the entries a write adds, to take them back if it fails.
    fn begin_write(&mut self) -> u64 {
        self.write += 1;
        self.write
    }

    /// Keeps the first entry of a key (a caller checks [`Self::get`] first).
    fn insert(&mut self, key: (u128, u128), micros: i64, write: u64) {
        self.by_key.entry(key).or_insert((micros, write));
    }

    /// Drops what a write that did not commit added.
    fn forget_write(&mut self, write: u64) {
        self.by_key.retain(|_, (_, w)| *w != write);
    }

    fn forget_thread(&mut self, thread: ThreadId) {
        let t = thread.0.as_u128();
        self.by_key.retain(|(k, _), _| *k != t);
    }

    /// After a failed write: the file goes back to its last durable commit,
    /// which holds every entry of its messages and the filter of them; the
    /// pending entries point past it, and the filter is read again.
    fn forget_all(&mut self) {
        self.by_key.clear();
        self.filter = None;
    }

    /// The filter of `ivs`, read from the file within `w` the first time.
    fn filter(
        &mut self,
        w: &WriteTransaction,
        ivs: &impl ReadableTable<(u128, u128), i64>,
    ) -> Result<&mut IvFilter> {
        if self.filter.is_none() {
            let filters = w.open_table(IV_FILTER).map_err(io_err)?;
            self.filter = Some(IvFilter::load(&filters, ivs)?);
        }
        Ok(self.filter.as_mut().expect("loaded"))
    }
}

/// Entries past this many are written with the next commit, durable or not,
/// so a store that is never flushed does not grow in memory.
const PENDING_IVS_MAX: usize = 100_000;

/// The message tables of one write, as the same-message rule reads them,
/// for one message's thread.
struct Tables<'a, 't> {
    /// The thread's id as its keys spell it.
    tid: &'a str,
    messages: &'a redb::Table<'t, (&'static str, i64, &'static str), &'static [u8]>,
    ivs: &'a redb::Table<'t, (u128, u128), i64>,
    /// Committed entries not written yet, and this write's own.
    pending: &'a PendingIvs,
    /// The filter of `ivs`.
    filter: &'a IvFilter,
}

/// The time of the first message with this index key, as `iv_keys` holds
/// it (pending entries are the caller's to look at first).
fn indexed_micros(
    ivs: &impl ReadableTable<(u128, u128), i64>,
    key: (u128, u128),
) -> Result<Option<i64>> {
    Ok(ivs.get(key).map_err(io_err)?.map(|v| v.value()))
}

/// The message with this IV among the thread's of this time, if any (an
/// index entry, pending or written, gives only the time; the rows of that
/// time say which one it is).
fn with_iv_at(
    messages: &impl ReadableTable<(&'static str, i64, &'static str), &'static [u8]>,
    (thread, tid): (ThreadId, &str),
    micros: Option<i64>,
    iv: &str,
) -> Result<Option<MessageKey>> {
    let Some(micros) = micros else {
        return Ok(None);
    };
    for row in messages
        .range((tid, micros, "")..=(tid, micros, "\u{10FFFF}"))
        .map_err(io_err)?
    {
        let (k, v) = row.map_err(io_err)?;
        let id = k.value().2;
        if message_row::decode(thread, id, v.value())?.iv == iv {
            return Ok(Some(MessageKey {
                micros,
                id: id.to_owned(),
            }));
        }
    }
    Ok(None)
}

impl IvIndex for Tables<'_, '_> {
    fn first_with_iv(&self, thread: ThreadId, iv: &str) -> Result<Option<MessageKey>> {
        let key = iv_index::key(thread, iv);
        let micros = match self.pending.get(key) {
            Some(micros) => Some(micros),
            // Nearly every IV is new, and the filter says so without a walk.
            None if !self.filter.may_hold(key) => None,
            None => indexed_micros(self.ivs, key)?,
        };
        with_iv_at(self.messages, (thread, self.tid), micros, iv)
    }

    fn message(&self, thread: ThreadId, at: &MessageKey) -> Result<Option<StoredMessage>> {
        self.messages
            .get((self.tid, at.micros, at.id.as_str()))
            .map_err(io_err)?
            .map(|v| message_row::decode(thread, &at.id, v.value()))
            .transpose()
    }
}

/// Writes the pending IV entries into `iv_keys` within `w`, in key order so
/// that each leaf is visited once, and the filter rows they change (the
/// caller forgets the entries once `w` is committed).
fn write_ivs(w: &WriteTransaction, pending: &mut PendingIvs) -> Result<()> {
    if pending.len() == 0 {
        return Ok(());
    }
    let mut rows: Vec<((u128, u128), i64)> = pending
        .by_key
        .iter()
        .map(|(key, (micros, _))| (*key, *micros))
        .collect();
    rows.sort_unstable_by_key(|r| r.0);
    let mut ivs = w.open_table(IV_INDEX).map_err(io_err)?;
    let filter = pending.filter(w, &ivs)?;
    let mut filters = w.open_table(IV_FILTER).map_err(io_err)?;
    for (key, micros) in rows {
        ivs.insert(key, micros).map_err(io_err)?;
        filter.add(key);
    }
    filter.save(&mut filters, &ivs)
}

/// Writes into `w` the messages not stored yet (their IV entries into
/// `pending`, as `write`), the thread record and the completed outbox
/// entries; says which messages were new.
fn stage_messages(
    w: &WriteTransaction,
    pending: &mut PendingIvs,
    write: u64,
    msgs: &[&StoredMessage],
    thread: Option<&ThreadRecord>,
    completed: &[u64],
) -> Result<Vec<bool>> {
    let mut out = Vec::with_capacity(msgs.len());
    let mut messages = w.open_table(MESSAGES).map_err(io_err)?;
    let ivs = w.open_table(IV_INDEX).map_err(io_err)?;
    pending.filter(w, &ivs)?;
    // The messages of one call are nearly always of one thread.
    let mut tid: Option<(ThreadId, String)> = None;
    let mut row = Vec::new();
    for m in msgs {
        let tid = match &tid {
            Some((t, s)) if *t == m.thread_id => s.as_str(),
            _ => &tid.insert((m.thread_id, m.thread_id.to_string())).1,
        };
        let micros = message_micros(m);
        let key = (tid, micros, m.id.as_str());
        // The server-id check is the write itself: a row under this key is
        // this message (rewritten the same).
        message_row::encode_into(&mut row, m);
        if messages
            .insert(key, row.as_slice())
            .map_err(io_err)?
            .is_some()
        {
            out.push(false);
            continue;
        }
        let index = Tables {
            tid,
            messages: &messages,
            ivs: &ivs,
            pending,
            filter: pending.filter.as_ref().expect("loaded above"),
        };
        match arrival_of_unknown_id(&index, m)? {
            Arrival::Known => {
                messages.remove(key).map_err(io_err)?;
                out.push(false);
            }
            Arrival::New { index_iv } => {
                if index_iv {
                    pending.insert(iv_index::key(m.thread_id, &m.iv), micros, write);
                }
                out.push(true);
            }
        }
    }
    if let Some(rec) = thread {
        let mut t = w.open_table(THREADS).map_err(io_err)?;
        t.insert(rec.id.to_string().as_str(), enc(rec).as_slice())
            .map_err(io_err)?;
    }
    if !completed.is_empty() {
        let mut o = w.open_table(OUTBOX).map_err(io_err)?;
        for seq in completed {
            o.remove(*seq).map_err(io_err)?;
        }
    }
    Ok(out)
}

/// Every key of a thread's rows in `messages`.
fn whole_thread(tid: &str) -> std::ops::RangeInclusive<(&str, i64, &str)> {
    (tid, i64::MIN, "")..=(tid, i64::MAX, "\u{10FFFF}")
}

/// redb's page cache per open profile.
pub const CACHE_BYTES: usize = 16 << 20;

/// The longest a relaxed commit stays without fsync.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

struct DurableState {
    /// When a commit was last made durable.
    at: Instant,
    /// A relaxed commit is not durable yet.
    pending: bool,
}

pub struct RedbStore {
    /// `None` only between closing after a failed write and a successful reopen.
    db: RwLock<Option<Database>>,
    /// A write failed: close and reopen before the next use.
    broken: AtomicBool,
    /// Relaxed commits were pending when the database was closed after a failure.
    lost_pending: AtomicBool,
    rollbacks: AtomicU64,
    path: PathBuf,
    durability: Mutex<DurableState>,
    /// The store library failed inside (a damaged file): every later call
    /// gives this error instead of touching it again.
    damaged: Mutex<Option<String>>,
    /// When the file was last seen on disk (a deleted store is noticed).
    seen_at: Mutex<Instant>,
    /// Locked after `durability` when both are.
    pending_ivs: Mutex<PendingIvs>,
    _lock: File,
}

/// What a panic inside the store library said.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let text = p
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "an internal error".into());
    // One line: it ends up inside an error message.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The error for a store file that went away under a running process.
fn deleted(path: &Path) -> StoreError {
    StoreError::io(format!(
        "the store file {} was deleted or moved while in use; restart hush",
        path.display()
    ))
}

/// The error for a store file that the library cannot read.
fn damaged(path: &Path, what: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "{} is damaged ({what}); nothing was changed. `hush repair` (or moving the file aside) \
         starts a new store; messages are fetched again from the server, but what only this \
         device had (identity, contacts, queued messages) is in that file",
        path.display()
    ))
}

/// Opens (creating if needed) the database and every table, so readers never
/// meet a missing one.
fn open_db(path: &Path) -> Result<Database> {
    // redb's default page cache is 1 GiB and fills as a long thread is
    // read; the thread view holds what it needs, so keep the cache small.
    let db = redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked,
            other => io_err(other),
        })?;
    // Only a new file needs the tables, and only a file of an earlier
    // layout an upgrade: a reopen on a full disk must not write.
    const TABLES: [&str; 9] = [
        "meta",
        "contacts",
        "threads",
        "messages",
        "iv_keys",
        "iv_filter",
        "outbox",
        "delivered",
        "drafts",
    ];
    let present: Vec<String> = db
        .begin_read()
        .map_err(io_err)?
        .list_tables()
        .map_err(io_err)?
        .map(|t| redb::TableHandle::name(&t).to_owned())
        .collect();
    let earlier = iv_index::EARLIER_TABLES
        .iter()
        .any(|e| present.iter().any(|p| p == e));
    if !earlier && TABLES.iter().all(|t| present.iter().any(|p| p == t)) {
        return Ok(db);
    }
    let w = db.begin_write().map_err(io_err)?;
    {
        w.open_table(META).map_err(io_err)?;
        w.open_table(CONTACTS).map_err(io_err)?;
        w.open_table(THREADS).map_err(io_err)?;
        w.open_table(MESSAGES).map_err(io_err)?;
        w.open_table(IV_INDEX).map_err(io_err)?;
        w.open_table(IV_FILTER).map_err(io_err)?;
        w.open_table(OUTBOX).map_err(io_err)?;
        w.open_table(DELIVERED).map_err(io_err)?;
        w.open_table(DRAFTS).map_err(io_err)?;
        iv_index::upgrade(&w, &present)?;
        if earlier {
            // The index just changed under any filter: rebuilt on first use.
            w.open_table(IV_FILTER)
                .map_err(io_err)?
                .retain(|_, _| false)
                .map_err(io_err)?;
        }
    }
    w.commit().map_err(io_err)?;
    Ok(db)
}

fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialise")
}

fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Every value of a table of JSON records, in key order.
fn values<K: redb::Key + 'static, T: serde::de::DeserializeOwned>(
    r: &ReadTransaction,
    table: TableDefinition<K, &[u8]>,
) -> Result<Vec<T>> {
    let t = r.open_table(table).map_err(io_err)?;
    let mut out = Vec::new();
    for row in t.iter().map_err(io_err)? {
        let (_, v) = row.map_err(io_err)?;
        out.push(dec(v.value())?);
    }
    Ok(out)
}

impl RedbStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let lock_path = path.with_extension("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::Locked),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        // An empty file is a truncated store, not a new profile: creating a
        // new one in its place would silently drop the identity and outbox.
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            return Err(damaged(path, "the file is empty"));
        }
        let db = std::panic::catch_unwind(|| open_db(path))
            .map_err(|p| damaged(path, &panic_text(&*p)))?
            .map_err(|e| match e {
                StoreError::Io { source } => damaged(path, &source.to_string()),
                other => other,
            })?;
        Ok(RedbStore {
            db: RwLock::new(Some(db)),
            broken: AtomicBool::new(false),
            lost_pending: AtomicBool::new(false),
            rollbacks: AtomicU64::new(0),
            path: path.to_owned(),
            durability: Mutex::new(DurableState {
                at: Instant::now(),
                pending: false,
            }),
            damaged: Mutex::new(None),
            seen_at: Mutex::new(Instant::now()),
            pending_ivs: Mutex::new(PendingIvs::default()),
            _lock: lock,
        })
    }

    /// Runs `f` on the database, reopening it first if an earlier call failed.
    /// An I/O error marks it for that reopening (redb refuses everything after
    /// one with "previous I/O error").
    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        if let Some(why) = self
            .damaged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(damaged(&self.path, &why));
        }
        self.check_still_there()?;
        if self.broken.load(Ordering::Acquire) {
            self.reopen()?;
        }
        let g = self.db.read().unwrap_or_else(|p| p.into_inner());
        let Some(db) = g.as_ref() else {
            return Err(StoreError::io("the store could not be reopened"));
        };
        // redb panics on some damaged pages: contain it at this boundary.
        let r = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(db))) {
            Ok(r) => r,
            Err(p) => {
                let why = panic_text(&*p);
                *self.damaged.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
                return Err(damaged(&self.path, &why));
            }
        };
        if matches!(r, Err(StoreError::DiskFull | StoreError::Io { .. })) {
            self.broken.store(true, Ordering::Release);
        }
        // A record that does not decode: the file is damaged, and the error
        // says so with the way out, like every other damage.
        match r {
            Err(StoreError::Corrupt(why)) if !why.contains(" is damaged (") => {
                Err(damaged(&self.path, &why))
            }
            r => r,
        }
    }

    /// A store file deleted (or moved) under a running process is noticed
    /// within a second, instead of writing into a file nobody will read.
    fn check_still_there(&self) -> Result<()> {
        let mut seen = self.seen_at.lock().unwrap_or_else(|p| p.into_inner());
        if seen.elapsed() < Duration::from_secs(1) {
            return Ok(());
        }
        if !self.path.exists() {
            return Err(deleted(&self.path));
        }
        *seen = Instant::now();
        Ok(())
    }

    fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
        self.with_db(|db| f(&db.begin_read().map_err(io_err)?))
    }

    /// A write committed durably (see the module docs).
    fn write_durable(&self, f: impl FnOnce(&WriteTransaction) -> Result<()>) -> Result<()> {
        self.with_db(|db| {
            let w = db.begin_write().map_err(io_err)?;
            f(&w)?;
            self.commit_durable(w)
        })
    }

    fn reopen(&self) -> Result<()> {
        let mut g = self.db.write().unwrap_or_else(|p| p.into_inner());
        if !self.broken.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(old) = g.take() {
            // The file goes back to its last durable commit, which holds
            // every entry of its messages; the pending ones point past it.
            self.pending_ivs().forget_all();
            let mut d = self.durable_state();
            if d.pending {
                self.lost_pending.store(true, Ordering::Release);
                d.pending = false;
            }
            // One open Database per file: the old one goes first. Closing
            // writes to the file, and redb may panic there on a damaged one:
            // inside the boundary, like every other call.
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(old))) {
                let why = panic_text(&*p);
                *self.damaged.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
                return Err(damaged(&self.path, &why));
            }
        }
        if !self.path.exists() {
            // Never a new empty store in place of one that went away.
            return Err(deleted(&self.path));
        }
        *g = Some(
            std::panic::catch_unwind(|| open_db(&self.path))
                .map_err(|p| damaged(&self.path, &panic_text(&*p)))??,
        );
        self.broken.store(false, Ordering::Release);
        if self.lost_pending.swap(false, Ordering::AcqRel) {
            self.rollbacks.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Commits what the server also holds: without fsync unless the last
    /// durable commit is older than [`FLUSH_EVERY`]. `pending` holds the IV
    /// entries of the messages in `w` (see [`PendingIvs`]); the caller has
    /// locked `d`, then `pending`, since before it wrote them.
    fn commit_relaxed(
        &self,
        mut w: WriteTransaction,
        d: &mut DurableState,
        pending: &mut PendingIvs,
    ) -> Result<()> {
        let durable = d.at.elapsed() >= FLUSH_EVERY;
        let write_out = durable || pending.len() >= PENDING_IVS_MAX;
        if write_out {
            write_ivs(&w, pending)?;
        }
        if !durable {
            w.set_durability(Durability::None).map_err(io_err)?;
        }
        w.commit().map_err(io_err)?;
        if write_out {
            pending.by_key.clear();
        }
        if durable {
            *d = DurableState {
                at: Instant::now(),
                pending: false,
            };
        } else {
            d.pending = true;
        }
        Ok(())
    }

    /// A durable commit: this one and every relaxed one before it, with
    /// their pending IV entries.
    fn commit_durable(&self, w: WriteTransaction) -> Result<()> {
        let mut d = self.durable_state();
        let mut pending = self.pending_ivs();
        write_ivs(&w, &mut pending)?;
        w.commit().map_err(io_err)?;
        pending.by_key.clear();
        *d = DurableState {
            at: Instant::now(),
            pending: false,
        };
        Ok(())
    }

    fn durable_state(&self) -> std::sync::MutexGuard<'_, DurableState> {
        self.durability.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending_ivs(&self) -> std::sync::MutexGuard<'_, PendingIvs> {
        self.pending_ivs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // If this fails, the relaxed commits roll back together with their
        // cursors and catch-up fetches them again (see the module docs).
        let _ = self.flush();
        // Closing writes to the file: on a damaged one redb may panic there
        // too, so close inside the boundary, or not at all once damaged
        // (the OS closes the file at exit; nothing more is written to it).
        let db = self.db.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        let is_damaged = self.damaged.get_mut().map(|d| d.is_some()).unwrap_or(true);
        if let Some(db) = db {
            if is_damaged {
                std::mem::forget(db);
            } else {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(db)));
            }
        }
    }
}

impl Store for RedbStore {
    fn profile(&self) -> Result<ProfileMeta> {
        self.read(|r| {
            let t = r.open_table(META).map_err(io_err)?;
            match t.get("profile").map_err(io_err)? {
                Some(v) => dec(v.value()),
                None => Ok(ProfileMeta::default()),
            }
        })
    }

    fn set_profile(&self, p: &ProfileMeta) -> Result<()> {
        self.write_durable(|w| {
            let mut t = w.open_table(META).map_err(io_err)?;
            t.insert("profile", enc(p).as_slice()).map_err(io_err)?;
            Ok(())
        })
    }

    fn contacts(&self) -> Result<Vec<(Uuid, Sealed)>> {
        self.read(|r| {
            let t = r.open_table(CONTACTS).map_err(io_err)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(io_err)? {
                let (k, v) = row.map_err(io_err)?;
                let id =
                    Uuid::parse_str(k.value()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                out.push((id, dec(v.value())?));
            }
            Ok(out)
        })
    }

    fn put_contact(&self, peer: Uuid, record: &Sealed) -> Result<()> {
        self.write_durable(|w| {
            let mut t = w.open_table(CONTACTS).map_err(io_err)?;
            t.insert(peer.to_string().as_str(), enc(record).as_slice())
                .map_err(io_err)?;
            Ok(())
        })
    }

    fn remove_contact(&self, peer: Uuid) -> Result<()> {
        self.write_durable(|w| {
            let mut t = w.open_table(CONTACTS).map_err(io_err)?;
            t.remove(peer.to_string().as_str()).map_err(io_err)?;
            Ok(())
        })
    }

    fn forget_thread(&self, thread: ThreadId) -> Result<()> {
        let tid = thread.to_string();
        let tid = tid.as_str();
        self.write_durable(|w| {
            for table in [THREADS, DELIVERED, DRAFTS] {
                w.open_table(table)
                    .map_err(io_err)?
                    .remove(tid)
                    .map_err(io_err)?;
            }
            w.open_table(MESSAGES)
                .map_err(io_err)?
                .retain_in(whole_thread(tid), |_, _| false)
                .map_err(io_err)?;
            let t = thread.0.as_u128();
            w.open_table(IV_INDEX)
                .map_err(io_err)?
                .retain_in((t, 0)..=(t, u128::MAX), |_, _| false)
                .map_err(io_err)?;
            // A failed commit reopens the file, which drops them all anyway.
            self.pending_ivs().forget_thread(thread);
            Ok(())
        })
    }

    fn threads(&self) -> Result<Vec<ThreadRecord>> {
        self.read(|r| values(r, THREADS))
    }

    fn delivered(&self) -> Result<Vec<(ThreadId, MessageKey)>> {
        self.read(|r| {
            let t = r.open_table(DELIVERED).map_err(io_err)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(io_err)? {
                let (k, v) = row.map_err(io_err)?;
                let thread = ThreadId::parse(k.value()).map_err(|_| {
                    StoreError::Corrupt(format!("delivered: bad thread id {:?}", k.value()))
                })?;
                out.push((thread, dec(v.value())?));
            }
            Ok(out)
        })
    }

    fn set_delivered(&self, positions: &[(ThreadId, MessageKey)]) -> Result<()> {
        self.write_durable(|w| {
            let mut t = w.open_table(DELIVERED).map_err(io_err)?;
            for (thread, key) in positions {
                t.insert(thread.to_string().as_str(), enc(key).as_slice())
                    .map_err(io_err)?;
            }
            Ok(())
        })
    }

    fn drafts(&self) -> Result<Vec<(ThreadId, Sealed)>> {
        self.read(|r| {
            let t = r.open_table(DRAFTS).map_err(io_err)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(io_err)? {
                let (k, v) = row.map_err(io_err)?;
                let thread = ThreadId::parse(k.value()).map_err(|_| {
                    StoreError::Corrupt(format!("drafts: bad thread id {:?}", k.value()))
                })?;
                out.push((thread, dec(v.value())?));
            }
            Ok(out)
        })
    }

    fn put_draft(&self, thread: ThreadId, draft: Option<&Sealed>) -> Result<()> {
        self.with_db(|db| {
            let w = db.begin_write().map_err(io_err)?;
            {
                let mut t = w.open_table(DRAFTS).map_err(io_err)?;
                let key = thread.to_string();
                match draft {
                    Some(d) => {
                        t.insert(key.as_str(), enc(d).as_slice()).map_err(io_err)?;
                    }
                    None => {
                        t.remove(key.as_str()).map_err(io_err)?;
                    }
                }
            }
            let mut d = self.durable_state();
            self.commit_relaxed(w, &mut d, &mut self.pending_ivs())
        })
    }

    fn put_thread(&self, rec: &ThreadRecord) -> Result<()> {
        self.write_durable(|w| {
            let mut t = w.open_table(THREADS).map_err(io_err)?;
            t.insert(rec.id.to_string().as_str(), enc(rec).as_slice())
                .map_err(io_err)?;
            Ok(())
        })
    }

    fn store_message_refs(
        &self,
        msgs: &[&StoredMessage],
        thread: Option<&ThreadRecord>,
        completed: &[u64],
    ) -> Result<Vec<bool>> {
        self.with_db(|db| {
            let w = db.begin_write().map_err(io_err)?;
            let mut d = self.durable_state();
            let mut pending = self.pending_ivs();
            let write = pending.begin_write();
            let stored =
                stage_messages(&w, &mut pending, write, msgs, thread, completed).and_then(|out| {
                    self.commit_relaxed(w, &mut d, &mut pending)?;
                    Ok(out)
                });
            if stored.is_err() {
                pending.forget_write(write);
            }
            stored
        })
    }

    fn messages(
        &self,
        thread: ThreadId,
        after: Option<&MessageKey>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let tid = thread.to_string();
        self.read(|r| {
            let t = r.open_table(MESSAGES).map_err(io_err)?;
            let mut out = Vec::new();
            let range = match after {
                Some(a) => t.range(
                    (tid.as_str(), a.micros, a.id.as_str())..(tid.as_str(), i64::MAX, "\u{10FFFF}"),
                ),
                None => {
                    t.range((tid.as_str(), i64::MIN, "")..(tid.as_str(), i64::MAX, "\u{10FFFF}"))
                }
            }
            .map_err(io_err)?;
            for row in range {
                let (k, v) = row.map_err(io_err)?;
                let (_, micros, id) = k.value();
                if after.is_some_and(|a| micros == a.micros && id == a.id) {
                    continue;
                }
                out.push(message_row::decode(thread, id, v.value())?);
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
    }

    fn messages_before(
        &self,
        thread: ThreadId,
        before: Option<&MessageKey>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let tid = thread.to_string();
        self.read(|r| {
            let t = r.open_table(MESSAGES).map_err(io_err)?;
            let mut out = Vec::new();
            if limit == 0 {
                return Ok(out);
            }
            let start = (tid.as_str(), i64::MIN, "");
            let range = match before {
                Some(b) => t.range(start..(tid.as_str(), b.micros, b.id.as_str())),
                None => t.range(start..(tid.as_str(), i64::MAX, "\u{10FFFF}")),
            }
            .map_err(io_err)?;
            for row in range.rev() {
                let (k, v) = row.map_err(io_err)?;
                out.push(message_row::decode(thread, k.value().2, v.value())?);
                if out.len() >= limit {
                    break;
                }
            }
            out.reverse();
            Ok(out)
        })
    }

    fn message_count(&self, thread: ThreadId) -> Result<u64> {
        let tid = thread.to_string();
        self.read(|r| {
            let t = r.open_table(MESSAGES).map_err(io_err)?;
            let mut n = 0;
            for row in t.range(whole_thread(&tid)).map_err(io_err)? {
                row.map_err(io_err)?;
                n += 1;
            }
            Ok(n)
        })
    }

    /// A scan of the thread's keys: nothing on the receive path asks by id
    /// alone (it knows the time too).
    fn has_message(&self, thread: ThreadId, id: &str) -> Result<bool> {
        let tid = thread.to_string();
        self.read(|r| {
            let t = r.open_table(MESSAGES).map_err(io_err)?;
            for row in t.range(whole_thread(&tid)).map_err(io_err)? {
                if row.map_err(io_err)?.0.value().2 == id {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    fn message_with_iv(&self, thread: ThreadId, iv: &str) -> Result<Option<String>> {
        let key = iv_index::key(thread, iv);
        let pending = self.pending_ivs().get(key);
        let tid = thread.to_string();
        self.read(|r| {
            let messages = r.open_table(MESSAGES).map_err(io_err)?;
            // A pending entry is of a committed message: its row is there.
            let micros = match pending {
                Some(micros) => Some(micros),
                None => indexed_micros(&r.open_table(IV_INDEX).map_err(io_err)?, key)?,
            };
            Ok(with_iv_at(&messages, (thread, &tid), micros, iv)?.map(|k| k.id))
        })
    }

    fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        self.read(|r| values(r, OUTBOX))
    }

    fn put_outboxes(&self, entries: &[OutboxEntry]) -> Result<()> {
        self.write_durable(|w| {
            let mut t = w.open_table(OUTBOX).map_err(io_err)?;
            for e in entries {
                t.insert(e.seq, enc(e).as_slice()).map_err(io_err)?;
            }
            Ok(())
        })
    }

    fn flush(&self) -> Result<()> {
        if !self.durable_state().pending {
            return Ok(());
        }
        self.with_db(|db| self.commit_durable(db.begin_write().map_err(io_err)?))
    }

    fn rollbacks(&self) -> u64 {
        self.rollbacks.load(Ordering::Acquire)
    }

    fn flush_wait(&self) -> Option<Duration> {
        let d = self.durable_state();
        d.pending
            .then(|| FLUSH_EVERY.saturating_sub(d.at.elapsed()))
    }

    fn flush_due(&self) -> Result<()> {
        let due = {
            let d = self.durable_state();
            d.pending && d.at.elapsed() >= FLUSH_EVERY
        };
        if due { self.flush() } else { Ok(()) }
    }

    fn remove_outbox(&self, seq: u64) -> Result<()> {
        self.write_durable(|w| {
            let mut t = w.open_table(OUTBOX).map_err(io_err)?;
            t.remove(seq).map_err(io_err)?;
            Ok(())
        })
    }
}
