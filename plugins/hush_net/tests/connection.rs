#![cfg(not(target_arch = "wasm32"))]

//! The connection plugins against a real relay over real sockets, headless,
//! with protocol timers in virtual time.

use std::time::Duration;

use bevy::prelude::*;
use hush_core::ThreadId;
use hush_core::policy::backoff::BackoffPolicy;
use hush_core::policy::connection::CloseKind;
use hush_core::wire::ServerFrame;
use hush_net::transport::{TransportEvent, TransportEventKind};
use hush_net::*;
use hush_relay::Stats;
use hush_testkit::{FaultProxy, ProxyMode, RelayFixture, WORDS, advance, run_until, step_app};
use zeroize::Zeroizing;

const WAIT: Duration = Duration::from_secs(20);

/// Frames the app received, collected every update.
#[derive(Resource, Default)]
struct Inbox(Vec<ServerFrame>);

fn collect(mut inbox: ResMut<Inbox>, mut frames: MessageReader<FrameReceived>) {
    inbox.0.extend(frames.read().map(|f| f.0.clone()));
}

fn net_app(url: &str, session: Session, tweak: impl FnOnce(&mut NetConfig)) -> App {
    let mut config = NetConfig::new(ServerList::parse(url).unwrap());
    config.policy.backoff = BackoffPolicy::exact();
    config.jitter_seed = Some(1);
    tweak(&mut config);
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(HushNetPlugin { config })
        .insert_resource(session)
        .init_resource::<Inbox>()
        .add_systems(Update, collect.after(NetSystems::Subscriptions));
    hush_testkit::unclamp_virtual_time(&mut app);
    app.update();
    app
}

fn state(app: &App) -> ConnState {
    app.world().resource::<Connection>().state().clone()
}

fn now(app: &App) -> Duration {
    app.world().resource::<Time>().elapsed()
}

/// While reconnecting, jumps virtual time to the next attempt.
fn skip_backoff(app: &mut App) {
    if let ConnState::Reconnecting { retry_at, .. } = state(app) {
        let wait = retry_at.saturating_sub(now(app));
        step_app(app, wait);
    }
}

fn connect(app: &mut App) {
    app.world_mut().write_message(ConnectionIntent::Connect);
}

fn wait_connected(app: &mut App) {
    run_until(app, WAIT, "connected", |a| {
        a.world().resource::<Connection>().is_connected()
    });
}

fn thread(n: u8) -> ThreadId {
    ThreadId::parse(&format!("{n:02x}000000-0000-4000-8000-0000000000{n:02x}")).unwrap()
}

fn subscription(app: &App, t: ThreadId) -> SubState {
    let e = app.world().resource::<Subscriptions>().entity(t).unwrap();
    app.world().get::<Subscription>(e).unwrap().state.clone()
}

/// Creates the thread and posts one message over REST (the relay broadcasts it).
fn post(relay: &RelayFixture, t: ThreadId, ct: &str) {
    let rest = relay.rest();
    rest.create_thread(t);
    rest.post_message(t, ct, hush_testkit::rest::IV);
}

fn got_message(app: &App, ct: &str) -> bool {
    app.world()
        .resource::<Inbox>()
        .0
        .iter()
        .any(|f| matches!(f, ServerFrame::Message(m) if m.ciphertext == ct))
}

#[test]
fn connects_with_a_valid_token_and_learns_the_servers_features() {
    let relay = RelayFixture::start();
    let mut app = net_app(&relay.url(), Session::with_token(&relay.token()), |_| {});
    assert_eq!(state(&app), ConnState::Disconnected { reason: None });
    connect(&mut app);
    wait_connected(&mut app);
    let conn = app.world().resource::<Connection>();
    assert!(conn.server_has(hush_core::http::features::BEARER_HEADER));
    assert_eq!(conn.stats.opened, 1);
    // Connecting again while connected is a no-op: still one socket.
    connect(&mut app);
    advance(
        &mut app,
        Duration::from_secs(2),
        Duration::from_millis(100),
        Duration::from_millis(2),
    );
    assert_eq!(relay.get(|s| &s.ws_upgrades), 1);
    assert!(app.world().resource::<Connection>().is_connected());
}

