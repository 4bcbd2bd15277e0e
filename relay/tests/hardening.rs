//! The relay under pressure: a flooding connection does not starve others,
//! a thousand idle connections are held, brute force is blocked.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Ws, start, thread};
use futures_util::SinkExt;
use hush_relay::RateLimits;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_connection_does_not_starve_others() {
    let r = start(Backend::Sqlite, |c| {
        c.rate_limits = Some(RateLimits::default());
        c.queue_len = 256;
    })
    .await;
    let t = r.token().await;
    let a = thread(1);
    r.create_thread(&t, &a).await;
    let mut flooder = r.ws_query(&t).await;
    flooder.subscribe(&a).await;
    // Thousands of frames as fast as the socket takes them, never reading.
    let flood = tokio::spawn(async move {
        let ping = json!({"type": "ping"}).to_string();
        let msg = json!({"type": "message", "thread_id": thread(1), "ciphertext": "AAAA", "iv": common::IV}).to_string();
        let mut sent = 0u64;
        let until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < until {
            let f = if sent.is_multiple_of(2) { &ping } else { &msg };
            // A flooder that never reads is pushed back by TCP once the relay
            // stops reading it; that stall is the point, so stop there.
            let push = flooder.s.send(Message::text(f.clone()));
            match tokio::time::timeout(Duration::from_millis(500), push).await {
                Ok(Ok(())) => sent += 1,
                Ok(Err(_)) | Err(_) => break,
            }
        }
        (sent, flooder)
    });
    let mut other = r.ws_query(&t).await;
    let mut rtts = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let t0 = Instant::now();
        other.send(json!({"type": "ping"})).await;
        loop {
            let v = other.recv().await;
            if v["type"] == "pong" {
                break;
            }
        }
        rtts.push(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (sent, _flooder) = flood.await.unwrap();
    rtts.sort();
    let p50 = rtts[rtts.len() / 2];
    let max = *rtts.last().unwrap();
    eprintln!(
        "flood: {sent} frames; other connection: {} pings, p50 {p50:?}, max {max:?}",
        rtts.len()
    );
    assert!(sent > 1000, "the flood was not a flood ({sent} frames)");
    assert!(rtts.len() > 20);
    assert!(
        max < Duration::from_millis(500),
        "another connection waited {max:?}"
    );
    // The flood's messages were rate limited, not all stored.
    let stats = r.relay().stats();
    assert!(hush_relay::Stats::get(&stats.messages_stored) < sent / 2);
    r.finish().await;
}

fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a struct we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(want.max(lim.rlim_cur));
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_are_held() {
    raise_fd_limit(8192);
    let r = start(Backend::Sqlite, |c| c.heartbeat = Duration::from_secs(2)).await;
    let t = r.token().await;
    let mut conns: Vec<Ws> = Vec::with_capacity(1000);
    for _ in 0..1000 {
        conns.push(r.ws_query(&t).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.relay().connections(), 1000);
    // They stay served: heartbeats reach all of them, pings are answered.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let mut beats = 0;
    for c in conns.iter_mut() {
        if c.recv_any(Duration::from_secs(3)).await == Some(json!({"type": "heartbeat"})) {
            beats += 1;
        }
    }
    assert_eq!(beats, 1000, "every idle connection got its heartbeat");
    for i in [0, 499, 999] {
        conns[i].send(json!({"type": "ping"})).await;
        assert_eq!(conns[i].recv().await, json!({"type": "pong"}));
    }
    drop(conns);
    r.finish().await;
}
