#![cfg(not(target_arch = "wasm32"))]

//! Every backend passes the same behaviour test; redb on a real file,
//! across a reopen, with a second opener refused.

use hush_core::ThreadId;
use hush_core::crypto::Sealed;
use hush_store::{
    MemoryStore, OutboxEntry, OutboxState, RedbStore, Store, StoreError, StoredMessage,
    ThreadRecord, conformance,
};

// The tiny real disk of the system tests; included by path so that this
// crate's tests do not build the relay and Bevy that hush_testkit brings.
#[path = "../../hush_testkit/src/disk.rs"]
mod disk;

#[test]
fn memory_store_conforms() {
    conformance::run(&MemoryStore::new());
}

#[test]
fn redb_store_conforms_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p").join("store.redb");
    {
        let s = RedbStore::open(&path).unwrap();
        conformance::run(&s);
        // A second open of the same profile is refused while the first lives.
        match RedbStore::open(&path) {
            Err(StoreError::Locked) => {}
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("a second open succeeded"),
        }
    }
    let s = RedbStore::open(&path).unwrap();
    assert_eq!(s.profile().unwrap().kdf_salt.as_deref(), Some("salt"));
    assert_eq!(s.outbox().unwrap().len(), 1);
    // What conformance left: the request thread (the other was forgotten),
    // with its sealed metadata, and its one message.
    let threads = s.threads().unwrap();
    assert_eq!(threads.len(), 1);
    assert!(threads[0].metadata.is_some() && threads[0].ignored);
    assert_eq!(s.message_count(threads[0].id).unwrap(), 1);
    assert_eq!(s.profile().unwrap().blocked, [uuid::Uuid::from_u128(7)]);
}

#[test]
fn a_second_process_is_refused() {
    // The lock is an OS file lock: a child process sees it too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let _s = RedbStore::open(&path).unwrap();
    let lock = path.with_extension("lock");
    let status = std::process::Command::new("flock")
        .args(["-n", lock.to_str().unwrap(), "true"])
        .status()
        .expect("flock(1) from util-linux runs");
    assert!(!status.success(), "another process could take the lock");
}

/// Received messages are committed without fsync (the server holds them
/// too). A process that dies before they are flushed must lose them together
/// with the cursor that covers them, never one without the other, so that
/// catch-up fetches exactly what is missing.
fn thread() -> ThreadId {
    ThreadId::parse("ab000000-0000-4000-8000-0000000000ab").unwrap()
}

fn rec(cursor: &str) -> ThreadRecord {
    ThreadRecord {
        cursor: Some(cursor.into()),
        on_server: true,
        ..ThreadRecord::new(thread(), uuid::Uuid::nil())
    }
}

fn msg(i: u32) -> StoredMessage {
    StoredMessage {
        id: format!("00000000-0000-4000-8000-{i:012}"),
        thread_id: thread(),
        ciphertext: "AAAA".repeat(64),
        iv: format!("AAAA{i:012}"),
        created_at: format!("2026-01-01T00:{:02}:{:02}.000000Z", i / 60, i % 60),
        client_message_id: None,
    }
}

/// Runs `child` on a new store in a child process (this test binary, running
/// only the test named `test`), which then aborts: no drop, no flush. Returns
/// the store file it left.
fn left_by_an_abort(
    test: &str,
    child: impl FnOnce(&RedbStore),
) -> (tempfile::TempDir, std::path::PathBuf) {
    const CHILD: &str = "HUSH_STORE_CRASH_CHILD";
    if let Ok(path) = std::env::var(CHILD) {
        child(&RedbStore::open(std::path::Path::new(&path)).unwrap());
        std::process::abort();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test])
        .env(CHILD, &path)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was meant to abort");
    (dir, path)
}

#[test]
fn a_crash_rolls_back_messages_and_their_cursor_together() {
    let t = thread();
    let (_dir, path) = left_by_an_abort(
        "a_crash_rolls_back_messages_and_their_cursor_together",
        |s| {
            // Durable: the thread with its first message and cursor.
            s.put_thread(&rec(&msg(1).created_at)).unwrap();
            s.store_messages(&[msg(1)], Some(&rec(&msg(1).created_at)), &[])
                .unwrap();
            s.flush().unwrap();
            // Relaxed: two more and the cursor over them.
            s.store_messages(&[msg(2), msg(3)], Some(&rec(&msg(3).created_at)), &[])
                .unwrap();
        },
    );
    let s = RedbStore::open(&path).unwrap();
    let n = s.message_count(t).unwrap();
    let cursor = s.threads().unwrap()[0].cursor.clone();
    // Either the relaxed commit made it (n == 3, cursor at 3) or it was rolled
    // back whole (n == 1, cursor at 1).
    match n {
        1 => assert_eq!(cursor, Some(msg(1).created_at)),
        3 => assert_eq!(cursor, Some(msg(3).created_at)),
        other => panic!("{other} messages after the crash"),
    }
    eprintln!("after an abort: {n} messages, cursor {cursor:?}");
}