#[test]
fn a_bad_token_ends_in_auth_failed_without_a_retry_storm() {
    let relay = RelayFixture::start();
    // No words to fall back on.
    let mut app = net_app(&relay.url(), Session::with_token("not-a-jwt"), |_| {});
    connect(&mut app);
    run_until(&mut app, WAIT, "auth failed", |a| {
        matches!(
            state(a),
            ConnState::Disconnected {
                reason: Some(DisconnectReason::AuthFailed(_))
            }
        )
    });
    // Ten minutes later nothing else has been tried.
    advance(
        &mut app,
        Duration::from_secs(600),
        Duration::from_secs(5),
        Duration::from_millis(1),
    );
    assert!(matches!(
        state(&app),
        ConnState::Disconnected {
            reason: Some(DisconnectReason::AuthFailed(_))
        }
    ));
    assert_eq!(
        relay.get(|s| &s.ws_upgrades),
        1,
        "one upgrade, no retry storm"
    );
    assert_eq!(relay.get(|s| &s.ws_auth_failures), 1);
    assert_eq!(relay.get(|s| &s.tokens_issued), 0);

    // Wrong words: one refresh attempt (refused), one auth (refused), then stop.
    let mut s = Session::with_token("not-a-jwt");
    s.set_words(Zeroizing::new(
        "abandon abandon abandon abandon abandon abandon".into(),
    ));
    let mut app = net_app(&relay.url(), s, |_| {});
    connect(&mut app);
    run_until(&mut app, WAIT, "auth failed", |a| {
        matches!(
            state(a),
            ConnState::Disconnected {
                reason: Some(DisconnectReason::AuthFailed(_))
            }
        )
    });
    advance(
        &mut app,
        Duration::from_secs(600),
        Duration::from_secs(5),
        Duration::from_millis(1),
    );
    assert_eq!(relay.get(|s| &s.ws_upgrades), 2);
    assert_eq!(relay.get(|s| &s.auth_failures), 1);
    let ConnState::Disconnected {
        reason: Some(DisconnectReason::AuthFailed(why)),
    } = state(&app)
    else {
        unreachable!()
    };
    assert!(why.contains("wrong words"), "{why}");
}

#[test]
fn relay_restart_follows_the_backoff_schedule_and_restores_subscriptions() {
    let mut relay = RelayFixture::start();
    let mut app = net_app(&relay.url(), Session::with_token(&relay.token()), |_| {});
    connect(&mut app);
    for t in [thread(1), thread(2)] {
        app.world_mut().write_message(SubscriptionIntent::Want(t));
    }
    wait_connected(&mut app);
    run_until(&mut app, WAIT, "subscribed", |a| {
        subscription(a, thread(1)) == SubState::Subscribed
            && subscription(a, thread(2)) == SubState::Subscribed
    });

    relay.stop();
    let mut delays = Vec::new();
    for _ in 0..7 {
        run_until(&mut app, WAIT, "reconnecting", |a| {
            matches!(state(a), ConnState::Reconnecting { .. })
        });
        let ConnState::Reconnecting { retry_at, attempt } = state(&app) else {
            unreachable!()
        };
        delays.push((retry_at - now(&app)).as_secs_f64().round() as u64);
        assert_eq!(attempt as usize, delays.len());
        assert_eq!(subscription(&app, thread(1)), SubState::Idle);
        // Nothing happens before the retry time; then an attempt starts.
        let wait = retry_at - now(&app) - Duration::from_millis(5);
        step_app(&mut app, wait);
        assert!(matches!(state(&app), ConnState::Reconnecting { .. }));
        step_app(&mut app, Duration::from_millis(5));
        assert!(
            matches!(state(&app), ConnState::Connecting { .. }),
            "{:?}",
            state(&app)
        );
    }
    assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);

    relay.restart();
    run_until(&mut app, WAIT, "connected again", |a| {
        skip_backoff(a);
        a.world().resource::<Connection>().is_connected()
    });
    run_until(&mut app, WAIT, "resubscribed", |a| {
        subscription(a, thread(1)) == SubState::Subscribed
            && subscription(a, thread(2)) == SubState::Subscribed
    });
    // The server really has both subscriptions again.
    post(&relay, thread(1), "AAAB");
    post(&relay, thread(2), "AAAC");
    run_until(&mut app, WAIT, "both broadcasts", |a| {
        got_message(a, "AAAB") && got_message(a, "AAAC")
    });
}

