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
    let t = again.threads().unwrap()[0].id;
    assert_eq!(again.message_count(t).unwrap(), 7);
    let ids: Vec<String> = again
        .messages(t, None, 100)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["m1", "m2a", "m2b", "m3", "m4", "m1-other", "m9"]);
}
