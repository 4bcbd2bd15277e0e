//! Unlocking a fresh profile with several servers given: only a server can
//! answer the first unlock (there is no stored salt yet), so a dead one is
//! skipped for the next rather than ending the unlock.

mod common;

use std::time::Duration;

use common::*;
use hush_chat::headless::{Client, Failure};
use hush_chat::{UnlockError, VaultEvent};
use hush_net::{NetConfig, ServerList, ServerUrl};
use hush_testkit::RelayFixture;
use zeroize::Zeroizing;

/// A URL nobody listens on (a port that was just free).
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// A client on a fresh profile in `dir` that knows these servers, in order.
fn fresh(dir: &tempfile::TempDir, servers: &[String]) -> Client {
    Client::new(&servers.join(","), open_store(dir.path(), "fresh"), None).unwrap()
}

/// The server the client uses now, and its whole list.
fn servers(c: &Client) -> (ServerUrl, ServerList) {
    let config = c.app.world().resource::<NetConfig>();
    (config.server.clone(), config.servers.clone())
}

fn failures(c: &mut Client) -> usize {
    c.seen()
        .vault
        .iter()
        .filter(|e| matches!(e, VaultEvent::Failed(_)))
        .count()
}

#[test]
fn a_fresh_profile_unlocks_through_the_next_server_when_the_first_is_dead() {
    let relay = RelayFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let mut c = fresh(&dir, &[dead_url(), relay.url()]);
    c.unlock_as(&words(), "Fresh").unwrap();
    assert_eq!(failures(&mut c), 0, "no failure on the way");
    let live = relay.url();
    assert!(
        c.run_until(WAIT, |c| {
            let conn = c.app.world().resource::<hush_net::Connection>();
            conn.is_connected()
        }),
        "connected to the live server"
    );
    let (server, _) = servers(&c);
    assert_eq!(server, ServerUrl::parse(&live).unwrap());
}

#[test]
fn wrong_words_are_reported_by_the_next_server_not_as_unreachable() {
    let relay = RelayFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let mut c = fresh(&dir, &[dead_url(), relay.url()]);
    let wrong = Zeroizing::new(words().replacen("abandon", "zoo", 1));
    match c.unlock(&wrong) {
        Err(Failure::Unlock(UnlockError::WrongWords { .. })) => {}
        other => panic!("expected wrong words from the live server, got {other:?}"),
    }
}

#[test]
fn with_every_server_dead_a_fresh_profile_fails_once_after_trying_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = fresh(&dir, &[dead_url(), dead_url(), dead_url()]);
    match c.unlock(&words()) {
        Err(Failure::Unlock(UnlockError::ServerUnreachable(_))) => {}
        other => panic!("expected unreachable, got {other:?}"),
    }
    // Nothing more comes: one failure, reported after the last server.
    c.step_for(Duration::from_millis(500));
    assert_eq!(failures(&mut c), 1);
    let (server, list) = servers(&c);
    assert_eq!(&server, list.first(), "went round the list of three once");
}
