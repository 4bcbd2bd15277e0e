//! `relay-conns`: what an idle WebSocket costs the relay (issue 18, point 6),
//! and whether it is handed back when the socket closes. The relay runs in a
//! child process (this binary, `relay-child`), so that its resident memory is
//! its own; the parent opens the sockets. Each socket subscribes to a thread,
//! receives one message, pings, and then idles, as a client between chats.
//!
//! The same run measures the relay with tungstenite's default buffers
//! (128 KiB), which is what it used before `RelayConfig::ws_buffer`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hush_core::ThreadId;
use hush_core::wire::{ClientFrame, OutgoingMessage};
use hush_testkit::RelayFixture;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::scenarios::Report;

const CONNS: usize = 500;

fn thread() -> ThreadId {
    ThreadId::parse("ab000000-0000-4000-8000-0000000000ab").unwrap()
}

/// Runs in a child process: a relay with this buffer size, its address and
/// a token on stdout, until stdin closes.
pub(crate) fn relay_child(buffer: usize) {
    let relay = RelayFixture::start_with(|c| {
        c.ws_buffer = buffer;
        c.max_http_connections = 4 * CONNS;
    });
    relay.rest().create_thread(thread());
    println!("{} {}", relay.url(), relay.token());
    std::io::stdout().flush().unwrap();
    let mut sink = String::new();
    let _ = std::io::stdin().read_line(&mut sink);
}

fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

struct Measured {
    per_conn_kib: f64,
    idle_mib: f64,
    open_mib: f64,
    closed_mib: f64,
}

fn measure(buffer: usize) -> Measured {
    let mut child: Child = Command::new(std::env::current_exe().unwrap())
        .args(["relay-child", &buffer.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("relay child");
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut it = line.split_whitespace();
    let (url, token) = (it.next().unwrap().to_owned(), it.next().unwrap().to_owned());
    let ws_url = format!("{}/ws?token={token}", url.replacen("http", "ws", 1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let thread = thread();
    let sub = ClientFrame::Subscribe { thread_id: thread }.to_json();
    let (idle, open, socks) = rt.block_on(async {
        // One socket warms the relay's paths up before the baseline.
        let (mut first, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
        first.send(Message::text(sub.clone())).await.unwrap();
        first.next().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle = rss_kib(pid);
        let mut socks = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            let (mut s, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
            s.send(Message::text(sub.clone())).await.unwrap();
            socks.push(s);
        }
        // A message to every subscriber, then a ping from each: each socket
        // has read and written before it idles.
        let msg = ClientFrame::Message(OutgoingMessage {
            thread_id: thread,
            ciphertext: "Y2lwaGVydGV4dCBvZiBhIHNob3J0IG1lc3NhZ2U=".into(),
            iv: "aXYtaXYtaXYtaXYt".into(),
            client_message_id: None,
        });
        first.send(Message::text(msg.to_json())).await.unwrap();
        let ping = ClientFrame::Ping.to_json();
        for s in &mut socks {
            s.send(Message::text(ping.clone())).await.unwrap();
        }
        for s in &mut socks {
            // The subscription's ack, the message and the pong.
            for _ in 0..3 {
                let got = tokio::time::timeout(Duration::from_secs(10), s.next()).await;
                assert!(
                    matches!(got, Ok(Some(Ok(_)))),
                    "a frame is missing: {got:?}"
                );
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let open = rss_kib(pid);
        socks.push(first);
        (idle, open, socks)
    });
    rt.block_on(async {
        for mut s in socks {
            let _ = s.close(None).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let closed = rss_kib(pid);
    drop(child.stdin.take());
    let _ = child.wait();
    Measured {
        per_conn_kib: (open - idle) / CONNS as f64,
        idle_mib: idle / 1024.0,
        open_mib: open / 1024.0,
        closed_mib: closed / 1024.0,
    }
}

pub fn relay_conns() -> Report {
    let now = measure(hush_relay::RelayConfig::default().ws_buffer);
    let before = measure(128 << 10);
    let met = now.per_conn_kib <= 32.0;
    Report {
        summary: format!(
            "{CONNS} idle WebSockets (each subscribed, sent to and pinged): {:.1} KiB each (target ≤32: {}); \
             relay {:.1} MiB → {:.1} MiB open → {:.1} MiB after they closed. With tungstenite's default 128 KiB \
             buffers, same run: {:.1} KiB each, {:.1} MiB after they closed",
            now.per_conn_kib,
            if met { "met" } else { "MISSED" },
            now.idle_mib,
            now.open_mib,
            now.closed_mib,
            before.per_conn_kib,
            before.closed_mib,
        ),
        json: json!({
            "connections": CONNS,
            "kib_per_connection": now.per_conn_kib,
            "rss_mib_before": now.idle_mib, "rss_mib_open": now.open_mib, "rss_mib_closed": now.closed_mib,
            "baseline_128k_kib_per_connection": before.per_conn_kib,
            "baseline_128k_rss_mib_open": before.open_mib,
            "baseline_128k_rss_mib_closed": before.closed_mib,
        }),
    }
}
