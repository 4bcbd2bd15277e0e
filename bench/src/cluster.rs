//! `cluster` (issue 19): relay nodes sharing one PostgreSQL database, in
//! this process, on loopback.
//!
//! - **hop**: one sender on node 0, one subscriber on node 0 (same node) and
//!   one on node 1 (cross node), 2 000 messages at 1 000 a second: the
//!   latency of each, and their ratio. A single SQLite node is the baseline
//!   (no database notice in the path).
//! - **failover**: a headless client that knows two nodes; the node it is
//!   on is killed (sockets dropped, like a crash), and the time until it is
//!   connected to the other is taken, five times.
//! - **inbound**: six raw senders, one per thread, spread over 1, 2 and 3
//!   nodes, 2 000 messages each as fast as they go, and one subscriber of
//!   all six threads on every node: messages a second until every
//!   subscriber has all of them.
//!
//! Needs `HUSH_BENCH_PG` (or `HUSH_TEST_DATABASE_URL`): a PostgreSQL URL on
//! which it may create and drop databases.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hush_chat::headless::Client;
use hush_core::ThreadId;
use hush_net::{Connection, NetConfig};
use hush_relay::{RelayConfig, RelayThread, Storage};
use hush_testkit::WORDS;
use hush_testkit::pg::TempDatabase;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::scenarios::{self, Report, Ws, percentile, subscribe, words};

const HOP_N: usize = 2_000;
const SENDERS: usize = 6;
const PER_SENDER: usize = 2_000;
const FAILOVERS: usize = 5;

pub(crate) fn cluster() -> Report {
    let Some(admin) = std::env::var("HUSH_BENCH_PG")
        .or_else(|_| std::env::var("HUSH_TEST_DATABASE_URL"))
        .ok()
    else {
        return Report {
            summary: "not measured: set HUSH_BENCH_PG to a PostgreSQL URL".into(),
            json: json!({ "error": "no HUSH_BENCH_PG" }),
        };
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-peer")
        .enable_all()
        .build()
        .expect("runtime");

    let (hops, failover) = {
        let db = TempDatabase::create(&admin, "hush_bench");
        let nodes = start_nodes(&db.url, 2);
        let hops = rt.block_on(hop(&nodes[0], &nodes[1]));
        let failover = failover(&db.url);
        drop(nodes);
        (hops, failover)
    };
    let sqlite_hop = {
        let dir = tempfile::tempdir().unwrap();
        let node = RelayThread::spawn(config(Storage::SqliteDir(dir.path().join("relay"))))
            .expect("a SQLite node");
        rt.block_on(hop(&node, &node)).0
    };
    let mut inbound = Vec::new();
    for n in 1..=3 {
        let db = TempDatabase::create(&admin, "hush_bench");
        let nodes = start_nodes(&db.url, n);
        inbound.push(rt.block_on(inbound_rate(&nodes)));
        drop(nodes);
    }

    let (same, cross) = hops;
    let ratio = cross.0 / same.0;
    let mut fo = failover.clone();
    fo.sort_by(f64::total_cmp);
    let fo_p50 = percentile(&fo, 0.5);
    let fo_max = fo.last().copied().unwrap_or(f64::NAN);
    Report {
        summary: format!(
            "hop at 1 000/s: same node p50 {:.2} ms (p99 {:.2}), cross node p50 {:.2} ms (p99 \
             {:.2}), cross/same {ratio:.2}× (one SQLite node: p50 {:.2} ms); failover to the \
             next node: median {fo_p50:.2} s, max {fo_max:.2} s over {FAILOVERS}; inbound with \
             1/2/3 nodes: {:.0} / {:.0} / {:.0} msg/s",
            same.0, same.1, cross.0, cross.1, sqlite_hop.0, inbound[0], inbound[1], inbound[2]
        ),
        json: json!({
            "hop_same_p50_ms": same.0, "hop_same_p99_ms": same.1,
            "hop_cross_p50_ms": cross.0, "hop_cross_p99_ms": cross.1,
            "hop_ratio": ratio, "hop_sqlite_p50_ms": sqlite_hop.0,
            "failover_s": failover,
            "inbound_per_sec": inbound,
        }),
    }
}

fn config(storage: Storage) -> RelayConfig {
    let mut c = RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        storage,
        words: Some(zeroize::Zeroizing::new(WORDS.to_owned())),
        rate_limits: None,
        // The burst must not count a busy reader as a slow one.
        queue_len: 1_000_000,
        ..RelayConfig::default()
    };
    c.queue_bytes = usize::MAX / 2;
    c
}

