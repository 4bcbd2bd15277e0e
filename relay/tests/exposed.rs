//! The release-shaped relay process as the internet would meet it: under a
//! 1 024-descriptor limit, floods of idle, half-header and slowloris sockets
//! from many source addresses must not keep `/health` or a normal client
//! out, and a subscriber that never reads is closed before it costs memory.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{IV, WORDS, Ws, create_thread_at, listening_url, sign_in, thread};
use futures_util::SinkExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

struct RelayProcess {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hush-relay --no-rate-limit` on 127.0.0.1:0, under `prlimit --nofile=N`
/// when available.
fn relay_process(nofile: Option<u64>) -> RelayProcess {
    relay_process_with(nofile, &["--no-rate-limit"])
}

fn relay_process_with(nofile: Option<u64>, args: &[&str]) -> RelayProcess {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_hush-relay");
    let has_prlimit = Command::new("prlimit").arg("--version").output().is_ok();
    let mut cmd = match (nofile, has_prlimit) {
        (Some(n), true) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    cmd.args(["--listen", "127.0.0.1:0"])
        .args(args)
        .arg("--data-dir")
        .arg(dir.path().join("relay"))
        .env("HUSH_WORDS", WORDS)
        .env("HUSH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let base = listening_url(&mut child);
    RelayProcess {
        child,
        base,
        _dir: dir,
    }
}

fn rss_mb(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn health_ok(http: &reqwest::Client, base: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(3), http.get(format!("{base}/health")).send()).await,
        Ok(Ok(r)) if r.status().is_success()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_half_header_and_slowloris_floods_do_not_keep_clients_out() {
    let relay = relay_process(Some(1024));
    let addr: std::net::SocketAddr = relay.base.trim_start_matches("http://").parse().unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(health_ok(&http, &relay.base).await);
    let started = Instant::now();
    // 1 100 sockets from 127.0.0.2 … 127.0.0.221: a third silent, a third
    // with half a header, a third sending a header byte every two seconds.
    let mut socks = Vec::new();
    for i in 0..1100u32 {
        let src = std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % 220) as u8);
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        if s.bind((src, 0).into()).is_err() {
            continue;
        }
        let Ok(Ok(mut c)) = tokio::time::timeout(Duration::from_secs(2), s.connect(addr)).await
        else {
            continue; // the backlog is full: that is the flood working
        };
        match i % 3 {
            0 => {}
            1 => {
                let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
            }
            _ => {
                let _ = c.write_all(b"G").await;
            }
        }
        socks.push((i, c));
    }
    let opened = socks.len();
    // Slowloris: one more byte every two seconds on a third of them.
    let loris = tokio::spawn(async move {
        let mut socks = socks;
        let mut closed_by_server = 0usize;
        for _round in 0..10 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            for (i, c) in socks.iter_mut() {
                if *i % 3 == 2 {
                    let _ = c.write_all(b"E").await;
                }
            }
        }
        for (_, c) in socks.iter_mut() {
            let mut b = [0u8; 64];
            // Closed by the relay: a read ends at once (EOF, a reset, or a
            // last error response); an open idle socket would just wait.
            if tokio::time::timeout(Duration::from_millis(20), c.read(&mut b))
                .await
                .is_ok()
            {
                closed_by_server += 1;
            }
        }
        (socks.len(), closed_by_server)
    });
    // /health must answer within 15 s of the flood's start.
    let mut answered_at = None;
    while started.elapsed() < Duration::from_secs(20) {
        if health_ok(&http, &relay.base).await {
            answered_at = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let answered_at = answered_at.expect("/health never answered during the flood");
    // A normal client signs in and chats.
    let token = sign_in(&http, &relay.base).await;
    let mut ws = Ws::connect(&format!("ws://{addr}/ws?token={token}"), None).await;
    ws.send(json!({"type": "ping"})).await;
    let pong = ws.recv_within(Duration::from_secs(10)).await;
    assert!(pong.is_some_and(|v| v["type"] == "pong" || v["type"] == "heartbeat"));
    let (held, closed) = loris.await.unwrap();
    eprintln!(
        "{opened} flood sockets opened; /health answered {:.1} s after the flood began; {closed} of {held} closed by the relay after ~22 s",
        answered_at.as_secs_f64()
    );
    assert!(answered_at <= Duration::from_secs(15), "{answered_at:?}");
    assert!(
        closed * 10 >= held * 9,
        "only {closed} of {held} flood sockets were closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_is_closed_before_it_costs_memory() {
    let relay = relay_process(None);
    let pid = relay.child.id();
    let addr = relay.base.trim_start_matches("http://").to_owned();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = sign_in(&http, &relay.base).await;
    let t = thread(3);
    create_thread_at(&http, &relay.base, &token, &t).await;
    // The largest ciphertext the relay takes (1 MiB).
    let big = base64_of(hush_core::http::DEFAULT_MAX_CIPHERTEXT);
    let mut sender = Ws::connect(&format!("ws://{addr}/ws?token={token}"), None).await;
    // Warm up the store's caches with nobody subscribed, so that what is
    // measured below is what the connections hold.
    for _ in 0..20 {
        let f = json!({"type": "message", "thread_id": t, "ciphertext": big, "iv": IV});
        sender.s.send(Message::text(f.to_string())).await.unwrap();
        let _ = sender.recv_within(Duration::from_millis(50)).await;
    }
    while sender
        .recv_within(Duration::from_millis(300))
        .await
        .is_some()
    {}
    let before = rss_mb(pid);
    // The subscriber subscribes, then never reads again.
    let mut lazy = Ws::connect(&format!("ws://{addr}/ws?token={token}"), None).await;
    lazy.subscribe(&t).await;
    // 60 of the largest messages (~84 MB of frames, ten times what may wait
    // for one subscriber).
    let mut peak = before;
    for _ in 0..60 {
        let f = json!({"type": "message", "thread_id": t, "ciphertext": big, "iv": IV});
        sender.s.send(Message::text(f.to_string())).await.unwrap();
        // Keep the sender's own replies flowing.
        let _ = sender.recv_within(Duration::from_millis(50)).await;
        peak = peak.max(rss_mb(pid));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    peak = peak.max(rss_mb(pid));
    // The lazy one is closed: reading now ends (after what was already in
    // flight) within the write timeout.
    let ended = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            match futures_util::StreamExt::next(&mut lazy.s).await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    eprintln!(
        "relay RSS {before:.0} MB before, peak {peak:.0} MB with a subscriber that never reads"
    );
    assert!(ended.is_ok(), "the non-reading subscriber was never closed");
    assert!(peak < 100.0, "RSS peaked at {peak:.0} MB");
    // Once it is gone, what it held goes back to the system.
    drop(lazy);
    drop(sender);
    let mut after = rss_mb(pid);
    for _ in 0..50 {
        if after < before + 16.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = rss_mb(pid);
    }
    eprintln!("relay RSS {after:.0} MB after both connections closed");
    assert!(
        after < before + 16.0,
        "RSS {after:.0} MB after close, {before:.0} MB before"
    );
}

fn base64_of(n: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(vec![7u8; n])
}

/// The local relay a window starts (`--exit-when-idle`) stops by itself
/// once no client has been connected for that long, and not while one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_relay_stops_by_itself_but_not_while_a_client_is_connected() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hush-relay"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--exit-when-idle",
            "2",
            "--data-dir",
        ])
        .arg(&data)
        .env("HUSH_WORDS", WORDS)
        .env("HUSH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = listening_url(&mut child);
    let port_file = data.join("relay.port");
    for _ in 0..50 {
        if port_file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(port_file.exists(), "no port file");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = sign_in(&http, &base).await;
    let addr = base.trim_start_matches("http://");
    let ws = Ws::connect(&format!("ws://{addr}/ws?token={token}"), None).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "stopped with a client connected"
    );
    drop(ws);
    let closed = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            closed.elapsed() < Duration::from_secs(15),
            "still running 15 s after its last client left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let after = closed.elapsed();
    eprintln!(
        "stopped {:.1} s after the last client left",
        after.as_secs_f64()
    );
    assert!(status.success(), "{status}");
    assert!(
        after >= Duration::from_secs(2),
        "stopped before its idle time"
    );
    assert!(
        !data.join("relay.port").exists(),
        "left its port file behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_mode_has_the_stock_servers_rate_limits() {
    let relay = relay_process_with(None, &["--stock"]);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let auth = || async {
        http.post(format!("{}/api/auth", relay.base))
            .json(&json!({ "words": WORDS }))
            .send()
            .await
            .unwrap()
    };
    // /api/auth: a burst of 3, then 429 in the middleware's shape.
    let mut token = String::new();
    for _ in 0..3 {
        let r = auth().await;
        assert_eq!(r.status().as_u16(), 200);
        token = r.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let r = auth().await;
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // 10 a minute: the next one in about 6 s.
    eprintln!("stock: the 4th /api/auth in a burst: 429, Retry-After {wait}");
    assert!((1..=7).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    // Every other route: a burst of 10.
    let get = || async {
        http.get(format!("{}/api/threads/{}", relay.base, thread(9)))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    for i in 0..10 {
        assert_eq!(get().await, 404, "request {i}");
    }
    assert_eq!(get().await, 429);
    // The default relay is far more generous: 120 in a burst.
    let ours = relay_process_with(None, &[]);
    let token = sign_in(&http, &ours.base).await;
    for i in 0..40 {
        let s = http
            .get(format!("{}/api/threads/{}", ours.base, thread(9)))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(s, 404, "request {i}");
    }
}