#[test]
fn a_dead_node_is_left_for_the_next_on_the_list_within_the_backoff() {
    // A port nobody listens on (bound, then let go): connecting is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", port.local_addr().unwrap());
    drop(port);
    let mut relay = RelayFixture::start();
    let live = relay.url();
    let mut app = net_app(
        &format!("{dead}, {live}"),
        Session::with_token(&relay.token()),
        |_| {},
    );
    let server = |a: &App| a.world().resource::<NetConfig>().server.to_string();
    let attempts = |a: &App| a.world().resource::<Connection>().stats.attempts;
    assert_eq!(server(&app), dead);
    connect(&mut app);
    app.world_mut()
        .write_message(SubscriptionIntent::Want(thread(1)));
    run_until(&mut app, WAIT, "the first node refused", |a| {
        matches!(state(a), ConnState::Reconnecting { .. })
    });
    // The next attempt goes to the next node, after the usual first wait.
    let ConnState::Reconnecting { retry_at, .. } = state(&app) else {
        unreachable!()
    };
    assert_eq!((retry_at - now(&app)).as_secs_f64().round(), 1.0);
    assert_eq!(server(&app), live);
    skip_backoff(&mut app);
    wait_connected(&mut app);
    assert_eq!(attempts(&app), 2);

    // This node dies: the client tries the other, which is still dead,
    // then comes back here once it is up again, and resubscribes.
    relay.kill();
    run_until(&mut app, WAIT, "reconnecting", |a| {
        matches!(state(a), ConnState::Reconnecting { .. })
    });
    assert_eq!(server(&app), dead);
    skip_backoff(&mut app);
    run_until(&mut app, WAIT, "the dead node refused", |a| {
        attempts(a) == 3 && matches!(state(a), ConnState::Reconnecting { .. })
    });
    assert_eq!(server(&app), live);
    relay.restart();
    run_until(&mut app, WAIT, "connected again", |a| {
        skip_backoff(a);
        a.world().resource::<Connection>().is_connected()
    });
    assert_eq!(server(&app), live);
    run_until(&mut app, WAIT, "resubscribed", |a| {
        subscription(a, thread(1)) == SubState::Subscribed
    });
    post(&relay, thread(1), "AAAB");
    run_until(&mut app, WAIT, "the broadcast", |a| got_message(a, "AAAB"));
}

#[test]
fn a_half_open_connection_is_found_by_the_heartbeat_and_replaced() {
    let relay = RelayFixture::start();
    let proxy = FaultProxy::start(relay.addr);
    let mut app = net_app(&proxy.url(), Session::with_token(&relay.token()), |_| {});
    connect(&mut app);
    wait_connected(&mut app);
    let first = app.world().resource::<Connection>().generation();
    // Let a ping/pong round trip happen, so liveness is fresh.
    advance(
        &mut app,
        Duration::from_secs(31),
        Duration::from_secs(1),
        Duration::from_millis(5),
    );
    std::thread::sleep(Duration::from_millis(50));
    step_app(&mut app, Duration::from_millis(1));
    assert!(app.world().resource::<Connection>().is_connected());
    let last = app
        .world()
        .resource::<Connection>()
        .last_received()
        .unwrap();
    assert!(
        now(&app) - last < Duration::from_secs(2),
        "the pong came back"
    );

    proxy.set_mode(ProxyMode::BlackHole);
    let t0 = now(&app);
    while app.world().resource::<Connection>().is_connected() {
        step_app(&mut app, Duration::from_millis(500));
        std::thread::sleep(Duration::from_millis(1));
        assert!(
            now(&app) - t0 <= Duration::from_secs(61),
            "not detected within 60 s"
        );
    }
    let detected = now(&app) - t0;
    assert!(
        detected >= Duration::from_secs(55),
        "detected too early: {detected:?}"
    );
    proxy.set_mode(ProxyMode::Pass);
    run_until(&mut app, WAIT, "connected again", |a| {
        skip_backoff(a);
        a.world().resource::<Connection>().is_connected()
    });
    let again = now(&app) - t0;
    assert!(
        again <= Duration::from_secs(62),
        "reconnected {again:?} after the link went silent"
    );
    assert_ne!(app.world().resource::<Connection>().generation(), first);
    assert_eq!(relay.get(|s| &s.ws_upgrades), 2);
}