/// The same blob under another server id: how a stock server stores a
/// resend.
fn resend_of(m: &StoredMessage, i: u32) -> StoredMessage {
    StoredMessage {
        id: format!("ffffffff-0000-4000-8000-{i:012}"),
        created_at: format!("2026-01-02T00:{:02}:{:02}.000000Z", i / 60, i % 60),
        ..m.clone()
    }
}

/// Whether `s` takes a resend of `m` (the same blob under server id `i`)
/// as a new message.
fn resend_is_new(s: &RedbStore, m: &StoredMessage, i: u32) -> bool {
    s.store_messages(&[resend_of(m, i)], None, &[]).unwrap() == [true]
}

/// IV index entries are written in batches with the durable commit, not per
/// message. Whatever a crash leaves, every message in the file is found by
/// its IV: a resend of it that a stock server stored twice is not new.
#[test]
fn after_a_crash_every_stored_message_is_found_by_its_iv() {
    let t = thread();
    let (_dir, path) = left_by_an_abort(
        "after_a_crash_every_stored_message_is_found_by_its_iv",
        |s| {
            s.put_thread(&rec(&msg(1).created_at)).unwrap();
            let durable: Vec<StoredMessage> = (1..=50).map(msg).collect();
            s.store_messages(&durable, Some(&rec(&msg(50).created_at)), &[])
                .unwrap();
            s.flush().unwrap();
            let relaxed: Vec<StoredMessage> = (51..=80).map(msg).collect();
            s.store_messages(&relaxed, Some(&rec(&msg(80).created_at)), &[])
                .unwrap();
            // Found while its entry is still pending, too.
            assert_eq!(s.message_with_iv(t, &msg(60).iv).unwrap(), Some(msg(60).id));
        },
    );
    let s = RedbStore::open(&path).unwrap();
    let stored = s.messages(t, None, 1_000).unwrap();
    assert!(stored.len() == 50 || stored.len() == 80, "{}", stored.len());
    for (i, m) in stored.iter().enumerate() {
        assert_eq!(s.message_with_iv(t, &m.iv).unwrap().as_ref(), Some(&m.id));
        let copy = resend_of(m, i as u32);
        assert_eq!(s.store_messages(&[copy], None, &[]).unwrap(), [false]);
    }
    // What the crash took is new again, and gets its entry back.
    let lost: Vec<StoredMessage> = (stored.len() as u32 + 1..=80).map(msg).collect();
    let news = s.store_messages(&lost, None, &[]).unwrap();
    assert!(news.iter().all(|n| *n));
    assert_eq!(s.message_count(t).unwrap(), 80);
    assert_eq!(s.message_with_iv(t, &msg(80).iv).unwrap(), Some(msg(80).id));
}

