//! Two headless clients and a real relay in one process: real sockets, real
//! redb files, the whole messaging path.

mod common;

use std::time::Duration;

use bevy::time::TimeUpdateStrategy;
use common::*;
use hush_chat::headless::{Client, Seen};
use hush_chat::{MessageStatus, OutboxEvent, Threads, Unread};
use hush_core::ThreadId;
use hush_core::crypto::VaultKey;
use hush_core::payload::{LocalIdentity, MessagePayload};
use hush_core::time::parse_iso_micros;
use hush_store::ProfileMeta;
use hush_testkit::{FaultProxy, ProxyMode, RelayFixture, WORDS, advance, step_app};
use uuid::Uuid;

#[test]
fn both_directions_in_real_time_with_one_copy_each() {
    let relay = RelayFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&relay.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), dir.path(), "bob");
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    send(&mut a, idb, "hello bob");
    // The local echo shows at once.
    a.step();
    let echo = &log(&a, idb).pending;
    assert_eq!(echo.len(), 1);
    assert_eq!(echo[0].content, "hello bob");
    run_both(&mut a, &mut b, "bob has it", |_, b| {
        contents(b, ida) == ["hello bob"]
    });
    send(&mut b, ida, "hi alice");
    run_both(
        &mut a,
        &mut b,
        "alice has the reply and her own message once",
        |a, _| contents(a, idb) == ["hello bob", "hi alice"] && log(a, idb).pending.is_empty(),
    );
    let la = log(&a, idb);
    assert!(la.messages[0].mine && !la.messages[1].mine);
    assert!(la.messages.iter().all(|m| m.status == MessageStatus::Sent));
    assert_eq!(la.messages[1].sender_name, "bob");
    run_both(&mut a, &mut b, "bob's own message settles", |_, b| {
        contents(b, ida) == ["hello bob", "hi alice"] && log(b, ida).pending.is_empty()
    });
    // Unread: one incoming message each, neither thread focused.
    let unread = |c: &Client, peer| {
        let w = c.app.world();
        let t = w.resource::<Threads>();
        w.get::<Unread>(t.entity(t.of_peer(&peer).unwrap()).unwrap())
            .unwrap()
            .0
    };
    assert_eq!((unread(&a, idb), unread(&b, ida)), (1, 1));
    assert_eq!(rest_count(&relay, thread_of(&a, &b)), 2);
}

#[test]
fn offline_sends_arrive_once_and_in_order_after_a_relay_restart() {
    let mut relay = RelayFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&relay.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), dir.path(), "bob");
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    relay.stop();
    for text in ["one", "two", "three"] {
        send(&mut a, idb, text);
        a.step();
    }
    for _ in 0..50 {
        a.step();
    }
    let pending: Vec<_> = log(&a, idb)
        .pending
        .iter()
        .map(|p| (p.content.clone(), p.status.clone()))
        .collect();
    assert_eq!(
        pending,
        [
            ("one".into(), MessageStatus::Queued),
            ("two".into(), MessageStatus::Queued),
            ("three".into(), MessageStatus::Queued)
        ]
    );
    relay.restart();
    // The clients reconnect on their own (backoff: a few seconds).
    run_both(&mut a, &mut b, "bob has all three", |_, b| {
        contents(b, ida).len() >= 3
    });
    assert_eq!(contents(&b, ida), ["one", "two", "three"]);
    run_both(&mut a, &mut b, "alice's outbox is empty", |a, _| {
        log(a, idb).pending.is_empty()
    });
    assert_eq!(contents(&a, idb), ["one", "two", "three"]);
    assert_eq!(rest_count(&relay, thread_of(&a, &b)), 3);
}