#[test]
fn a_failed_attempt_says_why_in_words() {
    // A port nobody listens on, and a name that does not resolve.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    for (url, why) in [
        (format!("http://127.0.0.1:{port}"), "connection refused"),
        (
            "http://no-such-host.invalid:8000".to_owned(),
            "no such host",
        ),
    ] {
        let mut app = net_app(&url, Session::with_token("t"), |_| {});
        connect(&mut app);
        run_until(&mut app, WAIT, "a failed attempt", |a| {
            a.world().resource::<Connection>().last_failure.is_some()
        });
        let got = app
            .world()
            .resource::<Connection>()
            .last_failure
            .clone()
            .unwrap();
        assert!(got.contains(why), "{url}: {got}");
        assert!(matches!(state(&app), ConnState::Reconnecting { .. }));
    }
}

#[test]
fn a_client_disconnect_never_reconnects() {
    let relay = RelayFixture::start();
    let mut app = net_app(&relay.url(), Session::with_token(&relay.token()), |_| {});
    connect(&mut app);
    wait_connected(&mut app);
    app.world_mut().write_message(ConnectionIntent::Disconnect);
    step_app(&mut app, Duration::from_millis(1));
    assert_eq!(
        state(&app),
        ConnState::Disconnected {
            reason: Some(DisconnectReason::ClientRequested)
        }
    );
    advance(
        &mut app,
        Duration::from_secs(600),
        Duration::from_secs(5),
        Duration::from_millis(2),
    );
    assert_eq!(
        state(&app),
        ConnState::Disconnected {
            reason: Some(DisconnectReason::ClientRequested)
        }
    );
    assert_eq!(relay.get(|s| &s.ws_upgrades), 1);
    assert_eq!(app.world().resource::<Connection>().stats.attempts, 1);
}

#[test]
fn an_expired_token_is_replaced_and_the_connection_comes_up() {
    let relay = RelayFixture::start_with(|c| c.token_ttl = Duration::from_secs(1));
    let expired = relay.token();
    std::thread::sleep(Duration::from_millis(2100));
    let mut s = Session::with_token(&expired);
    s.set_words(Zeroizing::new(WORDS.into()));
    let mut app = net_app(&relay.url(), s, |_| {});
    connect(&mut app);
    // The refused upgrade is accepted first and closed with 4001 right after,
    // so `Connected` on the old token is a moment long: wait for the new one.
    run_until(&mut app, WAIT, "connected on a new token", |a| {
        a.world().resource::<Connection>().is_connected()
            && a.world().resource::<Session>().token() != Some(expired.as_str())
    });
    assert_eq!(
        relay.get(|s| &s.ws_auth_failures),
        1,
        "the expired token was refused once"
    );
    assert_eq!(
        relay.get(|s| &s.tokens_issued),
        1,
        "refresh refused, words accepted"
    );
    assert_eq!(relay.get(|s| &s.ws_upgrades), 2);
    assert_ne!(
        app.world().resource::<Session>().token(),
        Some(expired.as_str())
    );
}

#[test]
fn the_token_is_refreshed_before_it_expires() {
    let mut relay = RelayFixture::start_with(|c| c.token_ttl = Duration::from_secs(60));
    let mut app = net_app(&relay.url(), Session::default(), |c| {
        c.refresh_margin = Duration::from_secs(30);
    });
    app.world_mut().write_message(SessionIntent::Login {
        words: Zeroizing::new(WORDS.into()),
    });
    connect(&mut app);
    wait_connected(&mut app);
    assert_eq!(relay.get(|s| &s.tokens_issued), 1);
    // Not yet at 29 s.
    advance(
        &mut app,
        Duration::from_secs(29),
        Duration::from_secs(1),
        Duration::from_millis(5),
    );
    assert_eq!(relay.get(|s| &s.tokens_issued), 1);
    // 30 s before expiry the session refreshes, while the socket stays up.
    advance(
        &mut app,
        Duration::from_secs(2),
        Duration::from_secs(1),
        Duration::from_millis(5),
    );
    run_until(&mut app, WAIT, "refreshed", |_| {
        relay.get(|s| &s.tokens_issued) == 2
    });
    assert!(app.world().resource::<Connection>().is_connected());
    // The next connection uses the new token: no rejection.
    relay.restart();
    run_until(&mut app, WAIT, "connected again", |a| {
        skip_backoff(a);
        a.world().resource::<Connection>().is_connected()
            && a.world().resource::<Connection>().stats.opened == 2
    });
    assert_eq!(relay.get(|s| &s.ws_auth_failures), 0);
}

