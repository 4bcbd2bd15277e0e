#![cfg(not(target_arch = "wasm32"))]

//! Every backend passes the same behaviour test; redb on a real file,
//! across a reopen, with a second opener refused.

use hush_store::{MemoryStore, RedbStore, Store, StoreError, conformance};

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
    let t = s.threads().unwrap()[0].id;
    assert_eq!(s.message_count(t).unwrap(), 7);
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
#[test]
fn a_crash_rolls_back_messages_and_their_cursor_together() {
    use hush_core::ThreadId;
    use hush_store::{StoredMessage, ThreadRecord};
    let t = ThreadId::parse("ab000000-0000-4000-8000-0000000000ab").unwrap();
    let rec = |cursor: &str| ThreadRecord {
        id: t,
        peer: uuid::Uuid::nil(),
        cursor: Some(cursor.into()),
        on_server: true,
    };
    let msg = |i: u32| StoredMessage {
        id: format!("00000000-0000-4000-8000-{i:012}"),
        thread_id: t,
        ciphertext: "AAAA".into(),
        iv: format!("AAAAAAAAAAAAAAA{i}"),
        created_at: format!("2026-01-01T00:00:0{i}.000000Z"),
        client_message_id: None,
    };
    if let Ok(path) = std::env::var("HUSH_STORE_CRASH_CHILD") {
        let s = RedbStore::open(std::path::Path::new(&path)).unwrap();
        // Durable: the thread with its first message and cursor.
        s.put_thread(&rec(&msg(1).created_at)).unwrap();
        s.store_messages(&[msg(1)], Some(&rec(&msg(1).created_at)), &[])
            .unwrap();
        s.flush().unwrap();
        // Relaxed: two more and the cursor over them; then die, no drop.
        s.store_messages(&[msg(2), msg(3)], Some(&rec(&msg(3).created_at)), &[])
            .unwrap();
        std::process::abort();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_crash_rolls_back_messages_and_their_cursor_together",
        ])
        .env("HUSH_STORE_CRASH_CHILD", &path)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was meant to abort");
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