#[test]
fn a_client_that_was_away_catches_up() {
    let relay = RelayFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&relay.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), dir.path(), "bob");
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    send(&mut a, idb, "before");
    run_both(&mut a, &mut b, "bob has the first", |_, b| {
        contents(b, ida) == ["before"]
    });
    drop(b); // bob closes the app
    let texts: Vec<String> = (0..250).map(|i| format!("while away {i}")).collect();
    for t in &texts {
        send(&mut a, idb, t);
    }
    assert!(a.run_until(WAIT, |a| log(a, idb).pending.is_empty()));
    // Bob comes back: more than one page (200) of history to catch up.
    let mut b = Client::new(&relay.url(), open_store(dir.path(), "bob"), None).unwrap();
    b.unlock(&words()).unwrap();
    assert!(b.run_until(WAIT, |b| contents(b, ida).len() == 251));
    let got = contents(&b, ida);
    assert_eq!(got[0], "before");
    assert_eq!(got[1..], texts[..]);
    let caught_up = b.seen().received.iter().filter(|m| !m.live).count();
    assert_eq!(caught_up, 250, "printed as caught up, each once");
}

#[test]
fn a_restarted_client_delivers_its_outbox() {
    let mut relay = RelayFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&relay.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), dir.path(), "bob");
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    relay.stop();
    send(&mut a, idb, "queued 1");
    send(&mut a, idb, "queued 2");
    for _ in 0..20 {
        a.step();
    }
    assert_eq!(log(&a, idb).pending.len(), 2);
    drop(a); // alice quits with a full outbox
    relay.restart();
    let mut a = Client::new(&relay.url(), open_store(dir.path(), "alice"), None).unwrap();
    a.unlock(&words()).unwrap();
    a.step();
    assert_eq!(
        log(&a, idb).pending.len(),
        2,
        "the outbox survived the restart"
    );
    run_both(&mut a, &mut b, "bob has both", |_, b| {
        contents(b, ida).len() >= 2
    });
    assert_eq!(contents(&b, ida), ["queued 1", "queued 2"]);
    run_both(&mut a, &mut b, "alice's outbox drains", |a, _| {
        log(a, idb).pending.is_empty()
    });
    assert_eq!(rest_count(&relay, thread_of(&a, &b)), 2);
}

#[test]
fn a_resend_after_a_lost_ack_is_not_duplicated() {
    let relay = RelayFixture::start();
    let proxy = FaultProxy::start(relay.addr);
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&proxy.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), dir.path(), "bob");
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    // Make sure the thread exists and alice is caught up before the fault.
    send(&mut a, idb, "first");
    run_both(&mut a, &mut b, "first delivered", |a, b| {
        contents(b, ida) == ["first"] && log(a, idb).pending.is_empty()
    });
    // From now on nothing reaches alice: the server stores, the ack is lost.
    proxy.set_mode(ProxyMode::BlackHoleDown);
    a.app
        .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(1)));
    hush_testkit::unclamp_virtual_time(&mut a.app);
    send(&mut a, idb, "second");
    run_both(&mut a, &mut b, "the server stored it", |_, b| {
        contents(b, ida).len() == 2
    });
    // Alice's send times out (10 s) and is resent with the same client id.
    advance(
        &mut a.app,
        Duration::from_secs(12),
        Duration::from_millis(500),
        Duration::from_millis(5),
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        relay.get(|s| &s.duplicate_sends) >= 1,
        "the resend reached the relay"
    );
    assert_eq!(log(&a, idb).pending.len(), 1, "still unacknowledged");
    // The link heals; alice reconnects, catches up and settles the entry.
    proxy.set_mode(ProxyMode::Pass);
    proxy.reset_all();
    let end = std::time::Instant::now() + WAIT;
    while !log(&a, idb).pending.is_empty() {
        step_app(&mut a.app, Duration::from_millis(200));
        b.step();
        std::thread::sleep(Duration::from_millis(2));
        assert!(
            std::time::Instant::now() < end,
            "alice never settled the send"
        );
    }
    assert_eq!(contents(&a, idb), ["first", "second"]);
    for _ in 0..50 {
        b.step();
    }
    assert_eq!(contents(&b, ida), ["first", "second"]);
    assert_eq!(rest_count(&relay, thread_of(&a, &b)), 2);
}