#[test]
fn a_stale_sockets_late_events_do_not_disturb_the_new_connection() {
    let relay = RelayFixture::start();
    let proxy = FaultProxy::start(relay.addr);
    let mut app = net_app(&proxy.url(), Session::with_token(&relay.token()), |_| {});
    connect(&mut app);
    wait_connected(&mut app);
    let old = app.world().resource::<Connection>().generation();
    proxy.reset_all();
    run_until(&mut app, WAIT, "connected again", |a| {
        skip_backoff(a);
        let c = a.world().resource::<Connection>();
        c.is_connected() && c.generation() != old
    });
    let live = app.world().resource::<Connection>().generation();
    let attempts = app.world().resource::<Connection>().stats.attempts;
    // The old socket's events arrive late.
    let tx = app.world().resource::<Connection>().transport_sender();
    for kind in [
        TransportEventKind::Frame(Ok(ServerFrame::Pong)),
        TransportEventKind::Opened(Default::default()),
        TransportEventKind::Closed(CloseKind::Frame {
            code: 1006,
            reason: String::new(),
        }),
        TransportEventKind::Closed(CloseKind::Frame {
            code: 4001,
            reason: "Invalid token".into(),
        }),
    ] {
        tx.send(TransportEvent {
            generation: old,
            kind,
        })
        .unwrap();
    }
    advance(
        &mut app,
        Duration::from_secs(5),
        Duration::from_millis(500),
        Duration::from_millis(2),
    );
    let c = app.world().resource::<Connection>();
    assert!(c.is_connected());
    assert_eq!(c.generation(), live);
    assert_eq!(c.stats.attempts, attempts);
    assert!(c.stats.stale_events >= 4);
    assert_eq!(relay.get(|s| &s.ws_auth_failures), 0);
}

#[test]
fn subscriptions_are_counted_per_view() {
    let relay = RelayFixture::start();
    let mut app = net_app(&relay.url(), Session::with_token(&relay.token()), |_| {});
    connect(&mut app);
    wait_connected(&mut app);
    let t = thread(7);
    // Two views want the thread; one goes away: still subscribed.
    app.world_mut().write_message(SubscriptionIntent::Want(t));
    app.world_mut().write_message(SubscriptionIntent::Want(t));
    run_until(&mut app, WAIT, "subscribed", |a| {
        subscription(a, t) == SubState::Subscribed
    });
    app.world_mut()
        .write_message(SubscriptionIntent::Release(t));
    step_app(&mut app, Duration::from_millis(1));
    assert_eq!(subscription(&app, t), SubState::Subscribed);
    post(&relay, t, "AAAD");
    run_until(&mut app, WAIT, "broadcast", |a| got_message(a, "AAAD"));
    // The last view goes: unsubscribed, nothing more arrives.
    app.world_mut()
        .write_message(SubscriptionIntent::Release(t));
    advance(
        &mut app,
        Duration::from_millis(300),
        Duration::from_millis(10),
        Duration::from_millis(3),
    );
    assert_eq!(subscription(&app, t), SubState::Idle);
    relay.rest().post_message(t, "AAAE", hush_testkit::rest::IV);
    advance(
        &mut app,
        Duration::from_millis(500),
        Duration::from_millis(10),
        Duration::from_millis(5),
    );
    assert!(!got_message(&app, "AAAE"));
}