/// `n` nodes on one database, started one after the other (the first makes
/// the schema and the vault).
fn start_nodes(url: &str, n: usize) -> Vec<RelayThread> {
    (0..n)
        .map(|_| RelayThread::spawn(config(Storage::Url(url.to_owned()))).expect("a node"))
        .collect()
}

async fn ws(node: &RelayThread) -> Ws {
    scenarios::ws(&format!("ws://{}/ws", node.addr), node.test_token()).await
}

async fn create_thread(node: &RelayThread, t: ThreadId) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/threads", node.url()))
        .bearer_auth(node.test_token())
        .header("content-type", "application/json")
        .body(json!({ "id": t, "ciphertext": "AAAA", "iv": "AAECAwQFBgcICQoL" }).to_string())
        .send()
        .await
        .expect("request");
    assert!(r.status().is_success(), "create thread: {}", r.status());
}

/// A message frame whose ciphertext carries `(sender, i)`.
fn frame(t: ThreadId, sender: usize, i: usize) -> String {
    let mut body = format!("{sender:02}{i:08}").into_bytes();
    body.resize(200, b'.');
    json!({
        "type": "message", "thread_id": t,
        "ciphertext": hush_core::b64::encode(&body), "iv": "AAECAwQFBgcICQoL",
    })
    .to_string()
}

/// `(sender, i)` of a `message` frame from [`frame`].
fn index(text: &str) -> Option<(usize, usize)> {
    let v: Value = serde_json::from_str(text).ok()?;
    if v["type"] != "message" {
        return None;
    }
    let body = hush_core::b64::decode(v["ciphertext"].as_str()?).ok()?;
    let s = std::str::from_utf8(body.get(..10)?).ok()?;
    Some((s[..2].parse().ok()?, s[2..].parse().ok()?))
}

