//! The IndexedDB store in a real browser (wasm-bindgen-test, headless
//! Chromium): the shared behaviour test, then a reopen that finds it all.

#![cfg(target_arch = "wasm32")]

use hush_store::{Store, WebStore, conformance};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

async fn settle(s: &WebStore) {
    for _ in 0..200 {
        if s.is_flushed() {
            return;
        }
        gloo_timers::future::TimeoutFuture::new(10).await;
    }
    panic!("IndexedDB writes did not finish");
}

#[wasm_bindgen_test]
async fn the_web_store_conforms_and_survives_a_reopen() {
    let profile = format!("test-{}", js_sys::Math::random().to_bits());
    let s = WebStore::open(&profile).await.unwrap();
    conformance::run(&s);
    settle(&s).await;
    drop(s);
    // A page reload: a new WebStore loads what IndexedDB holds.
    let again = WebStore::open(&profile).await.unwrap();
    assert_eq!(again.profile().unwrap().kdf_salt.as_deref(), Some("salt"));
    assert_eq!(again.contacts().unwrap().len(), 1);
    assert_eq!(again.outbox().unwrap().len(), 1);
    // What conformance left: the request thread with its sealed metadata
    // (the other thread was forgotten), and its one message.
    let threads = again.threads().unwrap();
    assert_eq!(threads.len(), 1);
    assert!(threads[0].metadata.is_some() && threads[0].ignored);
    assert_eq!(again.message_count(threads[0].id).unwrap(), 1);
    assert_eq!(again.profile().unwrap().blocked, [uuid::Uuid::from_u128(7)]);
    // The forgotten thread's deletions reached IndexedDB: only the message
    // stored again after forgetting it is there.
    let forgotten = hush_core::ThreadId::parse("01000000-0000-4000-8000-000000000001").unwrap();
    let ids: Vec<String> = again
        .messages(forgotten, None, 100)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["m1"]);
}

/// Waits until `s` has heard of at least `n` changes from other tabs.
async fn hear(s: &WebStore, n: usize) -> Vec<hush_store::RemoteChange> {
    let mut got = Vec::new();
    for _ in 0..300 {
        got.extend(s.take_remote());
        if got.len() >= n {
            return got;
        }
        gloo_timers::future::TimeoutFuture::new(10).await;
    }
    panic!("heard {} of {n} changes: {got:?}", got.len());
}

#[wasm_bindgen_test]
async fn two_tabs_on_one_profile_hear_each_others_writes() {
    use hush_core::ThreadId;
    use hush_core::crypto::Sealed;
    use hush_store::{OutboxEntry, OutboxState, RemoteChange, StoredMessage};

    let profile = format!("test-{}", js_sys::Math::random().to_bits());
    // Two stores in one page stand for two tabs: each its own connection,
    // copy and channel.
    let a = WebStore::open(&profile).await.unwrap();
    let b = WebStore::open(&profile).await.unwrap();
    let woken = std::rc::Rc::new(std::cell::Cell::new(0));
    let w = woken.clone();
    b.on_remote(move || w.set(w.get() + 1));

    let thread = ThreadId::parse("90b3f6e0-fe98-88c0-51f3-0305c43f6b8a").unwrap();
    let sealed = Sealed {
        ciphertext: "Y3Q=".into(),
        iv: "aXY=".into(),
    };
    let peer = uuid::Uuid::new_v4();
    a.put_contact(peer, &sealed).unwrap();
    let entry = OutboxEntry {
        seq: 7_000_000_000_000_001,
        thread_id: thread,
        client_message_id: "c1".into(),
        sealed: sealed.clone(),
        attempts: 0,
        state: OutboxState::Queued,
        created_ms: 1,
    };
    a.put_outbox(&entry).unwrap();
    let msg = |id: &str| StoredMessage {
        id: id.into(),
        thread_id: thread,
        ciphertext: "Y3Q=".into(),
        iv: format!("iv-{id}"),
        created_at: "2026-12-02T07:00:00.000000Z".into(),
        client_message_id: None,
    };
    a.store_messages(&[msg("m1"), msg("m2")], None, &[entry.seq])
        .unwrap();
    settle(&a).await;

    let heard = hear(&b, 4).await;
    assert!(woken.get() > 0, "b was not woken");
    assert_eq!(
        heard,
        vec![
            RemoteChange::Contact(peer, sealed.clone()),
            RemoteChange::Outbox(entry.clone()),
            RemoteChange::Messages(vec![msg("m1"), msg("m2")]),
            RemoteChange::OutboxRemoved(entry.seq),
        ]
    );
    // Taken into b's copy, without writing them again.
    for c in &heard {
        b.absorb(c).unwrap();
    }
    assert!(b.is_flushed());
    assert_eq!(b.contacts().unwrap().len(), 1);
    assert_eq!(b.message_count(thread).unwrap(), 2);
    assert!(b.outbox().unwrap().is_empty());
    // Absorbing announces nothing: a hears nothing back.
    gloo_timers::future::TimeoutFuture::new(200).await;
    assert!(a.take_remote().is_empty());
    // A store does not hear itself, and a closed one is no longer told.
    b.put_draft(thread, Some(&sealed)).unwrap();
    settle(&b).await;
    assert_eq!(
        hear(&a, 1).await,
        vec![RemoteChange::Draft(thread, Some(sealed))]
    );
    assert!(b.take_remote().is_empty());
}