#[test]
fn a_refused_subscription_fails_once_and_does_not_loop() {
    let relay = RelayFixture::start_with(|c| c.limits.max_subscriptions = 1);
    let mut app = net_app(&relay.url(), Session::with_token(&relay.token()), |_| {});
    connect(&mut app);
    wait_connected(&mut app);
    app.world_mut()
        .write_message(SubscriptionIntent::Want(thread(1)));
    app.world_mut()
        .write_message(SubscriptionIntent::Want(thread(2)));
    run_until(&mut app, WAIT, "one subscribed, one failed", |a| {
        subscription(a, thread(1)) == SubState::Subscribed
            && matches!(subscription(a, thread(2)), SubState::Failed(_))
    });
    let out = app.world().resource::<Connection>().stats.frames_out;
    advance(
        &mut app,
        Duration::from_secs(20),
        Duration::from_secs(1),
        Duration::from_millis(2),
    );
    // Only heartbeat pings went out since (none before 30 s), no subscribe retries.
    assert_eq!(app.world().resource::<Connection>().stats.frames_out, out);
}

#[test]
fn offline_pauses_retries_and_online_retries_at_once() {
    let mut relay = RelayFixture::start();
    let mut app = net_app(&relay.url(), Session::with_token(&relay.token()), |_| {});
    connect(&mut app);
    wait_connected(&mut app);
    relay.stop();
    run_until(&mut app, WAIT, "reconnecting", |a| {
        matches!(state(a), ConnState::Reconnecting { .. })
    });
    app.world_mut()
        .write_message(NetworkStatus { online: false });
    step_app(&mut app, Duration::from_millis(1));
    assert_eq!(
        state(&app),
        ConnState::Disconnected {
            reason: Some(DisconnectReason::Offline)
        }
    );
    let attempts = app.world().resource::<Connection>().stats.attempts;
    advance(
        &mut app,
        Duration::from_secs(300),
        Duration::from_secs(5),
        Duration::from_millis(1),
    );
    assert_eq!(
        app.world().resource::<Connection>().stats.attempts,
        attempts,
        "paused"
    );
    relay.restart();
    app.world_mut()
        .write_message(NetworkStatus { online: true });
    // No backoff wait: connected within real time alone, virtual time barely moves.
    let t0 = now(&app);
    wait_connected(&mut app);
    assert!(
        now(&app) - t0 < Duration::from_millis(900),
        "{:?}",
        now(&app) - t0
    );
    assert_eq!(Stats::get(&relay.stats().ws_auth_failures), 0);
}

#[test]
fn a_stock_server_is_reached_by_query_token_and_its_refused_upgrade_is_an_auth_failure() {
    let relay = RelayFixture::start_with(|c| c.stock = true);
    let mut app = net_app(&relay.url(), Session::with_token(&relay.token()), |_| {});
    connect(&mut app);
    wait_connected(&mut app);
    assert!(
        !app.world()
            .resource::<Connection>()
            .server_has(hush_core::http::features::BEARER_HEADER)
    );
    // A bad token: the upgrade is refused with HTTP 403, no close code.
    let mut app = net_app(&relay.url(), Session::with_token("not-a-jwt"), |_| {});
    connect(&mut app);
    run_until(&mut app, WAIT, "auth failed", |a| {
        matches!(
            state(a),
            ConnState::Disconnected {
                reason: Some(DisconnectReason::AuthFailed(_))
            }
        )
    });
    advance(
        &mut app,
        Duration::from_secs(300),
        Duration::from_secs(5),
        Duration::from_millis(1),
    );
    assert_eq!(
        relay.get(|s| &s.ws_auth_failures),
        1,
        "no retry with the refused token"
    );
}

#[test]
fn a_stock_server_that_goes_silent_after_a_bad_frame_is_caught_by_the_heartbeat() {
    let relay = RelayFixture::start_with(|c| c.stock = true);
    let mut app = net_app(&relay.url(), Session::with_token(&relay.token()), |_| {});
    connect(&mut app);
    wait_connected(&mut app);
    let first = app.world().resource::<Connection>().generation();
    // Something sends a frame the server cannot parse: it stops answering,
    // without closing the socket.
    let conn = app.world().resource::<Connection>();
    assert!(conn.send_raw_for_tests("not json"));
    let t0 = now(&app);
    while app.world().resource::<Connection>().generation() == first
        && app.world().resource::<Connection>().is_connected()
    {
        step_app(&mut app, Duration::from_millis(500));
        std::thread::sleep(Duration::from_millis(1));
        assert!(
            now(&app) - t0 <= Duration::from_secs(61),
            "silence not noticed"
        );
    }
    run_until(&mut app, WAIT, "connected again", |a| {
        skip_backoff(a);
        let c = a.world().resource::<Connection>();
        c.is_connected() && c.generation() != first
    });
}