/// A profile written before the IV index (server ids and IVs in their own
/// tables, one row per message) opens, counts, and still recognises its
/// messages' resends; its tables are moved into the index on open.
#[test]
fn a_store_of_the_earlier_layout_keeps_recognising_its_messages() {
    use redb::TableDefinition;
    let ids: TableDefinition<(&str, &str), i64> = TableDefinition::new("message_ids");
    let ivs: TableDefinition<(&str, &str), &str> = TableDefinition::new("message_ivs");
    let (_dir, path) = store_file();
    let t = thread();
    let old: Vec<StoredMessage> = (1..=3).map(msg).collect();
    write_earlier_file(&path, &old, |w, tid, micros, o| {
        w.open_table(ids)
            .unwrap()
            .insert((tid, o.id.as_str()), micros)
            .unwrap();
        w.open_table(ivs)
            .unwrap()
            .insert((tid, o.iv.as_str()), o.id.as_str())
            .unwrap();
    });
    let s = RedbStore::open(&path).unwrap();
    assert_eq!(s.message_count(t).unwrap(), 3);
    // Its rows are JSON; they read back beside the compact rows of today.
    assert_eq!(s.messages(t, None, 10).unwrap(), old);
    assert!(s.has_message(t, &old[1].id).unwrap());
    assert_eq!(
        s.message_with_iv(t, &old[2].iv).unwrap(),
        Some(old[2].id.clone())
    );
    // The same id again, and the same blob under a new id: not new.
    assert_eq!(
        s.store_messages(&[old[0].clone(), resend_of(&old[1], 9)], None, &[])
            .unwrap(),
        [false, false]
    );
    // A new one is, and is recognised the same way.
    assert_eq!(s.store_messages(&[msg(4)], None, &[]).unwrap(), [true]);
    assert!(!resend_is_new(&s, &msg(4), 10));
    assert_eq!(s.message_count(t).unwrap(), 4);
    let all: Vec<StoredMessage> = (1..=4).map(msg).collect();
    assert_eq!(s.messages(t, None, 10).unwrap(), all);
    assert_eq!(s.messages_before(t, None, 2).unwrap(), all[2..]);
    // Forgetting the thread empties the old tables too.
    s.forget_thread(t).unwrap();
    assert_eq!(s.message_with_iv(t, &old[2].iv).unwrap(), None);
    assert!(resend_is_new(&s, &old[1], 11));
    // The old tables were moved into the index on open.
    drop(s);
    let tables = tables_of(&path);
    assert!(
        !tables
            .iter()
            .any(|t| t == "message_ids" || t == "message_ivs"),
        "{tables:?}"
    );
}

/// A store file's `messages` table, as redb sees it.
const RAW_MESSAGES: redb::TableDefinition<(&str, i64, &str), &[u8]> =
    redb::TableDefinition::new("messages");
/// The IV index of the layout before `iv_keys`: (thread, IV) → (time, id).
const TEXT_IV_INDEX: redb::TableDefinition<(&str, &str), (i64, &str)> =
    redb::TableDefinition::new("iv_index");

/// A place for a store file, gone with the directory.
fn store_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    (dir, path)
}

/// Writes a store file as an earlier version did: `msgs` as JSON rows in
/// `messages`, and whatever `index` adds for each (given its thread key and
/// time), in one commit.
fn write_earlier_file(
    path: &std::path::Path,
    msgs: &[StoredMessage],
    mut index: impl FnMut(&redb::WriteTransaction, &str, i64, &StoredMessage),
) {
    let db = redb::Database::create(path).unwrap();
    let w = db.begin_write().unwrap();
    for o in msgs {
        let tid = o.thread_id.to_string();
        let micros = hush_store::message_key(o).micros;
        let json = serde_json::to_vec(o).unwrap();
        w.open_table(RAW_MESSAGES)
            .unwrap()
            .insert((tid.as_str(), micros, o.id.as_str()), json.as_slice())
            .unwrap();
        index(&w, &tid, micros, o);
    }
    w.commit().unwrap();
}

/// The tables of a store file, by name.
fn tables_of(path: &std::path::Path) -> Vec<String> {
    let db = redb::Database::open(path).unwrap();
    let r = redb::ReadableDatabase::begin_read(&db).unwrap();
    r.list_tables()
        .unwrap()
        .map(|t| redb::TableHandle::name(&t).to_owned())
        .collect()
}

/// A profile whose IV index was keyed by text (thread id, IV) is moved to
/// the fixed-width index on its first open; its messages' resends are still
/// recognised, and the old table is gone.
#[test]
fn a_store_of_the_text_keyed_iv_index_is_upgraded_on_open() {
    let (_dir, path) = store_file();
    let t = thread();
    let old: Vec<StoredMessage> = (1..=3).map(msg).collect();
    let mut first = true;
    write_earlier_file(&path, &old, |w, tid, micros, o| {
        let mut v = w.open_table(TEXT_IV_INDEX).unwrap();
        v.insert((tid, o.iv.as_str()), (micros, o.id.as_str()))
            .unwrap();
        if std::mem::take(&mut first) {
            // An entry whose key is not a thread id is dropped, not fatal.
            v.insert(("not a thread", "AAAA"), (0, "x")).unwrap();
        }
    });
    {
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(s.messages(t, None, 10).unwrap(), old);
        for o in &old {
            assert_eq!(s.message_with_iv(t, &o.iv).unwrap().as_ref(), Some(&o.id));
        }
        assert_eq!(
            s.store_messages(&[resend_of(&old[2], 7), msg(4)], None, &[])
                .unwrap(),
            [false, true]
        );
    }
    let tables = tables_of(&path);
    assert!(!tables.iter().any(|t| t == "iv_index"), "{tables:?}");
    assert!(tables.iter().any(|t| t == "iv_keys"), "{tables:?}");
    let s = RedbStore::open(&path).unwrap();
    assert_eq!(s.message_count(t).unwrap(), 4);
    assert!(!resend_is_new(&s, &old[0], 8));
}

