//! Fault injection: 2 000 messages between two clients while 50 faults,
//! chosen by a seeded generator (reproducible), hit their connections through
//! TCP proxies: resets, cuts mid-frame, black holes (half-open), delays and
//! refused connections. Every message must end up exactly once in both
//! clients' stores and once on the server, in order per sender.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hush_chat::headless::Client;
use hush_chat::threads::ThreadLog;
use hush_core::policy::backoff::BackoffPolicy;
use hush_core::policy::heartbeat::HeartbeatPolicy;
use hush_net::{NetConfig, ServerUrl};
use hush_store::{RedbStore, Store};
use hush_testkit::{FaultProxy, ProxyMode, RelayFixture};
use uuid::Uuid;

/// Fast timers, so 50 faults fit in a test run: the behaviour is the same.
fn fast(url: &str, seed: u64) -> NetConfig {
    let mut c = NetConfig::new(ServerUrl::parse(url).unwrap());
    c.policy.backoff = BackoffPolicy {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(400),
        jitter: true,
        max_attempts: None,
    };
    c.policy.heartbeat = HeartbeatPolicy {
        ping_every: Duration::from_millis(400),
        dead_after: Duration::from_millis(1500),
    };
    c.policy.connect_timeout = Duration::from_secs(3);
    c.jitter_seed = Some(seed);
    c
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn client(dir: &std::path::Path, name: &str, url: &str, seed: u64) -> (Client, Arc<dyn Store>) {
    let store: Arc<dyn Store> =
        Arc::new(RedbStore::open(&dir.join(format!("{name}.redb"))).unwrap());
    let mut c = Client::with_config(fast(url, seed), store.clone());
    c.unlock_as(&words(), name).unwrap();
    (c, store)
}

/// What a client that did not settle is waiting for, for the failure message.
fn where_it_stands(c: &mut Client) -> String {
    let w = c.app.world_mut();
    let conn = w.resource::<hush_net::Connection>();
    let generation = conn.generation();
    let mut out = format!(
        "connection {:?} (generation {generation}, last failure {:?})",
        conn.state(),
        conn.last_failure
    );
    let session = w.resource::<hush_net::Session>();
    out += &format!(
        ", session token {} busy {} error {:?}",
        session.token().is_some(),
        session.busy(),
        session.last_error
    );
    out += &format!(", outbox {}", w.resource::<hush_chat::Outbox>().len());
    let mut q = w.query::<(&hush_chat::ThreadSync, &hush_net::Subscription)>();
    for (s, sub) in q.iter(w) {
        out += &format!(
            ", thread caught up {} fetch {:?} run {} on server {} subscription {:?}",
            s.is_caught_up(generation),
            s.machine.fetch(),
            s.machine.run(),
            s.machine.on_server(),
            sub.state
        );
    }
    out
}

fn check(log: &ThreadLog, n: usize, who: &str) {
    for sender in ["A", "B"] {
        let seq: Vec<usize> = log
            .messages
            .iter()
            .filter_map(|m| m.content.strip_prefix(&format!("{sender} ")))
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(seq.len(), n, "{who} has {} of {sender}'s {n}", seq.len());
        if let Some(i) = seq.iter().enumerate().position(|(i, v)| i != *v) {
            let near = &log.messages[..];
            let around: Vec<String> = near
                .iter()
                .filter(|m| m.content.starts_with(&format!("{sender} ")))
                .skip(i.saturating_sub(3))
                .take(7)
                .map(|m| format!("{} @{} #{}", m.content, m.created_at, m.id))
                .collect();
            panic!(
                "{who}: {sender}'s messages out of order or duplicated from #{i}: {:?}",
                around
            );
        }
    }
    assert!(log.pending.is_empty(), "{who} still has pending sends");
}

#[test]
fn two_thousand_messages_through_fifty_faults_arrive_exactly_once_in_order() {
    const PER_SENDER: usize = 1000;
    const FAULTS: usize = 50;
    let seed = std::env::var("HUSH_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d);
    let mut rng = Rng(seed);
    let relay = RelayFixture::start();
    let (pa, pb) = (FaultProxy::start(relay.addr), FaultProxy::start(relay.addr));
    let dir = tempfile::tempdir().unwrap();
    let (mut a, sa) = client(dir.path(), "A", &pa.url(), seed ^ 1);
    let (mut b, sb) = client(dir.path(), "B", &pb.url(), seed ^ 2);
    befriend(&mut a, &mut b);
    let (ida, idb) = (a.user_id(), b.user_id());
    let t = thread_of(&a, &b);
    let proxies = [&pa, &pb];
    let mut restore: [Option<Instant>; 2] = [None, None];
    let mut faults = Vec::new();
    let mut sent = (0usize, 0usize);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    // A fault every 40 messages sent (2 000 / 40 = 50).
    let fault_every = (2 * PER_SENDER) / FAULTS;
    loop {
        let now = Instant::now();
        for (i, r) in restore.iter_mut().enumerate() {
            if r.is_some_and(|at| now >= at) {
                proxies[i].set_mode(ProxyMode::Pass);
                *r = None;
            }
        }
        // Send in small bursts, interleaved.
        for _ in 0..2 {
            if sent.0 < PER_SENDER {
                send(&mut a, idb, &format!("A {}", sent.0));
                sent.0 += 1;
            }
            if sent.1 < PER_SENDER {
                send(&mut b, ida, &format!("B {}", sent.1));
                sent.1 += 1;
            }
        }
        let total = sent.0 + sent.1;
        if faults.len() < FAULTS && total >= (faults.len() + 1) * fault_every {
            let which = rng.below(2) as usize;
            let p = proxies[which];
            let kind = match rng.below(5) {
                0 => {
                    p.reset_all();
                    "reset".to_string()
                }
                1 => {
                    let bytes = rng.below(3000);
                    p.set_mode(ProxyMode::CutAfter(bytes));
                    restore[which] = Some(now + Duration::from_millis(200 + rng.below(600)));
                    format!("cut after {bytes} bytes")
                }
                2 => {
                    p.set_mode(ProxyMode::BlackHole);
                    let ms = 300 + rng.below(2500);
                    restore[which] = Some(now + Duration::from_millis(ms));
                    format!("black hole {ms} ms")
                }
                3 => {
                    let d = 5 + rng.below(60);
                    p.set_mode(ProxyMode::Delay(Duration::from_millis(d)));
                    restore[which] = Some(now + Duration::from_millis(500 + rng.below(1500)));
                    format!("delay {d} ms")
                }
                _ => {
                    p.set_mode(ProxyMode::Refuse);
                    p.reset_all();
                    restore[which] = Some(now + Duration::from_millis(200 + rng.below(800)));
                    "refuse".to_string()
                }
            };
            faults.push(format!(
                "{} on {}",
                kind,
                if which == 0 { "A" } else { "B" }
            ));
        }
        a.step();
        b.step();
        let done = sent == (PER_SENDER, PER_SENDER)
            && faults.len() == FAULTS
            && log(&a, idb).messages.len() >= 2 * PER_SENDER
            && log(&b, ida).messages.len() >= 2 * PER_SENDER
            && log(&a, idb).pending.is_empty()
            && log(&b, ida).pending.is_empty();
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled after 300 s: A has {} (+{} pending), B has {} (+{} pending); \
             A: {}; B: {}; faults: {faults:?}",
            log(&a, idb).messages.len(),
            log(&a, idb).pending.len(),
            log(&b, ida).messages.len(),
            log(&b, ida).pending.len(),
            where_it_stands(&mut a),
            where_it_stands(&mut b),
        );
    }
    // Let late duplicates, if any, show up before checking.
    for p in proxies {
        p.set_mode(ProxyMode::Pass);
    }
    for _ in 0..300 {
        a.step();
        b.step();
    }
    check(log(&a, idb), PER_SENDER, "A");
    check(log(&b, ida), PER_SENDER, "B");
    assert_eq!(
        sa.message_count(t).unwrap(),
        2 * PER_SENDER as u64,
        "A's store"
    );
    assert_eq!(
        sb.message_count(t).unwrap(),
        2 * PER_SENDER as u64,
        "B's store"
    );
    assert_eq!(rest_count(&relay, t), 2 * PER_SENDER as u64, "the server");
    assert_eq!(faults.len(), FAULTS);
    eprintln!(
        "fault injection (seed {seed:#x}): {} messages, {} faults, {:.1} s, {} reconnects at the proxies; faults: {faults:?}",
        2 * PER_SENDER,
        faults.len(),
        started.elapsed().as_secs_f64(),
        pa.accepted() + pb.accepted()
    );
    let _ = Uuid::nil();
}
