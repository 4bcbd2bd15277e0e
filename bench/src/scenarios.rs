//! The scenarios. Shared pieces first, then one function per scenario.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use futures_util::{SinkExt, StreamExt};
use hush_chat::headless::Client;
use hush_chat::threads::{ThreadLog, ThreadSync};
use hush_chat::{ProfileStore, SendIntent, Threads};
use hush_core::ThreadId;
use hush_core::crypto::{AeadKey, VaultKey};
use hush_core::payload::{ContactRecord, LocalIdentity, MessagePayload};
use hush_core::wire::{ClientFrame, OutgoingMessage};
use hush_net::{Connection, SubState, Subscription, Subscriptions};
use hush_store::{ProfileMeta, RedbStore, Store, StoredMessage, ThreadRecord};
use hush_testkit::{RelayFixture, WORDS};

use crate::cpu::{client_cpu, thread_cpu};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;
use zeroize::Zeroizing;

pub struct Report {
    pub summary: String,
    pub json: Value,
}

const USAGE: &str = "\
hush-bench: hush's benchmarks, each against a real hush-relay on loopback.

usage: hush-bench [SCENARIO...] [--json]

scenarios (all of them when none is named):
  inbound      messages a client takes in per second, beside a bare WebSocket client
  latency      send intent to decrypted in the peer at 1 000 msg/s, beside the relay hop
  recovery     a relay restart with a client in backoff: reconnect, catch-up, lost, duplicated
  memory       a headless client's resident memory holding a 100 000-message thread
  history      opening a profile with 100 000 stored messages beside an empty one
  history-receive  CPU per live message with 100 000 older ones stored, beside none
  catchup      a new device catching up on 50 000 messages under the relay's rate limits
  frame        one egui pass of the chat screen with a 100 000-message thread
  startup      cold start to connected, Argon2id alone, a full unlock
  idle         the real window idle under Xvfb (needs the release `hush` beside this)
  idle-listen  an idle `hush listen`: CPU and thread wake-ups
  relay-conns  the relay's memory per idle WebSocket, and after they close
  search       find in a 100 000-message thread: the first search, then each query
  bundle       the browser bundle's sizes, raw and as sent (needs web/dist)
  store        (diagnostic, not in `all`) one redb commit's cost, durable and relaxed
  fanout-engines  (not in `all`; needs HUSH_BENCH_PG and nats-server) PostgreSQL NOTIFY beside NATS
  cluster      (not in `all`; needs HUSH_BENCH_PG) nodes on one PostgreSQL: same- and cross-node hop,
               a client's failover, inbound with 1, 2 and 3 nodes

--json       one JSON object per scenario instead of a summary line

environment:
  HUSH_BENCH_FSYNC_MS=N          every durable commit of the clients' stores sleeps N ms (a slow disk)
  HUSH_BENCH_FSYNC_PER_ENTRY=1   with it: one fsync per queued message (the cost before group commits)
  HUSH_BENCH_STORE=memory        the in-memory store instead of redb (a diagnostic)
";

pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    if let Some(bad) = args.iter().find(|a| a.starts_with('-') && *a != "--json") {
        eprintln!("hush-bench: unknown option {bad}\n\n{USAGE}");
        std::process::exit(2);
    }
    let as_json = args.iter().any(|a| a == "--json");
    let picked: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    if let [step @ ("memory-setup" | "memory-child"), dir, n] = picked.as_slice() {
        let dir = std::path::Path::new(dir);
        let n = n.parse().expect("a message count");
        if *step == "memory-setup" {
            memory_setup(dir, n);
        } else {
            println!("{}", memory_child(dir, n));
        }
        return;
    }
    if let ["relay-child", buffer] = picked.as_slice() {
        crate::relay_conns::relay_child(buffer.parse().expect("a buffer size"));
        return;
    }
    if let ["history-child", dir] = picked.as_slice() {
        println!(
            "{}",
            crate::history::history_child(std::path::Path::new(dir))
        );
        return;
    }
    let all = [
        "inbound",
        "latency",
        "recovery",
        "memory",
        "history",
        "history-receive",
        "catchup",
        "frame",
        "startup",
        "idle",
        "idle-listen",
        "relay-conns",
        "search",
        "bundle",
    ];
    let chosen: Vec<&str> = if picked.is_empty() || picked == ["all"] {
        all.to_vec()
    } else {
        picked
    };
    let started = Instant::now();
    for s in chosen {
        let r = match s {
            "inbound" => inbound(100_000),
            "latency" => latency(1000, 10),
            "recovery" => recovery(1000),
            "memory" => memory(100_000),
            "history" => crate::history::history(100_000),
            "history-receive" => crate::history::history_receive(20_000, 100_000),
            "catchup" => crate::catchup::catchup(50_000),
            "frame" => frame(100_000),
            "startup" => startup(),
            "idle" => crate::idle::idle(),
            "idle-listen" => crate::idle::idle_listen(),
            "relay-conns" => crate::relay_conns::relay_conns(),
            "search" => crate::search::search(100_000),
            "bundle" => bundle(),
            "store" => store_costs(2000),
            "fanout-engines" => crate::fanout_engines::fanout_engines(),
            "cluster" => crate::cluster::cluster(),
            other => {
                eprintln!("unknown scenario {other:?}; known: {all:?}");
                std::process::exit(2);
            }
        };
        if as_json {
            println!(
                "{}",
                json!({ "scenario": s, "summary": r.summary, "result": r.json })
            );
        } else {
            println!("{s:>9}: {}", r.summary);
        }
    }
    eprintln!("(all done in {:.0} s)", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------- helpers

pub(crate) fn words() -> Zeroizing<String> {
    Zeroizing::new(WORDS.to_owned())
}

fn relay() -> RelayFixture {
    RelayFixture::start_with(|c| {
        // The burst must not count a busy reader as a slow one.
        c.queue_len = 1_000_000;
    })
}

/// The raw peers' runtime (its threads are not the client's, see `cpu.rs`).
pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-peer")
        .enable_all()
        .build()
        .expect("runtime")
}