#[test]
fn tampered_and_foreign_messages_are_kept_as_undecryptable() {
    let relay = RelayFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&relay.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), dir.path(), "bob");
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    send(&mut a, idb, "good");
    run_both(&mut a, &mut b, "delivered", |_, b| {
        contents(b, ida) == ["good"]
    });
    let t = thread_of(&a, &b);
    // A sealed blob under another key, and a good one with a flipped tag bit.
    let other = hush_core::crypto::AeadKey::from_bytes([3; 32]).seal(b"{}");
    let bad1 = rest_post(&relay, t, &other.ciphertext, &other.iv);
    let key = VaultKey::derive(WORDS, &relay.kdf_salt())
        .unwrap()
        .thread_key(&ida, &idb);
    let good = key.seal_json(&MessagePayload {
        sender_id: ida,
        sender_name: "A".into(),
        content: "tamper me".into(),
        timestamp: 1,
    });
    let mut raw = hush_core::b64::decode(&good.ciphertext).unwrap();
    raw[0] ^= 0x80;
    let bad2 = rest_post(&relay, t, &hush_core::b64::encode(&raw), &good.iv);
    // Not JSON inside (right key).
    let junk = key.seal(b"not json");
    let bad3 = rest_post(&relay, t, &junk.ciphertext, &junk.iv);
    send(&mut a, idb, "still fine");
    run_both(&mut a, &mut b, "all five", |_, b| {
        log(b, ida).messages.len() == 5
    });
    let l = log(&b, ida);
    for (m, id) in l.messages[1..4].iter().zip([&bad1, &bad2, &bad3]) {
        assert_eq!(m.id, id["id"].as_str().unwrap());
        assert!(matches!(m.status, MessageStatus::Undecryptable(_)), "{m:?}");
        assert!(m.content.is_empty());
    }
    assert_eq!(l.messages[4].content, "still fine");
}

#[test]
fn the_protocol_vector_message_decrypts_through_the_whole_stack() {
    const SALT: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const A: &str = "11111111-1111-4111-8111-111111111111";
    const B: &str = "22222222-2222-4222-8222-222222222222";
    const CIPHERTEXT: &str = "jXwWbXTMkIOq9h8iWJ8PYkSZDo4aV0Drdurd9MsieiRDBubeRvo5RY7tn1DBthI2nn5PgB9n0pTNkgjN9Zc5ZzVmpI4vEu8DzRcRUUTa9esZu8aJ+KP5urvk6W33U4yaBSXJQ9t3TwOp0vxfllDp+d6X43fTp2mr0HYnwvPdntVvycU=";
    let relay = RelayFixture::start_with(|c| c.vault_salt = Some(SALT.into()));
    // A profile whose identity is B of the vectors (as if set up earlier).
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), "b");
    let vk = VaultKey::derive(WORDS, SALT).unwrap();
    let me = Uuid::parse_str(B).unwrap();
    store
        .set_profile(&ProfileMeta {
            kdf_salt: Some(SALT.into()),
            identity: Some(vk.identity_key().seal_json(&LocalIdentity {
                user_id: me,
                display_name: "Bob".into(),
            })),
            server: None,
            ..Default::default()
        })
        .unwrap();
    let t = ThreadId::parse("90b3f6e0-fe98-88c0-51f3-0305c43f6b8a").unwrap();
    relay.rest().create_thread(t);
    rest_post(&relay, t, CIPHERTEXT, "AAECAwQFBgcICQoL");
    let mut b = Client::new(&relay.url(), store, None).unwrap();
    assert!(b.unlock(&words()).unwrap());
    b.add_contact(A, "Alice").unwrap();
    let alice = Uuid::parse_str(A).unwrap();
    assert!(b.wait_thread(alice));
    assert!(b.run_until(WAIT, |b| !log(b, alice).messages.is_empty()));
    let m = &log(&b, alice).messages[0];
    assert_eq!(
        (m.content.as_str(), m.sender_name.as_str()),
        ("hi", "Alice")
    );
    assert_eq!(
        (m.sender_id, m.timestamp_ms, m.mine),
        (Some(alice), 1_700_000_000_000, false)
    );
}

