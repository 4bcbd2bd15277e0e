//! Helpers of the messaging system tests.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use hush_chat::Threads;
use hush_chat::headless::Client;
use hush_chat::threads::ThreadLog;
use hush_chat::{OutboxEvent, SendIntent};
use hush_core::ThreadId;
use hush_store::{RedbStore, Store};
use hush_testkit::{RelayFixture, WORDS};
use uuid::Uuid;
use zeroize::Zeroizing;

pub const WAIT: Duration = Duration::from_secs(30);

pub fn words() -> Zeroizing<String> {
    Zeroizing::new(WORDS.to_owned())
}

pub fn open_store(dir: &std::path::Path, name: &str) -> Arc<dyn Store> {
    Arc::new(RedbStore::open(&dir.join(format!("{name}.redb"))).unwrap())
}

pub fn client(url: &str, dir: &std::path::Path, name: &str) -> Client {
    let mut c = Client::new(url, open_store(dir, name), None).unwrap();
    c.unlock_as(&words(), name).unwrap();
    c
}

pub fn befriend(a: &mut Client, b: &mut Client) {
    let (ida, idb) = (a.user_id(), b.user_id());
    a.add_contact(&idb.to_string(), "B").unwrap();
    b.add_contact(&ida.to_string(), "A").unwrap();
    assert!(a.wait_thread(idb) && b.wait_thread(ida));
}

pub fn log(c: &Client, peer: Uuid) -> &ThreadLog {
    let w = c.app.world();
    let t = w.resource::<Threads>();
    let e = t.entity(t.of_peer(&peer).unwrap()).unwrap();
    w.get::<ThreadLog>(e).unwrap()
}

pub fn contents(c: &Client, peer: Uuid) -> Vec<String> {
    log(c, peer)
        .messages
        .iter()
        .map(|m| m.content.clone())
        .collect()
}

pub fn send(c: &mut Client, to: Uuid, text: &str) {
    c.app.world_mut().write_message(SendIntent {
        to,
        text: text.to_owned(),
    });
}

/// Steps both clients until `pred` holds.
pub fn run_both(
    a: &mut Client,
    b: &mut Client,
    what: &str,
    mut pred: impl FnMut(&Client, &Client) -> bool,
) {
    let end = std::time::Instant::now() + WAIT;
    loop {
        a.step();
        b.step();
        if pred(a, b) {
            return;
        }
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for: {what}"
        );
    }
}

pub fn rest_count(relay: &RelayFixture, t: ThreadId) -> u64 {
    relay.rest().message_count(t)
}

pub fn rest_post(
    relay: &RelayFixture,
    t: ThreadId,
    ciphertext: &str,
    iv: &str,
) -> serde_json::Value {
    relay.rest().post_message(t, ciphertext, iv)
}

pub fn thread_of(a: &Client, b: &Client) -> ThreadId {
    ThreadId::for_pair(&a.user_id(), &b.user_id())
}

/// Why the outbox refused sends so far, in order.
pub fn rejections(c: &mut Client) -> Vec<String> {
    c.seen()
        .outbox
        .iter()
        .filter_map(|e| match e {
            OutboxEvent::Rejected { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}