/// One unmasked server→client WebSocket frame.
fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n < 65_536 => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

#[test]
fn a_server_that_sends_garbage_is_survived_frame_by_frame() {
    let relay = RelayFixture::start();
    let proxy = FaultProxy::start(relay.addr);
    let mut app = net_app(&proxy.url(), Session::with_token(&relay.token()), |_| {});
    connect(&mut app);
    app.world_mut()
        .write_message(SubscriptionIntent::Want(thread(1)));
    wait_connected(&mut app);
    run_until(&mut app, WAIT, "subscribed", |a| {
        subscription(a, thread(1)) == SubState::Subscribed
    });
    let generation = app.world().resource::<Connection>().generation();
    let t1 = thread(1);
    let huge = format!(
        r#"{{"type":"message","message":{{"id":"{}"#,
        "A".repeat(2 << 20)
    );
    // Each is skipped and counted; none ends the connection.
    let table: Vec<(&str, Vec<u8>)> = vec![
        ("binary frame", ws_frame(2, b"{\"type\":\"pong\"}")),
        ("not JSON", ws_frame(1, b"hello")),
        ("truncated JSON", ws_frame(1, br#"{"type":"message","message":{"id":"#)),
        ("empty text", ws_frame(1, b"")),
        ("type is a number", ws_frame(1, br#"{"type":7}"#)),
        ("message is a number", ws_frame(1, br#"{"type":"message","message":5}"#)),
        (
            "bad thread id",
            ws_frame(1, br#"{"type":"subscribed","thread_id":"NOT-A-THREAD"}"#),
        ),
        (
            "iv of the wrong length",
            ws_frame(
                1,
                format!(
                    r#"{{"type":"message","message":{{"id":"m1","thread_id":"{t1}","ciphertext":"AAAA","iv":"AAAA","created_at":"2026-01-01T00:00:00Z"}}}}"#
                )
                .as_bytes(),
            ),
        ),
        ("2 MiB truncated", ws_frame(1, huge.as_bytes())),
    ];
    for (what, bytes) in &table {
        assert_eq!(proxy.inject_down(bytes), 1, "{what}: one upgraded link");
    }
    let want = table.len() as u64;
    run_until(&mut app, WAIT, "every bad frame counted", |a| {
        a.world().resource::<Connection>().stats.malformed_in >= want
    });
    let c = app.world().resource::<Connection>();
    assert_eq!(c.stats.malformed_in, want);
    assert!(c.is_connected());
    assert_eq!(c.generation(), generation, "no reconnect for bad frames");
    // An unknown frame type is a typed value, not an error.
    proxy.inject_down(&ws_frame(1, br#"{"type":"from_the_future","x":1}"#));
    // Real traffic still flows on the same socket.
    post(&relay, thread(1), "AAAB");
    run_until(&mut app, WAIT, "the real message", |a| {
        got_message(a, "AAAB")
    });
    assert_eq!(
        app.world().resource::<Connection>().stats.malformed_in,
        want
    );
    // Invalid UTF-8 in a text frame breaks the WebSocket itself: the socket
    // is dropped and replaced, and the subscription comes back.
    proxy.inject_down(&ws_frame(1, &[b'{', 0xff, 0xfe, b'}']));
    run_until(&mut app, WAIT, "a new connection", |a| {
        skip_backoff(a);
        let c = a.world().resource::<Connection>();
        c.is_connected() && c.generation() != generation
    });
    run_until(&mut app, WAIT, "resubscribed", |a| {
        subscription(a, thread(1)) == SubState::Subscribed
    });
    post(&relay, thread(1), "AAAC");
    run_until(&mut app, WAIT, "traffic after the reconnect", |a| {
        got_message(a, "AAAC")
    });
}