#[test]
fn stock_format_messages_and_own_messages_from_another_device() {
    let relay = RelayFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&relay.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), dir.path(), "bob");
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    let t = thread_of(&a, &b);
    send(&mut a, idb, "create the thread");
    run_both(&mut a, &mut b, "delivered", |_, b| {
        contents(b, ida).len() == 1
    });
    let key = VaultKey::derive(WORDS, &relay.kdf_salt())
        .unwrap()
        .thread_key(&ida, &idb);
    // A stock web client's message: no client_message_id anywhere.
    let stock = key.seal_json(&MessagePayload {
        sender_id: idb,
        sender_name: "bob on the web".into(),
        content: "from the web client".into(),
        timestamp: 5,
    });
    rest_post(&relay, t, &stock.ciphertext, &stock.iv);
    // Alice's own message, written by another device of hers.
    let mine = key.seal_json(&MessagePayload {
        sender_id: ida,
        sender_name: "alice on her phone".into(),
        content: "from my phone".into(),
        timestamp: 6,
    });
    rest_post(&relay, t, &mine.ciphertext, &mine.iv);
    run_both(&mut a, &mut b, "both arrive", |a, _| {
        contents(a, idb).len() == 3
    });
    let l = log(&a, idb);
    assert_eq!(l.messages[1].content, "from the web client");
    assert!(!l.messages[1].mine);
    assert_eq!(l.messages[2].content, "from my phone");
    assert!(l.messages[2].mine);
    assert!(l.pending.is_empty());
    let w = a.app.world();
    let e = w.resource::<Threads>().entity(t).unwrap();
    assert_eq!(
        w.get::<Unread>(e).unwrap().0,
        1,
        "only bob's message is unread"
    );
}

#[test]
fn sends_are_refused_clearly_when_they_cannot_be_queued() {
    let relay = RelayFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&relay.url(), dir.path(), "alice");
    send(&mut a, Uuid::new_v4(), "to a stranger");
    send(&mut a, Uuid::new_v4(), "   ");
    a.step();
    a.step();
    let reasons = rejections(&mut a);
    assert_eq!(reasons, ["not a contact", "the message is empty"]);
    for (input, want) in [
        ("not-a-uuid", "not a UUID"),
        (&a.user_id().to_string(), "that is your own UUID"),
    ] {
        let err = a.add_contact(input, "X").unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
    }
    let friend = Uuid::new_v4().to_string().to_uppercase();
    a.add_contact(&format!("  {friend} "), "Friend").unwrap();
    let err = a.add_contact(&friend.to_lowercase(), "Again").unwrap_err();
    assert!(err.to_string().contains("already a contact"));
}