/// Two IVs that differ only in their last bytes are two IVs.
#[test]
fn an_iv_sharing_its_first_eight_bytes_is_another_iv() {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStore::open(&dir.path().join("store.redb")).unwrap();
    let t = thread();
    // Base64 of 12 bytes: the first 8 bytes are the first 10⅔ characters.
    let a = StoredMessage {
        iv: "AAECAwQFBgcICQoL".into(),
        ..msg(1)
    };
    let b = StoredMessage {
        iv: "AAECAwQFBgcIAAAA".into(),
        ..msg(2)
    };
    assert_eq!(
        s.store_messages(std::slice::from_ref(&a), None, &[])
            .unwrap(),
        [true]
    );
    assert_eq!(s.message_with_iv(t, &b.iv).unwrap(), None);
    // Same ciphertext, different IV: a different message.
    assert_eq!(
        s.store_messages(std::slice::from_ref(&b), None, &[])
            .unwrap(),
        [true]
    );
    s.flush().unwrap();
    assert_eq!(s.message_with_iv(t, &a.iv).unwrap(), Some(a.id.clone()));
    assert_eq!(s.message_with_iv(t, &b.iv).unwrap(), Some(b.id.clone()));
    // Each one's resend is recognised as its own.
    assert_eq!(
        s.store_messages(&[resend_of(&a, 9), resend_of(&b, 10)], None, &[])
            .unwrap(),
        [false, false]
    );
    assert_eq!(s.message_count(t).unwrap(), 2);
}

/// The IV filter (which lets a new IV skip the index) is rebuilt from the
/// index when its rows are damaged or gone, and never hides a stored IV.
#[test]
fn a_damaged_or_missing_iv_filter_is_rebuilt_from_the_index() {
    use redb::TableDefinition;
    let filter: TableDefinition<u32, &[u8]> = TableDefinition::new("iv_filter");
    let (_dir, path) = store_file();
    let t = thread();
    // Enough for the filter to be kept in the file.
    let stored: Vec<StoredMessage> = (1..=5_000).map(msg).collect();
    {
        // Two durable writes: the second changes a filter already saved.
        let s = RedbStore::open(&path).unwrap();
        s.store_messages(&stored[..4_500], None, &[]).unwrap();
        s.flush().unwrap();
        s.store_messages(&stored[4_500..], None, &[]).unwrap();
        s.flush().unwrap();
    }
    for damage in [
        "none: as saved",
        "a row of the wrong size",
        "no filter at all",
    ] {
        {
            let db = redb::Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut f = w.open_table(filter).unwrap();
                match damage {
                    "a row of the wrong size" => {
                        f.insert(0, &[0u8; 9][..]).unwrap();
                    }
                    "no filter at all" => {
                        f.retain(|_, _| false).unwrap();
                    }
                    _ => assert!(
                        !redb::ReadableTableMetadata::is_empty(&f).unwrap(),
                        "the filter was saved"
                    ),
                }
            }
            w.commit().unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        let resends: Vec<StoredMessage> = stored
            .iter()
            .enumerate()
            .map(|(i, m)| resend_of(m, 1_000 + i as u32))
            .collect();
        assert!(
            s.store_messages(&resends, None, &[])
                .unwrap()
                .iter()
                .all(|new| !new),
            "{damage}"
        );
        assert_eq!(s.message_count(t).unwrap(), 5_000, "{damage}");
    }
}

