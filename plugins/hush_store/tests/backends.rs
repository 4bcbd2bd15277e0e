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
