//! The browser transport against a real relay (wasm-bindgen-test in headless
//! Chromium). The relay's address and a valid token are baked in at build
//! time from HUSH_TEST_RELAY_URL and HUSH_TEST_RELAY_TOKEN (scripts/web-test
//! starts the relay and sets them).

#![cfg(target_arch = "wasm32")]

use std::sync::Arc;

use bevy::prelude::World;
use crossbeam_channel::Receiver;
use hush_core::policy::connection::CloseKind;
use hush_core::wire::{ClientFrame, ServerFrame};
use hush_net::platform::{OpenParams, Platform};
use hush_net::transport::{Outgoing, TransportEvent, TransportEventKind};
use hush_net::{NetConfig, ServerUrl};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use zeroize::Zeroizing;

wasm_bindgen_test_configure!(run_in_browser);

const URL: Option<&str> = option_env!("HUSH_TEST_RELAY_URL");
const TOKEN: Option<&str> = option_env!("HUSH_TEST_RELAY_TOKEN");

fn relay() -> (&'static str, &'static str) {
    (
        URL.expect("build with HUSH_TEST_RELAY_URL (scripts/web-test does)"),
        TOKEN.expect("build with HUSH_TEST_RELAY_TOKEN (scripts/web-test does)"),
    )
}

async fn next(rx: &Receiver<TransportEvent>) -> TransportEvent {
    for _ in 0..1000 {
        if let Ok(e) = rx.try_recv() {
            return e;
        }
        gloo_timers::future::TimeoutFuture::new(10).await;
    }
    panic!("no transport event within 10 s");
}

fn open(
    token: &str,
    generation: u64,
) -> (
    Platform,
    hush_net::platform::SocketHandle,
    Receiver<TransportEvent>,
) {
    let config = NetConfig::new(ServerUrl::parse(relay().0).unwrap());
    let platform = Platform::new(&World::new(), &config);
    let (tx, rx) = crossbeam_channel::unbounded();
    let h = platform.open_socket(
        OpenParams {
            config,
            token: Zeroizing::new(token.into()),
            generation,
            health: Arc::default(),
            http: platform.http.clone(),
        },
        tx,
    );
    (platform, h, rx)
}

#[wasm_bindgen_test]
async fn a_socket_opens_answers_a_ping_and_closes() {
    let (_p, h, rx) = open(relay().1, 7);
    // A frame written before the socket opened is sent once it does.
    assert!(h.send(Outgoing::Text(ClientFrame::Ping.to_json())));
    let e = next(&rx).await;
    assert_eq!(e.generation, 7);
    let TransportEventKind::Opened(health) = e.kind else {
        panic!("{e:?}")
    };
    assert!(
        health.relay.is_some(),
        "hush-relay advertises its extensions"
    );
    loop {
        let e = next(&rx).await;
        match e.kind {
            TransportEventKind::Frame(Ok(ServerFrame::Pong)) => break,
            TransportEventKind::Frame(Ok(ServerFrame::Heartbeat)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(h.send(Outgoing::Close(1000, "bye")));
}

#[wasm_bindgen_test]
async fn a_bad_token_is_closed_with_4001() {
    let (_p, _h, rx) = open("not-a-jwt", 1);
    assert!(matches!(
        next(&rx).await.kind,
        TransportEventKind::Opened(_)
    ));
    match next(&rx).await.kind {
        TransportEventKind::Closed(CloseKind::Frame { code, reason }) => {
            assert_eq!((code, reason.as_str()), (4001, "Invalid token"));
        }
        other => panic!("{other:?}"),
    }
}