/// A write that fails half-way (here on a damaged row, met while checking
/// an IV) stores nothing: not its messages, and not the IV entries of those
/// it had taken in before the damage.
#[test]
fn a_write_that_fails_half_way_leaves_no_iv_entry_behind() {
    let (messages, ivs) = (RAW_MESSAGES, TEXT_IV_INDEX);
    let (_dir, path) = store_file();
    let t = thread();
    let tid = t.to_string();
    let damaged = msg(1);
    drop(RedbStore::open(&path).unwrap());
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let micros = hush_store::message_key(&damaged).micros;
            let key = (tid.as_str(), micros, damaged.id.as_str());
            w.open_table(messages)
                .unwrap()
                .insert(key, &[0x7f_u8, 1, 2][..])
                .unwrap();
            w.open_table(ivs)
                .unwrap()
                .insert(
                    (tid.as_str(), damaged.iv.as_str()),
                    (micros, damaged.id.as_str()),
                )
                .unwrap();
        }
        w.commit().unwrap();
    }
    let s = RedbStore::open(&path).unwrap();
    // msg(2) is taken in first; the resend of the damaged one then fails.
    let err = s
        .store_messages(&[msg(2), resend_of(&damaged, 3)], None, &[])
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert_eq!(s.message_with_iv(t, &msg(2).iv).unwrap(), None);
    assert_eq!(s.message_count(t).unwrap(), 1);
    // Without the damaged row in the way, msg(2) is new, and indexed.
    assert_eq!(s.store_messages(&[msg(2)], None, &[]).unwrap(), [true]);
    assert_eq!(s.message_with_iv(t, &msg(2).iv).unwrap(), Some(msg(2).id));
    s.flush().unwrap();
    assert!(!resend_is_new(&s, &msg(2), 4));
}

#[test]
fn a_relaxed_commit_says_when_it_is_due_until_it_is_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStore::open(&dir.path().join("store.redb")).unwrap();
    s.put_thread(&rec(&msg(1).created_at)).unwrap();
    assert_eq!(s.flush_wait(), None, "a durable write leaves nothing due");
    s.store_messages(&[msg(1)], Some(&rec(&msg(1).created_at)), &[])
        .unwrap();
    let wait = s
        .flush_wait()
        .expect("a relaxed commit waits for its flush");
    assert!(wait <= hush_store::FLUSH_EVERY, "{wait:?}");
    s.flush_due().unwrap();
    s.flush().unwrap();
    assert_eq!(s.flush_wait(), None);
}

fn outbox_entry(seq: u64) -> OutboxEntry {
    OutboxEntry {
        seq,
        thread_id: thread(),
        client_message_id: format!("c{seq}"),
        sealed: Sealed {
            ciphertext: "AAAA".repeat(64),
            iv: format!("BBBB{seq:012}"),
        },
        attempts: 0,
        state: OutboxState::Queued,
        created_ms: 1,
    }
}

/// A real full disk (a tmpfs filled to the last byte): every write is
/// refused as `DiskFull`, nothing stored before is damaged, reads go on, and
/// once there is room again the same open store takes writes.
#[test]
fn a_full_disk_refuses_writes_clearly_keeps_everything_and_recovers() {
    let disk = disk::TinyDisk::new(8 << 20);
    let path = disk.path().join("p").join("store.redb");
    let s = RedbStore::open(&path).unwrap();
    s.put_thread(&rec(&msg(0).created_at)).unwrap();
    let first: Vec<StoredMessage> = (0..100).map(msg).collect();
    s.store_messages(&first, Some(&rec(&msg(99).created_at)), &[])
        .unwrap();
    s.put_outbox(&outbox_entry(1)).unwrap();
    s.flush().unwrap();

    let filled = disk.fill();
    eprintln!("filled the disk with {filled} bytes");
    // A send is refused before it could be queued.
    match s.put_outbox(&outbox_entry(2)) {
        Err(StoreError::DiskFull) => {}
        other => panic!("expected DiskFull, got {other:?}"),
    }
    // Received messages are refused (their cursor with them), at the latest
    // when they are made durable; nothing half-written is visible.
    let more: Vec<StoredMessage> = (100..2_100).map(msg).collect();
    let relaxed = s.store_messages(&more, Some(&rec(&msg(2_099).created_at)), &[]);
    let stored = relaxed.as_ref().map(|_| ()).map_err(|e| e.to_string());
    match relaxed.and_then(|_| s.flush()) {
        Err(StoreError::DiskFull) => {}
        other => panic!("expected DiskFull, got {other:?}"),
    }
    // What was there before is still readable in this process, and what was
    // refused went together with its cursor.
    assert_eq!(s.outbox().unwrap().len(), 1);
    assert!(s.has_message(thread(), &msg(99).id).unwrap());
    assert_eq!(s.message_count(thread()).unwrap(), 100);
    assert_eq!(
        s.threads().unwrap()[0].cursor.as_deref(),
        Some(msg(99).created_at.as_str())
    );
    // A relaxed commit that was accepted and then rolled back is announced.
    eprintln!("relaxed commit: {stored:?}; rollbacks: {}", s.rollbacks());
    assert_eq!(s.rollbacks(), u64::from(stored.is_ok()));

    disk.make_room();
    // The same open store recovers: the refused writes go through now.
    s.put_outbox(&outbox_entry(2)).unwrap();
    s.store_messages(&more, Some(&rec(&msg(2_099).created_at)), &[])
        .unwrap();
    s.flush().unwrap();
    drop(s);

    let s = RedbStore::open(&path).unwrap();
    assert_eq!(s.message_count(thread()).unwrap(), 2_100);
    assert_eq!(
        s.threads().unwrap()[0].cursor.as_deref(),
        Some(msg(2_099).created_at.as_str())
    );
    let seqs: Vec<u64> = s.outbox().unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2]);
}