/// Reads `n` messages; the arrival time of each index of sender 0.
fn collect(mut s: Ws, n: usize) -> tokio::task::JoinHandle<Vec<Option<Instant>>> {
    tokio::spawn(async move {
        let mut at = vec![None; n];
        let mut got = 0;
        while got < n {
            match s.next().await {
                Some(Ok(Message::Text(t))) => {
                    if let Some((_, i)) = index(t.as_str()) {
                        if at[i].is_none() {
                            got += 1;
                        }
                        at[i] = Some(Instant::now());
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        at
    })
}

/// p50 and p99 in ms of (same-node, cross-node) subscribers.
async fn hop(a: &RelayThread, b: &RelayThread) -> ((f64, f64), (f64, f64)) {
    let t = ThreadId::parse(&Uuid::new_v4().to_string()).unwrap();
    create_thread(a, t).await;
    let mut same = ws(a).await;
    let mut cross = ws(b).await;
    subscribe(&mut same, &[t]).await;
    subscribe(&mut cross, &[t]).await;
    let (same, cross) = (collect(same, HOP_N), collect(cross, HOP_N));
    let mut tx = ws(a).await;
    let mut sent = Vec::with_capacity(HOP_N);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    for i in 0..HOP_N {
        tick.tick().await;
        sent.push(Instant::now());
        tx.send(Message::text(frame(t, 0, i))).await.unwrap();
    }
    // Acknowledgements are read so the sender's queue does not fill.
    tokio::spawn(async move { while tx.next().await.is_some() {} });
    let lat = |at: Vec<Option<Instant>>| {
        let mut v: Vec<f64> = at
            .iter()
            .zip(&sent)
            .filter_map(|(r, s)| Some((*r.as_ref()? - *s).as_secs_f64() * 1000.0))
            .collect();
        v.sort_by(f64::total_cmp);
        (percentile(&v, 0.5), percentile(&v, 0.99))
    };
    let (same, cross) = tokio::time::timeout(Duration::from_secs(60), async {
        (same.await.unwrap(), cross.await.unwrap())
    })
    .await
    .expect("every message arrived on both nodes within 60 s");
    (lat(same), lat(cross))
}

/// Seconds from the kill of a client's node to its connection on the other
/// node, `FAILOVERS` times.
fn failover(db: &str) -> Vec<f64> {
    let mut nodes: Vec<Option<RelayThread>> = start_nodes(db, 2).into_iter().map(Some).collect();
    let addrs: Vec<_> = nodes.iter().map(|n| n.as_ref().unwrap().addr).collect();
    let servers = format!("http://{},http://{}", addrs[0], addrs[1]);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn hush_store::Store> =
        Arc::new(hush_store::RedbStore::open(&dir.path().join("c.redb")).expect("store"));
    let mut c = Client::with_config(
        NetConfig::new(hush_net::ServerList::parse(&servers).unwrap()),
        store,
    );
    c.unlock_as(&words(), "c").expect("unlock");
    let mut times = Vec::new();
    for _ in 0..FAILOVERS {
        assert!(
            c.run_until(Duration::from_secs(30), |c| {
                c.app.world().resource::<Connection>().is_connected()
            }),
            "connected"
        );
        let on = c.app.world().resource::<NetConfig>().server.to_string();
        let k = usize::from(on != format!("http://{}", addrs[0]));
        nodes[k].take().unwrap().kill();
        let killed = Instant::now();
        let moved = c.run_until(Duration::from_secs(30), |c| {
            let w = c.app.world();
            w.resource::<Connection>().is_connected()
                && w.resource::<NetConfig>().server.to_string() != on
        });
        assert!(moved, "the client did not move to the other node");
        times.push(killed.elapsed().as_secs_f64());
        // The killed node comes back on its port for the next round.
        let mut cfg = config(Storage::Url(db.to_owned()));
        cfg.listen = addrs[k];
        nodes[k] = Some(respawn(cfg));
    }
    times
}

fn respawn(cfg: RelayConfig) -> RelayThread {
    for _ in 0..50 {
        if let Ok(n) = RelayThread::spawn(cfg.clone()) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the node did not restart on {}", cfg.listen);
}

/// Messages a second through `nodes` (see the module doc).
async fn inbound_rate(nodes: &[RelayThread]) -> f64 {
    let threads: Vec<ThreadId> = (0..SENDERS)
        .map(|_| ThreadId::parse(&Uuid::new_v4().to_string()).unwrap())
        .collect();
    for t in &threads {
        create_thread(&nodes[0], *t).await;
    }
    let total = SENDERS * PER_SENDER;
    let mut readers = Vec::new();
    for n in nodes {
        let mut s = ws(n).await;
        subscribe(&mut s, &threads).await;
        readers.push(tokio::spawn(async move {
            let mut got = 0;
            while got < total {
                match s.next().await {
                    Some(Ok(Message::Text(t))) if t.as_str().contains("\"message\"") => got += 1,
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
            got
        }));
    }
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        senders.push(ws(&nodes[i % nodes.len()]).await);
    }
    let start = Instant::now();
    for (i, mut s) in senders.into_iter().enumerate() {
        let t = threads[i];
        tokio::spawn(async move {
            for k in 0..PER_SENDER {
                s.feed(Message::text(frame(t, i, k))).await.unwrap();
            }
            s.flush().await.unwrap();
            while s.next().await.is_some() {}
        });
    }
    for r in readers {
        let got = tokio::time::timeout(Duration::from_secs(300), r)
            .await
            .expect("every subscriber got everything within 300 s")
            .unwrap();
        assert_eq!(got, total, "a subscriber's socket ended early");
    }
    total as f64 / start.elapsed().as_secs_f64()
}
