//! The client against a relay that behaves like a stock hush server (no
//! [ext]): acks only by echo, no idempotency, errors without correlation.

mod common;

use std::time::Duration;

use bevy::time::TimeUpdateStrategy;
use common::*;
use hush_chat::MessageStatus;
use hush_net::Connection;
use hush_testkit::{FaultProxy, ProxyMode, RelayFixture, advance, step_app};

fn stock() -> RelayFixture {
    RelayFixture::start_with(|c| c.stock = true)
}

#[test]
fn chat_works_without_extensions() {
    let relay = stock();
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&relay.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), dir.path(), "bob");
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    assert!(
        !a.app
            .world()
            .resource::<Connection>()
            .server_has("message_sent")
    );
    send(&mut a, idb, "over the base protocol");
    run_both(&mut a, &mut b, "delivered and acked by the echo", |a, b| {
        contents(b, ida) == ["over the base protocol"] && log(a, idb).pending.is_empty()
    });
    send(&mut b, ida, "and back");
    run_both(&mut a, &mut b, "reply", |a, b| {
        contents(a, idb).len() == 2 && log(b, ida).pending.is_empty()
    });
    assert_eq!(log(&a, idb).messages[0].status, MessageStatus::Sent);
    assert_eq!(rest_count(&relay, thread_of(&a, &b)), 2);
}

#[test]
fn offline_sends_arrive_exactly_once_without_server_idempotency() {
    let mut relay = stock();
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&relay.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), dir.path(), "bob");
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    relay.stop();
    for t in ["x", "y", "z"] {
        send(&mut a, idb, t);
    }
    for _ in 0..20 {
        a.step();
    }
    relay.restart();
    run_both(&mut a, &mut b, "all three", |a, b| {
        contents(b, ida).len() == 3 && log(a, idb).pending.is_empty()
    });
    assert_eq!(contents(&b, ida), ["x", "y", "z"]);
    assert_eq!(rest_count(&relay, thread_of(&a, &b)), 3);
}

#[test]
fn a_lost_echo_is_found_in_the_history_instead_of_being_sent_twice() {
    let relay = stock();
    let proxy = FaultProxy::start(relay.addr);
    let dir = tempfile::tempdir().unwrap();
    let mut a = client(&proxy.url(), dir.path(), "alice");
    let mut b = client(&relay.url(), dir.path(), "bob");
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    send(&mut a, idb, "first");
    run_both(&mut a, &mut b, "first", |a, b| {
        contents(b, ida) == ["first"] && log(a, idb).pending.is_empty()
    });
    a.app
        .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(1)));
    hush_testkit::unclamp_virtual_time(&mut a.app);
    proxy.set_mode(ProxyMode::BlackHoleDown);
    send(&mut a, idb, "second");
    run_both(&mut a, &mut b, "stored by the server", |_, b| {
        contents(b, ida).len() == 2
    });
    // The send times out (10 s). Instead of a blind resend, which a stock
    // server would store twice, the client reads the thread's history again
    // and finds the message there.
    proxy.set_mode(ProxyMode::Pass);
    advance(
        &mut a.app,
        Duration::from_secs(75),
        Duration::from_millis(500),
        Duration::from_millis(3),
    );
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
    for _ in 0..100 {
        step_app(&mut a.app, Duration::from_millis(20));
        b.step();
    }
    assert_eq!(contents(&a, idb), ["first", "second"]);
    assert_eq!(contents(&b, ida), ["first", "second"]);
    assert_eq!(rest_count(&relay, thread_of(&a, &b)), 2, "not stored twice");
}