/// A running client whose disk fills up (a real tmpfs filled to the last
/// byte): its own send is refused at once, incoming messages it cannot keep
/// are fetched again once there is room — without a restart — and nothing is
/// shown or stored twice.
#[test]
fn a_full_disk_while_running_loses_nothing_and_shows_nothing_twice() {
    let relay = RelayFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let disk = hush_testkit::TinyDisk::new(16 << 20);
    let mut a = client(&relay.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), disk.path(), "bob");
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    send(&mut a, idb, "before");
    run_both(&mut a, &mut b, "bob has the first", |_, b| {
        contents(b, ida) == ["before"]
    });

    disk.fill();
    b.seen().outbox.clear();
    send(&mut b, ida, "refused");
    assert!(b.run_until(WAIT, |b| !b.seen().outbox.is_empty()));
    match &b.seen().outbox[0] {
        OutboxEvent::Rejected { reason } => {
            assert!(reason.contains("the disk is full"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(log(&b, ida).pending.is_empty(), "nothing half-queued");

    let texts: Vec<String> = (0..20).map(|i| format!("while full {i}")).collect();
    for t in &texts {
        send(&mut a, idb, t);
    }
    run_both(&mut a, &mut b, "bob's store refused a write", |a, b| {
        log(a, idb).pending.is_empty() && !b.app.world().resource::<Seen>().store_failed.is_empty()
    });
    let failed = &b.seen().store_failed[0];
    assert!(failed.error.contains("the disk is full"), "{failed:?}");

    disk.make_room();
    let mut want = vec!["before".to_owned()];
    want.extend(texts.iter().cloned());
    let store = b
        .app
        .world()
        .resource::<hush_chat::ProfileStore>()
        .0
        .clone();
    let t = thread_of(&a, &b);
    assert!(
        b.run_until(WAIT, |b| contents(b, ida) == want
            && store.message_count(t).unwrap() == 21
            // The cursor covers the newest (the same instant; REST and
            // WebSocket spell server times differently).
            && store.threads().unwrap()[0].cursor.as_deref().and_then(parse_iso_micros)
                == log(b, ida).messages.last().and_then(|m| parse_iso_micros(&m.created_at))),
        "bob has: {:?}; stored {:?}, cursor {:?}, rollbacks {}, failures {:?}",
        contents(&b, ida),
        store.message_count(t),
        store.threads().map(|v| v[0].cursor.clone()),
        store.rollbacks(),
        b.app.world().resource::<Seen>().store_failed
    );
    // Each shown once, also to whoever reads the received messages.
    let mut received: Vec<String> = b
        .seen()
        .received
        .iter()
        .filter(|m| !m.message.mine)
        .map(|m| m.message.content.clone())
        .collect();
    received.dedup();
    assert_eq!(
        b.seen().received.iter().filter(|m| !m.message.mine).count(),
        received.len(),
        "a message was announced twice"
    );
    // And Bob can write again, in the same process.
    send(&mut b, ida, "room again");
    want.push("room again".to_owned());
    run_both(&mut a, &mut b, "alice has bob's message", |a, _| {
        contents(a, idb) == want
    });
}

/// A draft typed in a thread comes back after a lock and after a restart,
/// and the profile file holds it only sealed.
#[test]
fn a_draft_survives_a_lock_and_a_restart_and_is_sealed_on_disk() {
    let relay = RelayFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&relay.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), dir.path(), "bob");
    befriend(&mut a, &mut b);
    let t = thread_of(&a, &b);
    let secret = "half-typed plan: meet at the lighthouse";
    a.app.world_mut().write_message(hush_chat::SetDraft {
        thread: t,
        text: zeroize::Zeroizing::new(secret.to_owned()),
    });
    a.step();
    assert_eq!(a.app.world().resource::<hush_chat::Drafts>().get(t), secret);
    a.app.world_mut().write_message(hush_chat::LockIntent);
    a.step();
    assert_eq!(
        a.app.world().resource::<hush_chat::Drafts>().get(t),
        "",
        "not kept in memory while locked"
    );
    a.unlock(&words()).unwrap();
    a.step();
    assert_eq!(a.app.world().resource::<hush_chat::Drafts>().get(t), secret);
    drop(a);
    let file = std::fs::read(dir.path().join("alice.redb")).unwrap();
    assert!(
        !file.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the draft is not on disk in clear"
    );
    let mut a = Client::new(&relay.url(), open_store(dir.path(), "alice"), None).unwrap();
    a.unlock(&words()).unwrap();
    a.step();
    assert_eq!(
        a.app.world().resource::<hush_chat::Drafts>().get(t),
        secret,
        "kept across a restart"
    );
}

/// The relay's advertised limit is the one a send is checked against: a
/// text over it is refused before it is queued, with the limit in words.
#[test]
fn a_message_over_the_advertised_limit_is_refused_before_it_is_queued() {
    let relay = RelayFixture::start_with(|c| c.limits = hush_relay::Limits::for_ciphertext(4096));
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&relay.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), dir.path(), "bob");
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    assert_eq!(
        a.app
            .world()
            .resource::<hush_net::Connection>()
            .max_ciphertext(),
        4096
    );
    // Still known with the relay away: an offline draft is checked too.
    let mut relay = relay;
    relay.stop();
    assert!(a.run_until(WAIT, |c| {
        !c.app
            .world()
            .resource::<hush_net::Connection>()
            .is_connected()
    }));
    assert_eq!(
        a.app
            .world()
            .resource::<hush_net::Connection>()
            .max_ciphertext(),
        4096
    );
    relay.restart();
    send(&mut a, idb, &"x".repeat(5000));
    send(&mut a, idb, &"y".repeat(3000));
    a.step();
    a.step();
    let reasons = rejections(&mut a);
    assert_eq!(
        reasons,
        ["the message is too long: this server takes at most 4 KB"]
    );
    // What was not refused is what is sent.
    run_both(&mut a, &mut b, "the short one arrives", |_, b| {
        !contents(b, ida).is_empty()
    });
    assert_eq!(contents(&b, ida), ["y".repeat(3000)]);
}