/// A profile's store for the clients of the bench. HUSH_BENCH_STORE=memory
/// swaps redb for the in-memory store: a diagnostic, to tell storage cost
/// from the rest.
fn chat_store(dir: &std::path::Path, name: &str) -> Arc<dyn Store> {
    if std::env::var("HUSH_BENCH_STORE").as_deref() == Ok("memory") {
        Arc::new(hush_store::MemoryStore::new())
    } else {
        Arc::new(RedbStore::open(&dir.join(format!("{name}.redb"))).expect("store"))
    }
}

fn chat_client(url: &str, dir: &std::path::Path, name: &str) -> Client {
    let store = crate::slow_disk::SlowDisk::from_env(chat_store(dir, name));
    let mut c = Client::new(url, store, None).expect("client");
    c.unlock_as(&words(), name).expect("unlock");
    c
}

fn thread_entity(c: &Client, t: ThreadId) -> Option<Entity> {
    c.app.world().resource::<Threads>().entity(t)
}

pub(crate) fn log_len(c: &Client, t: ThreadId) -> usize {
    thread_entity(c, t)
        .and_then(|e| c.app.world().get::<ThreadLog>(e))
        .map_or(0, |l| l.messages.len())
}

/// Subscribed and caught up on the current connection.
fn ready(c: &Client, t: ThreadId) -> bool {
    let w = c.app.world();
    let conn = w.resource::<Connection>();
    let Some(e) = thread_entity(c, t) else {
        return false;
    };
    let sub = w
        .resource::<Subscriptions>()
        .entity(t)
        .and_then(|e| w.get::<Subscription>(e));
    conn.is_connected()
        && sub.is_some_and(|s| s.state == SubState::Subscribed)
        && w.get::<ThreadSync>(e)
            .is_some_and(|s| s.is_caught_up(conn.generation()))
}

fn spin_until(c: &mut Client, timeout: Duration, mut pred: impl FnMut(&Client) -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        c.app.update();
        if pred(c) {
            return true;
        }
    }
    false
}

fn rest(relay: &RelayFixture, path: &str, body: Value) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}{path}", relay.url()))
        .bearer_auth(relay.token())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .expect("request");
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