/// A store with something of everything in it, closed.
fn filled_store(path: &std::path::Path) {
    let s = RedbStore::open(path).unwrap();
    conformance::run(&s);
    let t = thread();
    s.put_thread(&rec(&msg(1).created_at)).unwrap();
    let msgs: Vec<_> = (1..200).map(msg).collect();
    s.store_messages(&msgs, Some(&rec(&msg(199).created_at)), &[])
        .unwrap();
    s.put_outbox(&outbox_entry(42)).unwrap();
    s.flush().unwrap();
    assert!(s.message_count(t).unwrap() >= 199);
}

/// Every read a client makes at start, each allowed to fail but not to panic.
fn read_everything(s: &RedbStore) -> usize {
    let mut failures = 0;
    failures += s.profile().is_err() as usize;
    failures += s.contacts().is_err() as usize;
    failures += s.outbox().is_err() as usize;
    failures += s.delivered().is_err() as usize;
    match s.threads() {
        Ok(ts) => {
            for t in ts {
                failures += s.messages(t.id, None, 1000).is_err() as usize;
                failures += s.message_count(t.id).is_err() as usize;
            }
        }
        Err(_) => failures += 1,
    }
    failures += s.put_thread(&rec("2026-01-01T00:00:00Z")).is_err() as usize;
    failures
}

#[test]
fn a_damaged_store_file_fails_clearly_and_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.redb");
    filled_store(&good);
    let bytes = std::fs::read(&good).unwrap();
    let mut rng: u64 = 0x00b1_7f11_5eed_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut refused, mut opened_with_errors, mut clean) = (0, 0, 0);
    const SEEDS: usize = 60;
    for seed in 0..SEEDS {
        let path = dir.path().join(format!("flip-{seed}.redb"));
        let mut b = bytes.clone();
        for _ in 0..100 {
            let bit = (next() % (b.len() as u64 * 8)) as usize;
            b[bit / 8] ^= 1 << (bit % 8);
        }
        std::fs::write(&path, &b).unwrap();
        // No panic may escape, whatever the damage.
        let outcome = std::panic::catch_unwind(|| match RedbStore::open(&path) {
            Err(e) => {
                let text = e.to_string();
                assert!(!text.is_empty());
                (true, 0)
            }
            Ok(s) => (false, read_everything(&s)),
        });
        match outcome.unwrap_or_else(|_| panic!("seed {seed}: a panic escaped the store")) {
            (true, _) => refused += 1,
            (false, 0) => clean += 1,
            (false, _) => opened_with_errors += 1,
        }
    }
    eprintln!(
        "{SEEDS} seeds of 100 bit flips: {refused} refused at open, {opened_with_errors} opened with failing reads, {clean} read cleanly"
    );
    assert_eq!(refused + opened_with_errors + clean, SEEDS);
}

#[test]
fn an_empty_or_foreign_file_is_refused_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    match RedbStore::open(&empty) {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("empty"), "{m}"),
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("an empty file became a new store"),
    }
    assert_eq!(
        std::fs::metadata(&empty).unwrap().len(),
        0,
        "left as it was"
    );
    let foreign = dir.path().join("foreign.redb");
    let junk: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&foreign, &junk).unwrap();
    match RedbStore::open(&foreign) {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("damaged"), "{m}"),
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("a foreign file opened as a store"),
    }
    assert_eq!(std::fs::read(&foreign).unwrap(), junk, "left as it was");
}

#[test]
fn a_store_deleted_under_a_running_process_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let s = RedbStore::open(&path).unwrap();
    s.put_thread(&rec("2026-01-01T00:00:00Z")).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    match s.put_thread(&rec("2026-01-02T00:00:00Z")) {
        Err(e) => assert!(e.to_string().contains("deleted"), "{e}"),
        Ok(()) => panic!("a write into a deleted store succeeded"),
    }
    assert!(!path.exists(), "no new empty store in its place");
}