pub(crate) fn sealed_frames(
    key: &AeadKey,
    t: ThreadId,
    sender: Uuid,
    n: usize,
    prefix: &str,
) -> Vec<String> {
    (0..n)
        .map(|i| {
            let s = key.seal_json(&MessagePayload {
                sender_id: sender,
                sender_name: "bench".into(),
                content: format!("{prefix} {i}"),
                timestamp: i as i64,
            });
            ClientFrame::Message(OutgoingMessage {
                thread_id: t,
                ciphertext: s.ciphertext,
                iv: s.iv,
                client_message_id: None,
            })
            .to_json()
        })
        .collect()
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn ws(relay_ws: &str, token: &str) -> Ws {
    let (s, _) = tokio_tungstenite::connect_async(format!("{relay_ws}?token={token}"))
        .await
        .expect("ws");
    s
}

/// A raw sender that writes all `frames` as fast as the socket takes them,
/// then keeps reading so the connection is not dropped.
pub(crate) fn send_burst(rt: &tokio::runtime::Runtime, relay: &RelayFixture, frames: Vec<String>) {
    let (ws_url, token) = (format!("ws://{}/ws", relay.addr), relay.token());
    rt.spawn(async move {
        let mut s = ws(&ws_url, &token).await;
        for f in frames {
            s.feed(Message::text(f)).await.unwrap();
        }
        s.flush().await.unwrap();
        while s.next().await.is_some() {}
    });
}

/// Subscribes to `threads` and waits until each is confirmed.
pub(crate) async fn subscribe(s: &mut Ws, threads: &[ThreadId]) {
    for t in threads {
        let f = ClientFrame::Subscribe { thread_id: *t }.to_json();
        s.send(Message::text(f)).await.unwrap();
    }
    let mut left = threads.len();
    while left > 0 {
        match s.next().await {
            Some(Ok(Message::Text(t))) if t.as_str().contains("\"subscribed\"") => left -= 1,
            Some(Ok(_)) => {}
            other => panic!("subscribing: {other:?}"),
        }
    }
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A client's thread with a peer that is not a client (a raw sender).
pub(crate) struct Setup {
    pub relay: RelayFixture,
    pub dir: tempfile::TempDir,
    pub b: Client,
    pub peer: Uuid,
    pub t: ThreadId,
    pub key: AeadKey,
}

/// Makes `to` a new device of the profile in `from`: its identity and
/// contacts, no messages and no cursors (everything is caught up again).
pub(crate) fn new_device_of(from: &dyn Store, to: &dyn Store) {
    to.set_profile(&from.profile().unwrap()).unwrap();
    for (peer, c) in from.contacts().unwrap() {
        to.put_contact(peer, &c).unwrap();
    }
}

pub(crate) fn setup() -> Setup {
    let relay = relay();
    let dir = tempfile::tempdir().unwrap();
    let mut b = chat_client(&relay.url(), dir.path(), "b");
    let peer = Uuid::new_v4();
    b.add_contact(&peer.to_string(), "sender").unwrap();
    assert!(b.wait_thread(peer));
    let t = ThreadId::for_pair(&b.user_id(), &peer);
    let key = VaultKey::derive(WORDS, &relay.kdf_salt())
        .unwrap()
        .thread_key(&peer, &b.user_id());
    rest(
        &relay,
        "/api/threads",
        json!({ "id": t, "ciphertext": "AAAA", "iv": "AAECAwQFBgcICQoL" }),
    );
    assert!(
        spin_until(&mut b, Duration::from_secs(30), |b| ready(b, t)),
        "b never caught up"
    );
    Setup {
        relay,
        dir,
        b,
        peer,
        t,
        key,
    }
}

// ---------------------------------------------------------------- 1. inbound burst

fn inbound(n: usize) -> Report {
    let Setup {
        relay,
        dir,
        mut b,
        peer,
        t,
        key,
    } = setup();
    let frames = sealed_frames(&key, t, peer, n, "burst");
    let rt = rt();
    let ws_url = format!("ws://{}/ws", relay.addr);
    let token = relay.token();
    // Baseline: a bare WebSocket client that only receives and parses.
    let (base_tx, base_rx) = std::sync::mpsc::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    {
        let (ws_url, token) = (ws_url.clone(), token.clone());
        rt.spawn(async move {
            let mut s = ws(&ws_url, &token).await;
            subscribe(&mut s, &[t]).await;
            let _ = ready_tx.send(());
            let mut got = 0usize;
            let mut first = None;
            while let Some(Ok(m)) = s.next().await {
                if let Message::Text(txt) = m {
                    let v: Value = serde_json::from_str(txt.as_str()).unwrap();
                    if v["type"] == "message" {
                        first.get_or_insert_with(Instant::now);
                        got += 1;
                        if got == n {
                            let _ = base_tx.send((first.unwrap(), Instant::now()));
                            return;
                        }
                    }
                }
            }
        });
    }
    ready_rx.recv().unwrap();
    let start = Instant::now();
    send_burst(&rt, &relay, frames);
    let mut b_first = None;
    // The client's CPU for the burst, every thread of it (updates, the
    // network runtime's frame parsing, Bevy's pools), from the first send to
    // the last message shown. Its loop parks between updates as `hush
    // listen` does, so waiting costs what it costs a user, and like it takes
    // the messages it was handed each update (a collection nobody empties
    // would grow by 100 000 copies and bill the client for it).
    let cpu0 = client_cpu();
    let end = Instant::now() + Duration::from_secs(600);
    let mut updates = 0u64;
    let done = loop {
        b.step();
        b.seen().received.clear();
        updates += 1;
        let l = log_len(&b, t);
        if l > 0 && b_first.is_none() {
            b_first = Some(Instant::now());
        }
        if l >= n {
            break true;
        }
        if Instant::now() > end {
            break false;
        }
    };
    assert!(done, "the client did not receive the burst");
    let b_done = Instant::now();
    let b_cpu = client_cpu() - cpu0;
    let (base_first, base_done) = base_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("baseline finished");
    let relay_stored = relay.get(|s| &s.messages_stored);
    let b_rate = n as f64 / (b_done - start).as_secs_f64();
    let base_rate = n as f64 / (base_done - start).as_secs_f64();
    // The same frames, decoupled from the relay's pace: how fast the client
    // takes a page-sized backlog (catch-up) on a new device.
    let src = b.app.world().resource::<ProfileStore>().0.clone();
    drop(b);
    let fresh = chat_store(dir.path(), "b2");
    new_device_of(&*src, &*fresh);
    drop(src);
    let mut b2 = Client::new(&relay.url(), fresh, None).unwrap();
    b2.unlock(&words()).unwrap();
    let cu_start = Instant::now();
    let cu_cpu0 = client_cpu();
    while log_len(&b2, t) < n {
        assert!(
            cu_start.elapsed() < Duration::from_secs(600),
            "catch-up did not finish"
        );
        b2.step();
        b2.seen().received.clear();
    }
    let cu_rate = n as f64 / cu_start.elapsed().as_secs_f64();
    let cu_cpu_rate = n as f64 / (client_cpu() - cu_cpu0);
    let ratio = b_rate / base_rate;
    let cpu_rate = n as f64 / b_cpu;
    let target = b_rate >= 100_000.0 && ratio >= 0.5;
    // Issue 18: the receive path's cost, whatever the relay's pace.
    let cpu_target = cpu_rate >= 100_000.0;
    Report {
        summary: format!(
            "{n} msgs live: client {b_rate:.0} msg/s, bare WebSocket baseline {base_rate:.0} msg/s, ratio {ratio:.2} \
             (relay stored {relay_stored}); the client used {b_cpu:.3} s of CPU, every thread ({cpu_rate:.0} msg per CPU-second; target ≥100000: {}) in {updates} updates; \
             new-device catch-up over REST {cu_rate:.0} msg/s ({cu_cpu_rate:.0} msg per CPU-second); \
             live-rate target ≥100000 msg/s and ≥0.5× the bare client (relay-bound, see BENCHMARKS.md): {}",
            if cpu_target { "met" } else { "MISSED" },
            if target { "met" } else { "MISSED" }
        ),
        json: json!({
            "messages": n,
            "client_cpu_s_all_threads": b_cpu,
            "client_msgs_per_cpu_s": cpu_rate,
            "client_updates": updates,
            "client_msgs_per_s": b_rate,
            "baseline_msgs_per_s": base_rate,
            "ratio": ratio,
            "client_first_to_last_s": (b_done - b_first.unwrap_or(start)).as_secs_f64(),
            "baseline_first_to_last_s": (base_done - base_first).as_secs_f64(),
            "catchup_msgs_per_s": cu_rate,
            "catchup_msgs_per_cpu_s": cu_cpu_rate,
            "target_met": target,
            "cpu_target_met": cpu_target,
        }),
    }
}

// ---------------------------------------------------------------- 2. latency

fn latency(rate: u64, secs: u64) -> Report {
    let relay = relay();
    let dir = tempfile::tempdir().unwrap();
    let n = (rate * secs) as usize;
    // Each client runs its own loop on its own thread, as two devices do:
    // A's durable commit before a send must not hold back B's update. B
    // sleeps until a frame arrives (`step_for`), like `hush listen`; A
    // sleeps until its next send is due, like a window woken by a key.
    let (a_id_tx, a_id_rx) = crossbeam_channel::bounded::<Uuid>(1);
    let (from_b, events) = crossbeam_channel::unbounded::<BEvent>();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let receiver = {
        let (url, path, stop) = (relay.url(), dir.path().to_owned(), stop.clone());
        std::thread::spawn(move || {
            let mut b = chat_client(&url, &path, "b");
            let _ = from_b.send(BEvent::Id(b.user_id()));
            let Ok(ida) = a_id_rx.recv() else { return };
            b.add_contact(&ida.to_string(), "a").unwrap();
            assert!(b.wait_thread(ida), "B has no thread with A");
            let t = ThreadId::for_pair(&ida, &b.user_id());
            let mut warm = false;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                b.step_for(Duration::from_millis(20));
                if !warm {
                    if log_len(&b, t) == 1 && ready(&b, t) {
                        b.seen().received.clear();
                        warm = true;
                        let _ = from_b.send(BEvent::Ready);
                    }
                    continue;
                }
                let now = Instant::now();
                for m in b.seen().received.drain(..) {
                    if let Some(i) = m
                        .message
                        .content
                        .strip_prefix("lat ")
                        .and_then(|s| s.parse::<usize>().ok())
                    {
                        let _ = from_b.send(BEvent::Got(i, now));
                    }
                }
            }
        })
    };
    let mut a = chat_client(&relay.url(), dir.path(), "a");
    let ida = a.user_id();
    let Ok(BEvent::Id(idb)) = events.recv() else {
        panic!("B did not start")
    };
    a_id_tx.send(ida).unwrap();
    a.add_contact(&idb.to_string(), "b").unwrap();
    assert!(a.wait_thread(idb));
    let t = ThreadId::for_pair(&ida, &idb);
    // Warm up: the thread exists, both are caught up.
    a.app.world_mut().write_message(SendIntent {
        to: idb,
        text: "warm".into(),
    });
    let end = Instant::now() + Duration::from_secs(30);
    let mut b_ready = false;
    while !(b_ready && ready(&a, t)) {
        a.step();
        b_ready |= matches!(events.try_recv(), Ok(BEvent::Ready));
        assert!(Instant::now() < end, "warm-up failed");
    }
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let mut sent_at = vec![None; n];
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    let mut next = 0usize;
    let deadline = start + Duration::from_secs(secs * 6 + 30);
    while lat.len() < n && Instant::now() < deadline {
        let now = Instant::now();
        while next < n && now >= start + interval * next as u32 {
            a.app.world_mut().write_message(SendIntent {
                to: idb,
                text: format!("lat {next}"),
            });
            sent_at[next] = Some(Instant::now());
            next += 1;
        }
        let due = if next < n {
            (start + interval * next as u32).saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(20)
        };
        a.step_for(due);
        for e in events.try_iter() {
            if let BEvent::Got(i, at) = e
                && let Some(sent) = sent_at.get(i).copied().flatten()
            {
                lat.push((at - sent).as_secs_f64() * 1000.0);
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    receiver.join().expect("B's thread");
    let received = lat.len();
    lat.sort_by(f64::total_cmp);
    // Baseline: the relay hop alone, raw WebSocket clients at the same pace.
    let rt = rt();
    let ws_url = format!("ws://{}/ws", relay.addr);
    let token = relay.token();
    let base = rt.block_on(async move {
        let mut tx = ws(&ws_url, &token).await;
        let mut rx = ws(&ws_url, &token).await;
        subscribe(&mut rx, &[t]).await;
        let (sent_tx, sent_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        let sender = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            for i in 0..n {
                tokio::time::sleep_until(start + interval * i as u32).await;
                let f = ClientFrame::Message(OutgoingMessage {
                    thread_id: t,
                    ciphertext: hush_core::b64::encode(format!("{i}").as_bytes()),
                    iv: "AAECAwQFBgcICQoL".into(),
                    client_message_id: None,
                });
                let _ = sent_tx.send(Instant::now());
                tx.send(Message::text(f.to_json())).await.unwrap();
            }
            tx
        });
        let mut sent_rx = sent_rx;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match rx.next().await {
                Some(Ok(Message::Text(txt))) => {
                    if txt.as_str().contains("\"message\"") {
                        let at = sent_rx.recv().await.unwrap();
                        out.push(at.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        let _ = sender.await;
        out
    });
    let mut base = base;
    base.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
    );
    let (b50, b99, bmax) = (
        percentile(&base, 0.5),
        percentile(&base, 0.99),
        base.last().copied().unwrap_or(f64::NAN),
    );
    // On a slow disk (issue 18, point 1) the target is two durable commits
    // plus the relay hop of the same run; otherwise the original 0.5 / 2 ms.
    // A durable commit there is the wrapper's sleep on top of the real
    // commit, measured now on the same disk.
    let fsync_ms = crate::slow_disk::SlowDisk::fsync_from_env().map(|d| {
        let real = commit_costs(200).put / 1000.0;
        (d.as_secs_f64() * 1000.0, real)
    });
    let (target, wanted) = match fsync_ms {
        Some((slept, real)) => {
            let f = slept + real;
            let limit = 2.0 * f + b50;
            (
                p50 <= limit && received == n,
                format!(
                    "target on a {slept} ms slowed fsync ({f:.2} ms a durable commit with the real one): \
                     p50 ≤ 2 × commit + relay hop = {limit:.2} ms"
                ),
            )
        }
        None => (
            p50 <= 0.5 && p99 <= 2.0 && received == n,
            "target p50 ≤0.5 ms, p99 ≤2 ms".to_owned(),
        ),
    };
    drop(dir);
    Report {
        summary: format!(
            "{n} msgs at {rate}/s: send intent → decrypted in B: p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.2} ms \
             ({received}/{n} arrived); relay hop alone p50 {b50:.3} ms, p99 {b99:.3} ms, max {bmax:.2} ms; \
             {wanted}: {}",
            if target { "met" } else { "MISSED" }
        ),
        json: json!({
            "messages": n, "rate": rate, "received": received,
            "p50_ms": p50, "p99_ms": p99, "max_ms": max,
            "baseline_p50_ms": b50, "baseline_p99_ms": b99, "baseline_max_ms": bmax,
            "fsync_ms": fsync_ms.map(|(s, _)| s),
            "durable_commit_ms": fsync_ms.map(|(s, r)| s + r),
            "target_met": target,
        }),
    }
}

/// What the latency scenario's receiving client reports to the sender's thread.
enum BEvent {
    Id(Uuid),
    Ready,
    /// Message number `.0` was decrypted and in B's world at `.1`.
    Got(usize, Instant),
}

// ---------------------------------------------------------------- 3. recovery

fn recovery(n: usize) -> Report {
    let Setup {
        mut relay,
        dir,
        mut b,
        peer,
        t,
        key,
    } = setup();
    let frames = sealed_frames(&key, t, peer, n, "after restart");
    relay.kill();
    // B notices and starts its backoff.
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(2) {
        b.app.update();
        std::thread::sleep(Duration::from_millis(1));
    }
    relay.restart();
    let t0 = Instant::now();
    let scheduled = match b.app.world().resource::<Connection>().state().clone() {
        hush_net::ConnState::Reconnecting { retry_at, .. } => {
            let now = b.app.world().resource::<Time>().elapsed();
            retry_at.saturating_sub(now).as_secs_f64()
        }
        _ => 0.0,
    };
    let rt = rt();
    send_burst(&rt, &relay, frames);
    let mut t_conn = None;
    let mut t_sub = None;
    let done = spin_until(&mut b, Duration::from_secs(120), |b| {
        let w = b.app.world();
        if t_conn.is_none() && w.resource::<Connection>().is_connected() {
            t_conn = Some(t0.elapsed());
        }
        if t_sub.is_none() && ready(b, t) {
            t_sub = Some(t0.elapsed());
        }
        log_len(b, t) >= n && ready(b, t)
    });
    let total = t0.elapsed();
    // Exactly once: the log and the store agree, ids are unique.
    let e = thread_entity(&b, t).unwrap();
    let log = b.app.world().get::<ThreadLog>(e).unwrap();
    let mut ids: Vec<&str> = log.messages.iter().map(|m| m.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    let got = log
        .messages
        .iter()
        .filter(|m| m.content.starts_with("after restart"))
        .count();
    let lost = n.saturating_sub(got);
    let dup = log.messages.len() - ids.len();
    drop(dir);
    Report {
        summary: format!(
            "relay restarted with B in backoff (its next try, full jitter, was {scheduled:.2} s away): B connected \
             {:.2} s after the relay was back, resubscribed and caught up with {n} msgs {:.2} s after ({}) — \
             {:.0} ms from its attempt to caught up; lost {lost}, duplicated {dup}",
            t_conn.map_or(f64::NAN, |d| d.as_secs_f64()),
            total.as_secs_f64(),
            if done { "complete" } else { "INCOMPLETE" },
            (total.as_secs_f64() - scheduled) * 1000.0,
        ),
        json: json!({
            "messages": n,
            "backoff_wait_s": scheduled,
            "connected_s": t_conn.map(|d| d.as_secs_f64()),
            "subscribed_and_caught_up_s": t_sub.map(|d| d.as_secs_f64()),
            "all_received_s": total.as_secs_f64(),
            "attempt_to_caught_up_ms": (total.as_secs_f64() - scheduled) * 1000.0,
            "lost": lost, "duplicated": dup,
        }),
    }
}

// ---------------------------------------------------------------- 4. memory

fn memory(n: usize) -> Report {
    // Two processes: one writes the profile, a fresh one measures, so that
    // nothing of the set-up stays in the measured heap.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["memory-setup", &d, &n.to_string()])
        .status()
        .expect("set-up runs");
    assert!(st.success(), "memory set-up failed");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["memory-child", &d, &n.to_string()])
        .output()
        .expect("child runs");
    let line = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|_| {
        panic!(
            "memory child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let rss = v["rss_after_mib"].as_f64().unwrap_or(f64::NAN);
    let per = v["bytes_per_message"].as_f64().unwrap_or(f64::NAN);
    let target = rss <= 150.0;
    Report {
        summary: format!(
            "headless client holding a {n}-message thread: {rss:.1} MiB resident ({:.1} MiB before the thread \
             loaded), {per:.0} bytes per message; target ≤150 MB: {}",
            v["rss_before_mib"].as_f64().unwrap_or(f64::NAN),
            if target { "met" } else { "MISSED" }
        ),
        json: v,
    }
}

/// Runs in its own process: writes a profile with `n` stored messages.
pub(crate) fn memory_setup(dir: &std::path::Path, n: usize) {
    let salt = hush_core::b64::encode(&[5u8; 32]);
    let vk = VaultKey::derive(WORDS, &salt).unwrap();
    let me = Uuid::new_v4();
    let peer = Uuid::new_v4();
    let t = ThreadId::for_pair(&me, &peer);
    {
        let store = RedbStore::open(&dir.join("m.redb")).unwrap();
        store
            .set_profile(&ProfileMeta {
                kdf_salt: Some(salt.clone()),
                identity: Some(vk.identity_key().seal_json(&LocalIdentity {
                    user_id: me,
                    display_name: "me".into(),
                })),
                server: None,
                ..Default::default()
            })
            .unwrap();
        store
            .put_contact(
                peer,
                &vk.contacts_key().seal_json(&ContactRecord {
                    display_name: "peer".into(),
                    added_at: 0,
                }),
            )
            .unwrap();
        let key = vk.thread_key(&me, &peer);
        let msgs: Vec<StoredMessage> = (0..n)
            .map(|i| {
                let s = key.seal_json(&MessagePayload {
                    sender_id: if i % 2 == 0 { me } else { peer },
                    sender_name: "someone".into(),
                    content: format!("a typical short chat message, number {i}"),
                    timestamp: 1_795_000_000_000 + i as i64,
                });
                StoredMessage {
                    id: Uuid::new_v4().to_string(),
                    thread_id: t,
                    ciphertext: s.ciphertext,
                    iv: s.iv,
                    created_at: hush_core::time::format_ws(1_795_000_000_000_000 + i as i64 * 1000),
                    client_message_id: None,
                }
            })
            .collect();
        let rec = ThreadRecord {
            cursor: msgs.last().map(|m| m.created_at.clone()),
            on_server: true,
            ..ThreadRecord::new(t, peer)
        };
        store.store_messages(&msgs, Some(&rec), &[]).unwrap();
    }
}

/// Runs in a fresh process: unlocks the profile offline and measures
/// resident memory before and after its thread is loaded.
fn memory_child(dir: &std::path::Path, n: usize) -> String {
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir.join("m.redb")).unwrap());
    let t = store.threads().unwrap()[0].id;
    // No server: the profile unlocks offline with its stored salt.
    let mut c = Client::new("http://127.0.0.1:9", store, None).unwrap();
    c.app.update();
    let before = rss_bytes();
    c.unlock(&words()).expect("offline unlock");
    // Opening reads the newest page; the user scrolls back through the rest.
    let older = |c: &Client| {
        thread_entity(c, t)
            .and_then(|e| c.app.world().get::<ThreadLog>(e))
            .is_none_or(|l| l.older || l.revision == 0)
    };
    let s = Instant::now();
    while older(&c) {
        assert!(s.elapsed() < Duration::from_secs(120), "never loaded");
        c.app.world_mut().write_message(hush_chat::LoadOlder(t));
        c.app.update();
    }
    assert_eq!(log_len(&c, t), n);
    for _ in 0..10 {
        c.app.update();
    }
    let after = rss_bytes();
    json!({
        "messages": n,
        "rss_before_mib": before as f64 / 1048576.0,
        "rss_after_mib": after as f64 / 1048576.0,
        "bytes_per_message": (after.saturating_sub(before)) as f64 / n as f64,
    })
    .to_string()
}

// ---------------------------------------------------------------- 5. frame time

fn frame(n: usize) -> Report {
    use bevy_egui::egui;
    use hush_chat::{ChatMessage, MessageStatus};
    use hush_ui::model::{ChatView, Screen, StatusView, ThreadItem, ThreadView, UnlockStatus};
    use hush_ui::panels::app::{Frame, UiState, app};
    let me = Uuid::new_v4();
    let peer = Uuid::new_v4();
    let t = ThreadId::for_pair(&me, &peer);
    let log = ThreadLog {
        messages: (0..n)
            .map(|i| ChatMessage {
                id: format!("{i:08}"),
                created_at: String::new(),
                micros: 1_795_000_000_000_000 + i as i64 * 60_000_000,
                sender_id: Some(if i % 2 == 0 { me } else { peer }),
                sender_name: "Grace".into(),
                content: format!("a typical short chat message, number {i}"),
                timestamp_ms: 1_795_000_000_000 + i as i64 * 60_000,
                mine: i % 2 == 0,
                status: MessageStatus::Sent,
            })
            .map(std::sync::Arc::new)
            .collect(),
        pending: Vec::new(),
        older: false,
        revision: 1,
    };
    let ctx = egui::Context::default();
    let mut st = UiState::default();
    let mut times = Vec::new();
    for i in 0..320 {
        let f = Frame {
            screen: Screen::Chat,
            status: StatusView::Connected,
            unlock: UnlockStatus::default(),
            identity_error: None,
            new_words: None,
            chat: Some(ChatView {
                my_name: "Ada".into(),
                my_id: me,
                threads: vec![ThreadItem {
                    thread: t,
                    peer,
                    name: "Grace".into(),
                    unread: 0,
                    preview: None,
                    last_activity_ms: 1,
                    selected: true,
                    request: false,
                }],
                open: Some(ThreadView {
                    thread: t,
                    peer,
                    peer_name: "Grace".into(),
                    log: &log,
                    saved_draft: "",
                    request: false,
                    find: None,
                }),
                offline: false,
                max_ciphertext: 1 << 20,
                requests_unsupported: false,
            }),
            profile: "bench",
            server: "http://127.0.0.1:8000",
            data_dir: "/tmp",
            prefs: Default::default(),
            time: i as f64 / 60.0,
            details: None,
        };
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(1100.0, 720.0),
            )),
            ..Default::default()
        };
        let c0 = thread_cpu();
        let out = ctx.run_ui(input, |ui| {
            app(ui, &f, &mut st);
        });
        let _prims = ctx.tessellate(out.shapes, out.pixels_per_point);
        let dt = thread_cpu() - c0;
        // The first passes build fonts and the row index: not steady state.
        if i >= 20 {
            times.push(dt.as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        *times.last().unwrap(),
    );
    let target = p50 <= 4.0;
    Report {
        summary: format!(
            "one egui pass (layout + tessellation) of the chat screen with a {n}-message thread, CPU time: \
             p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms; target ≤4 ms: {}",
            if target { "met" } else { "MISSED" }
        ),
        json: json!({ "messages": n, "p50_ms": p50, "p99_ms": p99, "max_ms": max, "target_met": target }),
    }
}

// ---------------------------------------------------------------- 6. start-up

fn startup() -> Report {
    let salt = hush_core::b64::encode(&[7u8; 32]);
    let mut kdf: Vec<f64> = (0..3)
        .map(|_| {
            let s = Instant::now();
            let _ = VaultKey::derive(WORDS, &salt).unwrap();
            s.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    kdf.sort_by(f64::total_cmp);
    let relay = relay();
    let mut connect = Vec::new();
    for _ in 0..5 {
        let s = Instant::now();
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins(hush_net::HushNetPlugin {
                config: hush_net::NetConfig::new(hush_net::ServerUrl::parse(&relay.url()).unwrap()),
            });
        app.insert_resource(hush_net::Session::with_token(&relay.token()));
        app.world_mut()
            .write_message(hush_net::ConnectionIntent::Connect);
        while !app.world().resource::<Connection>().is_connected() {
            app.update();
            assert!(s.elapsed() < Duration::from_secs(20), "never connected");
        }
        connect.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    connect.sort_by(f64::total_cmp);
    // The whole unlock of an existing profile: auth + Argon2id + identity.
    let dir = tempfile::tempdir().unwrap();
    drop(chat_client(&relay.url(), dir.path(), "u"));
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir.path().join("u.redb")).unwrap());
    let s = Instant::now();
    let mut c = Client::new(&relay.url(), store, None).unwrap();
    c.unlock(&words()).unwrap();
    let unlocked = s.elapsed().as_secs_f64() * 1000.0;
    assert!(spin_until(&mut c, Duration::from_secs(20), |c| c
        .app
        .world()
        .resource::<Connection>()
        .is_connected()));
    let to_connected = s.elapsed().as_secs_f64() * 1000.0;
    let (k50, c50) = (percentile(&kdf, 0.5), percentile(&connect, 0.5));
    Report {
        summary: format!(
            "cold start to Connected with a token (no KDF): median {c50:.1} ms of 5; Argon2id alone: median {k50:.0} ms of 3; \
             full unlock of an existing profile {unlocked:.0} ms, to Connected {to_connected:.0} ms"
        ),
        json: json!({
            "connect_with_token_ms_median": c50, "connect_with_token_ms": connect,
            "argon2id_ms_median": k50, "argon2id_ms": kdf,
            "unlock_ms": unlocked, "unlock_to_connected_ms": to_connected,
        }),
    }
}

// ---------------------------------------------------------------- store costs (diagnostic)

/// What one redb commit costs on this disk: the floor under every per-message
/// path that writes (not part of `all`; run `hush-bench store`).
fn store_costs(n: usize) -> Report {
    let CommitCosts {
        put,
        relaxed,
        fsync,
    } = commit_costs(n);
    Report {
        summary: format!(
            "per call, {n} each: durable redb commit (put_outbox) {put:.0} µs; relaxed commit (store_messages, one message) {relaxed:.0} µs; bare write+fdatasync {fsync:.0} µs"
        ),
        json: json!({ "put_outbox_us": put, "store_message_relaxed_us": relaxed, "fdatasync_us": fsync }),
    }
}

/// Microseconds per call on this disk, now.
struct CommitCosts {
    /// A durable redb commit (`put_outbox`).
    put: f64,
    /// A relaxed one (`store_messages`, one message).
    relaxed: f64,
    /// A bare 512-byte write and fdatasync.
    fsync: f64,
}

fn commit_costs(n: usize) -> CommitCosts {
    use hush_store::{OutboxEntry, OutboxState};
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStore::open(&dir.path().join("s.redb")).unwrap();
    let t = ThreadId::parse("ab000000-0000-4000-8000-0000000000ab").unwrap();
    let key = AeadKey::from_bytes([3; 32]);
    let time = |f: &mut dyn FnMut(usize)| {
        let t0 = Instant::now();
        for i in 0..n {
            f(i);
        }
        t0.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    let put = time(&mut |i| {
        s.put_outbox(&OutboxEntry {
            seq: i as u64,
            thread_id: t,
            client_message_id: Uuid::new_v4().to_string(),
            sealed: key.seal(b"x"),
            attempts: 0,
            state: OutboxState::Queued,
            created_ms: 0,
        })
        .unwrap()
    });
    let msg = |i: usize| StoredMessage {
        id: Uuid::new_v4().to_string(),
        thread_id: t,
        ciphertext: "AAAA".into(),
        iv: hush_core::b64::encode(&(i as u64).to_be_bytes()[..]),
        created_at: hush_core::time::format_ws(1_795_000_000_000_000 + i as i64),
        client_message_id: None,
    };
    let relaxed = time(&mut |i| {
        s.store_messages(&[msg(i)], None, &[]).unwrap();
    });
    let fsync = {
        let f = std::fs::File::create(dir.path().join("f")).unwrap();
        time(&mut |_| {
            use std::io::Write;
            (&f).write_all(&[0u8; 512]).unwrap();
            f.sync_data().unwrap();
        })
    };
    CommitCosts {
        put,
        relaxed,
        fsync,
    }
}

// ---------------------------------------------------------------- 7. bundle

fn bundle() -> Report {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist");
    let wasm = std::fs::read_dir(&dist).ok().and_then(|d| {
        d.filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "wasm"))
    });
    let Some(path) = wasm else {
        return Report {
            summary: "no web/dist/hush_bg-*.wasm: run web/build.sh first".into(),
            json: json!({ "built": false }),
        };
    };
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).ok();
    let with = |ext: &str| {
        let mut p = path.clone().into_os_string();
        p.push(ext);
        size(std::path::Path::new(&p))
    };
    let raw = size(&path).unwrap_or(0);
    let (gz, br) = (with(".gz"), with(".br"));
    // What a browser that sends `Accept-Encoding: br, gzip` transfers.
    let sent = br.or(gz).unwrap_or(raw);
    let mb = |b: u64| b as f64 / 1_000_000.0;
    let target = sent <= 3_500_000;
    Report {
        summary: format!(
            "{}: {:.2} MB raw, {} gzip, {} brotli; sent to a browser: {:.2} MB (target ≤3.5 MB: {})",
            path.file_name().unwrap_or_default().to_string_lossy(),
            mb(raw),
            gz.map_or("no".into(), |g| format!("{:.2} MB", mb(g))),
            br.map_or("no".into(), |b| format!("{:.2} MB", mb(b))),
            mb(sent),
            if target { "met" } else { "MISSED" }
        ),
        json: json!({ "built": true, "raw_bytes": raw, "gzip_bytes": gz, "brotli_bytes": br, "sent_bytes": sent, "target_met": target }),
    }
}
